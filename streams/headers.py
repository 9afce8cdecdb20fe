"""The Kafka header contract: every header name the pipeline writes, and the one way to read a header.

Reading keeps one semantics everywhere, :mod:`adapters.headers` (which ``InboundRecord.header`` uses too): names
are compared case-insensitively (ASCII), the last occurrence wins (Kafka allows a name to repeat), a value is
decoded as UTF-8 with replacement characters. The typed readers (:func:`header_int`) return None for a missing or
malformed value instead of raising: a header is data, and garbage in one must cost at most its own record.

Headers whose names start with ``rk.`` (any case) belong to the pipeline. A Fachverfahren's record never carries
them past ingest (:func:`without_pipeline_headers`): only what the pipeline wrote itself may decide provenance,
replay targets or metric labels.
"""

from __future__ import annotations

from adapters.headers import HeaderItems, ascii_lower, header, header_bytes

__all__ = ["HeaderItems", "Headers", "ascii_lower", "header", "header_bytes"]  # the reader lives with the adapters

Headers = list[tuple[str, bytes]]

PIPELINE_PREFIX = "rk."

# -- dead letters (streams/dlq.py) -------------------------------------------------------------------------------
H_STAGE = "rk.error.stage"
H_REASON = "rk.error.reason"
H_MESSAGE = "rk.error.message"
H_CLASS = "rk.error.class"
H_PORTAL_CODE = "rk.error.portal_code"
H_ORIGINAL_REASON = "rk.error.original_reason"  # a stub's first reason, when it was not payload_too_large
H_TOPIC = "rk.original.topic"
H_PARTITION = "rk.original.partition"
H_OFFSET = "rk.original.offset"
H_TIMESTAMP = "rk.original.timestamp"
H_ORIGINAL_SIZE = "rk.original.size"  # a stub: bytes of the original value
H_ORIGINAL_SHA256 = "rk.original.sha256"  # a stub: hex SHA-256 of the original value
H_ORIGINAL_HEADERS_DROPPED = "rk.original.headers_dropped"  # a stub: original headers left out (over the budget)
H_ORIGINAL_KEY_DROPPED = "rk.original.key_dropped"  # a stub: the original key was over the budget
H_ATTEMPTS = "rk.attempts"
H_FAILED_AT = "rk.failed_at"
H_SOURCE = "rk.source"  # the configured Fachverfahren name, written by the pipeline only
H_TARGET = "rk.error.target"  # a delivery dead letter: the delivery target that failed (settings targets)

# -- replays (streams/dlq_tool.py) --------------------------------------------------------------------------------
H_REPLAY_COUNT = "rk.replay.count"
H_REPLAY_AT = "rk.replay.at"
H_REPLAY_FROM = "rk.replay.from"
# A replayed delivery dead letter on the outbox: only this delivery target delivers it again, the others skip it.
# The outbox is written by the pipeline only (ingest strips rk.* from Fachverfahren records), so this is ours.
H_REPLAY_TARGET = "rk.replay.target"

# -- the outbox (streams/ingest.py writes them, delivery and the portal adapters read them) -----------------------
H_NACHRICHTEN_UUID = "nachrichtenUUID"
H_CE_SOURCE = "ce_source"
H_CE_ID = "ce_id"
H_STATUS = "status"
H_SEQUENCE = "rk.sequence"
H_STATUS_TIME = "rk.status_time"
H_TRACEPARENT = "traceparent"


def header_int(headers: HeaderItems | None, name: str, *, minimum: int | None = None) -> int | None:
    """The last header called ``name`` as a decimal integer (optionally at least ``minimum``), or None.

    Only ASCII digits with an optional leading ``-`` count, at most 19 of them: no spaces, no underscores, no
    other scripts' digits, nothing that ``int()`` would accept by accident or take long to convert.
    """
    text = header(headers, name)
    if text is None:
        return None
    digits = text[1:] if text.startswith("-") else text
    if not (0 < len(digits) <= 19 and digits.isascii() and digits.isdigit()):
        return None
    number = int(text)
    return None if minimum is not None and number < minimum else number


def is_pipeline_header(name: str) -> bool:
    """Whether ``name`` is in the pipeline's own namespace (``rk.``, any case)."""
    return ascii_lower(name[: len(PIPELINE_PREFIX)]) == PIPELINE_PREFIX


def without_pipeline_headers(headers: HeaderItems | None) -> Headers:
    """The headers without any in the pipeline's namespace; a missing value becomes empty bytes."""
    return [(k, v if v is not None else b"") for k, v in headers or () if not is_pipeline_header(k)]


def without_headers(headers: HeaderItems | None, *prefixes: str) -> Headers:
    """The headers without those whose names start with one of ``prefixes`` (ASCII case-insensitive)."""
    lowered = tuple(ascii_lower(p) for p in prefixes)
    return [(k, v if v is not None else b"") for k, v in headers or () if not ascii_lower(k).startswith(lowered)]
