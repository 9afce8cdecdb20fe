"""The reference portal's chaos faults (redirect, 404, HTML 200, store-then-hang, slow body, flapping token
endpoint), spoken to with a plain HTTP client: what a sender sees, and what the portal stored meanwhile."""

from __future__ import annotations

import asyncio
import json
from collections import Counter
from collections.abc import AsyncIterator

import aiohttp
import pytest

from adapters.portal.sim.config import OAuth2Client, SimConfig
from adapters.portal.sim.faults import REDIRECT_LOCATION, Faults, FaultSpec, TokenFault
from adapters.portal.sim.server import RunningPortal, started
from rueckkanal.xoev import Quittung, parse_portal_answer
from tests.contract.portal_contract import statusmeldung

XML = {"Content-Type": "application/xml"}


@pytest.fixture
async def sim() -> AsyncIterator[RunningPortal]:
    async with started(SimConfig(port=0)) as running:
        yield running


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


async def _stored(http: aiohttp.ClientSession, running: RunningPortal, uuid: str) -> bool:
    async with http.get(f"{running.base_url}/nachrichten/{uuid}") as r:
        return r.status == 200


async def _stats(http: aiohttp.ClientSession, running: RunningPortal) -> dict[str, int]:
    async with http.get(f"{running.base_url}/admin/stats") as r:
        stats: dict[str, int] = await r.json()
        return stats


def test_each_new_rate_fires_roughly_as_often_as_asked_and_reproducibly() -> None:
    spec = FaultSpec(
        redirect_rate=0.1, not_found_rate=0.1, html_rate=0.1, store_then_hang_rate=0.1, slow_body_rate=0.1, seed=3
    )
    one, other = Faults(spec), Faults(spec)
    assert [one.decide() for _ in range(200)] == [other.decide() for _ in range(200)]
    dice = Faults(spec)
    fired = Counter(dice.decide().fault for _ in range(4000))
    # each rate applies to what the earlier faults left: 10 %, then 9 %, 8.1 %, 7.3 %, 6.6 %
    for fault, share in [("redirect", 0.1), ("not_found", 0.09), ("html", 0.081), ("store_then_hang", 0.0729)]:
        assert 0.7 * share * 4000 < fired[fault] < 1.3 * share * 4000, (fault, fired)
    assert 0.7 * 0.0656 * 4000 < fired["slow_body"] < 1.3 * 0.0656 * 4000
    assert fired[None] > 0


def test_token_faults_are_all_kinds_and_absent_without_a_rate() -> None:
    assert all(Faults().token_fault() is None for _ in range(100))
    faults = Faults(FaultSpec(token_error_rate=1.0, seed=1))
    assert {faults.token_fault() for _ in range(200)} == set(TokenFault)


async def test_redirect_404_and_html_store_nothing(sim: RunningPortal, http: aiohttp.ClientSession) -> None:
    for changes, status in [({"redirect_rate": 1.0}, 307), ({"not_found_rate": 1.0}, 404), ({"html_rate": 1.0}, 200)]:
        sim.portal.faults.clear()
        sim.portal.faults.update(changes)
        message = statusmeldung()
        async with http.post(sim.nachrichten_url, data=message.xml, headers=XML, allow_redirects=False) as r:
            assert r.status == status
            body = await r.read()
            if status == 307:
                assert r.headers["Location"] == REDIRECT_LOCATION
            if changes.get("html_rate"):
                assert r.content_type == "text/html"
                assert body.startswith(b"<!DOCTYPE html>")
        assert not await _stored(http, sim, message.nachrichten_uuid)
    stats = await _stats(http, sim)
    assert (stats["redirect"], stats["not_found"], stats["html"]) == (1, 1, 1)
    assert "stored" not in stats


async def test_store_then_hang_stores_the_message_and_the_client_times_out(
    sim: RunningPortal, http: aiohttp.ClientSession
) -> None:
    sim.portal.faults.update({"store_then_hang_rate": 1.0, "hang_s": 30})
    message = statusmeldung()
    with pytest.raises(asyncio.TimeoutError):
        async with http.post(
            sim.nachrichten_url, data=message.xml, headers=XML, timeout=aiohttp.ClientTimeout(total=0.5)
        ) as r:
            await r.read()
    assert await _stored(http, sim, message.nachrichten_uuid)
    stats = await _stats(http, sim)
    assert (stats["store_then_hang"], stats["stored"]) == (1, 1)


async def test_store_then_hang_closes_the_connection_after_hang_s(
    sim: RunningPortal, http: aiohttp.ClientSession
) -> None:
    sim.portal.faults.update({"store_then_hang_rate": 1.0, "hang_s": 0.2})
    with pytest.raises(aiohttp.ServerDisconnectedError):
        async with http.post(sim.nachrichten_url, data=statusmeldung().xml, headers=XML) as r:
            await r.read()


async def test_slow_body_arrives_in_pieces_and_complete(sim: RunningPortal, http: aiohttp.ClientSession) -> None:
    sim.portal.faults.update({"slow_body_rate": 1.0, "slow_body_chunk_bytes": 100, "slow_body_delay_ms": 5})
    message = statusmeldung()
    async with http.post(sim.nachrichten_url, data=message.xml, headers=XML) as r:
        assert r.status == 200
        pieces = [chunk async for chunk in r.content.iter_any()]
    body = b"".join(pieces)
    answer = parse_portal_answer(body)
    assert isinstance(answer, Quittung) and answer.bezug_uuid == message.nachrichten_uuid
    assert len(pieces) > 3
    assert (await _stats(http, sim))["slow_body"] == 1


async def test_flapping_token_endpoint_answers_no_token_then_recovers(http: aiohttp.ClientSession) -> None:
    form = {"grant_type": "client_credentials", "client_id": "rk", "client_secret": "geheim"}
    async with started(SimConfig(port=0, oauth2=OAuth2Client("rk", "geheim"))) as running:
        running.portal.faults.update({"token_error_rate": 1.0, "seed": 5})
        for _ in range(12):
            async with http.post(running.token_url, data=form) as r:
                body = await r.read()
                if r.status == 200:
                    with pytest.raises((ValueError, KeyError, TypeError)):
                        json.loads(body)["access_token"]
                else:
                    assert r.status in (500, 503)
        running.portal.faults.update({"token_error_rate": 0.0})
        async with http.post(running.token_url, data=form) as r:
            assert r.status == 200
            assert (await r.json())["access_token"]
        assert (await _stats(http, running))["token_error"] == 12
