"""CloudEvents 1.0 over Kafka, the canonical inbound format (design, "Inbound event"), as the official SDKs write it.

A record is recognised in this order (docs/fachverfahren.md, "What is accepted and how it is recognised"):

1. structured mode: ``content-type`` is ``application/cloudevents+json`` (parameters such as ``charset`` ignored);
   the value is the whole event;
2. binary mode: a ``ce_specversion`` header; the attributes are ``ce_*`` headers, ``content-type`` is the
   ``datacontenttype`` and the value is the JSON ``data``;
3. an envelope without ``ce_`` headers: the value is a JSON object with a top-level ``specversion`` member, whatever
   ``content-type`` says (the Python SDK's Kafka structured mode moves ``datacontenttype`` into that header);
4. anything else is ``missing_header``.

The ``data`` must be JSON (``application/json``, ``text/json`` or a ``+json`` type, UTF-8), embedded as ``data`` or
base64-encoded as ``data_base64``, and an object of the event model. The event ``source`` must be the one
configured for the topic: a topic belongs to one Fachverfahren, and a foreign source would put events under the
wrong Vorgang key. Other attributes (``time``, ``subject``, ``partitionkey``, extensions) decide nothing; an
attribute whose value is JSON ``null`` counts as absent (the JSON event format says so).
"""

from __future__ import annotations

import base64
import binascii
import json
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from adapters.inbound.base import GuardedAdapter, InboundRecord, json_object, utf8
from rueckkanal.errors import DecodeError, EventInvalid, InputRejected, Reason
from rueckkanal.model import StatusEvent, parse_status_data

SPECVERSION = "1.0"
EVENT_TYPE = "de.rueckkanal.antragsstatus.v1"
STRUCTURED_CONTENT_TYPE = "application/cloudevents+json"
DATA_CONTENT_TYPE = "application/json"
_REQUIRED = ("specversion", "type", "id", "source")
_UTF8_CHARSETS = frozenset({"utf-8", "utf8", "us-ascii"})


class CloudEventsMapping(BaseModel):
    """Options of the ``cloudevents`` format; the defaults fit every Fachverfahren that follows the design."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    format: Literal["cloudevents"] = "cloudevents"
    event_type: str = Field(EVENT_TYPE, min_length=1, description="the accepted ce_type")


class CloudEventsAdapter(GuardedAdapter):
    def __init__(self, mapping: CloudEventsMapping, *, source: str, max_payload_bytes: int) -> None:
        super().__init__(source=source, max_payload_bytes=max_payload_bytes)
        self.mapping = mapping

    def _decode(self, record: InboundRecord) -> StatusEvent:
        value = self.payload(record)
        content_type = self._header(record, "content-type") or None  # a null header arrives empty: absent
        if content_type is not None and _media_type(content_type) == STRUCTURED_CONTENT_TYPE:
            return self._structured(json_object(utf8(value, "event")), data_content_type=None)
        if record.header("ce_specversion") is not None:
            return self._binary(record, value, content_type)
        envelope = _headerless_envelope(value)
        if envelope is None:
            raise DecodeError(
                "neither ce_specversion header (binary mode), structured content type, "
                "nor a JSON event with specversion",
                reason=Reason.MISSING_HEADER,
            )
        return self._structured(envelope, data_content_type=content_type)

    def _binary(self, record: InboundRecord, value: bytes, content_type: str | None) -> StatusEvent:
        if content_type is not None:
            _check_data_content_type(content_type)
        attributes = {name: self._required_header(record, f"ce_{name}") for name in _REQUIRED}
        self._check_envelope(attributes)
        utf8(value, "data")
        data = parse_status_data(value)
        return StatusEvent.from_data(data, source=attributes["source"], event_id=attributes["id"])

    def _structured(self, envelope: dict[str, Any], *, data_content_type: str | None) -> StatusEvent:
        """The event in a JSON envelope; ``data_content_type`` is the record's content-type when the envelope came
        without the structured content type (it then stands for a missing ``datacontenttype``)."""
        for name in _REQUIRED:
            if not isinstance(envelope.get(name), str):
                raise EventInvalid(f"{name}: required string attribute", reason=Reason.SCHEMA_INVALID)
        self._check_envelope(envelope)
        content_type = envelope.get("datacontenttype")
        if content_type is None:
            content_type = data_content_type or DATA_CONTENT_TYPE
        if not isinstance(content_type, str):
            raise EventInvalid("datacontenttype: must be a string", reason=Reason.SCHEMA_INVALID)
        _check_data_content_type(content_type)
        data, data_base64 = envelope.get("data"), envelope.get("data_base64")
        if data_base64 is not None:
            if data is not None:
                raise EventInvalid("data and data_base64 are mutually exclusive", reason=Reason.SCHEMA_INVALID)
            raw = _base64(data_base64)
            utf8(raw, "data")
            parsed = parse_status_data(raw)
        else:
            # The data goes through the JSON validator, whose strict rules (times as ISO strings) the model relies on.
            parsed = parse_status_data(json.dumps(data).encode())
        return StatusEvent.from_data(parsed, source=envelope["source"], event_id=envelope["id"])

    def _check_envelope(self, attributes: dict[str, Any]) -> None:
        if attributes["specversion"] != SPECVERSION:
            raise DecodeError("CloudEvents specversion must be 1.0", reason=Reason.UNSUPPORTED_EVENT_TYPE)
        if attributes["type"] != self.mapping.event_type:
            raise DecodeError(f"event type must be {self.mapping.event_type}", reason=Reason.UNSUPPORTED_EVENT_TYPE)
        if attributes["source"] != self.source:
            raise EventInvalid("event source is not the one configured for this topic", reason=Reason.UNKNOWN_SOURCE)

    @staticmethod
    def _header(record: InboundRecord, name: str) -> str | None:
        raw = record.header(name)
        return None if raw is None else utf8(raw, f"header {name}")

    def _required_header(self, record: InboundRecord, name: str) -> str:
        value = self._header(record, name)
        if not value:
            raise DecodeError(f"header {name} is missing", reason=Reason.MISSING_HEADER)
        return value


def _headerless_envelope(value: bytes) -> dict[str, Any] | None:
    """The value as a CloudEvents JSON envelope (a JSON object with a top-level ``specversion``), or None if it is
    not one. An envelope that breaks the JSON rules (duplicate keys) is refused as such, not as "no event"."""
    try:
        envelope = json_object(utf8(value, "event"))
    except InputRejected as rejected:
        try:
            lenient = json.loads(value)
        except (ValueError, RecursionError):
            return None
        if isinstance(lenient, dict) and "specversion" in lenient:
            raise rejected from None
        return None
    return envelope if "specversion" in envelope else None


def _media_type(content_type: str) -> str:
    return content_type.split(";", 1)[0].strip().lower()


def _check_data_content_type(content_type: str) -> None:
    """The data must be JSON in UTF-8: ``application/json``, ``text/json`` or ``*/*+json``, any other charset no."""
    media_type = _media_type(content_type)
    kind, _, subtype = media_type.partition("/")
    is_json = kind in ("application", "text") and (subtype == "json" or subtype.endswith("+json"))
    if not is_json or media_type == STRUCTURED_CONTENT_TYPE:
        raise DecodeError("content type of data must be application/json", reason=Reason.UNSUPPORTED_CONTENT_TYPE)
    for parameter in content_type.split(";")[1:]:
        name, _, setting = parameter.partition("=")
        if name.strip().lower() == "charset" and setting.strip().strip('"').lower() not in _UTF8_CHARSETS:
            raise DecodeError("data must be UTF-8", reason=Reason.UNSUPPORTED_CONTENT_TYPE)


def _base64(encoded: object) -> bytes:
    if not isinstance(encoded, str):
        raise EventInvalid("data_base64: must be a string", reason=Reason.SCHEMA_INVALID)
    try:
        return base64.b64decode(encoded, validate=True)
    except (binascii.Error, ValueError):
        raise DecodeError("data_base64 is not valid base64", reason=Reason.INVALID_ENCODING) from None
