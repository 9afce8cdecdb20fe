"""Legacy XML payloads, mapped onto the canonical event by XPath 1.0 expressions, parsed with the safe parser.

Each path is compiled when the configuration is read, so a broken expression stops the start, not an event.
Text values are stripped: legacy systems pretty-print their XML.
"""

from __future__ import annotations

from typing import Literal, Self

from lxml import etree
from pydantic import Field, model_validator

from adapters.inbound.base import GuardedAdapter, InboundRecord
from adapters.inbound.mapping import FieldMapping
from rueckkanal import safexml
from rueckkanal.errors import EventInvalid, Reason
from rueckkanal.model import StatusEvent


class XmlMapping(FieldMapping):
    """``mapped_xml``: the paths in ``fields`` (and ``event_id``) are XPath 1.0, evaluated on the root element."""

    format: Literal["mapped_xml"] = "mapped_xml"
    namespaces: dict[str, str] = Field(default_factory=dict, description="prefix → namespace URI for the paths")

    @model_validator(mode="after")
    def _paths_compile(self) -> Self:
        broken = []
        for path in self.paths():
            try:
                etree.XPath(path, namespaces=self.namespaces)
            except etree.XPathSyntaxError:
                broken.append(path)
        if broken:
            raise ValueError(f"invalid XPath: {', '.join(broken)}")
        return self

    def paths(self) -> list[str]:
        return [*self.fields.values(), *([self.event_id] if self.event_id else [])]

    def compiled(self) -> dict[str, etree.XPath]:
        return {path: etree.XPath(path, namespaces=self.namespaces, smart_strings=False) for path in self.paths()}


class MappedXmlAdapter(GuardedAdapter):
    def __init__(self, mapping: XmlMapping, *, source: str, max_payload_bytes: int) -> None:
        super().__init__(source=source, max_payload_bytes=max_payload_bytes)
        self.mapping = mapping
        self._xpaths = mapping.compiled()

    def _decode(self, record: InboundRecord) -> StatusEvent:
        payload = self.payload(record)
        root = safexml.parse(payload, max_bytes=self.max_payload_bytes)
        return self.mapping.to_event(lambda path: self._value(root, path), payload, source=self.source)

    def _value(self, root: etree._Element, path: str) -> str | None:
        try:
            result = self._xpaths[path](root)
        except etree.XPathError:
            raise EventInvalid(
                "a configured XPath cannot be evaluated on this payload", reason=Reason.SCHEMA_INVALID
            ) from None
        return _first_text(result)


def _first_text(result: object) -> str | None:
    """XPath's many result shapes (node-set, string, number, boolean) as one stripped text, empty as None."""
    if isinstance(result, list):
        if not result:
            return None
        result = result[0]
    if isinstance(result, etree._Element):
        text = "".join(result.itertext())
    elif isinstance(result, bool):
        text = "true" if result else "false"
    elif isinstance(result, float):
        text = str(int(result)) if result.is_integer() else str(result)
    else:
        text = str(result)
    return text.strip() or None
