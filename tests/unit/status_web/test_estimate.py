"""The page's estimate over HTTP: shown at and above the minimum count, never below it, in German and English."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import aiohttp
import pytest

from rueckkanal.tracking import StoredStatus
from streams.status_web.estimate import Estimates
from tests.support.status_web import start_site

FV, SOURCE, LEISTUNG = "hundesteuer", "urn:de:leipzig:fachverfahren:hundesteuer", "99108001000000"


def vorgang(key: str, steps: list[tuple[str, datetime]]) -> list[StoredStatus]:
    return [
        StoredStatus(
            vorgang_key=key,
            nachrichten_uuid=f"{key}-{n}",
            sequence=n,
            status=code,
            status_text="x",
            zeitpunkt=at,
            leistung=LEISTUNG,
            fachverfahren=FV,
        )
        for n, (code, at) in enumerate(steps, start=1)
    ]


async def page_text(tmp_path: Path, completed: int, current: str, lang: str = "de", min_count: int = 20) -> str:
    site = await start_site(tmp_path, estimate_min_count=min_count)
    try:
        now = datetime.now(UTC)
        statuses: list[StoredStatus] = []
        for i in range(completed):  # received 30 days ago, complete 5 + i%3 days later, decided 9..11 days later
            start = now - timedelta(days=30, hours=i)
            statuses += vorgang(
                f"{SOURCE}|DONE-{i}",
                [("100", start), ("220", start + timedelta(days=5)), ("400", start + timedelta(days=14 + i % 3))],
            )
        statuses += vorgang(f"{SOURCE}|OPEN", [("100", now - timedelta(days=2))])
        if current == "220":
            statuses += vorgang(f"{SOURCE}|OPEN2", [("100", now - timedelta(days=3)), ("220", now)])
        await site.store.apply(statuses, now)
        key = f"{SOURCE}|OPEN2" if current == "220" else f"{SOURCE}|OPEN"
        url = (await site.links.mint(key)).url
        async with aiohttp.ClientSession() as http, http.get(f"{url}?lang={lang}") as response:
            assert response.status == 200
            return await response.text()
    finally:
        await site.close()


async def test_no_estimate_below_the_minimum(tmp_path: Path) -> None:
    text = await page_text(tmp_path, 19, "220")
    assert "Üblicherweise" not in text
    assert "Median" not in text


async def test_the_estimate_at_the_minimum_from_complete(tmp_path: Path) -> None:
    text = await page_text(tmp_path, 20, "220")
    # complete → decided took 9, 10 or 11 days (7, 7, 6 of the 20): the lower median is 10 days
    assert "Üblicherweise dauert es von hier bis zur Entscheidung etwa 10 Tage" in text
    assert "(Median der letzten 12 Monate, 20 Anträge)" in text


async def test_the_estimate_from_received_in_english(tmp_path: Path) -> None:
    text = await page_text(tmp_path, 21, "100", lang="en")
    assert "It usually takes about 15 days from here to the decision" in text  # 14, 15, 16 days: median 15
    assert "21 applications" in text


async def test_a_configured_minimum_counts(tmp_path: Path) -> None:
    assert "Üblicherweise" not in await page_text(tmp_path, 21, "220", min_count=22)


async def test_no_estimate_where_the_current_status_is_not_a_starting_point(tmp_path: Path) -> None:
    site = await start_site(tmp_path)
    try:
        estimates = Estimates(site.store, 1)
        now = datetime.now(UTC)
        done = vorgang(f"{SOURCE}|D", [("100", now - timedelta(days=9)), ("400", now - timedelta(days=1))])
        await site.store.apply(done, now)
        assert await estimates.for_timeline(done) is None  # already decided
        assert await estimates.for_timeline(done[:1]) is not None
    finally:
        await site.close()


@pytest.mark.parametrize("count", [0, 1])
async def test_the_minimum_is_at_least_one(tmp_path: Path, count: int) -> None:
    site = await start_site(tmp_path)
    try:
        estimates = Estimates(site.store, count)
        assert await estimates.for_timeline(vorgang(f"{SOURCE}|X", [("100", datetime.now(UTC))])) is None
    finally:
        await site.close()
