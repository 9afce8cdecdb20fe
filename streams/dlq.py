"""The dead-letter contract: the original record unchanged, plus ``rk.*`` headers that say what went wrong.

Modelled on Kafka Connect's ``__connect.errors.*`` and Spring's ``kafka_dlt-*`` headers, without stack traces
or payload text: those would carry personal data into a topic that operators browse.

A dead letter that would be larger than the producer's record limit (or that the broker refuses as a record) is
written as a **stub**: no value, the original headers if they fit a budget (else left out and counted in
``rk.original.headers_dropped``), ``rk.original.size`` and ``rk.original.sha256`` of the value, reason
``payload_too_large`` (a different first reason kept in ``rk.error.original_reason``). A stub cannot be replayed;
it names the record so that its owner can send it again.

Header names live in :mod:`streams.headers`; they are re-exported here for the modules that import them from here.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import UTC, datetime

from aiokafka import errors as kafka_errors

from rueckkanal.errors import Reason, RueckkanalError
from streams.headers import (
    H_ATTEMPTS,
    H_CLASS,
    H_FAILED_AT,
    H_MESSAGE,
    H_OFFSET,
    H_ORIGINAL_HEADERS_DROPPED,
    H_ORIGINAL_KEY_DROPPED,
    H_ORIGINAL_REASON,
    H_ORIGINAL_SHA256,
    H_ORIGINAL_SIZE,
    H_PARTITION,
    H_PORTAL_CODE,
    H_REASON,
    H_SOURCE,
    H_STAGE,
    H_TIMESTAMP,
    H_TOPIC,
    Headers,
    header_bytes,
    without_headers,
)

__all__ = [
    "H_ATTEMPTS",
    "H_CLASS",
    "H_FAILED_AT",
    "H_MESSAGE",
    "H_OFFSET",
    "H_PARTITION",
    "H_PORTAL_CODE",
    "H_REASON",
    "H_SOURCE",
    "H_STAGE",
    "H_TIMESTAMP",
    "H_TOPIC",
    "MAX_MESSAGE_CHARS",
    "RECORD_HEADROOM",
    "RECORD_OVERHEAD",
    "Headers",
    "Origin",
    "dead_letter_headers",
    "estimated_size",
    "is_stub",
    "record_refused",
    "stub_record",
    "without_rk_error_headers",
]

MAX_MESSAGE_CHARS = 300

# A record's size on the wire beyond its key, value and header bytes: aiokafka's bound is a 61-byte batch header
# plus at most 21 bytes of record framing, plus two varints (at most 5 bytes each) per header.
RECORD_OVERHEAD = 82
HEADER_OVERHEAD = 10
# What a stage keeps below ``settings.kafka.max_request_size`` for its own record limit: room for the estimate's
# slack (the broker's ``max.message.bytes`` counts the whole batch) so that an estimate just under the limit is
# never refused by the producer.
RECORD_HEADROOM = 1024
# A stub keeps the original key and headers only up to this many bytes together (and never more than a quarter of
# the record limit): a stub must always fit.
STUB_ORIGINAL_BUDGET = 64 * 1024

_FAILURE_HEADER_PREFIXES = ("rk.error.", "rk.original.", H_ATTEMPTS, H_FAILED_AT)

# Errors with which the producer or the broker refuses one record for what it is (too large, corrupt, a timestamp
# out of range): every other record can still be written. aiokafka raises MessageSizeTooLargeError from send()
# when its own max_request_size is exceeded (faust wraps that in ProducerSendError, the cause kept); the others
# arrive through the send's future from the broker's answer. Anything else (broker unreachable, not authorised,
# timeouts) is a failure no record could survive.
_RECORD_LEVEL = (
    kafka_errors.MessageSizeTooLargeError,  # errno 10 and aiokafka's own check
    kafka_errors.RecordListTooLargeError,  # errno 18
    kafka_errors.CorruptRecordException,  # errno 2: CRC, size, or otherwise invalid record
    kafka_errors.InvalidTimestampError,  # errno 32
    kafka_errors.RecordTooLargeError,
)


@dataclass(frozen=True)
class Origin:
    """Where a record was first read; a replay puts it back there."""

    topic: str
    partition: int
    offset: int
    timestamp_ms: int


def record_refused(error: BaseException) -> bool:
    """Whether Kafka refused one record for what it is, rather than failing for every record (see above)."""
    seen: BaseException | None = error
    for _ in range(8):  # the cause chain, bounded
        if seen is None:
            return False
        if isinstance(seen, _RECORD_LEVEL):
            return True
        seen = seen.__cause__
    return False


def estimated_size(key: bytes | None, value: bytes | None, headers: Headers) -> int:
    """An upper bound of a record's size as the producer counts it against ``max_request_size``."""
    size = RECORD_OVERHEAD + len(key or b"") + len(value or b"")
    for name, header_value in headers:
        size += HEADER_OVERHEAD + len(name.encode("utf-8", "surrogateescape")) + len(header_value or b"")
    return size


def without_rk_error_headers(headers: Headers) -> Headers:
    """A record that failed before (a replay) carries old rk.error.* headers; the new failure replaces them."""
    return without_headers(headers, *_FAILURE_HEADER_PREFIXES)


def dead_letter_headers(
    original_headers: Headers,
    error: RueckkanalError,
    *,
    stage: str,
    origin: Origin,
    attempts: int = 1,
    source: str | None = None,
    now: datetime | None = None,
) -> Headers:
    failed_at = (now or datetime.now(UTC)).isoformat(timespec="milliseconds")
    headers = without_rk_error_headers(original_headers)
    headers += [
        (H_STAGE, stage.encode()),
        (H_REASON, error.reason.value.encode()),
        (H_MESSAGE, error.message[:MAX_MESSAGE_CHARS].encode()),
        (H_CLASS, type(error).__name__.encode()),
        (H_TOPIC, origin.topic.encode()),
        (H_PARTITION, str(origin.partition).encode()),
        (H_OFFSET, str(origin.offset).encode()),
        (H_TIMESTAMP, str(origin.timestamp_ms).encode()),
        (H_ATTEMPTS, str(attempts).encode()),
        (H_FAILED_AT, failed_at.encode()),
    ]
    portal_code = getattr(error, "portal_code", None)
    if portal_code:
        headers.append((H_PORTAL_CODE, str(portal_code).encode()))
    if source and header_bytes(headers, H_SOURCE) is None:
        headers.append((H_SOURCE, source.encode()))
    return headers


def stub_record(
    key: bytes | None,
    value: bytes | None,
    original_headers: Headers,
    error: RueckkanalError,
    *,
    stage: str,
    origin: Origin,
    record_limit: int,
    attempts: int = 1,
    source: str | None = None,
    now: datetime | None = None,
) -> tuple[bytes | None, bytes, Headers]:
    """The dead letter for a record too large to copy: (key, empty value, headers), see the module docstring."""
    value = value or b""
    budget = min(STUB_ORIGINAL_BUDGET, record_limit // 4)
    kept_key = key if key is not None and len(key) <= budget else None
    budget -= len(kept_key or b"")
    kept: Headers = []
    dropped = 0
    for name, header_value in without_rk_error_headers(original_headers):
        size = estimated_size(None, None, [(name, header_value)]) - RECORD_OVERHEAD
        if size <= budget:
            kept.append((name, header_value))
            budget -= size
        else:
            dropped += 1
    refusal = RueckkanalError(
        f"dead letter over the record limit of {record_limit} bytes: stored as a stub without its value",
        reason=Reason.PAYLOAD_TOO_LARGE,
    )
    headers = dead_letter_headers(kept, refusal, stage=stage, origin=origin, attempts=attempts, source=source, now=now)
    headers += [
        (H_ORIGINAL_SIZE, str(len(value)).encode()),
        (H_ORIGINAL_SHA256, hashlib.sha256(value).hexdigest().encode()),
    ]
    if error.reason is not Reason.PAYLOAD_TOO_LARGE:
        headers.append((H_ORIGINAL_REASON, error.reason.value.encode()))
    if dropped:
        headers.append((H_ORIGINAL_HEADERS_DROPPED, str(dropped).encode()))
    if key is not None and kept_key is None:
        headers.append((H_ORIGINAL_KEY_DROPPED, str(len(key)).encode()))
    return kept_key, b"", headers


def is_stub(headers: Headers) -> bool:
    """Whether a dead letter is a stub (its value was not kept)."""
    return header_bytes(headers, H_ORIGINAL_SHA256) is not None
