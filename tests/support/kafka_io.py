"""Small aiokafka helpers for tests: create topics, produce, read a topic to its end, wait for a group to catch up.

Waiting is done by asking the broker (committed offsets against end offsets) with a deadline, never by sleeping
for a guessed time.
"""

from __future__ import annotations

import asyncio
import sys
import time
import zlib
from collections.abc import Callable, Iterable, Sequence

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.structs import ConsumerRecord, RecordMetadata

Record = tuple[bytes | None, bytes | None, list[tuple[str, bytes]]]
Partitioner = Callable[[bytes | None, list[int], list[int]], int]

POLL_INTERVAL = 0.25


async def create_topics(bootstrap: str, names: Iterable[str], partitions: int) -> None:
    """Topics that keep their records: a worker refuses a DLQ that expires dead letters early (streams/topics.py)."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        await admin.create_topics(
            [NewTopic(name, partitions, 1, topic_configs={"retention.ms": "-1"}) for name in names]
        )
    finally:
        await admin.close()


async def delete_topics_containing(bootstrap: str, marker: str) -> int:
    """Remove a run's topics (its unique marker is in every name) so a long-lived broker does not fill up."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        names = [name for name in await admin.list_topics() if marker in name]
        if names:
            await admin.delete_topics(names)
        return len(names)
    except Exception as error:  # cleaning up is a courtesy; a failure must not hide a result
        print(f"  (could not delete the run's topics: {type(error).__name__})", file=sys.stderr)
        return 0
    finally:
        await admin.close()


def crc32_partitioner(key: bytes | None, all_partitions: list[int], available: list[int]) -> int:
    """librdkafka's default for a keyed record (``consistent_random``: CRC32 of the key), as a Fachverfahren using
    confluent-kafka or kcat gets it: each key on one partition, but rarely where murmur2 would put it."""
    assert key is not None
    return all_partitions[zlib.crc32(key) % len(all_partitions)]


async def produce(
    bootstrap: str, topic: str, records: Sequence[Record], partitioner: Partitioner | None = None
) -> list[RecordMetadata]:
    """Write the records in order and return where each landed (partition, offset).

    ``partitioner`` replaces Kafka's default one (murmur2 of the key), as another client library's would.
    """
    options = {"partitioner": partitioner} if partitioner is not None else {}
    producer = AIOKafkaProducer(
        bootstrap_servers=bootstrap,
        acks="all",
        enable_idempotence=True,
        linger_ms=5,
        max_request_size=4 * 1024 * 1024,
        **options,
    )
    await producer.start()
    try:
        futures = [await producer.send(topic, value, key=key, headers=headers) for key, value, headers in records]
        return [await future for future in futures]
    finally:
        await producer.stop()


async def partitions_of(bootstrap: str, topics: Iterable[str]) -> list[TopicPartition]:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        described = await admin.describe_topics(list(topics))
    finally:
        await admin.close()
    return [TopicPartition(t["topic"], p["partition"]) for t in described for p in t["partitions"]]


async def end_offsets(bootstrap: str, topics: Iterable[str]) -> dict[TopicPartition, int]:
    partitions = await partitions_of(bootstrap, topics)
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap)
    await consumer.start()
    try:
        return dict(await consumer.end_offsets(partitions))
    finally:
        await consumer.stop()


async def read_all(bootstrap: str, topic: str) -> list[ConsumerRecord[bytes, bytes]]:
    """Every record of a topic up to its end offsets now, in partition and offset order."""
    ends = {tp: end for tp, end in (await end_offsets(bootstrap, [topic])).items() if end > 0}
    if not ends:
        return []
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    await consumer.start()
    records: list[ConsumerRecord[bytes, bytes]] = []
    try:
        consumer.assign(list(ends))
        await consumer.seek_to_beginning(*ends)
        remaining = dict(ends)
        while remaining:
            batch = await consumer.getmany(*remaining, timeout_ms=10_000)
            if not batch:
                raise TimeoutError(f"{topic}: no records for 10s with {remaining} still to read")
            for tp, part in batch.items():
                records.extend(part)
                if part[-1].offset + 1 >= ends[tp]:
                    remaining.pop(tp, None)
                    consumer.pause(tp)
    finally:
        await consumer.stop()
    return sorted(records, key=lambda r: (r.partition, r.offset))


async def wait_until_caught_up(bootstrap: str, group: str, topics: Iterable[str], within_s: float = 120.0) -> None:
    """Block until the group has committed every offset that exists now on the given topics."""
    topics = list(topics)
    targets = {tp: end for tp, end in (await end_offsets(bootstrap, topics)).items() if end > 0}
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    deadline = time.monotonic() + within_s
    try:
        while True:
            committed = await admin.list_consumer_group_offsets(group)
            behind = {tp: end for tp, end in targets.items() if tp not in committed or committed[tp].offset < end}
            if not behind:
                return
            if time.monotonic() > deadline:
                raise TimeoutError(f"group {group} still behind after {within_s}s on {behind}")
            await asyncio.sleep(POLL_INTERVAL)  # polling the broker's answer, with a deadline
    finally:
        await admin.close()


async def committed_offsets(bootstrap: str, group: str) -> dict[TopicPartition, int]:
    """The offsets a consumer group has committed, by partition."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        return {tp: meta.offset for tp, meta in (await admin.list_consumer_group_offsets(group)).items()}
    finally:
        await admin.close()
