"""The CloudEvents adapter against what the official SDKs write on Kafka.

Python: live, with the real SDK (the ``dev`` extra pins it), through both of its Kafka APIs: the 1.x API kept as
``cloudevents.v1.kafka`` and the 2.x core binding ``cloudevents.core.bindings.kafka``. Java, Go and JavaScript:
records written exactly as those SDKs' Kafka bindings produce them (header names and casing, content-type values,
``data`` or ``data_base64``, the ``partitionkey`` extension), read from their sources; docs/fachverfahren.md names
the versions and files; Java, Go and JavaScript also run live against a worker (tests/integration). A header value
that JavaScript's SDK leaves ``undefined`` is refused by kafkajs (its producer drops it); a client that sends it as
a null header, which the consumer sees as empty bytes, is understood as well.
"""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest
from cloudevents.core.bindings import kafka as core_kafka
from cloudevents.core.formats.json import JSONFormat
from cloudevents.core.v1.event import CloudEvent as CoreCloudEvent
from cloudevents.v1 import kafka as v1_kafka
from cloudevents.v1.http import CloudEvent as HttpCloudEvent
from cloudevents.v1.pydantic import CloudEvent as PydanticCloudEvent

from adapters.inbound.base import InboundRecord
from adapters.inbound.config import build_adapter
from rueckkanal.model import StatusEvent, parse_status_data
from tests.unit.factories import shipped_fachverfahren

TOPIC = "fv.hundesteuer.status"
SOURCE = "urn:de:leipzig:fachverfahren:hundesteuer"
TYPE = "de.rueckkanal.antragsstatus.v1"
EVENT_ID = "hst-evt-000123-04"
VORGANG = "HST-2024-000123"
DATA: dict[str, Any] = {
    "vorgangId": VORGANG,
    "leistung": "99108001000000",
    "status": "300",
    "statusZeit": "2024-03-06T09:31:12+01:00",
    "statusText": "Gebühr & Zahlung",
    "zahlung": {"betrag": "96.00", "verwendungszweck": "Hundesteuer 2024 Kassenzeichen 5212024000123"},
}
EXPECTED = StatusEvent.from_data(parse_status_data(json.dumps(DATA).encode()), source=SOURCE, event_id=EVENT_ID)


def decode(key: str | bytes | None, headers: Any, value: bytes) -> StatusEvent:
    """A Kafka record as a producer sends it: a text key through a string serializer, headers as pairs."""
    pairs = headers.items() if isinstance(headers, dict) else headers
    record = InboundRecord(
        topic=TOPIC,
        partition=0,
        offset=0,
        timestamp_ms=0,
        key=key.encode() if isinstance(key, str) else key,
        value=value,
        headers=tuple((name, b"" if raw is None else raw) for name, raw in pairs),
    )
    return build_adapter(shipped_fachverfahren()["hundesteuer"]).decode(record)


# --- Python SDK, live ---------------------------------------------------------------------------------------------

ATTRIBUTES = {"type": TYPE, "source": SOURCE, "id": EVENT_ID, "partitionkey": VORGANG}


def test_python_v1_binary_mode() -> None:
    message = v1_kafka.to_binary(HttpCloudEvent({**ATTRIBUTES, "datacontenttype": "application/json"}, DATA))
    assert message.headers["content-type"] == b"application/json"
    assert "ce_partitionkey" not in message.headers and message.key == VORGANG
    assert decode(message.key, message.headers, message.value) == EXPECTED


@pytest.mark.parametrize("datacontenttype", ["application/json", None])
def test_python_v1_structured_mode_is_an_envelope_without_ce_headers(datacontenttype: str | None) -> None:
    extra = {} if datacontenttype is None else {"datacontenttype": datacontenttype}
    message = v1_kafka.to_structured(HttpCloudEvent({**ATTRIBUTES, **extra}, DATA))
    # What made every such event a missing_header: the envelope's datacontenttype moves to content-type (or there is
    # no header at all), no ce_ headers, and the value is the whole event.
    assert message.headers == ({} if datacontenttype is None else {"content-type": b"application/json"})
    assert "datacontenttype" not in json.loads(message.value)
    assert decode(message.key, message.headers, message.value) == EXPECTED


def test_python_v1_pydantic_event_writes_null_attributes() -> None:
    event = PydanticCloudEvent.create({**ATTRIBUTES, "datacontenttype": "application/json"}, DATA)
    message = v1_kafka.to_structured(event)
    assert json.loads(message.value)["subject"] is None
    assert decode(VORGANG, message.headers, message.value) == EXPECTED
    binary = v1_kafka.to_binary(event)
    assert decode(VORGANG, binary.headers, binary.value) == EXPECTED


@pytest.mark.parametrize("datacontenttype", ["application/json", None])
def test_python_core_binary_mode(datacontenttype: str | None) -> None:
    extra = {} if datacontenttype is None else {"datacontenttype": datacontenttype}
    message = core_kafka.to_binary(CoreCloudEvent({**ATTRIBUTES, "specversion": "1.0", **extra}, DATA), JSONFormat())
    assert message.headers["ce_partitionkey"] == VORGANG.encode() and message.key == VORGANG
    assert decode(message.key, message.headers, message.value) == EXPECTED


@pytest.mark.parametrize("data", [DATA, json.dumps(DATA).encode()], ids=["data", "data_base64"])
def test_python_core_structured_mode(data: dict[str, Any] | bytes) -> None:
    attributes = {**ATTRIBUTES, "specversion": "1.0", "datacontenttype": "application/json"}
    message = core_kafka.to_structured(CoreCloudEvent(attributes, data), JSONFormat())
    assert message.headers == {"content-type": b"application/cloudevents+json"}
    assert ("data_base64" in json.loads(message.value)) is isinstance(data, bytes)
    assert decode(message.key, message.headers, message.value) == EXPECTED


# --- Java, Go, JavaScript: as their Kafka bindings write ------------------------------------------------------------

DATA_JAVA = json.dumps(DATA, ensure_ascii=False, separators=(",", ":")).encode()  # Jackson: compact UTF-8
# Go encoding/json: map keys sorted, compact, <, > and & escaped as \u003c \u003e \u0026, other text as UTF-8.
DATA_GO = json.dumps(DATA, ensure_ascii=False, separators=(",", ":"), sort_keys=True).replace("&", "\\u0026").encode()
DATA_JS = json.dumps(DATA, ensure_ascii=False, separators=(",", ":")).encode()  # JSON.stringify


def _envelope(prefix: dict[str, Any], data: bytes, suffix: dict[str, Any] | None = None) -> bytes:
    head = json.dumps(prefix, ensure_ascii=False, separators=(",", ":"))[:-1]
    tail = "" if not suffix else "," + json.dumps(suffix, separators=(",", ":"))[1:-1]
    return f'{head},"data":{data.decode()}{tail}}}'.encode()


SDK_RECORDS: dict[str, tuple[str | None, list[tuple[str, bytes | None]], bytes]] = {
    # sdk-java kafka: CloudEventSerializer (encoding BINARY), key set by PartitionKeyExtensionInterceptor
    "java-binary": (
        VORGANG,
        [
            ("ce_specversion", b"1.0"),
            ("ce_id", EVENT_ID.encode()),
            ("ce_source", SOURCE.encode()),
            ("ce_type", TYPE.encode()),
            ("content-type", b"application/json"),
            ("ce_time", b"2024-03-06T09:31:12+01:00"),
            ("ce_partitionkey", VORGANG.encode()),
        ],
        DATA_JAVA,
    ),
    # sdk-java kafka: encoding STRUCTURED, event_format application/cloudevents+json (json-jackson JsonFormat)
    "java-structured": (
        VORGANG,
        [("content-type", b"application/cloudevents+json")],
        _envelope(
            {
                "specversion": "1.0",
                "id": EVENT_ID,
                "source": SOURCE,
                "type": TYPE,
                "datacontenttype": "application/json",
                "time": "2024-03-06T09:31:12+01:00",
                "partitionkey": VORGANG,
            },
            DATA_JAVA,
        ),
    ),
    # json-jackson JsonFormatOptions.forceDataBase64Serialization(true)
    "java-structured-base64": (
        VORGANG,
        [("content-type", b"application/cloudevents+json")],
        json.dumps(
            {
                "specversion": "1.0",
                "id": EVENT_ID,
                "source": SOURCE,
                "type": TYPE,
                "datacontenttype": "application/json",
                "time": "2024-03-06T09:31:12+01:00",
                "data_base64": base64.b64encode(DATA_JAVA).decode(),
            },
            separators=(",", ":"),
        ).encode(),
    ),
    # sdk-go protocol/kafka_sarama/v2 WriteProducerMessage, binary: key from the partitionkey extension
    "go-sarama-binary": (
        VORGANG,
        [
            ("ce_specversion", b"1.0"),
            ("ce_id", EVENT_ID.encode()),
            ("ce_source", SOURCE.encode()),
            ("ce_type", TYPE.encode()),
            ("content-type", b"application/json"),
            ("ce_time", b"2024-03-06T08:31:12Z"),
            ("ce_partitionkey", VORGANG.encode()),
        ],
        DATA_GO,
    ),
    # sdk-go protocol/kafka_confluent/v2, structured (format.JSON): key from WithMessageKey(ctx, ...)
    "go-confluent-structured": (
        VORGANG,
        [("content-type", b"application/cloudevents+json")],
        _envelope(
            {
                "specversion": "1.0",
                "id": EVENT_ID,
                "source": SOURCE,
                "type": TYPE,
                "datacontenttype": "application/json",
                "time": "2024-03-06T08:31:12Z",
            },
            DATA_GO,
        ),
    ),
    # cloudevents (npm) Kafka.binary: content-type from datacontenttype, then ce_<every own property> but data;
    # undefined attributes as null headers (kafkajs refuses them; a client that sends them is understood)
    "js-binary": (
        VORGANG,
        [
            ("content-type", b"application/json"),
            ("ce_id", EVENT_ID.encode()),
            ("ce_time", b"2024-03-06T08:31:12.000Z"),
            ("ce_type", TYPE.encode()),
            ("ce_source", SOURCE.encode()),
            ("ce_specversion", b"1.0"),
            ("ce_datacontenttype", b"application/json"),
            ("ce_subject", None),
            ("ce_datacontentencoding", None),
            ("ce_dataschema", None),
            ("ce_schemaurl", None),
            ("ce_partitionkey", VORGANG.encode()),
        ],
        DATA_JS,
    ),
    # the same without datacontenttype: content-type itself is a null header
    "js-binary-no-datacontenttype": (
        VORGANG,
        [
            ("content-type", None),
            ("ce_id", EVENT_ID.encode()),
            ("ce_time", b"2024-03-06T08:31:12.000Z"),
            ("ce_type", TYPE.encode()),
            ("ce_source", SOURCE.encode()),
            ("ce_specversion", b"1.0"),
            ("ce_datacontenttype", None),
            ("ce_subject", None),
            ("ce_datacontentencoding", None),
            ("ce_dataschema", None),
            ("ce_schemaurl", None),
            ("ce_partitionkey", VORGANG.encode()),
        ],
        DATA_JS,
    ),
    # cloudevents (npm) Kafka.structured: JSON.stringify(event), extensions after data
    "js-structured": (
        VORGANG,
        [("content-type", b"application/cloudevents+json; charset=utf-8")],
        _envelope(
            {
                "id": EVENT_ID,
                "time": "2024-03-06T08:31:12.000Z",
                "type": TYPE,
                "source": SOURCE,
                "specversion": "1.0",
                "datacontenttype": "application/json",
            },
            DATA_JS,
            {"partitionkey": VORGANG},
        ),
    ),
    # a Buffer as data: data_base64 instead of data
    "js-structured-buffer": (
        VORGANG,
        [("content-type", b"application/cloudevents+json; charset=utf-8")],
        json.dumps(
            {
                "id": EVENT_ID,
                "time": "2024-03-06T08:31:12.000Z",
                "type": TYPE,
                "source": SOURCE,
                "specversion": "1.0",
                "datacontenttype": "application/json",
                "data_base64": base64.b64encode(DATA_JS).decode(),
                "partitionkey": VORGANG,
            },
            separators=(",", ":"),
        ).encode(),
    ),
}


@pytest.mark.parametrize("name", sorted(SDK_RECORDS))
def test_sdk_records_decode_to_the_same_event(name: str) -> None:
    key, headers, value = SDK_RECORDS[name]
    assert decode(key, headers, value) == EXPECTED


def test_go_escapes_are_decoded_to_the_same_text() -> None:
    assert b"\\u0026" in DATA_GO
    assert decode(*SDK_RECORDS["go-sarama-binary"]).status_text == DATA["statusText"]
