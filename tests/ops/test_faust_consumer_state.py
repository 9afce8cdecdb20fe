"""Readiness, lag and open transactions of the faust consumer, computed from what faust reports (faked here, real
in integration)."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

from faust.types import TP
from prometheus_client import REGISTRY

from streams.faust_engine import FaustConsumerState as _FaustConsumerState
from streams.obs import OpenTransactions
from tests.support.clock import ManualClock

EVENTS = "rk.events"
SOURCE = "fv.hundesteuer.status"


class FakeConsumer:
    def __init__(
        self,
        committed: dict[TP, int | None],
        ends: dict[TP, int],
        earliest: dict[TP, int],
        held: dict[TP, tuple[int, float]] | None = None,
    ) -> None:
        self._committed_offset = committed
        self._ends = ends
        self._earliest = earliest
        self._held = held or {}
        self.asked_earliest: list[TP] = []

    def open_transactions(self) -> dict[TP, tuple[int, float]]:
        return dict(self._held)

    async def highwaters(self, *tps: TP) -> dict[TP, int]:
        return {tp: self._ends[tp] for tp in tps}

    async def earliest_offsets(self, *tps: TP) -> dict[TP, int]:
        self.asked_earliest.extend(tps)
        return {tp: self._earliest[tp] for tp in tps}


def _app(actives: set[TP], consumer: Any, agents: int = 2) -> Any:
    return SimpleNamespace(
        agents={f"agent{i}": object() for i in range(agents)},
        assignor=SimpleNamespace(assigned_actives=lambda: actives),
        consumer=consumer,
    )


def _gauge(name: str, stage: str) -> float | None:
    return REGISTRY.get_sample_value(name, {"stage": stage, "target": ""})


async def test_lag_is_end_minus_committed_per_stage_and_faust_topics_are_left_out() -> None:
    src0, src1, ev0, changelog, leader = (
        TP(SOURCE, 0),
        TP(SOURCE, 1),
        TP(EVENTS, 0),
        TP("rk-lifecycle-changelog", 0),
        TP("rk-__assignor-__leader", 0),
    )
    consumer = FakeConsumer(
        committed={src0: 100, src1: None, ev0: 7, changelog: 0, leader: 0},
        ends={src0: 130, src1: 12, ev0: 7},
        earliest={src1: 2},
    )
    state = _FaustConsumerState(_app({src0, src1, ev0, changelog, leader}, consumer), EVENTS)
    state.joined = True
    await state.sample()
    # ingest: 30 behind on partition 0, nothing committed on partition 1 yet, so 10 records from its start
    assert _gauge("rueckkanal_consumer_lag_messages", "ingest") == 40
    assert _gauge("rueckkanal_consumer_lag_messages", "lifecycle") == 0
    assert _gauge("rueckkanal_assigned_partitions", "ingest") == 2
    assert _gauge("rueckkanal_assigned_partitions", "lifecycle") == 1
    assert consumer.asked_earliest == [src1]


async def test_no_sample_while_rebalancing_or_before_joining() -> None:
    tp = TP(EVENTS, 3)
    consumer = FakeConsumer(committed={tp: 0}, ends={tp: 999}, earliest={})
    state = _FaustConsumerState(_app({tp}, consumer), EVENTS)
    before = _gauge("rueckkanal_consumer_lag_messages", "lifecycle")
    await state.sample()  # not joined
    state.joined, state.rebalancing = True, True
    await state.sample()
    assert _gauge("rueckkanal_consumer_lag_messages", "lifecycle") == before


def test_readiness_problem_follows_the_group() -> None:
    tp = TP(EVENTS, 0)
    actives: set[TP] = set()
    state = _FaustConsumerState(_app(actives, FakeConsumer({}, {}, {})), EVENTS)
    assert state.problem() == "consumer has not joined its group yet"
    state.joined = True
    assert state.problem() == "no partitions assigned (more workers than partitions?)"
    actives.add(tp)
    assert state.problem() is None
    state.rebalancing = True
    assert state.problem() == "consumer group is rebalancing"
    without_agents = _FaustConsumerState(_app(set(), FakeConsumer({}, {}, {}), agents=0), EVENTS)
    assert without_agents.problem() is None  # a delivery-only worker has no faust consumer to wait for


def _source_gauge(name: str, source: str) -> float | None:
    return REGISTRY.get_sample_value(name, {"source": source})


async def test_open_transactions_are_summed_per_fachverfahren_and_their_longest_hold_kept() -> None:
    parking = "fv.parkausweis.status"
    src0, src1, src2, park0, ev0 = TP(SOURCE, 0), TP(SOURCE, 1), TP(SOURCE, 2), TP(parking, 0), TP(EVENTS, 0)
    actives = {src0, src1, src2, park0, ev0}
    held = {src0: (3, 40.0), src2: (5, 130.5), ev0: (9, 999.0)}  # the events topic is no Fachverfahren's
    consumer = FakeConsumer({tp: 0 for tp in actives}, dict.fromkeys(actives, 0), {}, held)
    sources = {SOURCE: "hundesteuer", parking: "parkausweis"}
    state = _FaustConsumerState(_app(actives, consumer), EVENTS, sources)
    state.joined = True
    await state.sample()
    assert _source_gauge("rueckkanal_source_transaction_held_messages", "hundesteuer") == 8
    assert _source_gauge("rueckkanal_source_transaction_open_seconds", "hundesteuer") == 130.5
    assert _source_gauge("rueckkanal_source_transaction_held_messages", "parkausweis") == 0
    assert _source_gauge("rueckkanal_source_transaction_open_seconds", "parkausweis") == 0
    consumer._held = {}  # the transactions ended
    await state.sample()
    assert _source_gauge("rueckkanal_source_transaction_held_messages", "hundesteuer") == 0
    assert _source_gauge("rueckkanal_source_transaction_open_seconds", "hundesteuer") == 0


def test_a_hold_ages_while_the_last_stable_offset_stands_still() -> None:
    clock, tp = ManualClock(), TP(SOURCE, 0)
    transactions = OpenTransactions(clock)
    transactions.observe({tp: (110, 100)})  # a transaction began at offset 100; ten records behind it
    clock.now += 30
    transactions.observe({tp: (125, 100)})  # more records behind it, the LSO has not moved
    clock.now += 5
    assert transactions.held() == {tp: (25, 35.0)}


def test_a_moving_last_stable_offset_starts_the_clock_again() -> None:
    clock, tp = ManualClock(), TP(SOURCE, 0)
    transactions = OpenTransactions(clock)
    transactions.observe({tp: (110, 100)})
    clock.now += 30
    transactions.observe({tp: (140, 120)})  # committed; the next transaction began at 120 (a busy producer)
    clock.now += 2
    assert transactions.held() == {tp: (20, 2.0)}


def test_nothing_is_held_when_the_lso_reaches_the_end_or_is_unknown() -> None:
    clock = ManualClock()
    caught_up, unknown, no_lso, old_broker, dropped = (TP(SOURCE, p) for p in range(5))
    transactions = OpenTransactions(clock)
    transactions.observe({dropped: (10, 4)})
    transactions.observe(
        {caught_up: (50, 50), unknown: (None, None), no_lso: (50, None), old_broker: (50, -1)}
    )  # and ``dropped`` is no longer read: forgotten
    assert transactions.held() == {}
