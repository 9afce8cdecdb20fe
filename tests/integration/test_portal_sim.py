"""``rueckkanal portal-sim`` as a real child process, driven through its HTTP endpoints and the HTTP adapter.

These run in the integration tier but need no Kafka. The process is watched through its JSON log lines: the
tests wait for ``portal-sim ready`` (which names the port) instead of sleeping.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from adapters.portal.base import OutboundMessage
from adapters.portal.xoev_http import XoevHttpPortal
from adapters.portal.xoev_http_config import PortalHttpConfig
from rueckkanal.errors import PermanentDeliveryError, Reason, TransientDeliveryError
from tests.contract.portal_contract import statusmeldung
from tests.support.processes import CliProcess, free_port

NACHRICHTEN = "/rueckkanal/v1/nachrichten"


@asynccontextmanager
async def portal_sim(*args: str, env: Mapping[str, str] | None = None) -> AsyncIterator[tuple[CliProcess, str]]:
    """The simulator on 127.0.0.1; yields the process and its base URL; stops it and checks the clean exit.

    The blocking waits run in a thread, so the test's event loop keeps serving its connections meanwhile (a
    client whose loop is blocked would not notice that the portal closed a pooled connection).
    """
    port_args = [] if "--port" in args else ["--port", "0"]
    process = CliProcess(["portal-sim", *port_args, *args], env or {})
    try:
        ready = await asyncio.to_thread(process.wait_for_event, "portal-sim ready", 30)
        yield process, f"http://127.0.0.1:{ready['port']}"
    finally:
        code = await asyncio.to_thread(process.terminate, 30)
    assert code == 0, process.lines[-10:]
    assert any(line.get("event") == "portal-sim stopped" for line in process.lines)


async def send(base_url: str, message: OutboundMessage, **config: Any) -> Any:
    portal = XoevHttpPortal(PortalHttpConfig.model_validate({"url": base_url + NACHRICHTEN, **config}))
    try:
        return await portal.send(message)
    finally:
        await portal.aclose()


async def call(method: str, url: str, **kwargs: Any) -> tuple[int, Any]:
    async with aiohttp.ClientSession() as session, session.request(method, url, **kwargs) as response:
        return response.status, await response.json()


async def test_a_restarted_portal_still_recognises_the_message(tmp_path: Path) -> None:
    db = str(tmp_path / "portal.sqlite3")
    message = statusmeldung(vorgang_id="neustart-1")
    async with portal_sim("--db", db) as (_, url):
        first = await send(url, message)
    async with portal_sim("--db", db) as (_, url):
        again = await send(url, message)
        _, listing = await call("GET", f"{url}/nachrichten", params={"vorgang": "neustart-1"})
    assert (first.duplicate, again.duplicate) == (False, True)
    assert again.portal_receipt_id == first.portal_receipt_id
    assert [n["receivedCount"] for n in listing["nachrichten"]] == [2]


async def test_without_a_database_a_restart_forgets() -> None:
    message = statusmeldung()
    for _ in range(2):
        async with portal_sim() as (_, url):
            assert (await send(url, message)).duplicate is False


async def test_faults_switched_at_run_time_store_nothing_until_cleared() -> None:
    message = statusmeldung(vorgang_id="stoerung-1")
    async with portal_sim() as (_, url):
        await call("POST", f"{url}/admin/faults", json={"outage_until_cleared": True, "retry_after_s": 2})
        with pytest.raises(TransientDeliveryError) as outage:
            await send(url, message)
        await call("POST", f"{url}/admin/faults", json={"outage_until_cleared": False, "drop_rate": 1.0})
        with pytest.raises(TransientDeliveryError) as dropped:
            await send(url, message)
        await call("POST", f"{url}/admin/faults", json={"drop_rate": 0.0, "error_rate": 1.0, "error_status": 500})
        with pytest.raises(TransientDeliveryError) as error:
            await send(url, message)
        _, stored_meanwhile = await call("GET", f"{url}/nachrichten", params={"vorgang": "stoerung-1"})
        await call("DELETE", f"{url}/admin/faults")
        receipt = await send(url, message)
        _, stats = await call("GET", f"{url}/admin/stats")
    assert (outage.value.reason, outage.value.retry_after) == (Reason.PORTAL_UNAVAILABLE, 2.0)
    assert dropped.value.reason is Reason.PORTAL_CONNECTION
    assert (error.value.reason, error.value.retry_after) == (Reason.PORTAL_UNAVAILABLE, None)
    assert stored_meanwhile["nachrichten"] == []
    assert receipt.duplicate is False
    assert {key: stats[key] for key in ("outage", "dropped", "error", "stored")} == {
        "outage": 1,
        "dropped": 1,
        "error": 1,
        "stored": 1,
    }


async def test_reject_rule_from_the_command_line_until_the_portal_is_fixed() -> None:
    bad, good = statusmeldung(vorgang_id="kaputt-1"), statusmeldung(vorgang_id="heil-1")
    async with portal_sim("--reject-vorgang-pattern", "kaputt-.*", "--reject-code", "AS103") as (_, url):
        with pytest.raises(PermanentDeliveryError) as rejected:
            await send(url, bad)
        assert (await send(url, good)).duplicate is False
        await call("POST", f"{url}/admin/faults", json={"reject_vorgang_pattern": None})
        fixed = await send(url, bad)
    assert (rejected.value.reason, rejected.value.portal_code) == (Reason.PORTAL_REJECTED, "AS103")
    assert fixed.duplicate is False


async def test_a_late_message_does_not_overwrite_a_newer_status() -> None:
    async with portal_sim() as (_, url):
        for sequence, status in ((1, "100"), (3, "220"), (2, "200")):
            await send(url, statusmeldung(sequence, status=status, vorgang_id="spaet-1"))
        _, current = await call("GET", f"{url}/vorgaenge/spaet-1")
        _, listing = await call("GET", f"{url}/nachrichten", params={"vorgang": "spaet-1"})
    assert (current["sequence"], current["status"]) == (3, "220")
    assert [n["sequence"] for n in listing["nachrichten"]] == [1, 3, 2]


async def test_oauth2_token_forgotten_by_a_restarted_portal_is_refreshed() -> None:
    """After a restart the portal no longer knows our cached token: one 401, one refresh, then delivery."""
    port = str(free_port())
    secret = "sim-geheimnis-4711"  # noqa: S105
    env = {"RK_PORTAL_SIM_CLIENT_SECRET": secret}
    args = ("--port", port, "--oauth2-client-id", "leipzig-rk")
    base = f"http://127.0.0.1:{port}"
    config = PortalHttpConfig.model_validate(
        {
            "url": base + NACHRICHTEN,
            "auth": "oauth2",
            "oauth2": {"token_url": base + "/oauth2/token", "client_id": "leipzig-rk", "client_secret": secret},
        }
    )
    portal = XoevHttpPortal(config)
    try:
        async with portal_sim(*args, env=env) as (first_run, _):
            assert (await portal.send(statusmeldung())).duplicate is False
        async with portal_sim(*args, env=env) as (second_run, _):
            assert (await portal.send(statusmeldung())).duplicate is False
            _, stats = await call("GET", f"{base}/admin/stats")
    finally:
        await portal.aclose()
    assert (stats["unauthorised"], stats["tokens_issued"], stats["stored"]) == (1, 1, 1)
    assert all(secret not in str(line) for line in first_run.lines + second_run.lines)


def test_invalid_options_exit_with_code_2() -> None:
    process = CliProcess(["portal-sim", "--port", "0", "--error-rate", "2"], {})
    assert process.proc.wait(timeout=30) == 2
