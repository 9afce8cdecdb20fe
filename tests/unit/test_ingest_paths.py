"""Which path a source record takes through the ingest stage: in place, or the hop through rueckkanal.events.

The stage runs against a faust app that is never started: the producer is replaced by a recorder, the consumer's
assignment by the partitions a test gives.
"""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from aiokafka.errors import (
    CorruptRecordException,
    KafkaConnectionError,
    KafkaTimeoutError,
    MessageSizeTooLargeError,
    RecordListTooLargeError,
    TopicAuthorizationFailedError,
)
from faust.exceptions import ProducerSendError
from faust.types import TP
from prometheus_client import CollectorRegistry

from adapters.inbound.config import load_fachverfahren
from rueckkanal.metrics import Metrics
from rueckkanal.settings import KafkaSettings, Settings, StateSettings, TopicSettings
from rueckkanal.xoev import MessageRenderer
from streams import ingest
from streams.app import create_pipeline
from streams.ingest import IngestStage
from streams.partitioner import vorgang_partition
from tests.support.events import hundesteuer_events
from tests.unit.factories import FACHVERFAHREN_DIR

PARTITIONS = 6


@dataclass
class _Message:
    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None
    headers: list[tuple[str, bytes]]
    timestamp: float = 0.0


@dataclass
class _Event:
    message: _Message


@dataclass
class _Ack:
    """The broker's acknowledgement as the stage reads it (aiokafka's ``RecordMetadata``)."""

    offset: int


def _stage(tmp_path: Path) -> IngestStage:
    settings = Settings(
        data_dir=tmp_path, topics=TopicSettings(partitions=PARTITIONS), state=StateSettings(store="memory")
    )
    fachverfahren = load_fachverfahren(FACHVERFAHREN_DIR)
    return IngestStage(
        create_pipeline(settings), fachverfahren, MessageRenderer(settings.xoev), Metrics(CollectorRegistry())
    )


def _writes(stage: IngestStage, monkeypatch: pytest.MonkeyPatch, held: set[int]) -> list[tuple[str, int | None]]:
    """Record every produce as (topic, partition); the worker holds ``held`` partitions of rueckkanal.events."""
    written: list[tuple[str, int | None]] = []

    async def send(topic: Any, *, key: Any, value: Any, headers: Any, partition: int | None = None) -> Any:
        written.append((topic.get_topic_name(), partition))
        done: asyncio.Future[_Ack] = asyncio.get_running_loop().create_future()
        done.set_result(_Ack(len(written)))
        return done

    assignment = {TP(stage.events_topic, p) for p in held}
    monkeypatch.setattr(stage, "_send", send)
    monkeypatch.setattr(stage.pipeline.app.consumer, "assignment", lambda: assignment)
    return written


def _on_its_partition(stage: IngestStage, unique: str) -> list[_Event]:
    """The first event of 12 Vorgänge, each on its Vorgang's partition of the hundesteuer topic."""
    topic = next(t for t, fv in stage.sources.items() if fv.name == "hundesteuer")
    events = hundesteuer_events(unique, vorgaenge=12, steps=1)
    return [
        _Event(_Message(topic, vorgang_partition(e.vorgang_id, PARTITIONS), i, *e.record)) for i, e in enumerate(events)
    ]


def test_only_sources_with_the_pipeline_s_partition_count_are_processed_in_place(tmp_path: Path) -> None:
    stage = _stage(tmp_path)
    topic = {fv.name: fv.topic for fv in stage.sources.values()}
    assert stage.in_place == frozenset()  # before the start-up decision, every record takes the hop

    # gewerberegister's topic is not on the broker (yet): it is not co-partitioned either
    stage.co_partition({topic["hundesteuer"]: PARTITIONS, topic["bewohnerparken"]: 3})

    assert stage.in_place == {topic["hundesteuer"]}


async def test_a_record_whose_state_another_worker_holds_takes_the_hop(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Workers subscribed to different source topics (a rollout adding a Fachverfahren) break faust's
    co-partitioning for those topics: this worker may read a source partition whose Vorgang state it lacks."""
    stage = _stage(tmp_path)
    stage.co_partition(dict.fromkeys(stage.source_topics, PARTITIONS))
    held = {0, 1, 2}
    written = _writes(stage, monkeypatch, held)
    batch = _on_its_partition(stage, "held")

    await stage._batch(batch)

    for event in batch:
        p = event.message.partition
        here = [(stage.pipeline.topics.outbox.get_topic_name(), p), (stage.table.changelog_topic.get_topic_name(), p)]
        hop = [(stage.events_topic, p)]
        expected = here if p in held else hop
        assert all(w in written for w in expected), (p, written)
    assert {p for t, p in written if t == stage.events_topic} == {e.message.partition for e in batch} - held
    assert {e.message.partition for e in batch} - held  # the batch had records of both kinds


# -- the trust boundary, a record only costs itself ----------------------------------------------------------------

FORGED = [("rk.original.partition", b"x"), ("RK.Original.Topic", b"rueckkanal.outbox"), ("rk.source", b"r4nd0m")]
TERMINAL = "410"


@dataclass
class _Written:
    topic: str
    key: bytes | None
    value: bytes | None
    headers: list[tuple[str, bytes]]
    partition: int | None

    def header(self, name: str) -> list[bytes]:
        return [v for k, v in self.headers if k.lower() == name.lower()]


Refusal = Callable[[_Written], BaseException | None]


def _producer(
    stage: IngestStage,
    monkeypatch: pytest.MonkeyPatch,
    held: set[int],
    *,
    at_send: Refusal = lambda w: None,
    at_ack: Refusal = lambda w: None,
) -> list[_Written]:
    """A recorded producer: ``at_send`` raises from send(), ``at_ack`` fails the future, as aiokafka does.

    The list returned holds the writes the "broker" acknowledged.
    """
    written: list[_Written] = []

    async def send(topic: Any, *, key: Any, value: Any, headers: Any, partition: int | None = None) -> Any:
        write = _Written(topic.get_topic_name(), key, value, list(headers), partition)
        error = at_send(write)
        if error is not None:
            raise error
        done: asyncio.Future[_Ack] = asyncio.get_running_loop().create_future()
        later = at_ack(write)
        if later is None:
            written.append(write)
            done.set_result(_Ack(len(written)))
        else:
            done.set_exception(later)
        return done

    assignment = {TP(stage.events_topic, p) for p in held}
    monkeypatch.setattr(stage, "_send", send)
    monkeypatch.setattr(stage.pipeline.app.consumer, "assignment", lambda: assignment)
    return written


def _in_place(tmp_path: Path) -> IngestStage:
    stage = _stage(tmp_path)
    stage.co_partition(dict.fromkeys(stage.source_topics, PARTITIONS))
    return stage


def _hundesteuer(stage: IngestStage) -> str:
    return next(t for t, fv in stage.sources.items() if fv.name == "hundesteuer")


def _through_terminal_then_late(stage: IngestStage, unique: str, extra: list[tuple[str, bytes]]) -> list[_Event]:
    """One Vorgang's events up to the terminal 410, then a 200 the lifecycle guard refuses (carrying ``extra``)."""
    lifecycle = hundesteuer_events(unique, vorgaenge=1)
    upto = lifecycle[: next(i for i, e in enumerate(lifecycle) if e.status == TERMINAL) + 1]
    key, value, headers = upto[-1].record
    assert value is not None
    late_value = value.replace(f'"status": "{TERMINAL}"'.encode(), b'"status": "200"')
    late_headers = [(k, v + b"-late" if k == "ce_id" else v) for k, v in headers] + extra
    topic = _hundesteuer(stage)
    partition = vorgang_partition(upto[0].vorgang_id, PARTITIONS)
    records = [e.record for e in upto] + [(key, late_value, late_headers)]
    return [_Event(_Message(topic, partition, 100 + i, *r, timestamp=1700000000.5)) for i, r in enumerate(records)]


def _dead_letters(stage: IngestStage, written: list[_Written]) -> list[_Written]:
    return [w for w in written if w.topic == stage.pipeline.topics.dlq.get_topic_name()]


def _sample(ingest_stage: IngestStage, name: str, **labels: str) -> float:
    return ingest_stage.metrics.registry.get_sample_value(name, labels) or 0.0


@pytest.mark.parametrize("path", ["in place", "rerouted"])
async def test_forged_pipeline_headers_never_decide_provenance(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, path: str
) -> None:
    stage = _in_place(tmp_path)
    batch = _through_terminal_then_late(stage, "forged", FORGED)
    partition = batch[0].message.partition
    written = _producer(stage, monkeypatch, {partition} if path == "in place" else set())

    await stage._batch(batch)
    if path == "rerouted":  # the hop: our own records on rueckkanal.events, read back by the state's owner
        hop = [w for w in written if w.topic == stage.events_topic]
        assert len(hop) == len(batch)
        late = hop[-1]
        assert [late.header(h) for h in ("rk.original.partition", "rk.original.topic", "rk.source")] == [
            [str(partition).encode()],
            [_hundesteuer(stage).encode()],
            [b"hundesteuer"],
        ]
        again = [
            _Event(_Message(stage.events_topic, partition, i, w.key, w.value, w.headers)) for i, w in enumerate(hop)
        ]
        written = _producer(stage, monkeypatch, {partition})
        await stage._batch(again)

    [letter] = _dead_letters(stage, written)
    assert letter.header("rk.error.reason") == [b"illegal_transition"]
    assert letter.header("rk.original.topic") == [_hundesteuer(stage).encode()]
    assert letter.header("rk.original.partition") == [str(partition).encode()]
    assert letter.header("rk.original.offset") == [str(batch[-1].message.offset).encode()]
    assert letter.header("rk.original.timestamp") == [b"1700000000500"]
    assert letter.header("rk.source") == [b"hundesteuer"]
    assert b"r4nd0m" not in b"".join(v for _, v in letter.headers)
    assert letter.value == batch[-1].message.value
    outbox = [w for w in written if w.topic == stage.pipeline.topics.outbox.get_topic_name()]
    assert len(outbox) == len(batch) - 1
    assert all(w.header("rk.source") == [b"hundesteuer"] for w in outbox)
    assert _sample(stage, "rueckkanal_inbound_pipeline_headers_stripped_total", source="hundesteuer") == len(FORGED)
    assert _sample(stage, "rueckkanal_events_rejected_total", source="hundesteuer", reason="illegal_transition") == 1


async def test_a_record_on_the_events_topic_with_garbage_provenance_costs_only_itself(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Only our reroute writes rueckkanal.events; should anything else, its headers are read without trust."""
    stage = _in_place(tmp_path)
    batch = _through_terminal_then_late(stage, "garbage", [])
    partition = batch[0].message.partition
    hop = _producer(stage, monkeypatch, set())
    await stage._batch(batch)
    events = [w for w in hop if w.topic == stage.events_topic]
    broken = [("rk.original.partition", b"x"), ("rk.original.offset", b"\xff\xfe"), ("rk.source", b"r4nd0m")]
    events[-1].headers = [(k, v) for k, v in events[-1].headers if k not in ("rk.source",)] + broken
    written = _producer(stage, monkeypatch, {partition})

    await stage._batch(
        [_Event(_Message(stage.events_topic, partition, i, w.key, w.value, w.headers)) for i, w in enumerate(events)]
    )

    [letter] = _dead_letters(stage, written)
    assert letter.header("rk.original.partition") == [b"-1"]
    assert letter.header("rk.original.offset") == [b"-1"]
    assert letter.header("rk.source") == [b"unknown"]
    assert _sample(stage, "rueckkanal_events_rejected_total", source="unknown", reason="illegal_transition") == 1
    assert not any(b"r4nd0m" in v for w in written for _, v in w.headers)


async def test_an_unexpected_exception_dead_letters_that_record_only(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    stage = _in_place(tmp_path)
    batch = _on_its_partition(stage, "boom")
    written = _producer(stage, monkeypatch, set(range(PARTITIONS)))
    victim = batch[3].message
    render = stage.step.renderer.render

    def exploding(event: Any, state: Any) -> Any:
        if event.vorgang_id.encode() == victim.key:
            raise ValueError("invalid literal for int() with base 10: 'Erika Mustermann'")
        return render(event, state)

    monkeypatch.setattr(stage.step.renderer, "render", exploding)
    await stage._batch(batch)

    [letter] = _dead_letters(stage, written)
    assert letter.header("rk.error.reason") == [b"internal_error"]
    assert letter.header("rk.original.offset") == [str(victim.offset).encode()]
    assert b"Erika" not in b"".join(v for _, v in letter.headers)
    outbox = [w for w in written if w.topic == stage.pipeline.topics.outbox.get_topic_name()]
    assert len(outbox) == len(batch) - 1


def _junk(stage: IngestStage, size: int, headers: list[tuple[str, bytes]]) -> _Event:
    """A record no adapter accepts: not JSON, ``size`` bytes."""
    return _Event(_Message(_hundesteuer(stage), 2, 41, b"k", b"\x01" * size, headers))


async def test_a_dead_letter_over_the_record_limit_is_a_stub(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    stage = _in_place(tmp_path)
    stage.record_limit = 100_000
    big = _junk(stage, 150_000, [("ce_id", b"1"), ("x-huge", b"h" * 60_000)])
    written = _producer(stage, monkeypatch, set())

    await stage._batch([big])

    [stub] = _dead_letters(stage, written)
    assert stub.value == b""
    assert stub.key == b"k"
    assert stub.header("rk.error.reason") == [b"payload_too_large"]
    assert stub.header("rk.error.original_reason") == [b"missing_header"]  # no ce_* headers
    assert stub.header("rk.original.size") == [b"150000"]
    assert stub.header("rk.original.sha256") == [hashlib.sha256(b"\x01" * 150_000).hexdigest().encode()]
    assert stub.header("ce_id") == [b"1"]
    assert stub.header("x-huge") == []
    assert stub.header("rk.original.headers_dropped") == [b"1"]
    assert stub.header("rk.original.offset") == [b"41"]
    assert _sample(stage, "rueckkanal_dead_letter_stubs_total", stage="ingest") == 1


def test_the_record_limit_follows_the_producer_setting(tmp_path: Path) -> None:
    settings = Settings(
        data_dir=tmp_path, topics=TopicSettings(partitions=PARTITIONS), kafka=KafkaSettings(max_request_size=500_000)
    )
    stage = IngestStage(
        create_pipeline(settings),
        load_fachverfahren(FACHVERFAHREN_DIR),
        MessageRenderer(settings.xoev),
        Metrics(CollectorRegistry()),
    )
    assert 490_000 < stage.record_limit < 500_000


def _too_large_at_send(write: _Written) -> BaseException | None:
    """aiokafka's own max_request_size check, wrapped by faust as it does."""
    if write.value and len(write.value) > 50_000:
        try:
            raise MessageSizeTooLargeError("The message is too large")
        except MessageSizeTooLargeError as cause:
            error = ProducerSendError("Error while sending")
            error.__cause__ = cause
            return error
    return None


def _too_large_at_broker(write: _Written) -> BaseException | None:
    return RecordListTooLargeError() if write.value and len(write.value) > 50_000 else None


@pytest.mark.parametrize("refuse", ["at send", "at the broker"])
async def test_a_dead_letter_kafka_refuses_becomes_a_stub_and_the_batch_goes_on(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, refuse: str
) -> None:
    stage = _in_place(tmp_path)
    good = _on_its_partition(stage, "refused")
    batch = [*good[:3], _junk(stage, 60_000, []), *good[3:]]
    if refuse == "at send":
        written = _producer(stage, monkeypatch, set(range(PARTITIONS)), at_send=_too_large_at_send)
    else:
        written = _producer(stage, monkeypatch, set(range(PARTITIONS)), at_ack=_too_large_at_broker)

    await stage._batch(batch)

    [stub] = _dead_letters(stage, written)
    assert stub.value == b"" and stub.header("rk.original.size") == [b"60000"]
    assert stub.header("rk.original.offset") == [b"41"]
    outbox = [w for w in written if w.topic == stage.pipeline.topics.outbox.get_topic_name()]
    assert len(outbox) == len(good)


async def test_an_outbox_write_kafka_refuses_dead_letters_the_original(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    stage = _in_place(tmp_path)
    batch = _on_its_partition(stage, "outbox")
    victim = batch[5].message

    def refuse(write: _Written) -> BaseException | None:
        outbox = write.topic == stage.pipeline.topics.outbox.get_topic_name()
        return CorruptRecordException() if outbox and write.header("ce_id") == [victim.headers[1][1]] else None

    written = _producer(stage, monkeypatch, set(range(PARTITIONS)), at_ack=refuse)
    await stage._batch(batch)

    [letter] = _dead_letters(stage, written)
    assert letter.value == victim.value
    assert letter.header("rk.error.reason") == [b"payload_too_large"]
    assert letter.header("rk.original.offset") == [str(victim.offset).encode()]


@pytest.mark.parametrize(
    ("where", "error"),
    [("send", KafkaConnectionError()), ("ack", KafkaTimeoutError()), ("ack", TopicAuthorizationFailedError())],
)
async def test_a_failure_no_record_survives_stops_the_stage_without_acknowledging(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, where: str, error: BaseException
) -> None:
    stage = _in_place(tmp_path)
    batch = _on_its_partition(stage, "fatal")

    def fail(write: _Written) -> BaseException | None:
        return error

    written = _producer(
        stage, monkeypatch, set(range(PARTITIONS)), **{"at_send" if where == "send" else "at_ack": fail}
    )
    exits: list[int] = []

    def exit_(code: int) -> None:
        exits.append(code)
        raise SystemExit(code)

    monkeypatch.setattr(ingest.os, "_exit", exit_)
    with pytest.raises(SystemExit):
        await stage._guarded(stage._batch(batch))

    assert exits == [ingest.EX_KAFKA_UNAVAILABLE]
    assert _dead_letters(stage, written) == []  # not mistaken for one record's problem


@pytest.mark.parametrize(
    ("traceparent", "passed"),
    [
        (b"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01", True),
        (b"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01\r\nX-Evil: 1", False),
        (b"00-" + b"a" * 100_000, False),
    ],
)
async def test_only_a_valid_traceparent_reaches_the_outbox(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, traceparent: bytes, passed: bool
) -> None:
    stage = _in_place(tmp_path)
    [event] = _on_its_partition(stage, "trace")[:1]
    event.message.headers.append(("traceparent", traceparent))
    written = _producer(stage, monkeypatch, set(range(PARTITIONS)))

    await stage._batch([event])

    [outbox] = [w for w in written if w.topic == stage.pipeline.topics.outbox.get_topic_name()]
    assert outbox.header("traceparent") == ([traceparent] if passed else [])
    assert _sample(stage, "rueckkanal_traceparent_dropped_total", stage="ingest") == (0 if passed else 1)


async def test_a_header_name_that_is_not_utf8_dead_letters_the_record_without_that_header(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The consumer reads such a name with surrogateescape (streams/kafka_records.py); no producer can write it."""
    stage = _in_place(tmp_path)
    batch = _on_its_partition(stage, "badkey")
    victim = batch[2].message
    unreadable = b"x-\xff\xfe".decode("utf-8", "surrogateescape")
    victim.headers = [*victim.headers, (unreadable, b"v"), ("x-ok", b"1")]
    written = _producer(stage, monkeypatch, set(range(PARTITIONS)))

    await stage._batch(batch)

    [letter] = _dead_letters(stage, written)
    assert letter.header("rk.error.reason") == [b"invalid_encoding"]
    assert letter.header("rk.original.offset") == [str(victim.offset).encode()]
    assert letter.header("rk.original.headers_dropped") == [b"1"]
    assert letter.header("x-ok") == [b"1"]
    for name, _ in letter.headers:
        name.encode("utf-8")  # every name can be written again
    outbox = [w for w in written if w.topic == stage.pipeline.topics.outbox.get_topic_name()]
    assert len(outbox) == len(batch) - 1
