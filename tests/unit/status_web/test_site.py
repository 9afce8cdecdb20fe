"""The public pages over HTTP (a real aiohttp server on 127.0.0.1, SQLite store with the example Vorgänge)."""

from __future__ import annotations

import asyncio
import random
import string
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import aiohttp
import pytest

from rueckkanal.settings import Settings
from rueckkanal.tracking import new_token
from streams.status_web.http import CSP
from tests.support.status_web import RunningSite, start_site

HST_123 = "urn:de:leipzig:fachverfahren:hundesteuer|HST-2024-000123"  # final (410)
HST_205 = "urn:de:leipzig:fachverfahren:hundesteuer|HST-2024-000205"  # open payment


@pytest.fixture
async def site(tmp_path: Path) -> AsyncIterator[RunningSite]:
    running = await start_site(tmp_path)
    yield running
    await running.close()


async def fetch(http: aiohttp.ClientSession, url: str) -> tuple[int, bytes, dict[str, str]]:
    async with http.get(url) as response:
        return response.status, await response.read(), dict(response.headers)


async def test_ten_thousand_random_tokens_find_nothing_and_all_get_the_same_bytes(site: RunningSite) -> None:
    alphabet = string.ascii_letters + string.digits + "-_"
    known = {url.rsplit("/", 1)[1] for url in site.urls.values()}
    guesses = ["".join(random.choices(alphabet, k=27)) for _ in range(10_000)]
    assert not known & set(guesses)
    semaphore = asyncio.Semaphore(32)
    answers: set[tuple[int, bytes]] = set()

    async with aiohttp.ClientSession() as http:

        async def probe(token: str) -> None:
            async with semaphore:
                status, body, _ = await fetch(http, f"{site.base_url}/s/{token}")
                answers.add((status, body))

        await asyncio.gather(*(probe(token) for token in guesses))
        assert len(answers) == 1
        [(status, body)] = answers
        assert status == 404
        # the same bytes for a malformed token, an unknown path, a revoked and an expired link
        revoked = site.urls[HST_205]
        assert (await fetch(http, revoked))[0] == 200
        assert await site.links.revoke(revoked.rsplit("/", 1)[1])
        expired = site.urls[HST_123]
        assert (await fetch(http, expired))[0] == 200
        site.links.clock = lambda: datetime.now(UTC) + timedelta(days=91)
        for url in (revoked, expired, f"{site.base_url}/s/short", f"{site.base_url}/elsewhere", revoked + "/zahlung"):
            assert (await fetch(http, url))[:2] == (404, body), url
    assert site.site.metrics.not_found._value.get() >= 10_005


async def test_one_client_is_rate_limited_after_the_configured_number_per_minute(tmp_path: Path) -> None:
    running = await start_site(tmp_path, rate_limit=20)
    try:
        url = running.urls[HST_205]
        async with aiohttp.ClientSession() as http:
            statuses = [(await fetch(http, url))[0] for _ in range(20)]
            status, body, headers = await fetch(http, url)
            assert statuses == [200] * 20
            assert status == 429 and int(headers["Retry-After"]) >= 1
            assert b"Zu viele Anfragen" in body and headers["Cache-Control"] == "no-store"
            assert (await fetch(http, f"{running.base_url}/static/status.css"))[0] == 200  # assets are not counted
    finally:
        await running.close()


async def test_every_answer_is_private_and_the_pages_need_nothing_from_elsewhere(site: RunningSite) -> None:
    url = site.urls[HST_205]
    async with aiohttp.ClientSession() as http:
        for target in (url, url + "/zahlung", url + "/girocode.svg", url + "/zahlung.ics", f"{site.base_url}/nope"):
            _, body, headers = await fetch(http, target)
            assert headers["Cache-Control"] == "no-store", target
            assert headers["Referrer-Policy"] == "no-referrer"
            assert headers["X-Robots-Tag"] == "noindex, nofollow"
            assert headers["Content-Security-Policy"] == CSP
            assert b"<script" not in body and b"//fonts." not in body
        status, page, _ = await fetch(http, url + "/zahlung")
        assert status == 200
        # the example's Statusberichtigung (0102) corrected the amount of its payment request from 180,00 to 90,00
        for shown in (b"90,00 \xe2\x82\xac", b"DE90 8605 5592 1100 0001 23", b"5212025000205", b"15. Januar 2025"):
            assert shown in page
        assert b"180,00" not in page
        assert b"Aktenzeichen" not in page.replace(b"oder Aktenzeichen", b"")
        assert b"22.3-HSt-2024/0205" not in page  # the Aktenzeichen is never shown
        _, ics, headers = await fetch(http, url + "/zahlung.ics")
        assert headers["Content-Type"].startswith("text/calendar")
        assert b"DTSTART;VALUE=DATE:20250115\r\n" in ics and ics.endswith(b"END:VCALENDAR\r\n")
        assert all(len(line) <= 75 for line in ics.split(b"\r\n"))
        [uid] = [line for line in ics.split(b"\r\n") if line.startswith(b"UID:")]
        assert url.rsplit("/", 1)[1].encode() not in uid  # a calendar may sync the UID anywhere
        status, english, _ = await fetch(http, url + "?lang=en")
        assert status == 200 and b'<html lang="en">' in english and b"Payment due" in english


async def test_a_revoked_or_unknown_link_does_not_answer_a_page_that_is_not_there(site: RunningSite) -> None:
    async with aiohttp.ClientSession() as http:
        no_payment = site.urls["urn:de:leipzig:fachverfahren:hundesteuer|HST-2024-000178"]
        assert (await fetch(http, no_payment))[0] == 200
        assert (await fetch(http, no_payment + "/zahlung"))[0] == 404
        assert (await fetch(http, no_payment + "/widerspruch"))[0] == 404
        assert (await fetch(http, f"{site.base_url}/s/{new_token()}"))[0] == 404


async def test_a_page_the_database_cannot_answer_is_a_503_page_that_names_no_link(
    site: RunningSite, capsys: pytest.CaptureFixture[str]
) -> None:
    url = site.urls[HST_205]
    async with aiohttp.ClientSession() as http:
        assert (await fetch(http, url))[0] == 200
        await site.store.close()  # every read of the store fails from here on
        answers = [await fetch(http, target) for target in (url, url + "/zahlung", url + "/girocode.svg")]
    assert {status for status, _, _ in answers} == {503}
    assert len({body for _, body, _ in answers}) == 1  # the same page for every link
    _, body, headers = answers[0]
    assert b"Vor\xc3\xbcbergehend nicht verf\xc3\xbcgbar" in body and b'<p lang="en">' in body
    assert headers["Retry-After"] == "60" and headers["Cache-Control"] == "no-store"
    assert headers["Content-Security-Policy"] == CSP
    assert b"Traceback" not in body and b"sqlite" not in body.lower()
    assert site.site.metrics.unavailable._value.get() == 3
    logged = capsys.readouterr()
    token = url.rsplit("/", 1)[1]
    assert "status page not answered" in logged.out + logged.err
    assert token not in logged.out + logged.err


async def test_the_accessibility_statement_has_every_part_of_the_eu_model_and_names_the_enforcement_body(
    site: RunningSite,
) -> None:
    settings = Settings().status_web
    async with aiohttp.ClientSession() as http:
        _, german, _ = await fetch(http, f"{site.base_url}/barrierefreiheit")
        _, english, _ = await fetch(http, f"{site.base_url}/barrierefreiheit?lang=en")
    text_de, text_en = german.decode(), english.decode()
    for heading in ("Stand der Vereinbarkeit", "Nicht barrierefreie Inhalte", "Feedback und Kontakt",
                    "Durchsetzungsverfahren"):  # fmt: skip
        assert f"<h2>{heading}</h2>" in text_de, heading
    for heading in ("Compliance status", "Content that is not accessible", "Feedback and contact",
                    "Enforcement procedure"):  # fmt: skip
        assert f"<h2>{heading}</h2>" in text_en, heading
    body = f'<a href="{settings.enforcement_url}" rel="noreferrer">{settings.enforcement_name}</a>'
    assert body in text_de and body in text_en
    assert f'href="mailto:{settings.accessibility_contact_email}"' in text_de
