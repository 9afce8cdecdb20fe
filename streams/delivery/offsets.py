"""Committable offsets when messages of one partition finish out of order.

Kafka stores one committed offset per partition: "everything before this is done". With per-key concurrency,
offset 17 may finish before offset 12. Only the highest offset below which *everything* has finished may be
committed; otherwise a crash would skip offset 12 for ever.
"""

from __future__ import annotations

import heapq


class PartitionOffsets:
    """Tracks started and finished offsets of one partition and yields the next offset to commit."""

    def __init__(self) -> None:
        self._pending: list[int] = []  # heap of started, unfinished offsets
        self._finished: set[int] = set()
        self._highest_started = -1
        self._committable: int | None = None

    def start(self, offset: int) -> None:
        heapq.heappush(self._pending, offset)
        self._highest_started = max(self._highest_started, offset)

    def finish(self, offset: int) -> None:
        self._finished.add(offset)
        while self._pending and self._pending[0] in self._finished:
            done = heapq.heappop(self._pending)
            self._finished.discard(done)
            self._committable = done + 1

    @property
    def in_flight(self) -> int:
        return len(self._pending)

    @property
    def oldest_pending(self) -> int | None:
        return self._pending[0] if self._pending else None

    def committable(self) -> int | None:
        """The offset to commit (one past the last contiguous finished offset), or None if nothing new."""
        return self._committable

    def mark_committed(self, offset: int) -> None:
        if self._committable == offset:
            self._committable = None
