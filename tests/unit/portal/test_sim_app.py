"""The reference portal's HTTP surface, spoken to with a plain HTTP client (no adapter in between)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest

from adapters.portal.sim.config import DuplicateAnswer, OAuth2Client, SimConfig
from adapters.portal.sim.server import RunningPortal, started
from rueckkanal.xoev import Quittung, Rueckweisung, parse_portal_answer
from tests.contract.portal_contract import SOURCE, statusmeldung

XML = {"Content-Type": "application/xml"}


@pytest.fixture
async def sim() -> AsyncIterator[RunningPortal]:
    async with started(SimConfig(port=0)) as running:
        yield running


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


async def post(http: aiohttp.ClientSession, running: RunningPortal, body: bytes, **headers: str) -> tuple[int, bytes]:
    async with http.post(running.nachrichten_url, data=body, headers=XML | headers) as response:
        return response.status, await response.read()


async def get_json(http: aiohttp.ClientSession, url: str) -> tuple[int, Any]:
    async with http.get(url) as response:
        return response.status, await response.json()


async def test_a_new_message_gets_a_quittung_about_it(sim: RunningPortal, http: aiohttp.ClientSession) -> None:
    message = statusmeldung()
    status, body = await post(http, sim, message.xml)
    answer = parse_portal_answer(body)
    assert status == 200
    assert isinstance(answer, Quittung)
    assert answer.bezug_uuid == message.nachrichten_uuid
    assert answer.quittung_id.startswith("Q-")


@pytest.mark.parametrize(("mode", "http_status"), [(DuplicateAnswer.CONFLICT, 409), (DuplicateAnswer.S100, 200)])
async def test_duplicates_are_answered_as_configured(
    http: aiohttp.ClientSession, mode: DuplicateAnswer, http_status: int
) -> None:
    message = statusmeldung()
    async with started(SimConfig(port=0, duplicates=mode)) as running:
        _, first = await post(http, running, message.xml)
        status, body = await post(http, running, message.xml)
        _, row = await get_json(http, f"{running.base_url}/nachrichten/{message.nachrichten_uuid}")
    answer = parse_portal_answer(body)
    assert status == http_status
    if mode is DuplicateAnswer.CONFLICT:
        original = parse_portal_answer(first)
        assert isinstance(answer, Quittung) and isinstance(original, Quittung)
        assert answer.quittung_id == original.quittung_id
    else:
        assert isinstance(answer, Rueckweisung)
        assert [grund.code for grund in answer.gruende] == ["S100"]
    assert row["receivedCount"] == 2


async def test_wrong_content_type_is_415(sim: RunningPortal, http: aiohttp.ClientSession) -> None:
    status, _ = await post(http, sim, statusmeldung().xml, **{"Content-Type": "application/json"})
    assert status == 415


async def test_unreadable_message_is_refused_about_its_idempotency_key(
    sim: RunningPortal, http: aiohttp.ClientSession
) -> None:
    key = statusmeldung().nachrichten_uuid
    status, body = await post(http, sim, b"<kaputt", **{"Idempotency-Key": key})
    answer = parse_portal_answer(body)
    assert status == 400
    assert isinstance(answer, Rueckweisung)
    assert answer.bezug_uuid == key
    assert answer.gruende[0].code == "X000"


async def test_a_message_of_another_type_is_schema_invalid(sim: RunningPortal, http: aiohttp.ClientSession) -> None:
    async with started(SimConfig(port=0)) as other:
        _, quittung = await post(http, other, statusmeldung().xml)
    status, body = await post(http, sim, quittung)  # a well-formed, valid XÖV message, but not a 0100
    answer = parse_portal_answer(body)
    assert status == 400
    assert isinstance(answer, Rueckweisung)
    assert answer.gruende[0].code == "X001"


async def test_faults_and_rejections_store_nothing(sim: RunningPortal, http: aiohttp.ClientSession) -> None:
    message = statusmeldung(vorgang_id="abgelehnt-1")
    sim.portal.faults.update({"outage_until_cleared": True, "retry_after_s": 5})
    async with http.post(sim.nachrichten_url, data=message.xml, headers=XML) as response:
        assert (response.status, response.headers["Retry-After"]) == (503, "5")
    sim.portal.faults.update({"outage_until_cleared": False, "reject_vorgang_pattern": "abgelehnt-.*"})
    status, body = await post(http, sim, message.xml)
    rejection = parse_portal_answer(body)
    assert status == 422
    assert isinstance(rejection, Rueckweisung) and rejection.gruende[0].code == "S011"
    assert await get_json(http, f"{sim.base_url}/nachrichten?vorgang=abgelehnt-1") == (
        200,
        {"vorgang": "abgelehnt-1", "nachrichten": []},
    )
    sim.portal.faults.clear()
    assert (await post(http, sim, message.xml))[0] == 200


async def test_admin_faults_round_trip(sim: RunningPortal, http: aiohttp.ClientSession) -> None:
    async with http.post(f"{sim.base_url}/admin/faults", json={"throttle_rate": 0.25, "outage_seconds": 30}) as r:
        assert r.status == 200
        view = await r.json()
    assert view["throttle_rate"] == 0.25
    assert 29 < view["outage_seconds"] <= 30
    async with http.post(f"{sim.base_url}/admin/faults", json={"throttle_rate": 2, "error_status": 404}) as r:
        assert r.status == 400
        errors = (await r.json())["errors"]
    assert len(errors) == 2
    async with http.post(f"{sim.base_url}/admin/faults", data=b"[1]") as r:
        assert r.status == 400
    status, view = await get_json(http, f"{sim.base_url}/admin/faults")
    assert (status, view["throttle_rate"]) == (200, 0.25)  # the refused update changed nothing
    async with http.delete(f"{sim.base_url}/admin/faults") as r:
        cleared = await r.json()
    assert (cleared["throttle_rate"], cleared["outage_seconds"]) == (0.0, None)


async def test_current_status_follows_sequence_not_arrival(sim: RunningPortal, http: aiohttp.ClientSession) -> None:
    for sequence, status in ((1, "100"), (3, "220"), (2, "200")):
        await post(http, sim, statusmeldung(sequence, status=status, vorgang_id="v-42").xml)
    _, current = await get_json(http, f"{sim.base_url}/vorgaenge/v-42")
    _, listing = await get_json(http, f"{sim.base_url}/nachrichten?vorgang=v-42")
    assert (current["status"], current["sequence"]) == ("220", 3)
    assert [(n["sequence"], n["receivedCount"]) for n in listing["nachrichten"]] == [(1, 1), (3, 1), (2, 1)]


async def test_vorgang_queries_handle_unknown_ambiguous_and_slashes(
    sim: RunningPortal, http: aiohttp.ClientSession
) -> None:
    other = "urn:de:leipzig:fachverfahren:bewohnerparken"
    await post(http, sim, statusmeldung(vorgang_id="2026/17").xml)
    await post(http, sim, statusmeldung(vorgang_id="4711").xml)
    await post(http, sim, statusmeldung(vorgang_id="4711", source=other).xml)
    assert (await get_json(http, f"{sim.base_url}/vorgaenge/2026/17"))[0] == 200
    assert (await get_json(http, f"{sim.base_url}/vorgaenge/unbekannt"))[0] == 404
    status, ambiguous = await get_json(http, f"{sim.base_url}/vorgaenge/4711")
    assert (status, sorted(ambiguous["fachverfahren"])) == (409, sorted([SOURCE, other]))
    status, one = await get_json(http, f"{sim.base_url}/vorgaenge/4711?fachverfahren={other}")
    assert (status, one["fachverfahren"]) == (200, other)
    assert (await get_json(http, f"{sim.base_url}/nachrichten"))[0] == 400
    assert (await get_json(http, f"{sim.base_url}/nachrichten/nicht-da"))[0] == 404
    assert await get_json(http, f"{sim.base_url}/healthz") == (200, {"status": "ok"})


async def test_status_page_shows_the_timeline_in_order_and_escaped(
    sim: RunningPortal, http: aiohttp.ClientSession
) -> None:
    await post(http, sim, statusmeldung(2, status="220", vorgang_id="v-7").xml)
    await post(http, sim, statusmeldung(1, status="100", vorgang_id="v-7", status_text="<b>Eingang</b>").xml)
    async with http.get(f"{sim.base_url}/status/v-7") as response:
        page = await response.text()
    assert response.status == 200
    assert "&lt;b&gt;Eingang&lt;/b&gt; → Unterlagen vollständig" in page
    assert "Aktueller Stand: <strong>Unterlagen vollständig</strong>" in page
    assert "<b>" not in page
    async with http.get(f"{sim.base_url}/status/unbekannt") as response:
        assert response.status == 404


async def test_oauth2_endpoint_checks_client_and_grant(http: aiohttp.ClientSession) -> None:
    config = SimConfig(port=0, oauth2=OAuth2Client("rk", "geheim"))
    async with started(config) as running:
        form = {"grant_type": "client_credentials", "client_id": "rk", "client_secret": "falsch"}
        async with http.post(running.token_url, data=form) as r:
            assert (r.status, (await r.json())["error"]) == (401, "invalid_client")
        form["client_secret"] = "geheim"  # noqa: S105
        async with http.post(running.token_url, data=form | {"grant_type": "password"}) as r:
            assert (r.status, (await r.json())["error"]) == (400, "unsupported_grant_type")
        async with http.post(running.token_url, data=form) as r:
            token = (await r.json())["access_token"]
        status, _ = await post(http, running, statusmeldung().xml)
        assert status == 401
        status, _ = await post(http, running, statusmeldung().xml, Authorization=f"Bearer {token}")
        assert status == 200
        async with http.post(f"{running.base_url}/admin/tokens/revoke") as r:
            assert await r.json() == {"revoked": 1}
        status, _ = await post(http, running, statusmeldung().xml, Authorization=f"Bearer {token}")
        assert status == 401
