"""The Kafka client as every stage of ours uses it: records whose header keys are not UTF-8 are read (one record
costs only itself), and faust's producer is idempotent with acks=all and the configured max_request_size."""

from __future__ import annotations

import struct
from pathlib import Path

import aiokafka.consumer.fetcher
import pytest
from aiokafka.consumer.fetcher import PartitionRecords
from aiokafka.record import memory_records
from aiokafka.record.default_records import _DefaultRecordBatchBuilderPy
from aiokafka.record.util import calc_crc32c
from aiokafka.structs import TopicPartition

from rueckkanal.settings import KafkaSettings, Settings
from streams import faust_engine
from streams.app import create_pipeline

TP = TopicPartition("fv.hundesteuer.status", 0)
PLACEHOLDER = b"KEY\x01"
NOT_UTF8 = b"\xffk\xfe\x80"
CRC_AT = struct.calcsize(">qiib")  # BaseOffset, Length, PartitionLeaderEpoch, Magic; then CRC over the rest


def _batch(base_offset: int, records: list[tuple[bytes, list[tuple[bytes, bytes | None]]]]) -> bytes:
    """One v2 record batch, as a broker returns it, with header keys of any bytes and a valid CRC."""
    builder = _DefaultRecordBatchBuilderPy(
        magic=2, compression_type=0, is_transactional=0, producer_id=-1, producer_epoch=-1, base_sequence=-1,
        batch_size=1 << 20,
    )  # fmt: skip
    raw_keys: list[bytes] = []
    for delta, (value, headers) in enumerate(records):
        named = []
        for key, header_value in headers:
            assert len(key) == len(PLACEHOLDER)
            raw_keys.append(key)
            named.append((PLACEHOLDER.decode(), header_value))
        builder.append(delta, timestamp=1_700_000_000_000, key=b"4711", value=value, headers=named)
    data = bytearray(builder.build())
    struct.pack_into(">q", data, 0, base_offset)
    for key in raw_keys:
        at = data.index(PLACEHOLDER)
        data[at : at + len(key)] = key
    struct.pack_into(">I", data, CRC_AT, calc_crc32c(bytes(data[CRC_AT + 4 :])))
    return bytes(data)


def _fetch(response: bytes) -> list[aiokafka.structs.ConsumerRecord[bytes, bytes]]:
    """What the consumer's fetcher makes of one partition's fetch response."""
    records = aiokafka.consumer.fetcher.MemoryRecords(response)
    return list(PartitionRecords(TP, records, [], 0, None, None, True, 0))


RESPONSE = _batch(0, [(b"first", [(b"ce_1", b"a")])]) + _batch(
    1,
    [
        (b"before", [(b"ce_2", b"b")]),
        (b"poison", [(NOT_UTF8, b"x"), (b"ce_3", None)]),
        (b"after", [(b"ce_4", b"c")]),
    ],
)  # two batches, as a librdkafka producer writes them: one record alone, then three with the poison in the middle


@pytest.mark.upstream_canary
def test_aiokafka_alone_stops_at_a_header_key_that_is_not_utf8(monkeypatch: pytest.MonkeyPatch) -> None:
    """The defect the reader removes: the C reader raises out of the fetch, and the fetch position stays put."""
    monkeypatch.setattr(aiokafka.consumer.fetcher, "MemoryRecords", memory_records.MemoryRecords)
    with pytest.raises(UnicodeDecodeError):
        _fetch(RESPONSE)


def test_every_record_is_read_and_the_bad_key_cannot_be_encoded_but_gives_back_its_bytes() -> None:
    records = _fetch(RESPONSE)
    assert [(r.offset, r.value) for r in records] == [(0, b"first"), (1, b"before"), (2, b"poison"), (3, b"after")]
    assert [r.headers for r in records if r.value != b"poison"] == [
        (("ce_1", b"a"),),
        (("ce_2", b"b"),),
        (("ce_4", b"c"),),
    ]
    (key, value), (next_key, next_value) = next(r for r in records if r.value == b"poison").headers
    with pytest.raises(UnicodeEncodeError):
        key.encode("utf-8")
    assert key.encode("utf-8", "surrogateescape") == NOT_UTF8
    assert (value, next_key, next_value) == (b"x", "ce_3", None)


def test_a_batch_whose_keys_are_utf8_is_read_by_aiokafka_s_own_reader() -> None:
    response = _batch(5, [(b"ok", [(b"ce_1", b"a")])])
    batch = aiokafka.consumer.fetcher.MemoryRecords(response).next_batch()
    assert type(next(iter(batch))) is type(next(iter(memory_records.MemoryRecords(response).next_batch())))
    assert [r.offset for r in _fetch(response)] == [5]


def test_a_corrupt_batch_still_fails_as_corrupt() -> None:
    response = bytearray(_batch(0, [(b"ok", [(b"ce_1", b"a")])]))
    response[-3] ^= 0xFF  # a flipped byte: the CRC no longer matches
    with pytest.raises(aiokafka.errors.CorruptRecordException):
        _fetch(bytes(response))


async def test_faust_s_producer_is_idempotent_with_acks_all_and_the_configured_request_size(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path, kafka=KafkaSettings(max_request_size=3 * 1024 * 1024))
    producer = create_pipeline(settings).app.producer
    assert isinstance(producer, faust_engine._Producer)
    client = producer._new_producer()
    try:
        assert client._txn_manager is not None  # aiokafka's idempotent producer state (producer id, sequences)
        assert client._txn_manager.transactional_id is None  # idempotent, not transactional
        assert client._sender._acks == -1
        assert client._max_request_size == 3 * 1024 * 1024
    finally:
        await client.stop()
