"""status-web's /healthz: 503 with the reason once its outbox reader stopped or stalled with records waiting (a
restart is the cure), 200 otherwise; /readyz follows the reader's start."""

from __future__ import annotations

from collections.abc import AsyncIterator

import aiohttp
import pytest
from aiohttp import web
from prometheus_client import CollectorRegistry

from streams.obs import Progress
from streams.status_web.http import InternalApi, internal_app
from streams.status_web.metrics import StatusWebMetrics
from tests.support.clock import ManualClock
from tests.support.processes import free_port


@pytest.fixture
async def served() -> AsyncIterator[tuple[str, dict[str, object]]]:
    state: dict[str, object] = {"started": False, "waiting": False, "stopped": None}
    clock = ManualClock()
    progress = Progress(stall_after_s=600, clock=clock)
    progress.watch("status-web", lambda: bool(state["waiting"]))
    state["clock"], state["progress"] = clock, progress
    api = InternalApi(
        links=None,  # type: ignore[arg-type]  # the probes never mint links
        metrics=StatusWebMetrics(CollectorRegistry()),
        api_token=None,
        vorgang_key_of=lambda fachverfahren, vorgang: None,
        ready=lambda: bool(state["started"]),
        health=lambda: state["stopped"] or progress.problem(),  # type: ignore[return-value]
    )
    runner = web.AppRunner(internal_app(api))
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    yield f"http://127.0.0.1:{port}", state
    await runner.cleanup()


async def _status(url: str) -> tuple[int, dict[str, object]]:
    async with aiohttp.ClientSession() as http, http.get(url) as response:
        return response.status, await response.json()


async def test_healthz_fails_when_records_wait_without_progress_and_recovers_with_it(
    served: tuple[str, dict[str, object]],
) -> None:
    url, state = served
    clock, progress = state["clock"], state["progress"]
    assert isinstance(clock, ManualClock) and isinstance(progress, Progress)
    assert (await _status(f"{url}/readyz"))[0] == 503
    state["started"] = True
    assert (await _status(f"{url}/readyz"))[0] == 200
    state["waiting"] = True
    assert (await _status(f"{url}/healthz"))[0] == 200  # waiting, not yet for long
    clock.now += 601
    status, body = await _status(f"{url}/healthz")
    assert status == 503 and "status-web has had work waiting" in str(body["problem"])
    progress.advanced("status-web")
    assert (await _status(f"{url}/healthz"))[0] == 200


async def test_healthz_fails_once_the_outbox_reader_has_stopped(served: tuple[str, dict[str, object]]) -> None:
    url, state = served
    state["stopped"] = "the outbox reader has stopped"
    status, body = await _status(f"{url}/healthz")
    assert status == 503 and body["problem"] == "the outbox reader has stopped"


def test_the_stall_time_must_exceed_status_web_s_store_deadline() -> None:
    from pydantic import ValidationError

    from rueckkanal.settings import Settings, StatusWebSettings

    with pytest.raises(ValidationError, match=r"status_web\.store_deadline_s"):
        Settings(status_web=StatusWebSettings(store_deadline_s=600))
