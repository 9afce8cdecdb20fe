"""Process-wide observability state: the one :class:`~rueckkanal.metrics.Metrics` and the readiness conditions.

Neither needs faust, so any stage can import this module without pulling in the web server.

Metrics
    Prometheus collectors can be registered only once per registry, so the worker creates its
    :class:`~rueckkanal.metrics.Metrics` through :func:`process_metrics`, once per process, on the default
    registry that ``/metrics`` serves. The composition root then calls ``metrics.initialise(sources, portals)``
    with the configured Fachverfahren and portals, so that every series exists (as 0) from the first scrape.
    Tests that need isolation build ``Metrics(CollectorRegistry())`` themselves.

Readiness
    ``/readyz`` answers 200 only when every condition of the pipeline's :class:`Readiness` is met. A condition
    is either *declared* and then switched by the stage that owns it (:meth:`Readiness.require`,
    :meth:`Readiness.ready`, :meth:`Readiness.not_ready`), or a *check* evaluated on every request
    (:meth:`Readiness.add_check`, a function returning ``None`` when fine or the reason when not). Examples::

        readiness = pipeline.readiness
        readiness.require("delivery.partitions", "delivery consumer has not joined its group")
        ...                                       # in the aiokafka ConsumerRebalanceListener:
        readiness.ready("delivery.partitions")    # on_partitions_assigned with a non-empty set
        readiness.not_ready("delivery.partitions", "rebalancing")   # on_partitions_revoked
        readiness.add_check("delivery.producer", lambda: None if producer_started else "producer not started")

    Reasons are short operator-facing texts; they never contain payloads, Vorgang ids or secrets.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import cache
from typing import Any

from prometheus_client import REGISTRY

from rueckkanal.metrics import Metrics

Check = Callable[[], str | None]


@cache
def process_metrics() -> Metrics:
    """The process's metric objects, on the default registry that ``/metrics`` serves; created on first use."""
    return Metrics(REGISTRY)


@dataclass(frozen=True)
class ReadinessStatus:
    ready: bool
    conditions: Mapping[str, str | None]  # name → None when met, else the reason it is not

    def as_json(self) -> dict[str, object]:
        failing = {name: reason for name, reason in self.conditions.items() if reason is not None}
        return {
            "status": "ready" if self.ready else "not ready",
            "reasons": failing,
            "conditions": {name: reason is None for name, reason in self.conditions.items()},
        }


class Readiness:
    """Named conditions that together say whether this worker should receive traffic and count as available.

    Thread-safe, so that a stage running a thread (or a test) may report in; all methods are cheap.
    An empty Readiness is *not* ready: a worker that has declared nothing has not started anything either.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._flags: dict[str, str | None] = {}
        self._checks: dict[str, Check] = {}

    def require(self, name: str, reason: str) -> None:
        """Declare a condition that starts unmet, with the reason shown until :meth:`ready` is called."""
        with self._lock:
            self._flags.setdefault(name, reason)

    def ready(self, name: str) -> None:
        with self._lock:
            self._flags[name] = None

    def not_ready(self, name: str, reason: str) -> None:
        with self._lock:
            self._flags[name] = reason

    def add_check(self, name: str, check: Check) -> None:
        """A condition computed on every ``/readyz`` request; a check that raises counts as unmet."""
        with self._lock:
            self._checks[name] = check

    def status(self) -> ReadinessStatus:
        with self._lock:
            conditions: dict[str, str | None] = dict(self._flags)
            checks = dict(self._checks)
        for name, check in checks.items():
            try:
                conditions[name] = check()
            except Exception as exc:  # a broken check must make the worker unready, not crash the probe
                conditions[name] = f"check failed: {type(exc).__name__}"
        if not conditions:
            conditions["started"] = "nothing has reported readiness yet"
        ready = all(reason is None for reason in conditions.values())
        return ReadinessStatus(ready=ready, conditions=dict(sorted(conditions.items())))


class Progress:
    """Whether each stage keeps moving while it has work; ``/healthz`` fails for one that does not.

    A stage registers how to tell that work is waiting (:meth:`watch`) and reports each step forward
    (:meth:`advanced`: a batch processed, a portal verdict, an outcome). A stage whose work has been waiting for
    ``stall_after_s`` without a step forward is stalled: a restart is then the only cure an orchestrator has.
    Waiting that is expected (an open circuit, an empty topic) must not count as waiting.
    """

    def __init__(self, stall_after_s: float = 300.0, clock: Callable[[], float] = time.monotonic) -> None:
        self.stall_after_s = stall_after_s
        self._clock = clock
        self._lock = threading.Lock()
        self._waiting: dict[str, Callable[[], bool]] = {}
        self._last: dict[str, float] = {}
        self._since: dict[str, float] = {}  # when the stage was first seen waiting without a step since

    def watch(self, stage: str, waiting: Callable[[], bool]) -> None:
        with self._lock:
            self._waiting[stage] = waiting
            self._last.setdefault(stage, self._clock())

    def advanced(self, stage: str) -> None:
        with self._lock:
            self._last[stage] = self._clock()
            self._since.pop(stage, None)

    def problem(self) -> str | None:
        """None when every stage is moving or idle, else which stage is stalled and for how long."""
        now = self._clock()
        with self._lock:
            watched = dict(self._waiting)
        stalled = []
        for stage, waiting in sorted(watched.items()):
            try:
                has_work = waiting()
            except Exception:  # a broken check says nothing about the stage; it must not fail the probe
                has_work = False
            with self._lock:
                if not has_work:
                    self._since.pop(stage, None)
                    continue
                since = self._since.setdefault(stage, max(self._last.get(stage, now), now))
                since = max(since, self._last.get(stage, since))
            if now - since >= self.stall_after_s:
                stalled.append(f"{stage} has had work waiting for {now - since:.0f} s without progress")
        return "; ".join(stalled) or None


def consumer_lag(ends: Mapping[Any, int | None], positions: Mapping[Any, int | None]) -> int:
    """Records behind the log end, summed over partitions: end offset minus the position the group would read from
    after a restart (its committed offset). A partition with either unknown counts 0."""
    lag = 0
    for tp, end in ends.items():
        position = positions.get(tp)
        if position is not None and end is not None:
            lag += max(0, end - position)
    return lag


def record_lag(stage: str, target: str, ends: Mapping[Any, int | None], positions: Mapping[Any, int | None]) -> int:
    """Set the lag and assigned-partition gauges of one stage (and delivery target) and return the lag."""
    lag = consumer_lag(ends, positions)
    metrics = process_metrics()
    metrics.consumer_lag.labels(stage, target).set(lag)
    metrics.assigned_partitions.labels(stage, target).set(len(ends))
    return lag


class OpenTransactions:
    """Per partition, the records a ``read_committed`` consumer cannot read yet because a transaction before them
    is still open, and since when: the high watermark past the last stable offset (LSO), with the time the LSO was
    first seen where it stands.

    Lag is counted up to the LSO, so what an open transaction holds back is neither lag nor stalled work. A busy
    transactional producer has a transaction open most of the time, but each commit moves the LSO; one that stands
    still with records behind it is a transaction that neither commits nor aborts. Thread-safe for one writer (the
    consumer's thread, after each fetch) and readers elsewhere: each observation replaces the whole map.
    """

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._held: dict[Any, tuple[int, int, float]] = {}  # partition → (LSO, records behind it, seen there since)

    def observe(self, ends: Mapping[Any, tuple[int | None, int | None]]) -> None:
        """The (high watermark, LSO) of each partition read now, as its last fetch response gave them (None while
        unknown; an LSO below 0 is a broker's "none"). Partitions not given are forgotten."""
        now = self._clock()
        known = self._held
        held = {}
        for tp, (highwater, stable) in ends.items():
            if highwater is None or stable is None or stable < 0 or highwater <= stable:
                continue
            before = known.get(tp)
            since = before[2] if before is not None and before[0] == stable else now
            held[tp] = (stable, highwater - stable, since)
        self._held = held

    def held(self) -> dict[Any, tuple[int, float]]:
        """Per partition with records held back: how many, and for how many seconds its LSO has stood there."""
        now = self._clock()
        return {tp: (records, now - since) for tp, (_, records, since) in self._held.items()}


def record_open_transactions(sources: Mapping[str, str], held: Mapping[Any, tuple[int, float]]) -> None:
    """Set each Fachverfahren's held-records and open-transaction gauges from :meth:`OpenTransactions.held`.

    ``sources`` maps a source topic to its Fachverfahren; partitions of other topics are not counted. Records are
    summed over the source's partitions, the time is the longest; both 0 when nothing is held.
    """
    records = dict.fromkeys(sources.values(), 0)
    seconds = dict.fromkeys(sources.values(), 0.0)
    for tp, (count, age) in held.items():
        source = sources.get(tp.topic)
        if source is not None:
            records[source] += count
            seconds[source] = max(seconds[source], age)
    metrics = process_metrics()
    for source in records:
        metrics.source_transaction_held.labels(source).set(records[source])
        metrics.source_transaction_open.labels(source).set(round(seconds[source], 3))
