"""The ingest stage: Fachverfahren topics → canonical events → lifecycle guard → XÖV messages in the outbox.

Two faust agents, because the lifecycle Table must be co-partitioned with the stream that updates it, and source
topics belong to the Fachverfahren and may have any partition count:

``decode``     every source topic → inbound adapter → ``rueckkanal.events`` (key = Vorgang key)
``lifecycle``  ``rueckkanal.events`` → lifecycle guard (Table per Vorgang) → render + XSD → ``rueckkanal.outbox``

Anything that cannot be processed goes to ``rueckkanal.dlq`` as the original record, unchanged, with ``rk.*``
headers. At-least-once without loss rests on three rules:

* Each batch's produces are awaited (acks=all) before the batch is acknowledged: ``take_events`` acknowledges a
  batch only when the loop asks for the next one.
* No exception leaves an agent: faust acknowledges an event whose agent raised (faust-streaming #189, #315).
  Every failure is classified and routed; only a failing Kafka produce (nothing left to route to) stops the
  process without acknowledging, so the batch is read again after the restart.
* The lifecycle Table is written only after the outbox has acknowledged the batch. A crash in between replays
  the batch against the old state: the outbox may get a duplicate with the same nachrichtenUUID (the delivery
  stage and the portal de-duplicate), but never a gap.
"""

from __future__ import annotations

import os
import time
from collections.abc import AsyncIterator, Awaitable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any, cast

import faust
import structlog
from pydantic import Base64Bytes, BaseModel, ConfigDict

from adapters.inbound.base import InboundAdapter, InboundRecord
from adapters.inbound.config import FachverfahrenConfig, build_adapter
from rueckkanal.errors import InputRejected, Reason, RenderError, RueckkanalError
from rueckkanal.lifecycle import Advanced, Policy, VorgangState, advance
from rueckkanal.metrics import Metrics
from rueckkanal.model import StatusEvent
from rueckkanal.xoev import MessageRenderer, RenderedMessage
from streams.app import Pipeline
from streams.dlq import H_OFFSET, H_PARTITION, H_SOURCE, H_TIMESTAMP, H_TOPIC, Headers, Origin, dead_letter_headers
from streams.logs import log_outcome

log = structlog.get_logger("rueckkanal.ingest")

BATCH_SIZE = 2000
BATCH_WITHIN_SECONDS = 0.05
EX_KAFKA_UNAVAILABLE = 75  # EX_TEMPFAIL: the orchestrator restarts us, the unacknowledged batch is read again

# Headers set by the ingest stage itself; they do not belong to the Fachverfahren's original record.
_INTERNAL_HEADERS = frozenset({H_TOPIC, H_PARTITION, H_OFFSET, H_TIMESTAMP, H_SOURCE})

# Outbox headers: what the delivery stage and the portal adapter need without parsing the XML.
H_NACHRICHTEN_UUID = "nachrichtenUUID"
H_CE_SOURCE = "ce_source"
H_CE_ID = "ce_id"
H_STATUS = "status"
H_SEQUENCE = "rk.sequence"
H_STATUS_TIME = "rk.status_time"
H_TRACEPARENT = "traceparent"


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
class _Pending:
    """One outbox write of a batch, with what must happen once the broker has acknowledged it."""

    key: str
    state: VorgangState
    source: str
    message: Any  # the events record, for the outcome line
    started: float


class IngestStage:
    """Registers the two ingest agents and the lifecycle Table on the pipeline's faust app."""

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
        self.adapters: dict[str, InboundAdapter] = {fv.topic: build_adapter(fv) for fv in fachverfahren}
        app = pipeline.app
        self.table = app.Table(
            "vorgaenge",
            default=None,
            key_type=str,  # a Table's keys and values are JSON in its changelog: the Vorgang key, the state dict
            value_type=None,
            partitions=pipeline.settings.topics.partitions,  # = the events topic's: co-partitioned (see _remember)
        )
        source_topic = app.topic(
            *self.sources, key_type=bytes, value_type=bytes, key_serializer="raw", value_serializer="raw"
        )
        app.agent(source_topic, name="rueckkanal.decode")(self._decode_agent)
        app.agent(pipeline.topics.events, name="rueckkanal.lifecycle")(self._lifecycle_agent)

    @property
    def source_topics(self) -> list[str]:
        return list(self.sources)

    # -- stage 1: decode -----------------------------------------------------------------------------------

    async def _decode_agent(self, stream: faust.StreamT[bytes]) -> None:
        async for batch in _batches(stream):
            await self._guarded(self._decode_batch(batch), "decode")

    async def _decode_batch(self, batch: Sequence[faust.EventT[bytes]]) -> None:
        writes: list[Awaitable[Any]] = []
        for event in batch:
            writes.append(await self._decode_one(event.message))
        await _all_acknowledged(writes)

    async def _decode_one(self, message: Any) -> Awaitable[Any]:
        started = time.perf_counter()
        fv = self.sources[message.topic]
        self.metrics.events_consumed.labels(fv.name).inc()
        record = _inbound_record(message)
        try:
            status_event = self.adapters[message.topic].decode(record)
        except RueckkanalError as error:
            return await self._reject(record, error, stage="ingest", source=fv.name, started=started)
        except Exception as error:  # an adapter bug must not stop the partition
            log.exception("adapter failed unexpectedly", source=fv.name, topic=message.topic)
            return await self._reject(record, _internal(error), stage="ingest", source=fv.name, started=started)
        # model_construct: the event is validated already, and Base64Bytes would try to decode raw bytes.
        canonical = CanonicalRecord.model_construct(
            event=status_event, original_key=record.key, original_value=record.value or b""
        )
        headers = [*record.headers, *_origin_headers(record), (H_SOURCE, fv.name.encode())]
        self.metrics.ingest_duration.labels("ingest").observe(time.perf_counter() - started)
        return await self._send(
            self.pipeline.topics.events,
            key=status_event.vorgang_key.encode(),
            value=canonical.model_dump_json(by_alias=True).encode(),
            headers=headers,
        )

    # -- stage 2: lifecycle, render, outbox ----------------------------------------------------------------

    async def _lifecycle_agent(self, stream: faust.StreamT[bytes]) -> None:
        async for batch in _batches(stream):
            await self._guarded(self._lifecycle_batch(batch), "lifecycle")

    async def _lifecycle_batch(self, batch: Sequence[faust.EventT[bytes]]) -> None:
        # The last outbox write per Vorgang in this batch: its state is not in the Table yet, which is written
        # after the outbox acks.
        latest: dict[str, _Pending] = {}
        writes: list[Awaitable[Any]] = []
        pending: list[_Pending] = []
        for event in batch:
            write, done = await self._lifecycle_one(event.message, latest)
            if write is not None:
                writes.append(write)
            if done is not None:
                latest[done.key] = done
                pending.append(done)
        await _all_acknowledged(writes)
        await self._remember(latest)
        for done in pending:
            self.metrics.messages_rendered.labels(done.source).inc()
            _outcome(done.message, done.source, "outboxed", done.started, vorgang_key=done.key)

    async def _lifecycle_one(
        self, message: Any, latest: dict[str, _Pending]
    ) -> tuple[Awaitable[Any] | None, _Pending | None]:
        started = time.perf_counter()
        headers: Headers = list(message.headers or ())
        source = _header(headers, H_SOURCE) or "unknown"
        try:
            canonical = CanonicalRecord.model_validate_json(message.value)
        except Exception:  # only our own stage writes here; a bad record is a bug, routed
            record = _inbound_record(message)
            error = InputRejected("record on the events topic is not a canonical event", reason=Reason.SCHEMA_INVALID)
            return await self._reject(record, error, stage="lifecycle", source=source, started=started), None
        event = canonical.event
        key = event.vorgang_key
        try:
            in_batch = latest.get(key)
            previous = in_batch.state if in_batch is not None else self._stored_state(key)
        except RueckkanalError as error:  # an unreadable Table value: park the event, keep the partition moving
            original = _original(canonical, headers)
            return await self._reject(original, error, stage="lifecycle", source=source, started=started), None
        result = advance(previous, event, policy=self.policy)
        if not isinstance(result, Advanced):
            if result.reason is Reason.DUPLICATE_EVENT:
                self.metrics.events_duplicate.labels(source).inc()
                _outcome(message, source, "duplicate", started, vorgang_key=key, reason=result.reason.value)
                return None, None
            original = _original(canonical, headers)
            return await self._reject(
                original, result.to_error(), stage="lifecycle", source=source, started=started
            ), None
        if result.warning is not None:
            self.metrics.lifecycle_warnings.labels(source, result.warning.value).inc()
        try:
            rendered = self.renderer.render(event, result.state)
        except RenderError as error:
            log.error("rendered message failed the XSD", source=source, reason=error.reason.value)
            original = _original(canonical, headers)
            return await self._reject(original, error, stage="lifecycle", source=source, started=started), None
        self.metrics.ingest_duration.labels("lifecycle").observe(time.perf_counter() - started)
        write = await self._send(
            self.pipeline.topics.outbox,
            key=key.encode(),
            value=rendered.xml,
            headers=outbox_headers(event, rendered, headers, source),
            partition=message.partition,  # same key and partition count as events (topics.py)
        )
        return write, _Pending(key=key, state=result.state, source=source, message=message, started=started)

    async def _remember(self, last: dict[str, _Pending]) -> None:
        """Write the batch's last state per Vorgang to the Table and wait until its changelog holds them.

        The changelog records are produced here, serialised by the changelog topic itself, to the partition of
        the events record that produced the state: faust restores changelog partition *p* on the worker that owns
        events partition *p*, so this is what keeps the Table co-partitioned with its stream. Awaiting them,
        instead of faust's fire-and-forget ``send_soon``, makes the state durable before the batch is
        acknowledged, and takes faust's per-write buffering off the hot path.
        """
        changelog = self.table.changelog_topic
        writes = []
        for key, done in last.items():
            value = done.state.to_dict()
            key_bytes, _ = changelog.prepare_key(key, None)
            value_bytes, _ = changelog.prepare_value(value, None)
            writes.append(
                await self._send(
                    changelog,
                    key=cast(bytes, key_bytes),
                    value=cast(bytes, value_bytes),
                    headers=[],
                    partition=done.message.partition,
                )
            )
            self.table.data[key] = value
        await _all_acknowledged(writes)

    def _stored_state(self, key: str) -> VorgangState | None:
        stored = self.table.get(key)
        return VorgangState.from_dict(stored) if stored is not None else None

    # -- shared --------------------------------------------------------------------------------------------

    async def _reject(
        self, record: InboundRecord, error: RueckkanalError, *, stage: str, source: str, started: float
    ) -> Awaitable[Any]:
        self.metrics.events_rejected.labels(source, error.reason.value).inc()
        self.metrics.dead_letters.labels(stage, error.reason.value).inc()
        origin = Origin(record.topic, record.partition, record.offset, record.timestamp_ms)
        log_outcome(
            topic=origin.topic,
            partition=origin.partition,
            offset=origin.offset,
            source=source,
            outcome="dead_lettered",
            reason=error.reason.value,
            duration_ms=(time.perf_counter() - started) * 1000,
            traceparent=record.header(H_TRACEPARENT),
            stage=stage,
        )
        headers = dead_letter_headers(list(record.headers), error, stage=stage, origin=origin, source=source)
        return await self._send(self.pipeline.topics.dlq, key=record.key, value=record.value, headers=headers)

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

    async def _guarded(self, work: Awaitable[None], agent: str) -> None:
        """Run one batch; if Kafka itself refuses our writes, stop hard before faust acknowledges the batch."""
        try:
            await work
        except Exception:
            log.critical("cannot write to Kafka; exiting without acknowledging the batch", agent=agent, exc_info=True)
            os._exit(EX_KAFKA_UNAVAILABLE)


def _batches(stream: faust.StreamT[bytes]) -> AsyncIterator[Sequence[faust.EventT[bytes]]]:
    """Batches of events; faust acknowledges a batch only when the loop asks for the next one."""
    concrete = cast(faust.Stream[bytes], stream)
    return concrete.take_events(BATCH_SIZE, within=BATCH_WITHIN_SECONDS)


async def _all_acknowledged(writes: Iterable[Awaitable[Any]]) -> None:
    for write in writes:
        await write


def _inbound_record(message: Any) -> InboundRecord:
    headers = tuple((k, v if isinstance(v, bytes) else bytes(v or b"")) for k, v in (message.headers or ()))
    return InboundRecord(
        topic=message.topic,
        partition=message.partition,
        offset=message.offset,
        timestamp_ms=int(message.timestamp * 1000) if message.timestamp else 0,
        key=message.key,
        value=message.value,
        headers=headers,
    )


def _origin_headers(record: InboundRecord) -> Headers:
    return [
        (H_TOPIC, record.topic.encode()),
        (H_PARTITION, str(record.partition).encode()),
        (H_OFFSET, str(record.offset).encode()),
        (H_TIMESTAMP, str(record.timestamp_ms).encode()),
    ]


def _original(canonical: CanonicalRecord, headers: Headers) -> InboundRecord:
    """The Fachverfahren's record as it was first read, rebuilt from the canonical record and its headers."""
    return InboundRecord(
        topic=_header(headers, H_TOPIC) or "",
        partition=int(_header(headers, H_PARTITION) or -1),
        offset=int(_header(headers, H_OFFSET) or -1),
        timestamp_ms=int(_header(headers, H_TIMESTAMP) or 0),
        key=canonical.original_key,
        value=canonical.original_value,
        headers=tuple((k, v) for k, v in headers if k not in _INTERNAL_HEADERS),
    )


def outbox_headers(event: StatusEvent, rendered: RenderedMessage, headers: Headers, source: str) -> Headers:
    """The outbox record's headers: what delivery and the portal adapter need without parsing the XML."""
    out: Headers = [
        (H_NACHRICHTEN_UUID, rendered.nachrichten_uuid.encode()),
        (H_CE_SOURCE, event.source.encode()),
        (H_CE_ID, event.event_id.encode()),
        (H_STATUS, event.status.encode()),
        (H_SEQUENCE, str(rendered.sequence).encode()),
        (H_STATUS_TIME, event.status_time.isoformat().encode()),
        (H_SOURCE, source.encode()),
    ]
    traceparent = _header(headers, H_TRACEPARENT)
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
        traceparent=_header(list(message.headers or ()), H_TRACEPARENT),
        stage="lifecycle",
        **fields,
    )


def _header(headers: Headers, name: str) -> str | None:
    for key, value in headers:
        if key == name:
            return value.decode("utf-8", "replace") if value is not None else None
    return None


def _internal(error: Exception) -> RueckkanalError:
    return RueckkanalError(f"unexpected {type(error).__name__} while decoding", reason=Reason.INTERNAL_ERROR)
