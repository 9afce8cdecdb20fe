"""Legacy JSON payloads, mapped onto the canonical event by dotted paths (``antrag.nummer``, ``items.0.code``)."""

from __future__ import annotations

from decimal import Decimal
from typing import Literal

from adapters.inbound.base import GuardedAdapter, InboundRecord, json_object, utf8
from adapters.inbound.mapping import FieldMapping
from rueckkanal.model import StatusEvent


class JsonMapping(FieldMapping):
    """``mapped_json``: the paths in ``fields`` are dotted; a number segment indexes a list."""

    format: Literal["mapped_json"] = "mapped_json"


class MappedJsonAdapter(GuardedAdapter):
    def __init__(self, mapping: JsonMapping, *, source: str, max_payload_bytes: int) -> None:
        super().__init__(source=source, max_payload_bytes=max_payload_bytes)
        self.mapping = mapping

    def _decode(self, record: InboundRecord) -> StatusEvent:
        payload = self.payload(record)
        # Decimal, not float: an amount like 30.70 must arrive as written.
        document = json_object(utf8(payload, "payload"), parse_float=Decimal)
        return self.mapping.to_event(lambda path: lookup(document, path), payload, source=self.source)


def lookup(document: object, path: str) -> object:
    """The value at a dotted path, or None if any step is missing (JSON null counts as missing)."""
    current = document
    for step in path.split("."):
        if isinstance(current, dict):
            current = current.get(step)
        elif isinstance(current, list) and step.isdigit() and int(step) < len(current):
            current = current[int(step)]
        else:
            return None
    return current
