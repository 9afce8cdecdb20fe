"""W3C Trace Context (https://www.w3.org/TR/trace-context/): which ``traceparent`` values may leave the pipeline.

A traceparent comes from a Fachverfahren's record and travels to the outbox, the DLQ and the portal request. Only a
value of the standard's shape is passed on: ``version-traceid-parentid-flags`` in lower-case hex, version ``ff``
and all-zero ids invalid, version ``00`` exactly 55 characters, a later version at least that prefix followed by
``-`` and more. Anything else (CR/LF, a 100 KB header, upper case, garbage) is dropped, never repaired.
"""

from __future__ import annotations

import re

MAX_LENGTH = 512  # generous for future versions; a header is never allowed to grow a request without bound
_V00 = re.compile(r"00-([0-9a-f]{32})-([0-9a-f]{16})-[0-9a-f]{2}")
_FUTURE = re.compile(r"([0-9a-f]{2})-([0-9a-f]{32})-([0-9a-f]{16})-[0-9a-f]{2}(?:-[\x21-\x7e]*)?")
_ZERO_TRACE = "0" * 32
_ZERO_PARENT = "0" * 16


def valid_traceparent(value: str | bytes | None) -> str | None:
    """The traceparent if it is valid W3C Trace Context, else None (the caller drops it and counts the drop)."""
    if value is None:
        return None
    if isinstance(value, bytes):
        if len(value) > MAX_LENGTH:
            return None
        try:
            value = value.decode("ascii")
        except UnicodeDecodeError:
            return None
    if len(value) > MAX_LENGTH:
        return None
    match = _V00.fullmatch(value)
    if match is None:
        future = _FUTURE.fullmatch(value)
        if future is None or future[1] in ("00", "ff"):
            return None
        trace_id, parent_id = future[2], future[3]
    else:
        trace_id, parent_id = match[1], match[2]
    if trace_id == _ZERO_TRACE or parent_id == _ZERO_PARENT:
        return None
    return value
