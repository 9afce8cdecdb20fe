"""``/healthz``: 200 while every stage moves or is idle, 503 with the reason for a stage stalled with work waiting;
and the ingest watch, which reads work waiting from the sampled lag of the faust consumer (faked here)."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

from faust.types import TP

from streams.faust_engine import FaustConsumerState as _FaustConsumerState
from streams.obs import Progress
from streams.web import health
from tests.support.clock import ManualClock

EVENTS = "rk.events"
SOURCE = "fv.hundesteuer.status"


class FakeConsumer:
    def __init__(self, committed: dict[TP, int], ends: dict[TP, int]) -> None:
        self._committed_offset = committed
        self.ends = ends

    async def highwaters(self, *tps: TP) -> dict[TP, int]:
        return {tp: self.ends[tp] for tp in tps}

    async def earliest_offsets(self, *tps: TP) -> dict[TP, int]:
        return {tp: 0 for tp in tps}

    def open_transactions(self) -> dict[TP, tuple[int, float]]:
        return {}


def ingest_state(committed: int, end: int, agents: int = 2) -> tuple[_FaustConsumerState, FakeConsumer]:
    tp = TP(SOURCE, 0)
    consumer = FakeConsumer({tp: committed}, {tp: end})
    app: Any = SimpleNamespace(
        agents={f"agent{i}": object() for i in range(agents)},
        assignor=SimpleNamespace(assigned_actives=lambda: {tp}),
        consumer=consumer,
    )
    state = _FaustConsumerState(app, EVENTS)
    state.joined = True
    return state, consumer


def test_healthy_while_idle_or_moving_and_503_with_the_reason_when_stalled() -> None:
    clock = ManualClock()
    progress = Progress(stall_after_s=600, clock=clock)
    waiting = {"delivery": False}
    progress.watch("delivery", lambda: waiting["delivery"])
    assert health(progress, uptime_s=1.0) == (200, {"status": "ok", "uptime_seconds": 1.0})
    waiting["delivery"] = True
    assert health(progress, uptime_s=2.0)[0] == 200  # waiting starts now
    clock.now += 599
    progress.advanced("delivery")
    clock.now += 599
    assert health(progress, uptime_s=3.0)[0] == 200  # moving: a step 599 s ago
    clock.now += 601  # no step since
    status, body = health(progress, uptime_s=4.0)
    assert status == 503
    assert body["status"] == "stalled"
    assert "delivery" in str(body["reason"])
    waiting["delivery"] = False
    assert health(progress, uptime_s=5.0)[0] == 200  # the work is gone: idle again


async def test_ingest_waits_while_its_partitions_have_lag_and_stalls_without_progress() -> None:
    clock = ManualClock()
    progress = Progress(stall_after_s=600, clock=clock)
    state, consumer = ingest_state(committed=40, end=40)
    progress.watch("ingest", state.work_waiting)
    await state.sample()
    assert not state.work_waiting()
    consumer.ends[TP(SOURCE, 0)] = 55
    await state.sample()
    assert state.work_waiting()
    assert progress.problem() is None
    clock.now += 601
    assert "ingest" in str(health(progress, uptime_s=0)[1].get("reason"))
    progress.advanced("ingest")
    assert health(progress, uptime_s=0)[0] == 200


async def test_no_ingest_work_while_rebalancing_or_without_agents() -> None:
    state, _ = ingest_state(committed=0, end=10)
    await state.sample()
    assert state.work_waiting()
    state.rebalancing = True
    assert not state.work_waiting()
    delivery_only, _ = ingest_state(committed=0, end=10, agents=0)
    await delivery_only.sample()
    assert not delivery_only.work_waiting()
