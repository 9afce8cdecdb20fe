"""The cached partitioner maps keys exactly like aiokafka's (and the Java client's) default partitioner."""

from __future__ import annotations

from aiokafka.partitioner import DefaultPartitioner

from streams.partitioner import partition_for, vorgang_partition


def test_keys_land_where_the_default_partitioner_puts_them() -> None:
    default = DefaultPartitioner()
    for partitions in (1, 4, 12, 13):
        all_partitions = list(range(partitions))
        for n in range(2_000):
            key = f"urn:de:fv:hundesteuer|{n:06d}".encode()
            assert partition_for(key, all_partitions, all_partitions) == default(key, all_partitions, all_partitions)
            assert partition_for(key, all_partitions, []) == default(key, all_partitions, all_partitions)  # cached


def test_a_record_without_key_goes_to_an_available_partition() -> None:
    assert {partition_for(None, [0, 1, 2, 3], [2]) for _ in range(20)} == {2}
    assert partition_for(None, [0, 1, 2, 3], []) in {0, 1, 2, 3}


def test_a_vorgang_lives_where_the_default_partitioner_puts_its_id() -> None:
    default = DefaultPartitioner()
    for partitions in (1, 4, 12):
        all_partitions = list(range(partitions))
        for vorgang_id in ("4711", "HST-2024-00017", "Kfz-Ä-1"):
            expected = default(vorgang_id.encode(), all_partitions, all_partitions)
            assert vorgang_partition(vorgang_id, partitions) == expected
