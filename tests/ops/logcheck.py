"""Scanning a worker's JSON log for things that must never be in it: Vorgang ids, payloads, secrets."""

from __future__ import annotations

import base64
import json
from collections.abc import Iterable, Mapping
from typing import Any


def forms(marker: str | bytes) -> set[str]:
    """The ways a value can show up in a JSON log line: as is, JSON-escaped, base64, repr of bytes."""
    raw = marker.encode() if isinstance(marker, str) else marker
    text = raw.decode("utf-8", "replace")
    found = {text, json.dumps(text, ensure_ascii=False)[1:-1], json.dumps(text)[1:-1], base64.b64encode(raw).decode()}
    if isinstance(marker, bytes):
        found.add(repr(marker)[2:-1])
    return {form for form in found if len(form) >= 4}  # shorter strings match by accident


def leaks(lines: Iterable[Mapping[str, Any]], markers: Iterable[str | bytes]) -> list[str]:
    """Every (marker, log line) where a form of a marker occurs anywhere in the line."""
    rendered = [json.dumps(line, ensure_ascii=False, default=str) for line in lines]
    found = []
    for marker in markers:
        for form in forms(marker):
            found.extend(f"{marker!r} as {form!r} in {line[:300]}" for line in rendered if form in line)
    return found


def unstructured(lines: Iterable[Mapping[str, Any]]) -> list[str]:
    """Lines that were not one JSON object (tests.support.processes marks them ``unparsed``)."""
    return [str(line.get("event"))[:300] for line in lines if line.get("unparsed")]
