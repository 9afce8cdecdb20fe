"""The ingest stage on faust: reads the Fachverfahren topics and ``rueckkanal.events``, runs the ingest step
(:mod:`streams.ingest_step`) on each record, writes what its outcome carries, and keeps the lifecycle Table.

One faust agent reads every source topic and ``rueckkanal.events``; the lifecycle Table is co-partitioned with
the events topic (streams/partitioner.py). The decisions are the step's; this shell keeps the rules of writing:

* Each batch's produces are awaited (acks=all) before the batch is acknowledged: ``take_events`` acknowledges a
  batch only when the loop asks for the next one.
* No exception leaves the agent (faust would acknowledge the event): the step never raises, and a write Kafka
  refuses for what it is is replaced by the dead letter the step supplied. Only a produce failure no record could
  survive (broker unreachable, not authorised, timeouts) stops the process without acknowledging (exit 75).
* The Table is written only after the outbox has acknowledged the batch, and its changelog records are awaited
  before the batch is acknowledged: a crash in between replays the batch against the old state (a duplicate in the
  outbox with the same nachrichtenUUID, never a gap).
* Metrics and the one outcome line per record are written here, from the outcome; an outboxed record's line only
  once the outbox has it.
* Every state change, a batch's new states and the retention sweep's removals alike, takes one path
  (``_write_state``): the changelog records, their acknowledgements, then the local store with their offsets
  (streams/faust_engine.py, ``LocalState``). A batch and a sweep never interleave.

Why the paths and the Table are as they are, and what faust needed for it: docs/architecture.md.
"""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any, cast

import faust
import structlog

from adapters.inbound.base import InboundRecord
from adapters.inbound.config import FachverfahrenConfig
from rueckkanal.lifecycle import Policy, VorgangState
from rueckkanal.metrics import Metrics
from rueckkanal.retention import expired_keys
from rueckkanal.tracecontext import valid_traceparent
from rueckkanal.xoev import MessageRenderer
from streams.app import Pipeline
from streams.dlq import RECORD_HEADROOM, record_refused
from streams.faust_engine import Change, LifecycleTable, LocalState, rocksdb_options
from streams.headers import H_TRACEPARENT, Headers
from streams.ingest_step import (
    UNKNOWN_SOURCE,
    CanonicalRecord,
    DeadLettered,
    Duplicate,
    IngestStep,
    Outboxed,
    Outcome,
    Rerouted,
    Write,
    outbox_headers,
)
from streams.logs import log_outcome

__all__ = ["UNKNOWN_SOURCE", "CanonicalRecord", "IngestStage", "KafkaUnavailable", "outbox_headers"]

log = structlog.get_logger("rueckkanal.ingest")

# The batch policy: a batch is what queued up while the previous one was written, plus at most BATCH_WITHIN_SECONDS
# (faust's take_events): under load batches grow towards BATCH_SIZE and amortise the produce acknowledgements, a slow
# stream waits at most this long before its record is processed.
BATCH_SIZE = 2000
BATCH_WITHIN_SECONDS = 0.005
TABLE_NAME = "vorgaenge"
EX_KAFKA_UNAVAILABLE = 75  # EX_TEMPFAIL: the orchestrator restarts us, the unacknowledged batch is read again


class KafkaUnavailable(Exception):
    """A produce failed for a reason no record could survive: the batch must not be acknowledged."""


class _Sent:
    """A produce handed to the producer: its acknowledgement, and the write it was, for its replacement."""

    __slots__ = ("ack", "write")

    def __init__(self, ack: Awaitable[Any], write: Write) -> None:
        self.ack = ack
        self.write = write


class IngestStage:
    """Registers the ingest agent and the lifecycle Table on the pipeline's faust app.

    ``record_limit`` is the largest record (bytes, as :func:`streams.dlq.estimated_size` counts it) the stage
    writes: ``settings.kafka.max_request_size`` less :data:`streams.dlq.RECORD_HEADROOM`; the worker may lower it
    at start (a topic's ``max.message.bytes``).
    """

    def __init__(
        self,
        pipeline: Pipeline,
        fachverfahren: Sequence[FachverfahrenConfig],
        renderer: MessageRenderer,
        metrics: Metrics,
        policy: Policy = Policy.STRICT,
    ) -> None:
        self.pipeline = pipeline
        self.metrics = metrics
        app = pipeline.app
        state = pipeline.settings.state
        self.table = LifecycleTable(
            app,
            name=TABLE_NAME,
            default=None,
            beacon=app.tables.beacon,
            key_type=str,  # a Table's keys and values are JSON in its changelog: the Vorgang key, the state dict
            value_type=None,
            partitions=pipeline.settings.topics.partitions,  # = the events topic's: co-partitioned (_remember)
            store=f"{state.store}://",
            options=rocksdb_options(state.rocksdb_block_cache_mb, state.rocksdb_write_buffer_mb),
        )
        app.tables.add(self.table)
        self.state = LocalState(self.table)
        self.retention = timedelta(days=state.retention_days)
        self.sweep_max_keys = state.sweep_max_keys
        self.clock: Callable[[], datetime] = lambda: datetime.now(UTC)
        self._cursors: dict[int, bytes] = {}  # where the sweep stopped in a partition it has not finished
        self._sweep_at = 0  # the partition the next sweep starts with
        self._lock = asyncio.Lock()  # a batch and a sweep never interleave: both read and write the state
        self.events_topic = pipeline.topics.events.get_topic_name()
        self.step = IngestStep(
            fachverfahren,
            renderer,
            events_topic=self.events_topic,
            outbox_topic=pipeline.topics.outbox.get_topic_name(),
            dlq_topic=pipeline.topics.dlq.get_topic_name(),
            partitions=pipeline.settings.topics.partitions,
            record_limit=pipeline.settings.kafka.max_request_size - RECORD_HEADROOM,
            policy=policy,
        )
        self.sources = self.step.sources
        self._topics: dict[str, faust.TopicT] = {
            t.get_topic_name(): t for t in (pipeline.topics.events, pipeline.topics.outbox, pipeline.topics.dlq)
        }
        self._warned: set[tuple[str, int]] = set()  # source partitions already reported as held elsewhere
        topic = app.topic(
            self.events_topic,
            *self.sources,
            key_type=bytes,
            value_type=bytes,
            key_serializer="raw",
            value_serializer="raw",
        )
        app.agent(topic, name="rueckkanal.ingest")(self._agent)
        app.timer(state.sweep_interval_s, name="rueckkanal.retention")(self._timed_sweep)

    @property
    def source_topics(self) -> list[str]:
        return list(self.sources)

    @property
    def record_limit(self) -> int:
        return self.step.record_limit

    @record_limit.setter
    def record_limit(self, limit: int) -> None:
        self.step.record_limit = limit

    @property
    def in_place(self) -> frozenset[str]:
        return self.step.in_place

    @property
    def held(self) -> frozenset[int]:
        return self.step.held

    def co_partition(self, partition_counts: Mapping[str, int]) -> None:
        """Decide once, from the broker's topic metadata at start-up, which sources are processed in place.

        Once, because a Vorgang must keep its path; every worker reads the same metadata, so the group agrees. A
        source created or given more partitions while workers run changes its path at their next restart only.
        """
        self.step.co_partition(partition_counts)
        for topic, fv in self.sources.items():
            path = "in place" if topic in self.step.in_place else "rerouted through " + self.events_topic
            log.info("source path", source=fv.name, topic=topic, partitions=partition_counts.get(topic), path=path)

    @property
    def changelog_topic_name(self) -> str:
        return str(self.table.changelog_topic.get_topic_name())

    async def _agent(self, stream: faust.StreamT[bytes]) -> None:
        async for batch in _batches(stream):
            async with self._lock:
                await self._guarded(self._batch(batch))

    async def _batch(self, batch: Sequence[faust.EventT[bytes]]) -> None:
        self._refresh_held()
        # The last outcome per Vorgang in this batch: its state is not in the Table yet (written after the acks).
        latest: dict[str, Outboxed] = {}
        outboxed: list[tuple[Outboxed, float]] = []
        sent: list[_Sent] = []
        step = self.step.step
        stored = self._stored_state
        partition = 0  # the record's: in place or on the events topic, a Vorgang's state is on its partition

        def state_of(key: str) -> VorgangState | None:
            known = latest.get(key)
            return known.state if known is not None else stored(partition, key)

        for event in batch:
            started = time.perf_counter()
            record = _record(event.message)
            partition = record.partition
            outcome = step(record, state_of)
            if isinstance(outcome, Outboxed):
                latest[outcome.key] = outcome
                outboxed.append((outcome, started))
            self._account(outcome, started)
            if not isinstance(outcome, Duplicate):
                sent.append(await self._write(outcome.write))
        await self._acknowledged(sent)
        await self._remember(latest)
        rendered = self.metrics.messages_rendered
        for done, started in outboxed:
            rendered.labels(done.source).inc()
            _outcome(done.record, done.source, "outboxed", started, vorgang_key=done.key)
        self.pipeline.progress.advanced("ingest")

    def _account(self, outcome: Outcome, started: float) -> None:
        """Metrics and log lines of one outcome (an outboxed record's outcome line waits for the outbox's ack)."""
        metrics = self.metrics
        source = outcome.source
        from_source = outcome.record.topic != self.events_topic
        if from_source:
            metrics.events_consumed.labels(source).inc()
        if outcome.stripped:
            metrics.pipeline_headers_stripped.labels(source).inc(outcome.stripped)
        if isinstance(outcome, Outboxed):
            if outcome.warning is not None:
                metrics.lifecycle_warnings.labels(source, outcome.warning.value).inc()
            if outcome.traceparent_dropped:
                metrics.traceparent_dropped.labels("ingest").inc()
            metrics.ingest_duration.labels("lifecycle").observe(time.perf_counter() - started)
        elif isinstance(outcome, Rerouted):
            metrics.ingest_duration.labels("ingest").observe(time.perf_counter() - started)
            metrics.events_rerouted.labels(source).inc()
            if outcome.held_elsewhere:
                self._warn_state_elsewhere(outcome.record.topic, outcome.record.partition, source)
        elif isinstance(outcome, Duplicate):
            metrics.events_duplicate.labels(source).inc()
            _outcome(outcome.record, source, "duplicate", started, vorgang_key=outcome.key, reason=outcome.reason.value)
        else:
            self._dead_lettered(outcome, started)

    def _dead_lettered(self, outcome: DeadLettered, started: float) -> None:
        record = outcome.record
        if outcome.failure is not None:
            log.error(  # no exc_info: an exception's text can quote the payload
                outcome.failure,
                source=outcome.source,
                topic=record.topic,
                partition=record.partition,
                offset=record.offset,
                error_class=outcome.error_class,
                reason=outcome.reason.value,
            )
        self.metrics.events_rejected.labels(outcome.source, outcome.reason.value).inc()
        self.metrics.dead_letters.labels(outcome.stage, outcome.reason.value, "").inc()
        log_outcome(
            topic=record.topic,
            partition=record.partition,
            offset=record.offset,
            source=outcome.source,
            outcome="dead_lettered",
            reason=outcome.reason.value,
            duration_ms=(time.perf_counter() - started) * 1000,
            traceparent=valid_traceparent(record.header(H_TRACEPARENT)),
            stage=outcome.stage,
        )
        if outcome.stub:
            self._stubbed(outcome)

    def _stubbed(self, outcome: DeadLettered) -> None:
        record = outcome.record
        self.metrics.dead_letter_stubs.labels(outcome.stage).inc()
        log.warning(
            "dead letter written as a stub without its value",
            source=outcome.source,
            topic=record.topic,
            partition=record.partition,
            offset=record.offset,
            size=len(record.value or b""),
            record_limit=self.step.record_limit,
        )

    def _refresh_held(self) -> None:
        """Note which partitions' Vorgang state this worker holds, as assigned now.

        faust assigns partition *p* of every topic with one partition count to one worker only when all workers
        subscribe to those topics. A worker of a group whose members read different Fachverfahren can get a source
        partition without its Vorgänge's state: such a record takes the hop (streams/ingest_step.py).
        """
        assignment = self.pipeline.app.consumer.assignment()
        held = frozenset(tp.partition for tp in assignment if tp.topic == self.events_topic)
        if held != self.step.held:
            self.step.held = held
            self._warned.clear()

    def _warn_state_elsewhere(self, topic: str, partition: int, source: str) -> None:
        if (topic, partition) not in self._warned:
            self._warned.add((topic, partition))
            log.warning(
                "source partition assigned without its Vorgang state; its records take the hop through "
                "rueckkanal.events until the workers subscribe to the same source topics",
                source=source,
                topic=topic,
                partition=partition,
            )

    async def _remember(self, last: dict[str, Outboxed]) -> None:
        """Write the batch's last state per Vorgang to the Table and wait until its changelog holds them.

        The changelog records go to the Vorgang's partition (faust restores changelog partition *p* on the worker
        that owns events partition *p*), and are awaited before the batch is acknowledged.
        """
        changes = []
        for key, done in last.items():
            value = done.state.to_dict()
            changes.append((done.partition, self._change(key, value)))
        await self._write_state(changes)

    def _change(self, key: str, value: dict[str, Any] | None) -> Change:
        changelog = self.table.changelog_topic
        key_bytes, _ = changelog.prepare_key(key, None)
        value_bytes = None if value is None else cast(bytes, changelog.prepare_value(value, None)[0])
        return Change(key, cast(bytes, key_bytes), value, value_bytes)

    async def _write_state(self, changes: Sequence[tuple[int, Change]]) -> None:
        """Write state changes to the changelog, wait for the broker, then to the local store with their offsets.

        The one path of every state change (a batch's new states, the sweep's tombstones), so that the changelog
        and the local store agree (streams/faust_engine.py, :class:`LocalState`).
        """
        changelog = self.table.changelog_topic
        name = changelog.get_topic_name()
        sent = []
        for partition, change in changes:
            write = Write(name, change.key_bytes, change.value_bytes, [], partition)
            sent.append(await self._write(write, changelog))
        acks = await self._acknowledged(sent)
        by_partition: dict[int, list[Change]] = {}
        offsets: dict[int, int] = {}
        for (partition, change), ack in zip(changes, acks, strict=True):
            by_partition.setdefault(partition, []).append(change)
            offsets[partition] = max(offsets.get(partition, -1), int(ack.offset))
        for partition, applied in by_partition.items():
            self.state.apply(partition, applied, offsets[partition])

    def _stored_state(self, partition: int, key: str) -> VorgangState | None:
        stored = self.state.get(partition, key, self._change(key, None).key_bytes)
        return VorgangState.from_dict(stored) if stored is not None else None

    # -- retention -----------------------------------------------------------------------------------------------

    async def _timed_sweep(self) -> None:
        try:
            await self.sweep()
        except KafkaUnavailable:
            log.warning("retention sweep could not write its tombstones; the next run tries again")

    async def sweep(self) -> int:
        """One bounded run of the retention sweep; returns the number of Vorgänge removed.

        Examines at most ``sweep_max_keys`` stored states, continuing where the last run stopped, over the events
        partitions this worker holds, and removes the expired ones (:func:`rueckkanal.retention.expired_keys`)
        through the state's one write path: a tombstone in the changelog, then the local store. Skipped while the
        group rebalances or the Table recovers: the state of a partition being recovered is not complete yet.
        """
        async with self._lock:
            if self.state.recovering():
                return 0
            self._refresh_held()
            held = sorted(self.step.held)
            now = self.clock()
            budget = self.sweep_max_keys
            expired: list[tuple[int, Change]] = []
            for partition in _rotated(held, self._sweep_at):
                if budget <= 0:
                    break
                page = self.state.scan(partition, self._cursors.get(partition), budget)
                budget -= len(page)
                if budget > 0:  # the partition's end: the next run starts it over, after the others
                    self._cursors.pop(partition, None)
                    self._sweep_at = partition + 1
                else:
                    self._cursors[partition] = page[-1][0]
                    self._sweep_at = partition
                for key in expired_keys(((key, value) for _, key, value in page), now, self.retention):
                    expired.append((partition, self._change(key, None)))
            for partition in [p for p in self._cursors if p not in self.step.held]:
                del self._cursors[partition]
            if expired:
                await self._write_state(expired)
                self.metrics.lifecycle_state_expired.inc(len(expired))
                log.info("closed Vorgänge removed from the lifecycle state", removed=len(expired))
            return len(expired)

    # -- writing -------------------------------------------------------------------------------------------------

    async def _write(self, write: Write, topic: faust.TopicT | None = None) -> _Sent:
        """Send one record; if Kafka refuses it for what it is, send the step's replacement instead.

        Any other failure raises :class:`KafkaUnavailable`: no record could be written, the batch must not be
        acknowledged.
        """
        target = topic if topic is not None else self._topics[write.topic]
        try:
            ack = await self._send(
                target, key=write.key, value=write.value, headers=list(write.headers), partition=write.partition
            )
        except Exception as error:
            if write.instead is None or not record_refused(error):
                raise KafkaUnavailable(f"cannot write to {write.topic}") from error
            log.warning("record refused by Kafka", topic=write.topic, error_class=type(error).__name__)
            return await self._write(self._replacement(write))
        return _Sent(ack, write)

    def _replacement(self, write: Write) -> Write:
        if write.instead is None:  # only writes with a replacement are replaced
            raise KafkaUnavailable(f"no replacement for a refused write to {write.topic}")
        replacement = write.instead()
        self._dead_lettered(replacement, time.perf_counter())
        return replacement.write

    async def _acknowledged(self, sent: Sequence[_Sent]) -> list[Any]:
        """Wait until the broker has acknowledged every write, or its replacement where it refused the record;
        return the acknowledgements (aiokafka's ``RecordMetadata``), in order."""
        acks = []
        for current in sent:
            while True:
                try:
                    acks.append(await current.ack)
                    break
                except Exception as error:
                    if current.write.instead is None or not record_refused(error):
                        raise KafkaUnavailable("a write was not acknowledged") from error
                    log.warning("record refused by the broker", error_class=type(error).__name__)
                    current = await self._write(self._replacement(current.write))
        return acks

    async def _send(
        self,
        topic: faust.TopicT,
        *,
        key: bytes | None,
        value: bytes | None,
        headers: Headers,
        partition: int | None = None,
    ) -> Awaitable[Any]:
        """Hand one record to the producer; the returned future resolves when the broker has acknowledged it.

        The producer is used directly, not ``Topic.send``: the values are bytes already (docs/benchmarks.md).
        """
        write: Awaitable[Any] = await self.pipeline.app.producer.send(
            topic.get_topic_name(), key, value, partition=partition, timestamp=None, headers=headers
        )
        return write

    async def _guarded(self, work: Awaitable[None]) -> None:
        """Run one batch; if Kafka itself refuses our writes, stop hard before faust acknowledges the batch."""
        try:
            await work
        except Exception:
            log.critical("cannot write to Kafka; exiting without acknowledging the batch", exc_info=True)
            os._exit(EX_KAFKA_UNAVAILABLE)


def _rotated(partitions: list[int], start: int) -> list[int]:
    """The partitions in the order a sweep visits them: from ``start`` on, then round from the first."""
    return [p for p in partitions if p >= start] + [p for p in partitions if p < start]


def _batches(stream: faust.StreamT[bytes]) -> AsyncIterator[Sequence[faust.EventT[bytes]]]:
    """Batches of events; faust acknowledges a batch only when the loop asks for the next one."""
    concrete = cast(faust.Stream[bytes], stream)
    return concrete.take_events(BATCH_SIZE, within=BATCH_WITHIN_SECONDS)


def _record(message: Any) -> InboundRecord:
    """faust's message as the step's record; a header without a value reads as empty bytes."""
    headers = message.headers
    return InboundRecord(
        message.topic,
        message.partition,
        message.offset,
        int(message.timestamp * 1000) if message.timestamp else 0,
        message.key,
        message.value,
        tuple((k, v if isinstance(v, bytes) else bytes(v or b"")) for k, v in headers) if headers else (),
    )


def _outcome(record: InboundRecord, source: str, outcome: str, started: float, **fields: Any) -> None:
    log_outcome(
        topic=record.topic,
        partition=record.partition,
        offset=record.offset,
        source=source,
        outcome=outcome,
        duration_ms=(time.perf_counter() - started) * 1000,
        traceparent=valid_traceparent(record.header(H_TRACEPARENT)),
        stage="lifecycle",
        **fields,
    )
