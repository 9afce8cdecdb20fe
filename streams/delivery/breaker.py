"""A circuit breaker per portal.

When the portal is down, sending every message into the outage only burns retry budgets and fills the DLQ with
messages that are fine. After ``failure_threshold`` consecutive transient failures the circuit opens: nothing is
sent, the dispatcher pauses its partitions, and budgets stand still. After ``open_s`` (doubling up to
``max_open_s`` while the portal stays down) one probe is let through (half-open). Its success closes the circuit;
its failure opens it again.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable
from enum import StrEnum


class CircuitState(StrEnum):
    CLOSED = "closed"
    HALF_OPEN = "half_open"
    OPEN = "open"


class CircuitBreaker:
    def __init__(
        self,
        *,
        failure_threshold: int = 10,
        open_s: float = 2.0,
        max_open_s: float = 30.0,
        clock: Callable[[], float] = time.monotonic,
        on_change: Callable[[CircuitState], None] | None = None,
    ) -> None:
        self.failure_threshold = failure_threshold
        self.base_open_s = open_s
        self.max_open_s = max_open_s
        self._clock = clock
        self.on_change = on_change  # public: the dispatcher that owns the breaker reports state changes
        self.state = CircuitState.CLOSED
        self._failures = 0
        self._open_s = open_s
        self._opened_at = 0.0
        self._probe_in_flight = False
        self._closed = asyncio.Event()
        self._closed.set()
        self.open_seconds_total = 0.0  # how long the circuit has been open, for budgets that must not run

    # -- outcomes --------------------------------------------------------------------------------------------

    def record_success(self) -> None:
        self._failures = 0
        self._probe_in_flight = False
        if self.state is not CircuitState.CLOSED:
            self._open_s = self.base_open_s
            self._set(CircuitState.CLOSED)

    def record_failure(self) -> None:
        self._failures += 1
        if self.state is CircuitState.HALF_OPEN:
            self._probe_in_flight = False
            self._open_s = min(self._open_s * 2, self.max_open_s)
            self._open()
        elif self.state is CircuitState.CLOSED and self._failures >= self.failure_threshold:
            self._open()

    def release_probe(self) -> None:
        """A probe ended without a verdict on the portal (e.g. cancelled): let another one through."""
        self._probe_in_flight = False

    # -- gate ----------------------------------------------------------------------------------------------

    def try_acquire(self) -> bool:
        """May a request be sent now? In half-open state only one probe at a time."""
        if self.state is CircuitState.CLOSED:
            return True
        if self.state is CircuitState.OPEN and self._clock() - self._opened_at >= self._open_s:
            self._set(CircuitState.HALF_OPEN)
        if self.state is CircuitState.HALF_OPEN and not self._probe_in_flight:
            self._probe_in_flight = True
            return True
        return False

    def seconds_until_probe(self) -> float:
        if self.state is CircuitState.OPEN:
            return max(0.0, self._open_s - (self._clock() - self._opened_at))
        return 0.05  # half-open with a probe in flight: look again shortly

    async def wait_closed(self, timeout_s: float) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._closed.wait(), timeout_s)

    def open_time_since(self, mark: float) -> float:
        """Open-circuit seconds accumulated since ``mark`` (a value of :attr:`open_seconds_total`)."""
        return self.current_open_total() - mark

    def current_open_total(self) -> float:
        if self.state is CircuitState.CLOSED:
            return self.open_seconds_total
        return self.open_seconds_total + (self._clock() - self._opened_at)

    # -- internals -----------------------------------------------------------------------------------------

    def _open(self) -> None:
        if self.state is CircuitState.CLOSED:
            self._opened_at = self._clock()
        elif self.state is CircuitState.HALF_OPEN:
            self.open_seconds_total += self._clock() - self._opened_at
            self._opened_at = self._clock()
        self._set(CircuitState.OPEN)

    def _set(self, state: CircuitState) -> None:
        if state is self.state:
            return
        if state is CircuitState.CLOSED:
            self.open_seconds_total += self._clock() - self._opened_at
            self._closed.set()
        else:
            self._closed.clear()
        self.state = state
        if self.on_change:
            self.on_change(state)
