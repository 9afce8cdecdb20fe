"""The record-log seam: what a stage needs from Kafka, as one narrow protocol with an in-memory twin.

A stage core decides; the log only carries records. :class:`RecordLog` is the whole surface a stage may use:

``fetch``       the next records of the assigned, unpaused partitions, in offset order per partition
``produce``     write one record and return once the log has acknowledged it (acks=all on Kafka)
``commit``      store "everything below this offset is done" per partition for the consumer group
``assignment``  the partitions this member owns now; ``pause``/``resume`` stop and restart fetching them
``end_offset``  the next offset the log will write on a partition (for lag), if known

Assignment changes arrive through an :class:`AssignmentListener` given to :meth:`RecordLog.subscribe`: revoked
partitions are reported before their new owner can read them, so a stage drains and commits there.

Errors are two, and they decide the route (the rule of ``rueckkanal/errors.py``, here for the log):
:class:`RecordRefused` means the log refused this one record for what it is (too large, corrupt): write something
else instead. :class:`LogUnavailable` means no record could have been written or committed (broker unreachable,
not authorised, a commit after the group moved on): never acknowledge anything past it.

Two implementations: :class:`MemoryLog` here (unit tests, the stage contract tests), and the aiokafka one in
:mod:`streams.kafka_log`. The stage contract (``tests/contract/stage_contract.py``) runs against both.
"""

from __future__ import annotations

import asyncio
from collections import defaultdict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import NamedTuple, Protocol

from streams.partitioner import partition_for

Headers = Sequence[tuple[str, bytes]]


class TopicPartition(NamedTuple):
    """A partition of a topic; equal to (and hashed as) aiokafka's ``TopicPartition`` of the same values."""

    topic: str
    partition: int


class Record(Protocol):
    """A record read from the log; aiokafka's ``ConsumerRecord`` is one. ``timestamp`` is in milliseconds."""

    @property
    def topic(self) -> str: ...
    @property
    def partition(self) -> int: ...
    @property
    def offset(self) -> int: ...
    @property
    def timestamp(self) -> int: ...
    @property
    def key(self) -> bytes | None: ...
    @property
    def value(self) -> bytes | None: ...
    @property
    def headers(self) -> Headers: ...


@dataclass(frozen=True, slots=True)
class LogRecord:
    """A record of the in-memory log."""

    topic: str
    partition: int
    offset: int
    timestamp: int
    key: bytes | None
    value: bytes | None
    headers: Headers = ()


class RecordRefused(Exception):
    """The log refused this one record for what it is; another record may still be written."""


class LogUnavailable(Exception):
    """No record could be written or committed now; nothing past it may be acknowledged."""


class AssignmentListener(Protocol):
    async def on_partitions_revoked(self, revoked: set[TopicPartition]) -> None: ...
    async def on_partitions_assigned(self, assigned: set[TopicPartition]) -> None: ...


class RecordLog(Protocol):
    async def start(self) -> None: ...
    async def stop(self) -> None: ...
    def subscribe(self, topics: Sequence[str], listener: AssignmentListener) -> None: ...
    async def fetch(self, timeout_s: float, max_records: int) -> Mapping[TopicPartition, Sequence[Record]]: ...
    async def produce(self, topic: str, key: bytes | None, value: bytes | None, headers: Headers) -> None: ...
    async def commit(self, offsets: Mapping[TopicPartition, int]) -> None: ...
    def assignment(self) -> set[TopicPartition]: ...
    def pause(self, *partitions: TopicPartition) -> None: ...
    def resume(self, *partitions: TopicPartition) -> None: ...
    def end_offset(self, tp: TopicPartition) -> int | None: ...


@dataclass
class MemoryBroker:
    """Topics, partitions and committed offsets shared by the :class:`MemoryLog` members of one test.

    ``max_record_bytes`` refuses larger records (:class:`RecordRefused`), as a broker's ``max.message.bytes``.
    ``failures`` are raised by the next produces, one each, before anything is written.
    """

    partitions: int = 1
    max_record_bytes: int = 1_048_576
    topics: dict[str, list[list[LogRecord]]] = field(default_factory=dict)
    committed: dict[tuple[str, TopicPartition], int] = field(default_factory=dict)  # (group, tp) → offset
    failures: list[BaseException] = field(default_factory=list)
    clock_ms: Callable[[], int] = field(default=lambda: 0)
    _written: asyncio.Event | None = None

    def topic(self, name: str) -> list[list[LogRecord]]:
        if name not in self.topics:
            self.topics[name] = [[] for _ in range(self.partitions)]
        return self.topics[name]

    def append(
        self, topic: str, key: bytes | None, value: bytes | None, headers: Headers, partition: int | None = None
    ) -> LogRecord:
        if self.failures:
            raise self.failures.pop(0)
        size = len(key or b"") + len(value or b"") + sum(len(k) + len(v or b"") for k, v in headers)
        if size > self.max_record_bytes:
            raise RecordRefused(f"record of {size} bytes over {self.max_record_bytes}")
        log = self.topic(topic)
        index = partition if partition is not None else partition_for(key, range(len(log)), range(len(log)))
        record = LogRecord(topic, index, len(log[index]), self.clock_ms(), key, value, tuple(headers))
        log[index].append(record)
        self.written().set()
        return record

    def written(self) -> asyncio.Event:
        if self._written is None:
            self._written = asyncio.Event()
        return self._written

    def records(self, topic: str) -> list[LogRecord]:
        """Every record of ``topic``, partition by partition, in offset order."""
        return [record for partition in self.topic(topic) for record in partition]


class MemoryLog:
    """One consumer-group member on a :class:`MemoryBroker`: owns every partition of its topics once started."""

    def __init__(self, broker: MemoryBroker, group: str) -> None:
        self.broker = broker
        self.group = group
        self._topics: list[str] = []
        self._listener: AssignmentListener | None = None
        self._assigned: set[TopicPartition] = set()
        self._paused: set[TopicPartition] = set()
        self._position: dict[TopicPartition, int] = defaultdict(int)
        self.commits: list[dict[TopicPartition, int]] = []

    async def start(self) -> None:
        await self.assign()

    async def stop(self) -> None:
        await self.revoke()

    def subscribe(self, topics: Sequence[str], listener: AssignmentListener) -> None:
        self._topics = list(topics)
        self._listener = listener

    async def assign(self) -> None:
        """Take every partition of the subscribed topics, reading from the group's committed offsets."""
        assigned = {TopicPartition(t, p) for t in self._topics for p in range(len(self.broker.topic(t)))}
        for tp in assigned:
            self._position[tp] = self.broker.committed.get((self.group, tp), 0)
        self._assigned = assigned
        if self._listener is not None:
            await self._listener.on_partitions_assigned(set(assigned))

    async def revoke(self) -> None:
        """Give every partition up, as a rebalance does: the listener drains and commits first."""
        revoked, self._assigned = self._assigned, set()
        if revoked and self._listener is not None:
            await self._listener.on_partitions_revoked(set(revoked))
        self._paused -= revoked

    async def fetch(self, timeout_s: float, max_records: int) -> dict[TopicPartition, list[LogRecord]]:
        batch = self._take(max_records)
        if batch:
            return batch
        written = self.broker.written()
        written.clear()
        try:
            await asyncio.wait_for(written.wait(), timeout_s)
        except TimeoutError:
            return {}
        return self._take(max_records)

    def _take(self, max_records: int) -> dict[TopicPartition, list[LogRecord]]:
        batch: dict[TopicPartition, list[LogRecord]] = {}
        left = max_records
        for tp in sorted(self._assigned - self._paused):
            if left <= 0:
                break
            log = self.broker.topic(tp.topic)[tp.partition]
            start = self._position[tp]
            records = log[start : start + left]
            if records:
                batch[tp] = records
                self._position[tp] = start + len(records)
                left -= len(records)
        return batch

    async def produce(self, topic: str, key: bytes | None, value: bytes | None, headers: Headers) -> None:
        self.broker.append(topic, key, value, headers)
        await asyncio.sleep(0)  # an acknowledgement is never synchronous

    async def commit(self, offsets: Mapping[TopicPartition, int]) -> None:
        stale = [tp for tp in offsets if tp not in self._assigned]
        if stale:
            raise LogUnavailable("commit for partitions this member no longer owns")
        for tp, offset in offsets.items():
            self.broker.committed[(self.group, tp)] = offset
        self.commits.append(dict(offsets))

    def assignment(self) -> set[TopicPartition]:
        return set(self._assigned)

    def pause(self, *partitions: TopicPartition) -> None:
        self._paused.update(partitions)

    def resume(self, *partitions: TopicPartition) -> None:
        self._paused.difference_update(partitions)

    def paused(self) -> set[TopicPartition]:
        return set(self._paused)

    def end_offset(self, tp: TopicPartition) -> int | None:
        return len(self.broker.topic(tp.topic)[tp.partition])
