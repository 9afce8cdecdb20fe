"""Kafka's default key partitioner (murmur2, as in the Java client), remembering the answer for recent keys.

aiokafka computes murmur2 in pure Python; a Vorgang's key comes round again with each of its messages, so a
bounded cache answers nearly every call (figures: docs/benchmarks.md). The mapping is exactly aiokafka's
``DefaultPartitioner``, which is what keeps a Vorgang on one partition no matter which client wrote its records.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from functools import lru_cache

from aiokafka.partitioner import murmur2

RECENT_KEYS = 65_536


@lru_cache(maxsize=RECENT_KEYS)
def _index(key: bytes, partitions: int) -> int:
    hashed: int = murmur2(key)
    return (hashed & 0x7FFFFFFF) % partitions


def partition_for(key: bytes | None, all_partitions: Sequence[int], available: Sequence[int]) -> int:
    """The partition of ``key``; a record without a key goes to a random available partition."""
    if key is None:
        return random.choice(available or all_partitions)  # noqa: S311 - spreading load, not a secret
    return all_partitions[_index(key, len(all_partitions))]


def vorgang_partition(vorgang_id: str, partitions: int) -> int:
    """The partition of a Vorgang on events, outbox and the Table's changelog.

    It is where Kafka's default partitioner puts a record keyed by the Vorgang id, the key the event contract asks
    a Fachverfahren to use. A source topic with the pipeline's partition count therefore already holds each
    Vorgang on the partition of its state, and the ingest stage can process it in place (streams/ingest.py).
    """
    return _index(vorgang_id.encode(), partitions)
