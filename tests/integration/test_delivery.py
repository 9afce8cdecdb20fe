"""The delivery stage against the real broker and the real reference portal over HTTP.

The outbox is filled with the records ingest would write; then a real ``rueckkanal worker --role delivery``
delivers them to a real ``rueckkanal portal-sim`` that injects faults. Completion is read from the broker (the
delivery group's committed offsets), never guessed from the clock.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from tests.support.events import ValidEvent, hundesteuer_events
from tests.support.kafka_io import create_topics, end_offsets, produce, read_all, wait_until_caught_up
from tests.support.outbox import outbox_records
from tests.support.pipeline import PipelineEnv, pipeline_env
from tests.support.portal import PortalSim, portal_sim
from tests.support.processes import CliProcess, free_port

PARTITIONS = 4


async def _filled_outbox(bootstrap: str, unique: str, tmp_path: Path, events: list[ValidEvent]) -> PipelineEnv:
    pipeline = pipeline_env(bootstrap, unique, tmp_path, partitions=PARTITIONS, web_port=free_port())
    await create_topics(bootstrap, [pipeline.outbox, pipeline.dlq, pipeline.receipts], PARTITIONS)
    await produce(bootstrap, pipeline.outbox, outbox_records(events))
    return pipeline


def _delivery_env(pipeline: PipelineEnv, portal: PortalSim, **delivery: str) -> dict[str, str]:
    env = {**pipeline.env, "RK_PORTAL__URL": portal.url, "RK_DELIVERY__RETRY_BASE_DELAY_S": "0.05"}
    env.update({f"RK_DELIVERY__{name.upper()}": value for name, value in delivery.items()})
    return env


@contextmanager
def delivery_worker(env: dict[str, str]) -> Iterator[CliProcess]:
    worker = CliProcess(["worker", "--role", "delivery"], env=env)
    try:
        worker.wait_for_event("worker ready", timeout=120)
        yield worker
    finally:
        worker.terminate()


async def _delivered(bootstrap: str, pipeline: PipelineEnv, within_s: float = 240) -> None:
    await wait_until_caught_up(bootstrap, f"{pipeline.app_id}.delivery", [pipeline.outbox], within_s=within_s)


async def _assert_portal_has_everything_in_order(portal: PortalSim, events: list[ValidEvent]) -> dict[str, Any]:
    """Every message stored once per nachrichtenUUID, and per Vorgang first received in outbox order."""
    by_vorgang: dict[str, list[ValidEvent]] = {}
    for e in events:
        by_vorgang.setdefault(e.vorgang_id, []).append(e)
    stored = await portal.nachrichten(list(by_vorgang))
    received_counts: Counter[int] = Counter()
    for vorgang, want in by_vorgang.items():
        got = sorted(stored[vorgang], key=lambda n: n["firstReceivedAt"])
        assert [n["nachrichtenUUID"] for n in got] == [e.nachrichten_uuid for e in want], vorgang
        assert [n["sequence"] for n in got] == [e.step for e in want], vorgang
        received_counts.update(n["receivedCount"] for n in got)
    return {"received_counts": received_counts}


async def test_order_holds_under_transient_errors_throttling_and_latency(
    kafka_bootstrap: str, unique: str, tmp_path: Path
) -> None:
    events = hundesteuer_events(unique, vorgaenge=500, steps=10)  # 5,000 messages
    pipeline = await _filled_outbox(kafka_bootstrap, unique, tmp_path, events)
    faults = ("--error-rate", "0.3", "--throttle-rate", "0.05", "--retry-after-s", "1")
    latency = ("--latency-min-ms", "0", "--latency-max-ms", "200", "--seed", "7")
    with (
        portal_sim(tmp_path / "portal.sqlite3", *faults, *latency) as portal,
        delivery_worker(_delivery_env(pipeline, portal)),
    ):
        await _delivered(kafka_bootstrap, pipeline)
        seen = await _assert_portal_has_everything_in_order(portal, events)

    assert not await read_all(kafka_bootstrap, pipeline.dlq)
    receipts = await read_all(kafka_bootstrap, pipeline.receipts)
    assert {r.key for r in receipts} == {e.vorgang_key.encode() for e in events}
    assert sum(seen["received_counts"].values()) == len(events)


async def test_outage_opens_the_circuit_dead_letters_nothing_and_drains_after_recovery(
    kafka_bootstrap: str, unique: str, tmp_path: Path
) -> None:
    events = hundesteuer_events(unique, vorgaenge=100, steps=10)
    pipeline = await _filled_outbox(kafka_bootstrap, unique, tmp_path, events)
    # A retry budget far shorter than the outage: only a budget that stands still while the circuit is open
    # keeps these messages out of the DLQ.
    env_delivery = {"retry_budget_s": "15", "breaker_open_s": "1", "breaker_max_open_s": "5"}
    with portal_sim(tmp_path / "portal.sqlite3", "--outage-seconds", "60") as portal:
        with delivery_worker(_delivery_env(pipeline, portal, **env_delivery)) as worker:
            worker.wait_for(_circuit("open"))
            await _delivered(kafka_bootstrap, pipeline, within_s=180)
            worker.wait_for(_circuit("closed"), timeout=30)  # read on from the log: it closed after the outage
        await _assert_portal_has_everything_in_order(portal, events)
    assert not await read_all(kafka_bootstrap, pipeline.dlq)


async def test_permanent_rejection_is_dead_lettered_with_the_portal_code_and_replay_delivers_it(
    kafka_bootstrap: str, unique: str, tmp_path: Path
) -> None:
    events = hundesteuer_events(unique, vorgaenge=20, steps=3)
    rejected = events[0].vorgang_id
    pipeline = await _filled_outbox(kafka_bootstrap, unique, tmp_path, events)
    with portal_sim(
        tmp_path / "portal.sqlite3", "--reject-vorgang-pattern", rejected, "--reject-code", "S011"
    ) as portal:
        env = _delivery_env(pipeline, portal)
        with delivery_worker(env):
            await _delivered(kafka_bootstrap, pipeline)
            dlq = await read_all(kafka_bootstrap, pipeline.dlq)
            assert len(dlq) == 3
            for letter in dlq:
                headers = {k: v.decode() for k, v in letter.headers}
                assert headers["rk.error.reason"] == "portal_rejected"
                assert headers["rk.error.portal_code"] == "S011"
                assert headers["rk.error.stage"] == "delivery"
                assert letter.key == f"urn:de:leipzig:fachverfahren:hundesteuer|{rejected}".encode()
            others = [e for e in events if e.vorgang_id != rejected]
            await _assert_portal_has_everything_in_order(portal, others)

            await portal.clear_faults()  # the portal is fixed
            replay = await asyncio.to_thread(
                subprocess.run,
                [sys.executable, "-m", "streams", "dlq", "replay", "--reason", "portal_rejected"],
                env={**_os_env(), **env},
                capture_output=True,
                text=True,
                timeout=120,
            )
            assert replay.returncode == 0, replay.stderr
            assert "replayed 3 record(s)" in replay.stdout
            await _delivered(kafka_bootstrap, pipeline)
            await _assert_portal_has_everything_in_order(portal, events)
    assert len(await read_all(kafka_bootstrap, pipeline.dlq)) == 3  # replay adds nothing new to the DLQ


async def test_sigkill_during_delivery_loses_nothing_and_duplicates_are_recognised(
    kafka_bootstrap: str, unique: str, tmp_path: Path
) -> None:
    events = hundesteuer_events(unique, vorgaenge=300, steps=10)
    pipeline = await _filled_outbox(kafka_bootstrap, unique, tmp_path, events)
    with portal_sim(tmp_path / "portal.sqlite3", "--latency-min-ms", "5", "--latency-max-ms", "40") as portal:
        env = _delivery_env(pipeline, portal)
        first = CliProcess(["worker", "--role", "delivery"], env=env)
        try:
            first.wait_for_event("worker ready", timeout=120)
            await _wait_for_receipts(kafka_bootstrap, pipeline.receipts, at_least=len(events) // 3)
        finally:
            first.kill()
        with delivery_worker(env):
            await _delivered(kafka_bootstrap, pipeline)
            seen = await _assert_portal_has_everything_in_order(portal, events)
    repeats = sum(n - 1 for n, times in seen["received_counts"].items() for _ in range(times))
    print(f"\ndelivery crash test: {len(events)} messages, {repeats} repeated deliveries recognised by the portal")
    assert not await read_all(kafka_bootstrap, pipeline.dlq)


def _circuit(state: str) -> Callable[[dict[str, Any]], bool]:
    return lambda line: line.get("event") == "circuit breaker changed" and line.get("state") == state


async def _wait_for_receipts(bootstrap: str, topic: str, at_least: int) -> None:
    for _ in range(1200):
        if sum((await end_offsets(bootstrap, [topic])).values()) >= at_least:
            return
        await asyncio.sleep(0.1)  # polling the broker's end offsets, bounded
    raise TimeoutError(f"{topic} never reached {at_least} records")


def _os_env() -> dict[str, str]:
    return dict(os.environ)
