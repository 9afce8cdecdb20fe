"""The delivery stage's contract (tests/contract/stage_contract.py) on the in-memory record log."""

from __future__ import annotations

from collections.abc import Sequence

import pytest

from streams.recordlog import MemoryBroker, MemoryLog, RecordLog
from tests.contract.stage_contract import PARTITIONS, DeliveryStageContract, LogHarness, Written


class MemoryHarness(LogHarness):
    outbox, dlq, receipts = "outbox", "dlq", "receipts"

    def __init__(self) -> None:
        self.broker = MemoryBroker(partitions=PARTITIONS)
        self.broker.topic(self.outbox)

    def log(self, group: str) -> RecordLog:
        return MemoryLog(self.broker, group)

    async def write(self, records: Sequence[tuple[bytes, bytes, list[tuple[str, bytes]]]]) -> None:
        for key, value, headers in records:
            self.broker.append(self.outbox, key, value, headers)

    async def read(self, topic: str) -> list[Written]:
        return [Written(r.key, r.value, r.headers) for r in self.broker.records(topic)]

    async def committed(self, group: str) -> dict[int, int]:
        return {tp.partition: offset for (g, tp), offset in self.broker.committed.items() if g == group}

    async def end_offsets(self) -> dict[int, int]:
        return {p: len(records) for p, records in enumerate(self.broker.topic(self.outbox))}


class TestDeliveryStageOnMemoryLog(DeliveryStageContract):
    @pytest.fixture
    def harness(self) -> LogHarness:
        return MemoryHarness()
