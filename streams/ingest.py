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

Why the paths and the Table are as they are, and what faust needed for it: docs/architecture.md.
"""

from __future__ import annotations

import os
import time
from collections.abc import AsyncIterator, Awaitable, Mapping, Sequence
from typing import Any, cast

import faust
import structlog

from adapters.inbound.base import InboundRecord
from adapters.inbound.config import FachverfahrenConfig
from rueckkanal.lifecycle import Policy, VorgangState
from rueckkanal.metrics import Metrics
from rueckkanal.tracecontext import valid_traceparent
from rueckkanal.xoev import MessageRenderer
from streams.app import Pipeline
from streams.dlq import RECORD_HEADROOM, record_refused
from streams.headers import H_TRACEPARENT, Headers, header_bytes
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
        self.table = app.Table(
            "vorgaenge",
            default=None,
            key_type=str,  # a Table's keys and values are JSON in its changelog: the Vorgang key, the state dict
            value_type=None,
            partitions=pipeline.settings.topics.partitions,  # = the events topic's: co-partitioned (see _remember)
        )
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

    async def _agent(self, stream: faust.StreamT[bytes]) -> None:
        async for batch in _batches(stream):
            await self._guarded(self._batch(batch))

    async def _batch(self, batch: Sequence[faust.EventT[bytes]]) -> None:
        self._refresh_held()
        # The last outcome per Vorgang in this batch: its state is not in the Table yet (written after the acks).
        latest: dict[str, Outboxed] = {}
        outboxed: list[tuple[Outboxed, float]] = []
        sent: list[_Sent] = []
        step = self.step.step
        stored = self._stored_state

        def state_of(key: str) -> VorgangState | None:
            known = latest.get(key)
            return known.state if known is not None else stored(key)

        for event in batch:
            started = time.perf_counter()
            outcome = step(_record(event.message), state_of)
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
            traceparent=valid_traceparent(header_bytes(record.headers, H_TRACEPARENT)),
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
        changelog = self.table.changelog_topic
        name = changelog.get_topic_name()
        sent = []
        for key, done in last.items():
            value = done.state.to_dict()
            key_bytes, _ = changelog.prepare_key(key, None)
            value_bytes, _ = changelog.prepare_value(value, None)
            write = Write(name, cast(bytes, key_bytes), cast(bytes, value_bytes), [], done.partition)
            sent.append(await self._write(write, changelog))
            self.table.data[key] = value
        await self._acknowledged(sent)

    def _stored_state(self, key: str) -> VorgangState | None:
        stored = self.table.get(key)
        return VorgangState.from_dict(stored) if stored is not None else None

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

    async def _acknowledged(self, sent: Sequence[_Sent]) -> None:
        """Wait until the broker has acknowledged every write, or its replacement where it refused the record."""
        for current in sent:
            while True:
                try:
                    await current.ack
                    break
                except Exception as error:
                    if current.write.instead is None or not record_refused(error):
                        raise KafkaUnavailable("a write was not acknowledged") from error
                    log.warning("record refused by the broker", error_class=type(error).__name__)
                    current = await self._write(self._replacement(current.write))

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
        traceparent=valid_traceparent(header_bytes(record.headers, H_TRACEPARENT)),
        stage="lifecycle",
        **fields,
    )
