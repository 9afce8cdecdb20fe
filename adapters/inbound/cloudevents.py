"""CloudEvents 1.0 over Kafka, the canonical inbound format (design, "Inbound event").

Binary mode: the attributes are ``ce_*`` headers and the value is the JSON ``data``. Structured mode: the value
is the whole event as ``application/cloudevents+json``. The event ``source`` must be the one configured for the
topic: a topic belongs to one Fachverfahren, and a foreign source would put events under the wrong Vorgang key.
"""

from __future__ import annotations

import json
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from adapters.inbound.base import GuardedAdapter, InboundRecord, json_object, utf8
from rueckkanal.errors import DecodeError, EventInvalid, Reason
from rueckkanal.model import StatusEvent, parse_status_data

SPECVERSION = "1.0"
EVENT_TYPE = "de.rueckkanal.antragsstatus.v1"
STRUCTURED_CONTENT_TYPE = "application/cloudevents+json"
DATA_CONTENT_TYPE = "application/json"


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
        content_type = self._header(record, "content-type")
        if content_type is not None and _media_type(content_type) == STRUCTURED_CONTENT_TYPE:
            return self._structured(value)
        if record.header("ce_specversion") is None:
            raise DecodeError(
                "neither ce_specversion header (binary mode) nor structured content type",
                reason=Reason.MISSING_HEADER,
            )
        if content_type is not None and _media_type(content_type) != DATA_CONTENT_TYPE:
            raise DecodeError("content type of data must be application/json", reason=Reason.UNSUPPORTED_CONTENT_TYPE)
        attributes = {name: self._required_header(record, f"ce_{name}") for name in ("specversion", "type", "id")}
        attributes["source"] = self._required_header(record, "ce_source")
        self._check_envelope(attributes)
        utf8(value, "data")
        data = parse_status_data(value)
        return StatusEvent.from_data(data, source=attributes["source"], event_id=attributes["id"])

    def _structured(self, value: bytes) -> StatusEvent:
        envelope = json_object(utf8(value, "event"))
        for name in ("specversion", "type", "id", "source"):
            if not isinstance(envelope.get(name), str):
                raise EventInvalid(f"{name}: required string attribute", reason=Reason.SCHEMA_INVALID)
        self._check_envelope(envelope)
        if "data_base64" in envelope:
            raise DecodeError("data_base64 is not supported", reason=Reason.UNSUPPORTED_CONTENT_TYPE)
        content_type = envelope.get("datacontenttype", DATA_CONTENT_TYPE)
        if not isinstance(content_type, str) or _media_type(content_type) != DATA_CONTENT_TYPE:
            raise DecodeError("datacontenttype must be application/json", reason=Reason.UNSUPPORTED_CONTENT_TYPE)
        # The data goes through the JSON validator, whose strict rules (times as ISO strings) the model relies on.
        data = parse_status_data(json.dumps(envelope.get("data")).encode())
        return StatusEvent.from_data(data, source=envelope["source"], event_id=envelope["id"])

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


def _media_type(content_type: str) -> str:
    return content_type.split(";", 1)[0].strip().lower()
