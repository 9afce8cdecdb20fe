"""Producers of other ecosystems, as Fachverfahren use them: librdkafka (confluent-kafka) and the official
CloudEvents Python SDK (``cloudevents.v1.kafka``: binary and structured mode)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any, Literal

import confluent_kafka
from cloudevents.v1.http import CloudEvent
from cloudevents.v1.kafka import to_binary, to_structured

from tests.support.events import ValidEvent

#: A record whose header keys may be any bytes (librdkafka writes them as they are, valid UTF-8 or not).
RawRecord = tuple[bytes | None, bytes | None, list[tuple[str | bytes, bytes]]]
Mode = Literal["binary", "structured"]


def cloudevent_of(event: ValidEvent) -> CloudEvent:
    """The SDK's event for one of our test events: same attributes and data, the Vorgang id as partition key."""
    _, value, headers = event.record
    have = {name: raw.decode() for name, raw in headers}
    attributes = {
        "id": have["ce_id"],
        "source": have["ce_source"],
        "type": have["ce_type"],
        "time": have["ce_time"],
        "datacontenttype": "application/json",
        "partitionkey": event.vorgang_id,
    }
    return CloudEvent(attributes, json.loads(value or b"{}"))


def sdk_record(event: CloudEvent, mode: Mode) -> RawRecord:
    """What ``cloudevents.kafka.to_binary``/``to_structured`` make of it, unchanged."""
    message = to_binary(event) if mode == "binary" else to_structured(event)
    key = message.key.encode() if isinstance(message.key, str) else message.key
    return key, message.value, list(message.headers.items())


def produce_librdkafka(
    bootstrap: str,
    topic: str,
    records: Sequence[RawRecord],
    partitioner: str = "consistent_random",
    **config: Any,
) -> list[tuple[int, int]]:
    """Write the records with librdkafka in order (idempotent, acks=all); return (partition, offset) of each.

    ``partitioner``: librdkafka's own default ``consistent_random`` (CRC32 of the key) or ``murmur2_random`` (the
    Java client's). Blocking: call it through ``asyncio.to_thread`` from a test's event loop.
    """
    producer = confluent_kafka.Producer(
        {
            "bootstrap.servers": bootstrap,
            "partitioner": partitioner,
            "enable.idempotence": True,
            "acks": "all",
            "linger.ms": 5,
            "message.max.bytes": 4 * 1024 * 1024,
            **config,
        }
    )
    landed: list[tuple[int, int] | None] = [None] * len(records)
    errors: list[str] = []

    def on_delivery(index: int) -> Any:
        def report(error: Any, message: Any) -> None:
            if error is not None:
                errors.append(str(error))
            else:
                landed[index] = (message.partition(), message.offset())

        return report

    for index, (key, value, headers) in enumerate(records):
        while True:
            try:
                producer.produce(topic, value, key, headers=headers, on_delivery=on_delivery(index))
                break
            except BufferError:
                producer.poll(0.1)  # the local queue is full: serve delivery reports, then try again
    remaining = producer.flush(120)
    assert remaining == 0 and not errors, f"librdkafka: {remaining} unsent, errors {errors[:3]}"
    assert all(where is not None for where in landed)
    return [where for where in landed if where is not None]
