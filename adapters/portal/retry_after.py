"""Parse an HTTP ``Retry-After`` header (RFC 9110 §10.2.3) into seconds.

A portal may send delay-seconds (``120``) or an HTTP date (``Wed, 21 Oct 2026 07:28:00 GMT``). Both become a
number of seconds from now, capped: a broken or hostile header must not park a message for days. Anything that is
neither form is ignored (None) rather than trusted: the caller then falls back to its own backoff.
"""

from __future__ import annotations

from datetime import UTC, datetime
from email.utils import parsedate_to_datetime

DEFAULT_CAP_S = 300.0


def parse_retry_after(value: str | None, *, now: datetime | None = None, cap_s: float = DEFAULT_CAP_S) -> float | None:
    """Seconds to wait, within ``0..cap_s``, or None when the header is absent or unreadable."""
    if value is None:
        return None
    text = value.strip()
    if not text:
        return None
    if text.isascii() and text.isdigit():
        return min(float(text), cap_s)
    return _from_http_date(text, now or datetime.now(UTC), cap_s)


def _from_http_date(text: str, now: datetime, cap_s: float) -> float | None:
    try:
        when = parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:  # RFC 9110 dates are always GMT; obsolete forms may come without a zone
        when = when.replace(tzinfo=UTC)
    return min(max((when - now).total_seconds(), 0.0), cap_s)
