"""The ingest step as a pure function: (record, state) → outcome, without faust, Kafka or a Table.

Each test builds records as a Fachverfahren or our own reroute would write them and checks the outcome's kind and
the record it carries; the shell's writing and acknowledging is tested in test_ingest_paths.py.
"""

from __future__ import annotations

import pytest

from adapters.inbound.base import InboundRecord
from adapters.inbound.config import load_fachverfahren
from rueckkanal.errors import Reason, RenderError, RueckkanalError
from rueckkanal.lifecycle import VorgangState
from rueckkanal.settings import Settings
from rueckkanal.xoev import MessageRenderer
from streams.headers import header
from streams.ingest_step import DeadLettered, Duplicate, IngestStep, Outboxed, Outcome, Rerouted
from streams.partitioner import vorgang_partition
from tests.support.events import hundesteuer_events
from tests.unit.factories import FACHVERFAHREN_DIR

PARTITIONS = 4
EVENTS, OUTBOX, DLQ = "rk.events", "rk.outbox", "rk.dlq"


@pytest.fixture(scope="module")
def step() -> IngestStep:
    fachverfahren = load_fachverfahren(FACHVERFAHREN_DIR)
    s = IngestStep(
        fachverfahren,
        MessageRenderer(Settings().xoev),
        events_topic=EVENTS,
        outbox_topic=OUTBOX,
        dlq_topic=DLQ,
        partitions=PARTITIONS,
        record_limit=1_000_000,
    )
    return s


def hundesteuer(step: IngestStep) -> str:
    return next(t for t, fv in step.sources.items() if fv.name == "hundesteuer")


def source_records(step: IngestStep, run: str, steps: int = 2, *, on_partition: bool = True) -> list[InboundRecord]:
    topic = hundesteuer(step)
    out = []
    for offset, e in enumerate(hundesteuer_events(run, vorgaenge=1, steps=steps)):
        key, value, headers = e.record
        partition = vorgang_partition(e.vorgang_id, PARTITIONS) if on_partition else PARTITIONS  # never its own
        out.append(InboundRecord(topic, partition, offset, 1, key, value, tuple(headers)))
    return out


def run(step: IngestStep, records: list[InboundRecord]) -> list[Outcome]:
    """Feed records in order, each seeing the state the previous ones left (as the shell does in a batch)."""
    state: dict[str, VorgangState] = {}
    outcomes = []
    for record in records:
        outcome = step.step(record, state.get)
        if isinstance(outcome, Outboxed):
            state[outcome.key] = outcome.state
        outcomes.append(outcome)
    return outcomes


@pytest.fixture
def in_place(step: IngestStep) -> IngestStep:
    step.co_partition({hundesteuer(step): PARTITIONS})
    step.held = frozenset(range(PARTITIONS))
    yield step
    step.in_place, step.held = frozenset(), frozenset()


def test_a_source_record_on_its_vorgang_s_partition_is_outboxed_in_order(in_place: IngestStep) -> None:
    outcomes = run(in_place, source_records(in_place, "inplace", steps=3))
    assert [type(o) for o in outcomes] == [Outboxed, Outboxed, Outboxed]
    assert [o.state.sequence for o in outcomes if isinstance(o, Outboxed)] == [1, 2, 3]
    first = outcomes[0]
    assert isinstance(first, Outboxed) and first.write.topic == OUTBOX and first.write.partition == first.partition
    assert header(first.write.headers, "rk.source") == "hundesteuer"


def test_the_same_event_again_is_a_duplicate_with_nothing_to_write(in_place: IngestStep) -> None:
    [record] = source_records(in_place, "dup", steps=1)
    outcomes = run(in_place, [record, record])
    assert isinstance(outcomes[1], Duplicate) and outcomes[1].reason is Reason.DUPLICATE_EVENT


def test_without_the_state_here_a_record_is_rerouted_to_its_vorgang_s_events_partition(step: IngestStep) -> None:
    record = source_records(step, "hop", steps=1, on_partition=False)[0]
    outcome = step.step(record, lambda key: None)
    assert isinstance(outcome, Rerouted) and not outcome.held_elsewhere
    assert outcome.write.topic == EVENTS and header(outcome.write.headers, "rk.original.offset") == "0"


def test_a_partition_held_by_another_worker_reroutes_and_says_so(in_place: IngestStep) -> None:
    in_place.held = frozenset()
    outcome = in_place.step(source_records(in_place, "elsewhere", steps=1)[0], lambda key: None)
    assert isinstance(outcome, Rerouted) and outcome.held_elsewhere


def test_a_rerouted_record_read_back_from_events_is_outboxed_and_its_dead_letter_is_the_original(
    step: IngestStep,
) -> None:
    source = source_records(step, "back", steps=1, on_partition=False)[0]
    hop = step.step(source, lambda key: None)
    assert isinstance(hop, Rerouted)
    w = hop.write
    on_events = InboundRecord(EVENTS, w.partition or 0, 9, 2, w.key, w.value, tuple(w.headers))
    outcome = step.step(on_events, lambda key: None)
    assert isinstance(outcome, Outboxed) and outcome.source == "hundesteuer"
    refused = outcome.write.instead
    assert refused is not None
    letter = refused()
    assert letter.write.value == source.value and header(letter.write.headers, "rk.original.topic") == source.topic


def test_forged_pipeline_headers_are_stripped_and_counted(in_place: IngestStep) -> None:
    record = source_records(in_place, "forged", steps=1)[0]
    forged = InboundRecord(
        record.topic, record.partition, 0, 1, record.key, record.value, (*record.headers, ("RK.source", b"x"))
    )
    outcome = in_place.step(forged, lambda key: None)
    assert isinstance(outcome, Outboxed) and outcome.stripped == 1


def test_a_header_name_that_is_not_utf8_dead_letters_the_record(in_place: IngestStep) -> None:
    record = source_records(in_place, "badname", steps=1)[0]
    name = b"x-\xff".decode("utf-8", "surrogateescape")
    bad = InboundRecord(record.topic, record.partition, 0, 1, record.key, record.value, (*record.headers, (name, b"")))
    outcome = in_place.step(bad, lambda key: None)
    assert isinstance(outcome, DeadLettered) and outcome.reason is Reason.INVALID_ENCODING
    assert all(k != name for k, _ in outcome.write.headers)


def test_an_undecodable_payload_is_dead_lettered_at_ingest(in_place: IngestStep) -> None:
    record = source_records(in_place, "junk", steps=1)[0]
    junk = InboundRecord(record.topic, record.partition, 0, 1, record.key, b"{", record.headers)
    outcome = in_place.step(junk, lambda key: None)
    assert isinstance(outcome, DeadLettered) and outcome.stage == "ingest" and outcome.write.value == b"{"


def test_a_record_on_events_that_is_not_canonical_is_dead_lettered_with_an_unknown_source(step: IngestStep) -> None:
    outcome = step.step(InboundRecord(EVENTS, 0, 0, 0, b"k", b"nope", (("rk.source", b"r4nd0m"),)), lambda k: None)
    assert isinstance(outcome, DeadLettered) and outcome.reason is Reason.SCHEMA_INVALID
    assert outcome.source == "unknown"


def test_an_event_older_than_the_state_is_dead_lettered_at_the_lifecycle(in_place: IngestStep) -> None:
    records = source_records(in_place, "late", steps=2)
    outcomes = run(in_place, [records[1], records[0]])  # the second status first, then the first one late
    late = outcomes[1]
    assert isinstance(late, DeadLettered) and late.stage == "lifecycle"
    assert late.write.value == records[0].value  # the original record, as the Fachverfahren sent it


def test_an_unreadable_state_dead_letters_the_event_and_the_partition_moves_on(in_place: IngestStep) -> None:
    def broken(key: str) -> VorgangState | None:
        raise RueckkanalError("state unreadable", reason=Reason.INTERNAL_ERROR)

    outcome = in_place.step(source_records(in_place, "state", steps=1)[0], broken)
    assert isinstance(outcome, DeadLettered) and outcome.stage == "lifecycle"


@pytest.mark.parametrize(
    ("error", "failure"),
    [
        (RenderError("xsd", reason=Reason.SCHEMA_INVALID), "rendered message failed the XSD"),
        (ZeroDivisionError(), "record processing failed unexpectedly"),
    ],
)
def test_a_render_failure_dead_letters_only_that_record(
    in_place: IngestStep, monkeypatch: pytest.MonkeyPatch, error: Exception, failure: str
) -> None:
    def render(*args: object) -> object:
        raise error

    monkeypatch.setattr(in_place.renderer, "render", render)
    outcome = in_place.step(source_records(in_place, "render", steps=1)[0], lambda key: None)
    assert isinstance(outcome, DeadLettered) and outcome.failure == failure


def test_an_adapter_bug_dead_letters_the_record_as_internal_error(
    in_place: IngestStep, monkeypatch: pytest.MonkeyPatch
) -> None:
    adapter = in_place.adapters[hundesteuer(in_place)]

    def boom(record: InboundRecord) -> object:
        raise KeyError("x")

    monkeypatch.setattr(adapter, "decode", boom)
    outcome = in_place.step(source_records(in_place, "adapter", steps=1)[0], lambda key: None)
    assert isinstance(outcome, DeadLettered) and outcome.reason is Reason.INTERNAL_ERROR
    assert outcome.failure == "adapter failed unexpectedly" and outcome.error_class == "KeyError"


@pytest.mark.parametrize("kind", ["outbox", "events"])
def test_a_record_over_the_limit_dead_letters_its_original_as_a_stub(
    step: IngestStep, in_place: IngestStep, kind: str
) -> None:
    limit = step.record_limit
    step.record_limit = 600
    try:
        if kind == "events":
            step.held = frozenset()
        record = source_records(step, "big", steps=1)[0]
        outcome = step.step(record, lambda key: None)
    finally:
        step.record_limit = limit
    assert isinstance(outcome, DeadLettered) and outcome.reason is Reason.PAYLOAD_TOO_LARGE


def test_a_dead_letter_over_the_limit_is_a_stub(step: IngestStep) -> None:
    record = InboundRecord(EVENTS, 0, 0, 0, b"k", b"x" * 5000, ())
    limit = step.record_limit
    step.record_limit = 1000
    try:
        outcome = step.step(record, lambda key: None)
    finally:
        step.record_limit = limit
    assert isinstance(outcome, DeadLettered) and outcome.stub and outcome.write.value == b""
