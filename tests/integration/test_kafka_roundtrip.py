"""The broker the suite runs against is a real Kafka that keeps order per partition and carries headers."""

from __future__ import annotations

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic


async def test_produce_and_consume_keeps_order_keys_and_headers(kafka_bootstrap: str, unique: str) -> None:
    topic = f"roundtrip.{unique}"
    admin = AIOKafkaAdminClient(bootstrap_servers=kafka_bootstrap)
    await admin.start()
    try:
        await admin.create_topics([NewTopic(topic, num_partitions=3, replication_factor=1)])
    finally:
        await admin.close()

    sent = [(f"hundesteuer/{i % 7}".encode(), f"status-{i}".encode()) for i in range(60)]
    producer = AIOKafkaProducer(bootstrap_servers=kafka_bootstrap, acks="all", enable_idempotence=True)
    await producer.start()
    try:
        for key, value in sent:
            await producer.send_and_wait(topic, value, key=key, headers=[("ce_id", value)])
    finally:
        await producer.stop()

    consumer = AIOKafkaConsumer(
        topic, bootstrap_servers=kafka_bootstrap, group_id=f"g.{unique}", auto_offset_reset="earliest"
    )
    await consumer.start()
    received = []
    try:
        while len(received) < len(sent):
            batch = await consumer.getmany(timeout_ms=10_000)
            assert batch, f"broker delivered {len(received)} of {len(sent)} records, then nothing"
            for records in batch.values():
                received.extend(records)
    finally:
        await consumer.stop()

    assert sorted((r.key, r.value) for r in received) == sorted(sent)
    for record in received:
        assert dict(record.headers)["ce_id"] == record.value
    for key in {k for k, _ in sent}:
        in_order = [r.value for r in sorted(received, key=lambda r: r.offset) if r.key == key]
        assert in_order == [v for k, v in sent if k == key]
