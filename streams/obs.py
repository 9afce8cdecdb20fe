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
