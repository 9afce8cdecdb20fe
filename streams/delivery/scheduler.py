"""The delivery scheduler: which message may go now, which offsets may be committed, which partitions to pause.

No I/O and no awaits: the dispatcher (the shell) feeds it the records it fetched and the messages it finished, and
acts on its answers. The rules it keeps:

* One queue per (partition, Vorgang key). A message is the head of its queue until it is finished (delivered,
  dead-lettered or skipped); only the head may be sent. Different queues go concurrently.
* Per partition, only the highest offset below which *every* message is finished is committable
  (:class:`~streams.delivery.offsets.PartitionOffsets`); a message skipped on arrival is finished at once.
* A partition whose unfinished messages fill its window is paused; every partition is paused while the circuit is
  not closed, so nothing more is fetched while the portal is down.
* A replayed dead letter that names another delivery target (``rk.replay.target``) is not this target's: skipped.
* A nachrichtenUUID delivered recently on the partition is not sent again (the last
  :data:`RECENT_UUIDS_PER_PARTITION`), a duplicate answered from memory.
* Revoking a partition forgets its queues and offsets: the next owner starts from the committed offset.
"""

from __future__ import annotations

import time
from collections import OrderedDict, deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime

from adapters.portal.base import OutboundMessage, Receipt
from rueckkanal.errors import RueckkanalError
from streams.delivery.offsets import PartitionOffsets
from streams.headers import H_NACHRICHTEN_UUID, H_REPLAY_TARGET, header
from streams.obs import consumer_lag
from streams.recordlog import Record, TopicPartition

RECENT_UUIDS_PER_PARTITION = 20_000

QueueKey = tuple[TopicPartition, bytes | None]


@dataclass(slots=True)
class Item:
    """One outbox message on its way to the portal, and what is known of it so far."""

    record: Record
    tp: TopicPartition
    nachrichten_uuid: str
    first_seen_wall: datetime = field(default_factory=lambda: datetime.now(UTC))
    started: float = field(default_factory=time.perf_counter)
    attempts: int = 0
    message: OutboundMessage | None = None  # built once, with the traceparent checked
    # The verdict, kept while its receipt or dead letter is written: a retry after an unexpected failure there
    # resumes with the write instead of asking the portal again.
    receipt: Receipt | None = None
    failure: RueckkanalError | None = None


class PartitionState:
    def __init__(self) -> None:
        self.offsets = PartitionOffsets()
        self.delivered: OrderedDict[str, None] = OrderedDict()
        self.committed: int | None = None

    def remember(self, nachrichten_uuid: str) -> None:
        self.delivered[nachrichten_uuid] = None
        if len(self.delivered) > RECENT_UUIDS_PER_PARTITION:
            self.delivered.popitem(last=False)


class Scheduler:
    def __init__(self, *, target: str, window_per_partition: int) -> None:
        self.target = target
        self.window = window_per_partition
        self.partitions: dict[TopicPartition, PartitionState] = {}
        self.queues: dict[QueueKey, deque[Item]] = {}

    # -- assignment ----------------------------------------------------------------------------------------------

    def assign(self, tps: Iterable[TopicPartition]) -> None:
        for tp in tps:
            self.partitions.setdefault(tp, PartitionState())

    def revoke(self, tps: Iterable[TopicPartition]) -> None:
        """Forget the partitions, their queues and offsets (the dispatcher has drained and committed them)."""
        gone = set(tps)
        for tp in gone:
            self.partitions.pop(tp, None)
        for key in [key for key in self.queues if key[0] in gone]:
            del self.queues[key]

    # -- messages ------------------------------------------------------------------------------------------------

    def accept(self, tp: TopicPartition, record: Record) -> QueueKey | None:
        """Queue a fetched record; return its queue's key if the record is now that queue's head (nothing ahead of
        it: a sender must start), else None (queued behind another, skipped, or its partition is revoked)."""
        partition = self.partitions.get(tp)
        if partition is None:
            return None  # revoked while the fetch was in flight
        partition.offsets.start(record.offset)
        replay_for = header(record.headers, H_REPLAY_TARGET)
        if replay_for is not None and replay_for != self.target:
            partition.offsets.finish(record.offset)  # a replay for another target: not ours to deliver again
            return None
        uuid = header(record.headers, H_NACHRICHTEN_UUID) or f"{tp.topic}/{tp.partition}/{record.offset}"
        key = (tp, record.key)
        queue = self.queues.get(key)
        if queue is None:
            self.queues[key] = deque((Item(record=record, tp=tp, nachrichten_uuid=uuid),))
            return key
        queue.append(Item(record=record, tp=tp, nachrichten_uuid=uuid))
        return None

    def head(self, key: QueueKey) -> Item | None:
        queue = self.queues.get(key)
        return queue[0] if queue else None

    def finish(self, key: QueueKey) -> Item | None:
        """The head of ``key``'s queue is finished; return the next head, or None (the queue is gone)."""
        queue = self.queues[key]
        item = queue.popleft()
        partition = self.partitions.get(item.tp)
        if partition is not None:
            partition.offsets.finish(item.record.offset)
        if queue:
            return queue[0]
        del self.queues[key]
        return None

    def abandon(self, key: QueueKey) -> None:
        """Drop a queue unfinished (its sender was cancelled): nothing of it is committed."""
        self.queues.pop(key, None)

    def already_delivered(self, item: Item) -> bool:
        partition = self.partitions.get(item.tp)
        return partition is not None and item.nachrichten_uuid in partition.delivered

    def delivered(self, item: Item) -> None:
        partition = self.partitions.get(item.tp)
        if partition is not None:
            partition.remember(item.nachrichten_uuid)

    # -- flow control and commits --------------------------------------------------------------------------------

    def flow(
        self, assignment: set[TopicPartition], circuit_closed: bool
    ) -> tuple[set[TopicPartition], set[TopicPartition]]:
        """The partitions to pause and to resume now."""
        if not circuit_closed:
            return set(assignment), set()
        full = {tp for tp in assignment if tp in self.partitions and self.is_full(tp)}
        return full, assignment - full

    def is_full(self, tp: TopicPartition) -> bool:
        return self.partitions[tp].offsets.in_flight >= self.window

    def committable(self, tps: Iterable[TopicPartition]) -> dict[TopicPartition, int]:
        offsets = {}
        for tp in tps:
            partition = self.partitions.get(tp)
            committable = partition.offsets.committable() if partition is not None else None
            if committable is not None:
                offsets[tp] = committable
        return offsets

    def committed(self, offsets: dict[TopicPartition, int]) -> None:
        for tp, offset in offsets.items():
            partition = self.partitions.get(tp)
            if partition is not None:
                partition.offsets.mark_committed(offset)
                partition.committed = offset

    # -- what the gauges show ------------------------------------------------------------------------------------

    def in_flight(self) -> int:
        return sum(p.offsets.in_flight for p in self.partitions.values())

    def oldest_timestamp_ms(self) -> int | None:
        return min((queue[0].record.timestamp for queue in self.queues.values() if queue), default=None)

    def has_queued(self) -> bool:
        return any(self.queues.values())

    def lag(self, end_offset: Callable[[TopicPartition], int | None]) -> int:
        """Records behind the end of the assigned partitions, counted from the last commit."""
        ends = {tp: end_offset(tp) for tp in self.partitions}
        return consumer_lag(ends, {tp: p.committed or 0 for tp, p in self.partitions.items()})
