"""The delivery stage's contract (tests/contract/stage_contract.py) on the real broker, through ``KafkaLog``."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence

import pytest
from aiokafka.admin import AIOKafkaAdminClient

from streams.kafka_log import KafkaLog
from streams.recordlog import RecordLog
from tests.contract.stage_contract import PARTITIONS, DeliveryStageContract, LogHarness, Written
from tests.support.kafka_io import create_topics, end_offsets, produce, read_all


class KafkaHarness(LogHarness):
    def __init__(self, bootstrap: str, unique: str) -> None:
        self.bootstrap = bootstrap
        self.unique = unique
        self.outbox = f"stage-outbox-{unique}"
        self.dlq = f"stage-dlq-{unique}"
        self.receipts = f"stage-receipts-{unique}"

    def log(self, group: str) -> RecordLog:
        return KafkaLog({"bootstrap_servers": self.bootstrap}, group=f"{group}-{self.unique}")

    async def write(self, records: Sequence[tuple[bytes, bytes, list[tuple[str, bytes]]]]) -> None:
        await produce(self.bootstrap, self.outbox, list(records))

    async def read(self, topic: str) -> list[Written]:
        return [Written(r.key, r.value, list(r.headers)) for r in await read_all(self.bootstrap, topic)]

    async def committed(self, group: str) -> dict[int, int]:
        admin = AIOKafkaAdminClient(bootstrap_servers=self.bootstrap)
        await admin.start()
        try:
            offsets = await admin.list_consumer_group_offsets(f"{group}-{self.unique}")
        finally:
            await admin.close()
        return {tp.partition: meta.offset for tp, meta in offsets.items() if tp.topic == self.outbox}

    async def end_offsets(self) -> dict[int, int]:
        return {tp.partition: end for tp, end in (await end_offsets(self.bootstrap, [self.outbox])).items()}


class TestDeliveryStageOnKafka(DeliveryStageContract):
    @pytest.fixture
    async def harness(self, kafka_bootstrap: str, unique: str) -> AsyncIterator[LogHarness]:
        harness = KafkaHarness(kafka_bootstrap, unique)
        await create_topics(kafka_bootstrap, [harness.outbox, harness.dlq, harness.receipts], PARTITIONS)
        yield harness
