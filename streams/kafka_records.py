"""aiokafka's record reader, made to read header keys that are not UTF-8; and the consumer that uses it.

Kafka's protocol says a header key is a UTF-8 string, but the broker does not
check it, and librdkafka producers write any bytes. aiokafka decodes every key strictly while parsing a record
batch: the C reader (``aiokafka/record/_crecords/default_records.pyx``, ``_read_msg``) raises ``UnicodeDecodeError``
out of ``getmany``, the Python one (``record/default_records.py``, ``_read_msg``) the same wrapped in
``CorruptRecordException``. The fetcher has already closed that partition's batch iterator and not moved its
position, so every later ``getmany`` fails on the same record: the partition, and faust's whole consumer, stopped
for good (faust ingest, the delivery dispatcher, ``dlq list``). ``install_record_reader`` gives the fetcher a
record reader that keeps the C reader for every batch and reads again, in Python, only a batch the C reader
cannot decode, with the key decoded as ``surrogateescape``: the record arrives, and its key is a ``str`` that
``key.encode("utf-8")`` refuses, which the ingest treats as ``invalid_encoding``, while
``key.encode("utf-8", "surrogateescape")`` gives back the exact bytes the producer wrote.
"""

from __future__ import annotations

from typing import Any

import aiokafka
import aiokafka.consumer.fetcher
import aiokafka.errors
from aiokafka.record import default_records, memory_records
from aiokafka.record.util import decode_varint


class _SurrogateKeysBatch(default_records._DefaultRecordBatchPy):  # type: ignore[misc]
    """aiokafka's Python batch reader, except that a header key is decoded with ``surrogateescape``."""

    _buffer: bytearray
    _pos: int

    def _read_msg(self, decode_varint: Any = decode_varint) -> Any:
        # The record layout as in aiokafka's reader: Length, Attributes, TimestampDelta, OffsetDelta, Key, Value,
        # Headers [HeaderKey (string), HeaderValue (nullable bytes)].
        buffer = self._buffer
        length, pos = decode_varint(buffer, self._pos)
        start = pos
        _, pos = decode_varint(buffer, pos)
        ts_delta, pos = decode_varint(buffer, pos)
        timestamp = (
            self.max_timestamp if self.timestamp_type == self.LOG_APPEND_TIME else self.first_timestamp + ts_delta
        )
        offset_delta, pos = decode_varint(buffer, pos)
        key, pos = _nullable_bytes(buffer, pos)
        value, pos = _nullable_bytes(buffer, pos)
        count, pos = decode_varint(buffer, pos)
        if count < 0:
            raise aiokafka.errors.CorruptRecordException(f"invalid number of record headers {count}")
        headers: list[tuple[str, bytes | None]] = []
        for _ in range(count):
            key_len, pos = decode_varint(buffer, pos)
            if key_len < 0:
                raise aiokafka.errors.CorruptRecordException(f"invalid negative header key size {key_len}")
            h_key = bytes(buffer[pos : pos + key_len]).decode("utf-8", "surrogateescape")
            h_value, pos = _nullable_bytes(buffer, pos + key_len)
            headers.append((h_key, h_value))
        if pos - start != length:
            raise aiokafka.errors.CorruptRecordException(f"record size {length}, read {pos - start}")
        self._pos = pos
        return default_records._DefaultRecordPy(
            self.base_offset + offset_delta, timestamp, self.timestamp_type, key, value, headers
        )


def _nullable_bytes(buffer: bytearray, pos: int) -> tuple[bytes | None, int]:
    size, pos = decode_varint(buffer, pos)
    if size < 0:
        return None, pos
    return bytes(buffer[pos : pos + size]), pos + size


def _undecodable_key(error: Exception) -> bool:
    """Whether a batch reader failed on a header key (C reader: the error itself; Python reader: its cause)."""
    return isinstance(error, UnicodeDecodeError) or isinstance(error.__cause__, UnicodeDecodeError)


class _HeaderTolerantBatch:
    """A v2 record batch read by aiokafka's own reader; read again with surrogate-escaped header keys, from the
    first record it could not decode on, only when a header key is not UTF-8."""

    def __init__(self, raw: memoryview, batch: Any) -> None:
        self._raw = raw
        self._batch = batch

    def __getattr__(self, name: str) -> Any:  # base_offset, next_offset, validate_crc, producer_id, ...
        return getattr(self._batch, name)

    def __next__(self) -> Any:  # what the fetcher uses for control records (no headers)
        return next(self._batch)

    def __iter__(self) -> Any:
        read = 0
        try:
            for record in self._batch:
                read += 1
                yield record
        except (UnicodeDecodeError, aiokafka.errors.CorruptRecordException) as error:
            if not _undecodable_key(error):
                raise
            for index, record in enumerate(_SurrogateKeysBatch(self._raw)):
                if index >= read:
                    yield record


class _RecordReader(memory_records._MemoryRecordsPy):  # type: ignore[misc]
    """aiokafka's split of a fetch response into record batches; each v2 batch read as ``_HeaderTolerantBatch``."""

    def next_batch(self, *args: Any, **kwargs: Any) -> Any:
        raw = self._next_slice
        batch = super().next_batch(*args, **kwargs)
        if raw is None or batch is None or batch.magic < 2:
            return batch
        return _HeaderTolerantBatch(raw, batch)


def install_record_reader() -> None:
    """Make every aiokafka consumer of this process read header keys that are not UTF-8 (module docstring).

    The fetcher looks up ``MemoryRecords`` in its module for each fetch response, so this covers consumers made
    before and after. Idempotent.
    """
    aiokafka.consumer.fetcher.MemoryRecords = _RecordReader


def consumer(*topics: str, **options: Any) -> aiokafka.AIOKafkaConsumer:
    """An ``AIOKafkaConsumer`` that reads records with header keys that are not UTF-8."""
    install_record_reader()
    return aiokafka.AIOKafkaConsumer(*topics, **options)


install_record_reader()  # faust's consumers and ``dlq list`` build theirs with aiokafka directly
