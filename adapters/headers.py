"""Reading Kafka headers: the one semantics every stage and adapter uses.

Names are compared case-insensitively (ASCII only, no Unicode case folding), the last occurrence of a name wins
(Kafka allows a name to repeat), and a value is decoded as UTF-8 with replacement characters. The header names the
pipeline writes are in :mod:`streams.headers`.
"""

from __future__ import annotations

from collections.abc import Iterable

HeaderItems = Iterable[tuple[str, bytes | None]]

_UPPER = str.maketrans("ABCDEFGHIJKLMNOPQRSTUVWXYZ", "abcdefghijklmnopqrstuvwxyz")


def ascii_lower(name: str) -> str:
    """``name`` with A-Z lowered and nothing else changed (no Unicode case folding)."""
    return name.translate(_UPPER)


def header_bytes(headers: HeaderItems | None, name: str) -> bytes | None:
    """The raw value of the last header called ``name`` (ASCII case-insensitive), or None."""
    wanted = ascii_lower(name)
    size = len(wanted)
    found: bytes | None = None
    for key, value in headers or ():
        # Lowering keeps the length, so only a key of the same length can match: most are never lowered.
        if len(key) == size and (key == wanted or ascii_lower(key) == wanted):
            found = value if value is not None else b""
    return found


def header(headers: HeaderItems | None, name: str) -> str | None:
    """The last header called ``name`` (ASCII case-insensitive) as text (UTF-8, invalid bytes replaced), or None."""
    value = header_bytes(headers, name)
    return value.decode("utf-8", "replace") if value is not None else None
