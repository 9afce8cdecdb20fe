"""Kafka's default key partitioner (murmur2, as in the Java client), remembering the answer for recent keys.

aiokafka computes murmur2 in pure Python, about 10 µs for a Vorgang key: 2–3 % of a worker's CPU at full load in
both stages. A Vorgang's key comes round again with each of its messages, so a bounded cache saves nearly all of
it. The mapping is exactly aiokafka's ``DefaultPartitioner``, which is what keeps a Vorgang on one partition no
matter which client wrote its records.
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
