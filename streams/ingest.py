"""The ingest stage: Fachverfahren topics → canonical events → lifecycle guard → XÖV messages in the outbox.

One faust agent reads every source topic and ``rueckkanal.events``. The lifecycle Table must be co-partitioned
with the records that update it: Vorgang *V*'s state lives on partition ``vorgang_partition(V)`` of the Table's
changelog, on the worker that owns that partition of ``rueckkanal.events`` (streams/partitioner.py). A source
record takes one of two paths:

``in place``  its source topic had the pipeline's partition count when the worker started (``co_partition``),
              the record sits on its Vorgang's partition number, and this worker holds that partition of
              ``rueckkanal.events``: decode → lifecycle guard (Table) → render + XSD → ``rueckkanal.outbox``.
              faust assigns partition *p* of every topic with one partition count to one worker when all
              workers subscribe to them, so this worker holds the state. Every record of a source keyed by
              Vorgang id (the event contract) with that partition count goes here.
``rerouted``  anything else (another partition count, another key or partitioner): decode → the Vorgang's
              partition of ``rueckkanal.events``, read back by whichever worker holds its state, then as above.

The path is a function of the source's partition count and the record's partition, so a Vorgang's records keep
one path, and their order, until the Fachverfahren changes its keying or adds partitions; that re-maps keys for
any Kafka consumer, and order across the change holds only if the topic was drained first. The one exception is a
group whose workers subscribe to different source topics (a rollout that adds or removes a Fachverfahren): faust
then assigns those topics apart from ``rueckkanal.events``, and a worker reading a source partition without its
Vorgänge's state reroutes them (``_refresh_held``) rather than decide against state it does not have. A Vorgang
whose path changes that way can be overtaken at the change; the lifecycle guard then refuses the late event
(``stale_event`` under the default policy) instead of passing it on. Kafka Streams repartitions only when it
must, for the same reason: each hop costs a produce, a fetch and faust's per-record work (docs/benchmarks.md).

**Trust boundary.** A Fachverfahren's record is data, never an instruction: every ``rk.*`` header (any case) is
removed from it before anything reads it, on both paths, and counted
(``rueckkanal_inbound_pipeline_headers_stripped_total``). Provenance comes only from the consumer's own view: the
topic, partition, offset and timestamp of the record read and the Fachverfahren configured for that topic. On
``rueckkanal.events`` the provenance headers are those our own reroute wrote; they are read with the robust readers
of streams/headers.py, and ``rk.source`` counts only if it names a configured Fachverfahren (else ``unknown``), so
no header value becomes a metric label. A ``traceparent`` reaches the outbox only if it is valid W3C Trace Context;
an invalid one is dropped and counted (``rueckkanal_traceparent_dropped_total``).

Anything that cannot be processed goes to ``rueckkanal.dlq`` as the original record, unchanged but for the stripped
``rk.*`` headers, with ``rk.*`` failure headers; a dead letter over :attr:`IngestStage.record_limit` becomes a stub
(streams/dlq.py). At-least-once without loss, and one record costing only itself, rest on these rules:

* Each batch's produces are awaited (acks=all) before the batch is acknowledged: ``take_events`` acknowledges a
  batch only when the loop asks for the next one.
* No exception leaves an agent: faust acknowledges an event whose agent raised (faust-streaming #189, #315).
  Every failure is classified and routed, and any unexpected exception in one record's processing dead-letters that
  record (``internal_error``). Kafka refusing one record for what it is (too large, corrupt: ``record_refused``)
  dead-letters the original record, or writes the dead letter as a stub. Only a produce failure no record could
  survive (broker unreachable, not authorised, timeouts) stops the process without acknowledging (exit 75), so the
  batch is read again after the restart.
* The lifecycle Table is written only after the outbox has acknowledged the batch. A crash in between replays
  the batch against the old state: the outbox may get a duplicate with the same nachrichtenUUID (the delivery
  stage and the portal de-duplicate), but never a gap. A record the broker refuses only after it was sent (its
  limit below :attr:`IngestStage.record_limit`, which the start-up check rules out) is dead-lettered, but the
  batch's state for its Vorgang is still written.
"""

from __future__ import annotations

import os
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, cast

import faust
import structlog
from pydantic import Base64Bytes, BaseModel, ConfigDict

from adapters.inbound.base import InboundAdapter, InboundRecord
from adapters.inbound.config import FachverfahrenConfig, build_adapter
from rueckkanal.errors import DecodeError, InputRejected, Reason, RenderError, RueckkanalError
from rueckkanal.lifecycle import Advanced, Policy, VorgangState, advance
from rueckkanal.metrics import Metrics
from rueckkanal.model import StatusEvent
from rueckkanal.tracecontext import valid_traceparent
from rueckkanal.xoev import MessageRenderer, RenderedMessage
from streams.app import Pipeline
from streams.dlq import (
    RECORD_HEADROOM,
    Origin,
    dead_letter_headers,
    estimated_size,
    record_refused,
    stub_record,
)
from streams.headers import (
    H_CE_ID,
    H_CE_SOURCE,
    H_NACHRICHTEN_UUID,
    H_OFFSET,
    H_ORIGINAL_HEADERS_DROPPED,
    H_PARTITION,
    H_SEQUENCE,
    H_SOURCE,
    H_STATUS,
    H_STATUS_TIME,
    H_TIMESTAMP,
    H_TOPIC,
    H_TRACEPARENT,
    Headers,
    header,
    header_bytes,
    header_int,
    without_pipeline_headers,
)
from streams.logs import log_outcome
from streams.partitioner import vorgang_partition

log = structlog.get_logger("rueckkanal.ingest")

BATCH_SIZE = 2000
BATCH_WITHIN_SECONDS = 0.05
EX_KAFKA_UNAVAILABLE = 75  # EX_TEMPFAIL: the orchestrator restarts us, the unacknowledged batch is read again

UNKNOWN_SOURCE = "unknown"  # the source label of a record on rueckkanal.events without a configured rk.source


class KafkaUnavailable(Exception):
    """A produce failed for a reason no record could survive: the batch must not be acknowledged."""


class CanonicalRecord(BaseModel):
    """The value on ``rueckkanal.events``: the decoded event and the original record it came from.

    The original key and value travel along so that a lifecycle rejection can dead-letter the record exactly as
    the Fachverfahren sent it, and a replay can put it back on its source topic.
    """

    model_config = ConfigDict(frozen=True)

    event: StatusEvent
    original_key: Base64Bytes | None
    original_value: Base64Bytes


@dataclass(frozen=True)
class _Decoded:
    """An event ready for the lifecycle guard, from either path, with what a rejection or the outbox needs."""

    event: StatusEvent
    source: str
    partition: int  # the Vorgang's partition: of events, outbox and the Table's changelog
    message: Any  # the record read, for the outcome line
    headers: Headers  # the Fachverfahren's headers (traceparent)
    original: Callable[[], InboundRecord]  # the Fachverfahren's record, rebuilt only for a dead letter


@dataclass(frozen=True)
class _Pending:
    """One outbox write of a batch, with what must happen once the broker has acknowledged it."""

    key: str
    state: VorgangState
    source: str
    partition: int
    message: Any  # the record read, for the outcome line
    started: float


@dataclass(frozen=True)
class _Write:
    """A produce handed to the producer: its acknowledgement, and what to write instead if Kafka refuses the record."""

    ack: Awaitable[Any]
    refused: Callable[[], Awaitable[_Write]] | None = None


class IngestStage:
    """Registers the two ingest agents and the lifecycle Table on the pipeline's faust app.

    ``record_limit`` is the largest record (bytes, as :func:`streams.dlq.estimated_size` counts it) the stage
    writes: ``settings.kafka.max_request_size`` less :data:`streams.dlq.RECORD_HEADROOM`; the worker may lower it
    at start (a topic's ``max.message.bytes``). A dead letter above it is written as a stub; an outbox or events
    record above it dead-letters its original record (``payload_too_large``).
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
        self.renderer = renderer
        self.metrics = metrics
        self.policy = policy
        self.sources = {fv.topic: fv for fv in fachverfahren}
        self.source_names = frozenset(fv.name for fv in fachverfahren)
        self.adapters: dict[str, InboundAdapter] = {fv.topic: build_adapter(fv) for fv in fachverfahren}
        self.record_limit = pipeline.settings.kafka.max_request_size - RECORD_HEADROOM
        app = pipeline.app
        self.table = app.Table(
            "vorgaenge",
            default=None,
            key_type=str,  # a Table's keys and values are JSON in its changelog: the Vorgang key, the state dict
            value_type=None,
            partitions=pipeline.settings.topics.partitions,  # = the events topic's: co-partitioned (see _remember)
        )
        self.events_topic = pipeline.topics.events.get_topic_name()
        self.partitions = pipeline.settings.topics.partitions
        self.in_place: frozenset[str] = frozenset()  # set once at start-up by co_partition(), before any record
        self.held: frozenset[int] = frozenset()  # events partitions (and so Table partitions) this worker holds now
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

    def co_partition(self, partition_counts: Mapping[str, int]) -> None:
        """Decide once, from the broker's topic metadata at start-up, which sources are processed in place.

        Once, because a Vorgang must keep its path: a record rerouted through ``rueckkanal.events`` and a later
        one processed in place could overtake it. Every worker reads the same metadata, so the group agrees. A
        source created or given more partitions while workers run changes its path at their next restart only.
        """
        self.in_place = frozenset(t for t in self.sources if partition_counts.get(t) == self.partitions)
        for topic, fv in self.sources.items():
            path = "in place" if topic in self.in_place else "rerouted through " + self.events_topic
            log.info("source path", source=fv.name, topic=topic, partitions=partition_counts.get(topic), path=path)

    async def _agent(self, stream: faust.StreamT[bytes]) -> None:
        async for batch in _batches(stream):
            await self._guarded(self._batch(batch))

    async def _batch(self, batch: Sequence[faust.EventT[bytes]]) -> None:
        # The last outbox write per Vorgang in this batch: its state is not in the Table yet, which is written
        # after the outbox acks.
        latest: dict[str, _Pending] = {}
        writes: list[_Write] = []
        pending: list[_Pending] = []
        self._refresh_held()
        for event in batch:
            write, done = await self._record(event.message, latest)
            if write is not None:
                writes.append(write)
            if done is not None:
                latest[done.key] = done
                pending.append(done)
        await self._acknowledged(writes)
        await self._remember(latest)
        for done in pending:
            self.metrics.messages_rendered.labels(done.source).inc()
            _outcome(done.message, done.source, "outboxed", done.started, vorgang_key=done.key)
        self.pipeline.progress.advanced("ingest")

    async def _record(self, message: Any, latest: dict[str, _Pending]) -> tuple[_Write | None, _Pending | None]:
        """One record's processing; an unexpected exception costs that record only (``internal_error``)."""
        started = time.perf_counter()
        try:
            if message.topic == self.events_topic:
                return await self._from_events(message, latest)
            return await self._from_source(message, latest)
        except KafkaUnavailable:
            raise
        except Exception as error:
            from_events = message.topic == self.events_topic
            source = self._source_of_event(message) if from_events else self._source_of_topic(message.topic)
            log.error(  # no exc_info: an exception's text can quote the payload
                "record processing failed unexpectedly",
                source=source,
                topic=message.topic,
                partition=message.partition,
                offset=message.offset,
                error_class=type(error).__name__,
            )
            record = _inbound_record(message) if from_events else _source_record(message)[0]
            failure = _internal(error, "processing the record")
            stage = "lifecycle" if from_events else "ingest"
            return await self._reject(record, failure, stage=stage, source=source, started=started), None

    def _refresh_held(self) -> None:
        """Note which partitions' Vorgang state this worker holds, as assigned now.

        faust assigns partition *p* of every topic with one partition count to one worker only when all workers
        subscribe to those topics. Replicas with different Fachverfahren (a rollout that adds or removes one) break
        that for the topics they differ in: a worker can then get a source partition without the state of its
        Vorgänge. Such a record takes the hop to the worker that holds the state, instead of being decided here
        against state this worker does not have.
        """
        assignment = self.pipeline.app.consumer.assignment()
        held = frozenset(tp.partition for tp in assignment if tp.topic == self.events_topic)
        if held != self.held:
            self.held = held
            self._warned.clear()

    def _source_of_topic(self, topic: str) -> str:
        fv = self.sources.get(topic)
        return fv.name if fv is not None else UNKNOWN_SOURCE

    def _source_of_event(self, message: Any) -> str:
        """The Fachverfahren our reroute named in ``rk.source``, if it is a configured one: a bounded label."""
        named = header(message.headers, H_SOURCE)
        return named if named in self.source_names else UNKNOWN_SOURCE

    # -- a Fachverfahren's record ----------------------------------------------------------------------------

    async def _from_source(self, message: Any, latest: dict[str, _Pending]) -> tuple[_Write | None, _Pending | None]:
        started = time.perf_counter()
        fv = self.sources[message.topic]
        self.metrics.events_consumed.labels(fv.name).inc()
        record, stripped, unreadable = _source_record(message)
        if stripped:
            self.metrics.pipeline_headers_stripped.labels(fv.name).inc(stripped)
        if unreadable:
            error = DecodeError(f"{unreadable} header name(s) not valid UTF-8", reason=Reason.INVALID_ENCODING)
            dropped = [(H_ORIGINAL_HEADERS_DROPPED, str(unreadable).encode())]
            write = await self._reject(record, error, stage="ingest", source=fv.name, started=started, extra=dropped)
            return write, None
        try:
            event = self.adapters[message.topic].decode(record)
        except RueckkanalError as error:
            return await self._reject(record, error, stage="ingest", source=fv.name, started=started), None
        except Exception as error:  # an adapter bug must not stop the partition
            log.error(
                "adapter failed unexpectedly", source=fv.name, topic=message.topic, error_class=type(error).__name__
            )
            failure = _internal(error, "decoding")
            return await self._reject(record, failure, stage="ingest", source=fv.name, started=started), None
        partition = vorgang_partition(event.vorgang_id, self.partitions)
        self.metrics.ingest_duration.labels("ingest").observe(time.perf_counter() - started)
        if message.partition == partition and message.topic in self.in_place:
            if partition in self.held:
                decoded = _Decoded(event, fv.name, partition, message, list(record.headers), lambda: record)
                return await self._guard(decoded, latest, started)
            self._warn_state_elsewhere(message.topic, partition, fv.name)
        self.metrics.events_rerouted.labels(fv.name).inc()
        return await self._reroute(event, record, fv.name, partition, started), None

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

    async def _reroute(
        self, event: StatusEvent, record: InboundRecord, source: str, partition: int, started: float
    ) -> _Write:
        """Put the decoded event on the Vorgang's events partition, where the worker that holds its state reads it."""
        canonical = CanonicalRecord.model_construct(  # validated already; Base64Bytes would decode raw bytes
            event=event, original_key=record.key, original_value=record.value or b""
        )
        key = event.vorgang_key.encode()
        value = canonical.model_dump_json(by_alias=True).encode()
        headers = [*record.headers, *_origin_headers(record), (H_SOURCE, source.encode())]

        async def too_large() -> _Write:
            error = DecodeError(
                "decoded record over the record limit of the events topic", reason=Reason.PAYLOAD_TOO_LARGE
            )
            return await self._reject(record, error, stage="ingest", source=source, started=started)

        if estimated_size(key, value, headers) > self.record_limit:
            return await too_large()
        return await self._write(
            self.pipeline.topics.events, key=key, value=value, headers=headers, partition=partition, refused=too_large
        )

    # -- a record on rueckkanal.events -----------------------------------------------------------------------

    async def _from_events(self, message: Any, latest: dict[str, _Pending]) -> tuple[_Write | None, _Pending | None]:
        started = time.perf_counter()
        headers: Headers = _headers(message)
        source = self._source_of_event(message)
        try:
            canonical = CanonicalRecord.model_validate_json(message.value)
        except Exception:  # only our own stage writes here; a bad record is a bug, routed
            record = _inbound_record(message)
            error = InputRejected("record on the events topic is not a canonical event", reason=Reason.SCHEMA_INVALID)
            return await self._reject(record, error, stage="lifecycle", source=source, started=started), None
        decoded = _Decoded(
            canonical.event, source, message.partition, message, headers, lambda: _original(canonical, headers)
        )
        return await self._guard(decoded, latest, started)

    # -- lifecycle, render, outbox ---------------------------------------------------------------------------

    async def _guard(
        self, decoded: _Decoded, latest: dict[str, _Pending], started: float
    ) -> tuple[_Write | None, _Pending | None]:
        began = time.perf_counter()
        event, source = decoded.event, decoded.source
        key = event.vorgang_key
        try:
            in_batch = latest.get(key)
            previous = in_batch.state if in_batch is not None else self._stored_state(key)
        except RueckkanalError as error:  # an unreadable Table value: park the event, keep the partition moving
            return await self._reject_decoded(decoded, error, started), None
        result = advance(previous, event, policy=self.policy)
        if not isinstance(result, Advanced):
            if result.reason is Reason.DUPLICATE_EVENT:
                self.metrics.events_duplicate.labels(source).inc()
                _outcome(decoded.message, source, "duplicate", started, vorgang_key=key, reason=result.reason.value)
                return None, None
            return await self._reject_decoded(decoded, result.to_error(), started), None
        if result.warning is not None:
            self.metrics.lifecycle_warnings.labels(source, result.warning.value).inc()
        try:
            rendered = self.renderer.render(event, result.state)
        except RenderError as error:
            log.error("rendered message failed the XSD", source=source, reason=error.reason.value)
            return await self._reject_decoded(decoded, error, started), None
        self.metrics.ingest_duration.labels("lifecycle").observe(time.perf_counter() - began)
        raw_traceparent = header_bytes(decoded.headers, H_TRACEPARENT)
        if raw_traceparent is not None and valid_traceparent(raw_traceparent) is None:
            self.metrics.traceparent_dropped.labels("ingest").inc()
        headers = outbox_headers(event, rendered, decoded.headers, source)

        async def too_large() -> _Write:
            error = RenderError("rendered message over the record limit of the outbox", reason=Reason.PAYLOAD_TOO_LARGE)
            return await self._reject_decoded(decoded, error, started)

        if estimated_size(key.encode(), rendered.xml, headers) > self.record_limit:
            return await too_large(), None
        write = await self._write(
            self.pipeline.topics.outbox,
            key=key.encode(),
            value=rendered.xml,
            headers=headers,
            partition=decoded.partition,  # outbox and events: one partition count and mapping (topics.py)
            refused=too_large,
        )
        pending = _Pending(
            key=key,
            state=result.state,
            source=source,
            partition=decoded.partition,
            message=decoded.message,
            started=started,
        )
        return write, pending

    async def _reject_decoded(self, decoded: _Decoded, error: RueckkanalError, started: float) -> _Write:
        return await self._reject(decoded.original(), error, stage="lifecycle", source=decoded.source, started=started)

    async def _remember(self, last: dict[str, _Pending]) -> None:
        """Write the batch's last state per Vorgang to the Table and wait until its changelog holds them.

        The changelog records are produced here, serialised by the changelog topic itself, to the Vorgang's
        partition: faust restores changelog partition *p* on the worker that owns events partition *p* (and every
        source partition *p* of the same count), so this is what keeps the Table co-partitioned with its stream.
        Awaiting them, instead of faust's fire-and-forget ``send_soon``, makes the state durable before the batch
        is acknowledged, and takes faust's per-write buffering off the hot path.
        """
        changelog = self.table.changelog_topic
        writes = []
        for key, done in last.items():
            value = done.state.to_dict()
            key_bytes, _ = changelog.prepare_key(key, None)
            value_bytes, _ = changelog.prepare_value(value, None)
            writes.append(
                await self._write(
                    changelog,
                    key=cast(bytes, key_bytes),
                    value=cast(bytes, value_bytes),
                    headers=[],
                    partition=done.partition,
                )
            )
            self.table.data[key] = value
        await self._acknowledged(writes)

    def _stored_state(self, key: str) -> VorgangState | None:
        stored = self.table.get(key)
        return VorgangState.from_dict(stored) if stored is not None else None

    # -- shared --------------------------------------------------------------------------------------------

    async def _reject(
        self,
        record: InboundRecord,
        error: RueckkanalError,
        *,
        stage: str,
        source: str,
        started: float,
        extra: Sequence[tuple[str, bytes]] = (),
    ) -> _Write:
        """Dead-letter ``record``: a copy if it fits the record limit, else (or if Kafka refuses it) a stub."""
        self.metrics.events_rejected.labels(source, error.reason.value).inc()
        self.metrics.dead_letters.labels(stage, error.reason.value, "").inc()
        origin = Origin(record.topic, record.partition, record.offset, record.timestamp_ms)
        log_outcome(
            topic=origin.topic,
            partition=origin.partition,
            offset=origin.offset,
            source=source,
            outcome="dead_lettered",
            reason=error.reason.value,
            duration_ms=(time.perf_counter() - started) * 1000,
            traceparent=valid_traceparent(header_bytes(record.headers, H_TRACEPARENT)),
            stage=stage,
        )
        headers = [*dead_letter_headers(list(record.headers), error, stage=stage, origin=origin, source=source), *extra]

        async def stub() -> _Write:
            self.metrics.dead_letter_stubs.labels(stage).inc()
            log.warning(
                "dead letter written as a stub without its value",
                source=source,
                topic=origin.topic,
                partition=origin.partition,
                offset=origin.offset,
                size=len(record.value or b""),
                record_limit=self.record_limit,
            )
            key, value, stub_headers = stub_record(
                record.key,
                record.value,
                list(record.headers),
                error,
                stage=stage,
                origin=origin,
                record_limit=self.record_limit,
                source=source,
            )
            return await self._write(self.pipeline.topics.dlq, key=key, value=value, headers=stub_headers)

        if estimated_size(record.key, record.value, headers) > self.record_limit:
            return await stub()
        return await self._write(
            self.pipeline.topics.dlq, key=record.key, value=record.value, headers=headers, refused=stub
        )

    async def _write(
        self,
        topic: faust.TopicT,
        *,
        key: bytes | None,
        value: bytes | None,
        headers: Headers,
        partition: int | None = None,
        refused: Callable[[], Awaitable[_Write]] | None = None,
    ) -> _Write:
        """Send one record; if Kafka refuses it for what it is, write ``refused()`` instead (nothing, if None).

        Any other failure raises :class:`KafkaUnavailable`: no record could be written, the batch must not be
        acknowledged.
        """
        try:
            ack = await self._send(topic, key=key, value=value, headers=headers, partition=partition)
        except Exception as error:
            if refused is None or not record_refused(error):
                raise KafkaUnavailable(f"cannot write to {topic.get_topic_name()}") from error
            log.warning("record refused by Kafka", topic=topic.get_topic_name(), error_class=type(error).__name__)
            return await refused()
        return _Write(ack, refused)

    async def _acknowledged(self, writes: Iterable[_Write]) -> None:
        """Wait until the broker has acknowledged every write, or its replacement where it refused the record."""
        for write in writes:
            current = write
            while True:
                try:
                    await current.ack
                    break
                except Exception as error:
                    if current.refused is None or not record_refused(error):
                        raise KafkaUnavailable("a write was not acknowledged") from error
                    log.warning("record refused by the broker", error_class=type(error).__name__)
                    current = await current.refused()

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

        The producer is used directly, not ``Topic.send``: the values are bytes already, and skipping faust's
        per-send futures, codecs and sensors raised the stage's throughput by about 40 % (docs/benchmarks.md).
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


def _headers(message: Any) -> Headers:
    return [(k, v if isinstance(v, bytes) else bytes(v or b"")) for k, v in (message.headers or ())]


def _inbound_record(message: Any, headers: Headers | None = None) -> InboundRecord:
    return InboundRecord(
        topic=message.topic,
        partition=message.partition,
        offset=message.offset,
        timestamp_ms=int(message.timestamp * 1000) if message.timestamp else 0,
        key=message.key,
        value=message.value,
        headers=tuple(_headers(message) if headers is None else headers),
    )


def _source_record(message: Any) -> tuple[InboundRecord, int, int]:
    """A Fachverfahren's record without the headers it may not carry on, and how many of each kind were removed.

    Removed are the headers in the pipeline's namespace, and those whose name is not valid UTF-8 (the consumer reads
    such a name with ``surrogateescape``, streams/kafka_records.py): Kafka's protocol has no such names, and no
    producer of ours could write one again. Returns the record, the count of ``rk.*`` headers and the count of
    unreadable names.
    """
    every = _headers(message)
    readable = [(k, v) for k, v in every if _utf8_name(k)]
    kept = without_pipeline_headers(readable)
    return _inbound_record(message, kept), len(readable) - len(kept), len(every) - len(readable)


def _utf8_name(name: str) -> bool:
    try:
        name.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _origin_headers(record: InboundRecord) -> Headers:
    return [
        (H_TOPIC, record.topic.encode()),
        (H_PARTITION, str(record.partition).encode()),
        (H_OFFSET, str(record.offset).encode()),
        (H_TIMESTAMP, str(record.timestamp_ms).encode()),
    ]


def _original(canonical: CanonicalRecord, headers: Headers) -> InboundRecord:
    """The Fachverfahren's record as it was first read, rebuilt from the canonical record and our reroute's headers.

    A provenance header that is missing or malformed reads as unknown (-1, or 0 for the time), never as an error.
    """
    return InboundRecord(
        topic=header(headers, H_TOPIC) or "",
        partition=_or(header_int(headers, H_PARTITION, minimum=0), -1),
        offset=_or(header_int(headers, H_OFFSET, minimum=0), -1),
        timestamp_ms=_or(header_int(headers, H_TIMESTAMP, minimum=0), 0),
        key=canonical.original_key,
        value=canonical.original_value,
        headers=tuple(without_pipeline_headers(headers)),
    )


def _or(value: int | None, default: int) -> int:
    return default if value is None else value


def outbox_headers(event: StatusEvent, rendered: RenderedMessage, headers: Headers, source: str) -> Headers:
    """The outbox record's headers: what delivery and the portal adapter need without parsing the XML.

    The Fachverfahren's ``traceparent`` is passed on only if it is valid W3C Trace Context.
    """
    out: Headers = [
        (H_NACHRICHTEN_UUID, rendered.nachrichten_uuid.encode()),
        (H_CE_SOURCE, event.source.encode()),
        (H_CE_ID, event.event_id.encode()),
        (H_STATUS, event.status.encode()),
        (H_SEQUENCE, str(rendered.sequence).encode()),
        (H_STATUS_TIME, event.status_time.isoformat().encode()),
        (H_SOURCE, source.encode()),
    ]
    traceparent = valid_traceparent(header_bytes(headers, H_TRACEPARENT))
    if traceparent:
        out.append((H_TRACEPARENT, traceparent.encode()))
    return out


def _outcome(message: Any, source: str, outcome: str, started: float, **fields: Any) -> None:
    log_outcome(
        topic=message.topic,
        partition=message.partition,
        offset=message.offset,
        source=source,
        outcome=outcome,
        duration_ms=(time.perf_counter() - started) * 1000,
        traceparent=valid_traceparent(header_bytes(message.headers, H_TRACEPARENT)),
        stage="lifecycle",
        **fields,
    )


def _internal(error: Exception, doing: str) -> RueckkanalError:
    return RueckkanalError(f"unexpected {type(error).__name__} while {doing}", reason=Reason.INTERNAL_ERROR)
