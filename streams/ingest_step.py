"""The ingest step: one record and the Vorgang state it meets → an :data:`Outcome` carrying the records to write.

No awaits and no I/O: the shell (:mod:`streams.ingest`, on faust) reads the records, looks the state up, writes
what an outcome carries, waits for the acknowledgements, counts and logs. Every record ends in exactly one outcome:

``Outboxed``      lifecycle passed, rendered and XSD-valid: the outbox record and the Vorgang's new state
``Rerouted``      a source record whose Vorgang state is not here: the canonical record for ``rueckkanal.events``
``DeadLettered``  anything that cannot be processed: the original record with ``rk.*`` failure headers, or its
                  stub when it is over :attr:`IngestStep.record_limit` (streams/dlq.py)
``Duplicate``     the Vorgang has seen this event already: nothing to write

The rules it keeps (the paths and why they are so: docs/architecture.md):

* **Paths.** A source record is processed in place when its topic has the pipeline's partition count
  (:meth:`IngestStep.co_partition`, decided once at start), it sits on its Vorgang's partition, and this worker holds
  that partition of ``rueckkanal.events`` (:attr:`IngestStep.held`); otherwise it is rerouted to the Vorgang's
  events partition and processed by whichever worker reads it there.
* **Trust boundary.** Every ``rk.*`` header of a Fachverfahren's record is removed before anything reads it, and
  a header name that is not UTF-8 dead-letters the record (``invalid_encoding``). On ``rueckkanal.events`` the
  provenance headers are those our reroute wrote, and ``rk.source`` counts only if it names a configured
  Fachverfahren (else ``unknown``). A ``traceparent`` reaches the outbox only if it is valid W3C Trace Context.
* **One record costs only itself.** Any exception while processing a record dead-letters that record
  (``internal_error``); an outbox or events record over the record limit dead-letters its original
  (``payload_too_large``); a write Kafka refuses for what it is is replaced by :attr:`Write.instead`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

from pydantic import Base64Bytes, BaseModel, ConfigDict

from adapters.inbound.base import InboundAdapter, InboundRecord
from adapters.inbound.config import FachverfahrenConfig, build_adapter
from rueckkanal.errors import DecodeError, InputRejected, Reason, RenderError, RueckkanalError
from rueckkanal.lifecycle import Advanced, Policy, VorgangState, advance
from rueckkanal.model import StatusEvent
from rueckkanal.tracecontext import valid_traceparent
from rueckkanal.xoev import MessageRenderer, RenderedMessage
from streams.dlq import Origin, dead_letter_headers, estimated_size, stub_record
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
    is_pipeline_header,
)
from streams.partitioner import vorgang_partition

UNKNOWN_SOURCE = "unknown"  # the source label of a record on rueckkanal.events without a configured rk.source

StateOf = Callable[[str], VorgangState | None]  # the Vorgang's state as this batch left it; may raise RueckkanalError


class CanonicalRecord(BaseModel):
    """The value on ``rueckkanal.events``: the decoded event and the original record it came from.

    The original key and value travel along so that a lifecycle rejection can dead-letter the record exactly as
    the Fachverfahren sent it, and a replay can put it back on its source topic.
    """

    model_config = ConfigDict(frozen=True)

    event: StatusEvent
    original_key: Base64Bytes | None
    original_value: Base64Bytes


@dataclass(frozen=True, slots=True)
class Write:
    """One record to produce; ``instead`` gives the dead letter to write if Kafka refuses this one for what it is."""

    topic: str
    key: bytes | None
    value: bytes | None
    headers: Headers
    partition: int | None = None
    instead: Callable[[], DeadLettered] | None = None


@dataclass(frozen=True, slots=True)
class Outboxed:
    write: Write
    record: InboundRecord
    source: str
    key: str  # the Vorgang key
    state: VorgangState  # the Vorgang's state once the outbox has the record
    partition: int  # the Vorgang's partition: of events, outbox and the Table's changelog
    stripped: int = 0
    warning: Reason | None = None  # a lifecycle warning (lenient policy)
    traceparent_dropped: bool = False


@dataclass(frozen=True, slots=True)
class Rerouted:
    write: Write
    record: InboundRecord
    source: str
    stripped: int = 0
    held_elsewhere: bool = False  # in place by its topic and partition, but this worker lacks the state


@dataclass(frozen=True, slots=True)
class DeadLettered:
    write: Write
    record: InboundRecord
    source: str
    stage: str  # ingest (decoding) or lifecycle (guard, render)
    reason: Reason
    stub: bool = False  # the dead letter is a stub without the value
    stripped: int = 0
    failure: str | None = None  # what to log beside the outcome line: an unexpected failure, never its text
    error_class: str | None = None


@dataclass(frozen=True, slots=True)
class Duplicate:
    record: InboundRecord
    source: str
    key: str
    reason: Reason = Reason.DUPLICATE_EVENT
    stripped: int = 0


Outcome = Outboxed | Rerouted | DeadLettered | Duplicate


class IngestStep:
    """The ingest's decisions for one worker: its Fachverfahren, the pipeline's topics and partition count, the
    paths decided at start (:meth:`co_partition`) and the events partitions it holds now (:attr:`held`).

    ``record_limit`` is the largest record (bytes, as :func:`streams.dlq.estimated_size` counts it) it writes; a dead
    letter above it is written as a stub, an outbox or events record above it dead-letters its original record.
    """

    def __init__(
        self,
        fachverfahren: Sequence[FachverfahrenConfig],
        renderer: MessageRenderer,
        *,
        events_topic: str,
        outbox_topic: str,
        dlq_topic: str,
        partitions: int,
        record_limit: int,
        policy: Policy = Policy.STRICT,
    ) -> None:
        self.renderer = renderer
        self.policy = policy
        self.events_topic = events_topic
        self.outbox_topic = outbox_topic
        self.dlq_topic = dlq_topic
        self.partitions = partitions
        self.record_limit = record_limit
        self.sources: dict[str, FachverfahrenConfig] = {fv.topic: fv for fv in fachverfahren}
        self.source_names = frozenset(fv.name for fv in fachverfahren)
        self.adapters: dict[str, InboundAdapter] = {fv.topic: build_adapter(fv) for fv in fachverfahren}
        self.in_place: frozenset[str] = frozenset()
        self.held: frozenset[int] = frozenset()

    def co_partition(self, partition_counts: Mapping[str, int]) -> None:
        """Process in place the sources whose topic has the pipeline's partition count; decided once, at start."""
        self.in_place = frozenset(t for t in self.sources if partition_counts.get(t) == self.partitions)

    def source_of(self, record: InboundRecord) -> str:
        """The source label of a record: its topic's Fachverfahren, or on the events topic the configured
        Fachverfahren our reroute named in ``rk.source`` (else ``unknown``)."""
        if record.topic == self.events_topic:
            named = header(record.headers, H_SOURCE)
            return named if named in self.source_names else UNKNOWN_SOURCE
        fv = self.sources.get(record.topic)
        return fv.name if fv is not None else UNKNOWN_SOURCE

    # -- the step ------------------------------------------------------------------------------------------------

    def step(self, record: InboundRecord, state_of: StateOf) -> Outcome:
        """The outcome of one record; never raises (an unexpected exception dead-letters the record)."""
        try:
            if record.topic == self.events_topic:
                return self._from_events(record, state_of)
            return self._from_source(record, state_of)
        except Exception as error:
            from_events = record.topic == self.events_topic
            original = record if from_events else source_record(record)[0]
            failure = _internal(error, "processing the record")
            return self.dead_letter(
                original,
                failure,
                stage="lifecycle" if from_events else "ingest",
                source=self.source_of(record),
                failure="record processing failed unexpectedly",
                error_class=type(error).__name__,
            )

    def _from_source(self, raw: InboundRecord, state_of: StateOf) -> Outcome:
        source = self.sources[raw.topic].name
        record, stripped, unreadable = source_record(raw)
        if unreadable:
            error = DecodeError(f"{unreadable} header name(s) not valid UTF-8", reason=Reason.INVALID_ENCODING)
            dropped = ((H_ORIGINAL_HEADERS_DROPPED, str(unreadable).encode()),)
            return self.dead_letter(record, error, stage="ingest", source=source, stripped=stripped, extra=dropped)
        try:
            event = self.adapters[raw.topic].decode(record)
        except RueckkanalError as error:
            return self.dead_letter(record, error, stage="ingest", source=source, stripped=stripped)
        except Exception as error:  # an adapter bug must not stop the partition
            return self.dead_letter(
                record,
                _internal(error, "decoding"),
                stage="ingest",
                source=source,
                stripped=stripped,
                failure="adapter failed unexpectedly",
                error_class=type(error).__name__,
            )
        partition = vorgang_partition(event.vorgang_id, self.partitions)
        held_elsewhere = False
        if raw.partition == partition and raw.topic in self.in_place:
            if partition in self.held:
                return self._guard(event, record, source, partition, state_of, stripped, lambda: record)
            held_elsewhere = True
        return self._reroute(event, record, source, partition, stripped, held_elsewhere)

    def _reroute(
        self,
        event: StatusEvent,
        record: InboundRecord,
        source: str,
        partition: int,
        stripped: int,
        held_elsewhere: bool,
    ) -> Outcome:
        """The decoded event for the Vorgang's events partition, where the worker that holds its state reads it."""
        canonical = CanonicalRecord.model_construct(  # validated already; Base64Bytes would decode raw bytes
            event=event, original_key=record.key, original_value=record.value or b""
        )
        key = event.vorgang_key.encode()
        value = canonical.model_dump_json(by_alias=True).encode()
        headers = [*record.headers, *_origin_headers(record), (H_SOURCE, source.encode())]

        def too_large() -> DeadLettered:
            error = DecodeError(
                "decoded record over the record limit of the events topic", reason=Reason.PAYLOAD_TOO_LARGE
            )
            return self.dead_letter(record, error, stage="ingest", source=source, stripped=stripped)

        if estimated_size(key, value, headers) > self.record_limit:
            return too_large()
        write = Write(self.events_topic, key, value, headers, partition, too_large)
        return Rerouted(write, record, source, stripped, held_elsewhere)

    def _from_events(self, record: InboundRecord, state_of: StateOf) -> Outcome:
        source = self.source_of(record)
        try:
            canonical = CanonicalRecord.model_validate_json(record.value or b"")
        except Exception:  # only our own stage writes here; a bad record is a bug, routed
            error = InputRejected("record on the events topic is not a canonical event", reason=Reason.SCHEMA_INVALID)
            return self.dead_letter(record, error, stage="lifecycle", source=source)
        headers = list(record.headers)
        return self._guard(
            canonical.event,
            record,
            source,
            record.partition,
            state_of,
            0,
            lambda: _original(canonical, headers),
        )

    def _guard(
        self,
        event: StatusEvent,
        record: InboundRecord,
        source: str,
        partition: int,
        state_of: StateOf,
        stripped: int,
        original: Callable[[], InboundRecord],
    ) -> Outcome:
        """Lifecycle guard, render and XSD check, the outbox record. ``original`` rebuilds the Fachverfahren's record
        for a dead letter (from the canonical record, on the events path)."""
        key = event.vorgang_key

        def reject(error: RueckkanalError, failure: str | None = None) -> DeadLettered:
            return self.dead_letter(
                original(), error, stage="lifecycle", source=source, stripped=stripped, failure=failure
            )

        try:
            previous = state_of(key)
        except RueckkanalError as error:  # an unreadable Table value: park the event, keep the partition moving
            return reject(error)
        result = advance(previous, event, policy=self.policy)
        if not isinstance(result, Advanced):
            if result.reason is Reason.DUPLICATE_EVENT:
                return Duplicate(record, source, key, result.reason, stripped)
            return reject(result.to_error())
        try:
            rendered = self.renderer.render(event, result.state)
        except RenderError as error:
            return reject(error, failure="rendered message failed the XSD")
        raw_traceparent = record.header(H_TRACEPARENT)
        traceparent = valid_traceparent(raw_traceparent)
        headers = _outbox_headers(event, rendered, source, traceparent)
        value = rendered.xml
        key_bytes = key.encode()

        def too_large() -> DeadLettered:
            return reject(
                RenderError("rendered message over the record limit of the outbox", reason=Reason.PAYLOAD_TOO_LARGE)
            )

        if estimated_size(key_bytes, value, headers) > self.record_limit:
            return too_large()
        # outbox and events: one partition count and mapping (topics.py)
        write = Write(self.outbox_topic, key_bytes, value, headers, partition, too_large)
        return Outboxed(
            write,
            record,
            source,
            key,
            result.state,
            partition,
            stripped,
            result.warning,
            raw_traceparent is not None and traceparent is None,
        )

    def dead_letter(
        self,
        record: InboundRecord,
        error: RueckkanalError,
        *,
        stage: str,
        source: str,
        stripped: int = 0,
        extra: Sequence[tuple[str, bytes]] = (),
        failure: str | None = None,
        error_class: str | None = None,
    ) -> DeadLettered:
        """``record`` dead-lettered: a copy if it fits the record limit, else (or if Kafka refuses it) a stub."""
        origin = Origin(record.topic, record.partition, record.offset, record.timestamp_ms)
        original = list(record.headers)
        headers = [*dead_letter_headers(original, error, stage=stage, origin=origin, source=source), *extra]

        def stub() -> DeadLettered:
            key, value, stub_headers = stub_record(
                record.key,
                record.value,
                original,
                error,
                stage=stage,
                origin=origin,
                record_limit=self.record_limit,
                source=source,
            )
            write = Write(self.dlq_topic, key, value, stub_headers)
            return DeadLettered(write, record, source, stage, error.reason, True, stripped, failure, error_class)

        if estimated_size(record.key, record.value, headers) > self.record_limit:
            return stub()
        write = Write(self.dlq_topic, record.key, record.value, headers, None, stub)
        return DeadLettered(write, record, source, stage, error.reason, False, stripped, failure, error_class)


# -- records ---------------------------------------------------------------------------------------------------------


def source_record(record: InboundRecord) -> tuple[InboundRecord, int, int]:
    """A Fachverfahren's record without the headers it may not carry on, and how many of each kind were removed.

    Removed are the headers in the pipeline's namespace, and those whose name is not valid UTF-8 (the consumer reads
    such a name with ``surrogateescape``, streams/kafka_records.py): Kafka's protocol has no such names, and no
    producer of ours could write one again. Returns the record, the count of ``rk.*`` headers and the count of
    unreadable names.
    """
    kept: list[tuple[str, bytes]] = []
    stripped = unreadable = 0
    for name, value in record.headers:
        if not name.isascii() and not _utf8_name(name):
            unreadable += 1
        elif is_pipeline_header(name):
            stripped += 1
        else:
            kept.append((name, value))
    if not stripped and not unreadable:
        return record, 0, 0
    clean = InboundRecord(
        record.topic, record.partition, record.offset, record.timestamp_ms, record.key, record.value, tuple(kept)
    )
    return clean, stripped, unreadable


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
        headers=tuple((k, v) for k, v in headers if not is_pipeline_header(k)),
    )


def _or(value: int | None, default: int) -> int:
    return default if value is None else value


def outbox_headers(event: StatusEvent, rendered: RenderedMessage, headers: Headers, source: str) -> Headers:
    """The outbox record's headers: what delivery and the portal adapters need without parsing the XML.

    The Fachverfahren's ``traceparent`` (in ``headers``) is passed on only if it is valid W3C Trace Context.
    """
    return _outbox_headers(event, rendered, source, valid_traceparent(header_bytes(headers, H_TRACEPARENT)))


def _outbox_headers(event: StatusEvent, rendered: RenderedMessage, source: str, traceparent: str | None) -> Headers:
    """The outbox headers with an already validated ``traceparent``."""
    out: Headers = [
        (H_NACHRICHTEN_UUID, rendered.nachrichten_uuid.encode()),
        (H_CE_SOURCE, event.source.encode()),
        (H_CE_ID, event.event_id.encode()),
        (H_STATUS, event.status.encode()),
        (H_SEQUENCE, str(rendered.sequence).encode()),
        (H_STATUS_TIME, event.status_time.isoformat().encode()),
        (H_SOURCE, source.encode()),
    ]
    if traceparent:
        out.append((H_TRACEPARENT, traceparent.encode()))
    return out


def _internal(error: Exception, doing: str) -> RueckkanalError:
    return RueckkanalError(f"unexpected {type(error).__name__} while {doing}", reason=Reason.INTERNAL_ERROR)
