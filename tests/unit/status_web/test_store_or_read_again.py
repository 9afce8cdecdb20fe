"""A batch the database refuses or does not take in time is counted and read again from the committed offsets."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from aiokafka import TopicPartition
from prometheus_client import CollectorRegistry

from streams.status_web import consumer as consumer_module
from streams.status_web.consumer import store_or_read_again
from streams.status_web.metrics import StatusWebMetrics

COMMITTED = TopicPartition("rk.outbox", 0)
NEVER_COMMITTED = TopicPartition("rk.outbox", 1)


class SeekingConsumer:
    """The part of aiokafka's consumer the retry uses; it records where each partition is sent."""

    def __init__(self) -> None:
        self.positions: dict[TopicPartition, Any] = {}

    def assignment(self) -> set[TopicPartition]:
        return {COMMITTED, NEVER_COMMITTED}

    async def committed(self, tp: TopicPartition) -> int | None:
        return 41 if tp == COMMITTED else None

    def seek(self, tp: TopicPartition, offset: int) -> None:
        self.positions[tp] = offset

    async def seek_to_beginning(self, *tps: TopicPartition) -> None:
        for tp in tps:
            self.positions[tp] = "beginning"


@pytest.fixture(autouse=True)
def no_pause(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(consumer_module, "STORE_RETRY_PAUSE_S", 0)


def errors(metrics: StatusWebMetrics, reader: str) -> float:
    value = metrics.registry.get_sample_value("rueckkanal_status_web_store_errors_total", {"reader": reader})
    return value or 0.0


async def test_a_stored_batch_gives_its_result_and_moves_nothing() -> None:
    metrics, consumer = StatusWebMetrics(CollectorRegistry()), SeekingConsumer()

    async def store() -> str:
        return "applied"

    result = await store_or_read_again(
        consumer,  # type: ignore[arg-type]
        store,
        deadline_s=1,
        errors=metrics.store_errors.labels("outbox"),
        event="not stored",
    )
    assert result == (True, "applied")
    assert consumer.positions == {} and errors(metrics, "outbox") == 0


@pytest.mark.parametrize("trouble", ["refused", "too slow"])
async def test_a_refused_or_late_batch_is_counted_and_read_again_from_the_committed_offsets(trouble: str) -> None:
    metrics, consumer = StatusWebMetrics(CollectorRegistry()), SeekingConsumer()
    refusals: list[str] = []
    never = asyncio.Event()

    async def store() -> str:
        if trouble == "refused":
            raise ConnectionRefusedError("the database quotes 'Max Mustermann' here")
        await never.wait()  # a locked table: the statement waits
        return "too late"

    result = await store_or_read_again(
        consumer,  # type: ignore[arg-type]
        store,
        deadline_s=0.05,
        errors=metrics.store_errors.labels("delivery_log"),
        event="not stored",
        refused=lambda: refusals.append(trouble),
    )
    assert result == (False, None)
    assert consumer.positions == {COMMITTED: 41, NEVER_COMMITTED: "beginning"}
    assert errors(metrics, "delivery_log") == 1 and errors(metrics, "outbox") == 0
    assert refusals == [trouble]


async def test_the_refusal_is_logged_by_class_and_place_without_the_message(capsys: pytest.CaptureFixture[str]) -> None:
    metrics = StatusWebMetrics(CollectorRegistry())

    async def store() -> None:
        raise ValueError("Musterweg 1")

    await store_or_read_again(
        SeekingConsumer(),  # type: ignore[arg-type]
        store,
        deadline_s=1,
        errors=metrics.store_errors.labels("outbox"),
        event="not stored",
    )
    out = capsys.readouterr()
    logged = out.out + out.err
    assert "ValueError" in logged and "test_store_or_read_again.py" in logged
    assert "Musterweg" not in logged
