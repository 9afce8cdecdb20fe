"""The dead-letter contract: the original record unchanged, plus ``rk.*`` headers that say what went wrong.

Modelled on Kafka Connect's ``__connect.errors.*`` and Spring's ``kafka_dlt-*`` headers, without stack traces
or payload text: those would carry personal data into a topic that operators browse.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from rueckkanal.errors import RueckkanalError

Headers = list[tuple[str, bytes]]

MAX_MESSAGE_CHARS = 300

H_STAGE = "rk.error.stage"
H_REASON = "rk.error.reason"
H_MESSAGE = "rk.error.message"
H_CLASS = "rk.error.class"
H_PORTAL_CODE = "rk.error.portal_code"
H_TOPIC = "rk.original.topic"
H_PARTITION = "rk.original.partition"
H_OFFSET = "rk.original.offset"
H_TIMESTAMP = "rk.original.timestamp"
H_ATTEMPTS = "rk.attempts"
H_FAILED_AT = "rk.failed_at"
H_SOURCE = "rk.source"


_FAILURE_HEADER_PREFIXES = ("rk.error.", "rk.original.", H_ATTEMPTS, H_FAILED_AT)


@dataclass(frozen=True)
class Origin:
    """Where a record was first read; a replay puts it back there."""

    topic: str
    partition: int
    offset: int
    timestamp_ms: int


def without_rk_error_headers(headers: Headers) -> Headers:
    """A record that failed before (a replay) carries old rk.error.* headers; the new failure replaces them."""
    return [(k, v) for k, v in headers if not k.startswith(_FAILURE_HEADER_PREFIXES)]


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
    if source and not any(k == H_SOURCE for k, _ in headers):
        headers.append((H_SOURCE, source.encode()))
    return headers
