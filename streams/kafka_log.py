"""The record log on Kafka, with aiokafka: the shell of the delivery stage (and anything else that reads with
manual commits).

It translates aiokafka's errors into the seam's two (:mod:`streams.recordlog`): a record Kafka refuses for what it
is (:func:`streams.dlq.record_refused`) is :class:`RecordRefused`, any other failure of a produce or a commit is
:class:`LogUnavailable`. The consumer reads header keys that are not UTF-8 (:func:`streams.faust_engine.consumer`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from aiokafka import AIOKafkaProducer, ConsumerRebalanceListener
from aiokafka import TopicPartition as KafkaTopicPartition
from aiokafka.errors import KafkaError

from streams.dlq import record_refused
from streams.kafka_records import consumer as tolerant_consumer
from streams.partitioner import partition_for
from streams.recordlog import AssignmentListener, Headers, LogUnavailable, Record, RecordRefused, TopicPartition

# The longest the broker may hold a fetch for partitions without new data: aiokafka leaves partitions with buffered
# records out of the next fetch, and a record arriving on them waits for the parked one (aiokafka's default: 500 ms).
FETCH_MAX_WAIT_MS = 50


class _Listener(ConsumerRebalanceListener):  # type: ignore[misc]
    def __init__(self, listener: AssignmentListener) -> None:
        self.listener = listener

    async def on_partitions_revoked(self, revoked: set[KafkaTopicPartition]) -> None:
        await self.listener.on_partitions_revoked({TopicPartition(*tp) for tp in revoked})

    async def on_partitions_assigned(self, assigned: set[KafkaTopicPartition]) -> None:
        await self.listener.on_partitions_assigned({TopicPartition(*tp) for tp in assigned})


class KafkaLog:
    """One consumer-group member and one idempotent producer (acks=all) on the Kafka cluster of ``options``.

    aiokafka's clients bind to the running loop, so they are made in :meth:`start`.
    """

    def __init__(
        self, options: Mapping[str, Any], *, group: str, max_poll_records: int = 1000, max_request_size: int = 1_048_576
    ) -> None:
        self._options = dict(options)
        self.group = group
        self._max_poll_records = max_poll_records
        self._max_request_size = max_request_size
        self._topics: list[str] = []
        self._listener: AssignmentListener | None = None

    def subscribe(self, topics: Sequence[str], listener: AssignmentListener) -> None:
        self._topics = list(topics)
        self._listener = listener

    async def start(self) -> None:
        self.consumer = tolerant_consumer(
            **self._options,
            group_id=self.group,
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            max_poll_records=self._max_poll_records,
            isolation_level="read_committed",
            fetch_max_wait_ms=FETCH_MAX_WAIT_MS,
        )
        self.producer = AIOKafkaProducer(
            **self._options,
            acks="all",
            enable_idempotence=True,
            linger_ms=5,
            partitioner=partition_for,
            max_request_size=self._max_request_size,
        )
        await self.producer.start()
        await self.consumer.start()
        if self._listener is not None:
            self.consumer.subscribe(self._topics, listener=_Listener(self._listener))

    async def stop(self) -> None:
        await self.consumer.stop()
        await self.producer.stop()

    async def fetch(self, timeout_s: float, max_records: int) -> Mapping[TopicPartition, Sequence[Record]]:
        batch = await self.consumer.getmany(timeout_ms=int(timeout_s * 1000), max_records=max_records)
        return {TopicPartition(*tp): records for tp, records in batch.items()}

    async def produce(self, topic: str, key: bytes | None, value: bytes | None, headers: Headers) -> None:
        try:
            await self.producer.send_and_wait(topic, value, key=key, headers=list(headers))
        except Exception as error:
            if record_refused(error):
                raise RecordRefused(type(error).__name__) from error
            if isinstance(error, KafkaError):
                raise LogUnavailable(type(error).__name__) from error
            raise

    async def commit(self, offsets: Mapping[TopicPartition, int]) -> None:
        try:
            await self.consumer.commit({KafkaTopicPartition(*tp): offset for tp, offset in offsets.items()})
        except KafkaError as error:
            raise LogUnavailable(type(error).__name__) from error

    def assignment(self) -> set[TopicPartition]:
        return {TopicPartition(*tp) for tp in self.consumer.assignment()}

    def pause(self, *partitions: TopicPartition) -> None:
        self.consumer.pause(*(KafkaTopicPartition(*tp) for tp in partitions))

    def resume(self, *partitions: TopicPartition) -> None:
        self.consumer.resume(*(KafkaTopicPartition(*tp) for tp in partitions))

    def end_offset(self, tp: TopicPartition) -> int | None:
        end: int | None = self.consumer.highwater(KafkaTopicPartition(*tp))
        return end
