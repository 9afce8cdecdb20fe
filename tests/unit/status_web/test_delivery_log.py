"""What status-web keeps of receipts and dead letters for the figures: only the fields named, only valid shapes."""

from __future__ import annotations

import asyncio
import json

from prometheus_client import CollectorRegistry

from rueckkanal.transparency import DeadLetterRecord, DeliveryRecord, completed_now, points_of
from streams.status_web.deliveries import DeliveryLogReader, dead_letter_record, receipt_record
from streams.status_web.metrics import StatusWebMetrics
from tests.contract.statusstore_contract import status

UUID = "6f1c1e8e-3b8e-5a0e-9c1d-2f4a8b7c6d5e"


def receipt(**fields: object) -> bytes:
    body = {
        "nachrichtenUUID": UUID,
        "vorgang": "urn:x|1",
        "status": "100",
        "portal": "amt24",
        "delivered_at": "2025-03-01T10:00:01.900+00:00",
    }
    body.update(fields)
    return json.dumps(body).encode()


def test_a_receipt_gives_its_target_and_whole_seconds() -> None:
    assert receipt_record(receipt(target="bundid")) == DeliveryRecord(UUID, "bundid", 1740823201)


def test_a_receipt_from_before_named_targets_counts_for_the_default() -> None:
    assert receipt_record(receipt()) == DeliveryRecord(UUID, "default", 1740823201)


def test_records_that_are_not_receipts_are_skipped() -> None:
    for value in (
        b"",
        b"[]",
        b"{",
        receipt(target="NOT A TARGET"),
        receipt(delivered_at="yesterday"),
        receipt(delivered_at="2025-03-01T10:00:00"),
        receipt(nachrichtenUUID=7),
    ):
        assert receipt_record(value) is None


def test_a_dead_letter_keeps_only_the_pipelines_headers() -> None:
    headers = [
        ("rk.error.stage", b"delivery"),
        ("rk.error.reason", b"portal_rejected"),
        ("rk.error.target", b"bundid"),
        ("rk.failed_at", b"2025-03-01T10:00:00.000+00:00"),
        ("rk.error.message", b"field x"),
    ]
    assert dead_letter_record(3, 17, headers) == DeadLetterRecord(
        3, 17, "delivery", "portal_rejected", "bundid", 1740823200
    )
    ingest = [h for h in headers if h[0] != "rk.error.target"]
    found = dead_letter_record(0, 1, ingest)
    assert found is not None and found.target == ""


def test_dead_letters_with_unknown_reasons_or_stages_are_skipped() -> None:
    base = {"rk.error.stage": b"delivery", "rk.error.reason": b"portal_rejected", "rk.failed_at": b"2025-03-01T10:00Z"}
    for name, value in (
        ("rk.error.reason", b"whatever"),
        ("rk.error.stage", b"x"),
        ("rk.failed_at", b"soon"),
        ("rk.error.target", b"Not/A/Target"),
    ):
        headers = {**base, name: value}
        assert dead_letter_record(0, 0, list(headers.items())) is None


def test_completed_now_counts_each_step_once() -> None:
    received = status("A", 1, "100")
    complete = status("A", 2, "220")
    corrected = status("A", 3, "220")
    first = completed_now(points_of([received]), points_of([received, complete]))
    assert first == {"eingang_vollstaendig": 60}
    assert completed_now(points_of([received, complete]), points_of([received, complete, corrected])) == {}


async def test_a_stopped_delivery_log_reader_is_a_problem_for_healthz_unless_it_was_stopped() -> None:
    reader = DeliveryLogReader(
        kafka_options={},
        receipts_topic="rk.receipts",
        dlq_topic="rk.dlq",
        group_id="rk.status-web.deliveries",
        store=None,  # type: ignore[arg-type]  # never reached: the reader's task is replaced below
        metrics=StatusWebMetrics(CollectorRegistry()),
        store_deadline_s=1,
    )
    assert reader.problem() is None  # not started

    async def crashed() -> None:
        raise RuntimeError("a bug in the reader")

    reader._task = asyncio.create_task(crashed())
    await asyncio.gather(reader._task, return_exceptions=True)
    assert reader.problem() == "the delivery log reader has stopped"
    reader._stopping.set()  # a reader stopped on purpose is not a problem
    assert reader.problem() is None
