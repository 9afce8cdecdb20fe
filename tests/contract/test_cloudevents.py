"""CloudEvents adapter: the contract in binary and in structured mode, how a record is recognised, and the envelope
rules (data_base64, datacontenttype, null attributes, duplicate keys, forbidden characters)."""

from __future__ import annotations

import base64
import json
from dataclasses import replace
from typing import Any

import pytest

from adapters.inbound.base import InboundRecord
from adapters.inbound.cloudevents import STRUCTURED_CONTENT_TYPE
from adapters.inbound.samples import read_sample
from rueckkanal.errors import InputRejected, Reason
from rueckkanal.model import StatusEvent
from tests.contract.inbound_contract import JsonInboundAdapterContract
from tests.unit.factories import EXAMPLES_DIR

BINARY = EXAMPLES_DIR / "hundesteuer" / "hst-000123-04-300.json"
STRUCTURED = EXAMPLES_DIR / "hundesteuer" / "hst-000178-02-210.json"


class TestBinaryModeContract(JsonInboundAdapterContract):
    fachverfahren = "hundesteuer"

    def valid_record(self) -> InboundRecord:
        return read_sample(BINARY).record("fv.hundesteuer.status")

    def with_status_text(self, text: str) -> InboundRecord:
        record = self.valid_record()
        data = json.loads(record.value or b"")
        data["statusText"] = text
        return replace(record, value=json.dumps(data).encode())


class TestStructuredModeContract(JsonInboundAdapterContract):
    fachverfahren = "hundesteuer"

    def valid_record(self) -> InboundRecord:
        return read_sample(STRUCTURED).record("fv.hundesteuer.status")

    def with_status_text(self, text: str) -> InboundRecord:
        record = self.valid_record()
        envelope = json.loads(record.value or b"")
        envelope["data"]["statusText"] = text
        return replace(record, value=json.dumps(envelope).encode())


class TestHeaderlessEnvelopeContract(TestStructuredModeContract):
    """The envelope as the Python SDK's Kafka structured mode writes it: no ce_ headers, content-type of the data."""

    def valid_record(self) -> InboundRecord:
        record = super().valid_record()
        envelope = json.loads(record.value or b"")
        del envelope["datacontenttype"]
        return replace(record, headers=(("content-type", b"application/json"),), value=json.dumps(envelope).encode())


def _rejection(record: InboundRecord) -> Reason:
    adapter = TestBinaryModeContract().adapter()
    with pytest.raises(InputRejected) as caught:
        adapter.decode(record)
    return caught.value.reason


def test_binary_mode_takes_identity_from_headers_and_data_from_the_value() -> None:
    event = TestBinaryModeContract().adapter().decode(TestBinaryModeContract().valid_record())
    assert event.event_id == "hst-evt-000123-04"
    assert event.status == "300"
    assert event.zahlung is not None
    assert str(event.zahlung.betrag) == "96.00"


def test_header_names_are_case_insensitive_and_content_type_parameters_ignored() -> None:
    record = TestBinaryModeContract().valid_record()
    headers = tuple(
        (name.upper(), b"application/json; charset=utf-8" if name == "content-type" else value)
        for name, value in record.headers
    )
    assert TestBinaryModeContract().adapter().decode(replace(record, headers=headers)).status == "300"


def test_specversion_other_than_1_0_is_unsupported() -> None:
    record = TestBinaryModeContract().valid_record()
    headers = tuple((n, b"0.3" if n == "ce_specversion" else v) for n, v in record.headers)
    assert _rejection(replace(record, headers=headers)) is Reason.UNSUPPORTED_EVENT_TYPE


def test_invalid_utf8_in_a_header_is_an_encoding_error() -> None:
    record = TestBinaryModeContract().valid_record()
    headers = tuple((n, b"\xff\xfe" if n == "ce_id" else v) for n, v in record.headers)
    assert _rejection(replace(record, headers=headers)) is Reason.INVALID_ENCODING


def _envelope(**changes: Any) -> dict[str, Any]:
    envelope: dict[str, Any] = json.loads(TestStructuredModeContract().valid_record().value or b"")
    envelope.update(changes)
    return {name: value for name, value in envelope.items() if value is not _DROP}


_DROP = object()


def _structured(envelope: dict[str, Any], content_type: str | None = STRUCTURED_CONTENT_TYPE) -> InboundRecord:
    headers = () if content_type is None else (("content-type", content_type.encode()),)
    return replace(TestStructuredModeContract().valid_record(), value=json.dumps(envelope).encode(), headers=headers)


def _decode(record: InboundRecord) -> StatusEvent:
    return TestStructuredModeContract().adapter().decode(record)


def test_structured_mode_with_content_type_parameters_is_structured() -> None:
    expected = _decode(TestStructuredModeContract().valid_record())
    for content_type in ("application/cloudevents+json; charset=utf-8", "Application/CloudEvents+JSON ;charset=UTF-8"):
        assert _decode(_structured(_envelope(), content_type)) == expected


@pytest.mark.parametrize("content_type", [None, "", "application/json", "application/json; charset=utf-8"])
def test_an_envelope_without_ce_headers_is_recognised_by_its_specversion(content_type: str | None) -> None:
    expected = _decode(TestStructuredModeContract().valid_record())
    assert _decode(_structured(_envelope(), content_type)) == expected


def test_an_envelope_without_datacontenttype_takes_the_record_content_type_as_the_data_type() -> None:
    envelope = _envelope(datacontenttype=_DROP)
    assert _decode(_structured(envelope, "application/json")).status == "210"
    assert _rejection(_structured(envelope, "text/plain")) is Reason.UNSUPPORTED_CONTENT_TYPE
    assert _rejection(_structured(_envelope(datacontenttype="text/plain"), None)) is Reason.UNSUPPORTED_CONTENT_TYPE


def test_json_without_specversion_and_without_headers_is_still_missing_header() -> None:
    assert _rejection(_structured(_envelope(specversion=_DROP), "application/json")) is Reason.MISSING_HEADER
    assert _rejection(_structured(_envelope()["data"], None)) is Reason.MISSING_HEADER


def test_null_attributes_count_as_absent() -> None:
    envelope = _envelope(subject=None, dataschema=None, datacontenttype=None)
    assert _decode(_structured(envelope)).status == "210"


def test_data_base64_with_json_datacontenttype_is_decoded() -> None:
    envelope = _envelope()
    data = json.dumps(envelope.pop("data")).encode()
    envelope["data_base64"] = base64.b64encode(data).decode()
    assert _decode(_structured(envelope)) == _decode(TestStructuredModeContract().valid_record())


@pytest.mark.parametrize(
    ("changes", "reason"),
    [
        ({"datacontenttype": "application/octet-stream"}, Reason.UNSUPPORTED_CONTENT_TYPE),
        ({"datacontenttype": "application/json; charset=iso-8859-1"}, Reason.UNSUPPORTED_CONTENT_TYPE),
        ({"data_base64": "not base64!"}, Reason.INVALID_ENCODING),
        ({"data_base64": base64.b64encode(b"\xff\xfe{}").decode()}, Reason.INVALID_ENCODING),
        ({"data_base64": base64.b64encode(b"[1]").decode()}, Reason.SCHEMA_INVALID),
        ({"data_base64": 5}, Reason.SCHEMA_INVALID),
    ],
)
def test_data_base64_is_refused_when_it_is_not_utf8_json_of_an_object(changes: dict[str, Any], reason: Reason) -> None:
    envelope = _envelope(data=_DROP)
    envelope.setdefault("data_base64", "e30=")
    envelope.update(changes)
    assert _rejection(_structured(envelope)) is reason


def test_data_and_data_base64_together_are_schema_invalid() -> None:
    assert _rejection(_structured(_envelope(data_base64="e30="))) is Reason.SCHEMA_INVALID


def test_binary_mode_accepts_json_content_types_and_an_empty_content_type() -> None:
    record = TestBinaryModeContract().valid_record()
    for content_type in (b"", b"application/json; charset=utf-8", b"text/json", b"application/vnd.leipzig+json"):
        headers = tuple((n, content_type if n == "content-type" else v) for n, v in record.headers)
        assert TestBinaryModeContract().adapter().decode(replace(record, headers=headers)).status == "300"
    headers = tuple((n, b"application/json; charset=latin-1" if n == "content-type" else v) for n, v in record.headers)
    assert _rejection(replace(record, headers=headers)) is Reason.UNSUPPORTED_CONTENT_TYPE


DUPLICATE = b'"statusText": "Erika Mustermann", "statusText": "Bitte zahlen Sie"'


def _with_duplicate(document: bytes) -> bytes:
    """``document`` (compact JSON with a statusText member) with that member written twice."""
    text = document.decode()
    start = text.index('"statusText"')
    end = text.index('"', text.index(":", start) + 2) + 1
    return (text[:start] + DUPLICATE.decode() + text[end:]).encode()


def test_duplicate_keys_are_malformed_json_in_data_envelope_and_headerless_envelope() -> None:
    binary = TestBinaryModeContract().valid_record()
    structured = TestStructuredModeContract().valid_record()
    records = [
        replace(binary, value=_with_duplicate(binary.value or b"")),
        replace(structured, value=_with_duplicate(structured.value or b"")),
        replace(structured, value=_with_duplicate(structured.value or b""), headers=()),
        replace(structured, value=(structured.value or b"").replace(b"{", b'{"id": "x",', 1)),
    ]
    for record in records:
        with pytest.raises(InputRejected) as caught:
            TestBinaryModeContract().adapter().decode(record)
        assert caught.value.reason is Reason.MALFORMED_JSON
        assert "statusText" not in caught.value.message and "Mustermann" not in caught.value.message


def test_duplicate_keys_in_json_that_is_no_event_are_still_missing_header() -> None:
    binary = TestBinaryModeContract().valid_record()
    assert _rejection(replace(binary, headers=(), value=_with_duplicate(binary.value or b""))) is Reason.MISSING_HEADER


def test_a_bidi_control_in_citizen_text_is_a_forbidden_character_in_every_mode() -> None:
    binary = TestBinaryModeContract().valid_record()
    data = json.loads(binary.value or b"")
    data["statusText"] = "Bitte \u202ezahlen"
    envelope = _envelope(data={**_envelope()["data"], "hinweistext": "Zeile\u2028zwei"})
    cases = [
        (replace(binary, value=json.dumps(data).encode()), "statusText: U+202E (Cf) not allowed"),
        (_structured(envelope), "hinweistext: U+2028 (Zl) not allowed"),
        (_structured(envelope, None), "hinweistext: U+2028 (Zl) not allowed"),
    ]
    for record, message in cases:
        with pytest.raises(InputRejected) as caught:
            TestBinaryModeContract().adapter().decode(record)
        assert caught.value.reason is Reason.FORBIDDEN_CHARACTER
        assert caught.value.message == message


def test_structured_mode_without_id_is_schema_invalid() -> None:
    record = TestStructuredModeContract().valid_record()
    envelope = json.loads(record.value or b"")
    del envelope["id"]
    assert _rejection(replace(record, value=json.dumps(envelope).encode())) is Reason.SCHEMA_INVALID


def test_unknown_data_keys_are_refused_not_dropped() -> None:
    record = TestBinaryModeContract().valid_record()
    data = json.loads(record.value or b"")
    data["statuszeit"] = data["statusZeit"]
    assert _rejection(replace(record, value=json.dumps(data).encode())) is Reason.SCHEMA_INVALID


def test_rejection_messages_name_fields_but_never_values() -> None:
    record = TestBinaryModeContract().valid_record()
    data = json.loads(record.value or b"")
    data["aktenzeichen"] = "Geheim\u0001Mustermann"
    with pytest.raises(InputRejected) as caught:
        TestBinaryModeContract().adapter().decode(replace(record, value=json.dumps(data).encode()))
    assert "aktenzeichen" in caught.value.message
    assert "Mustermann" not in caught.value.message


def test_sender_chosen_field_names_are_shown_as_extra_field() -> None:
    binary = TestBinaryModeContract().valid_record()
    data = json.loads(binary.value or b"")
    data["Erika Mustermann"] = "Leipzig"
    data["zahlung"]["Musterstraße 1"] = "x"
    with pytest.raises(InputRejected) as caught:
        TestBinaryModeContract().adapter().decode(replace(binary, value=json.dumps(data).encode()))
    assert caught.value.reason is Reason.SCHEMA_INVALID
    assert "(extra field): " in caught.value.message and "zahlung.(extra field): " in caught.value.message
    assert "Mustermann" not in caught.value.message and "Muster" not in caught.value.message
