"""CloudEvents adapter: the contract in binary and in structured mode, and the envelope rules."""

from __future__ import annotations

import json
from dataclasses import replace

import pytest

from adapters.inbound.base import InboundRecord
from adapters.inbound.samples import read_sample
from rueckkanal.errors import InputRejected, Reason
from tests.contract.inbound_contract import InboundAdapterContract
from tests.unit.factories import EXAMPLES_DIR

BINARY = EXAMPLES_DIR / "hundesteuer" / "hst-000123-04-300.json"
STRUCTURED = EXAMPLES_DIR / "hundesteuer" / "hst-000178-02-210.json"


class TestBinaryModeContract(InboundAdapterContract):
    fachverfahren = "hundesteuer"

    def valid_record(self) -> InboundRecord:
        return read_sample(BINARY).record("fv.hundesteuer.status")


class TestStructuredModeContract(InboundAdapterContract):
    fachverfahren = "hundesteuer"

    def valid_record(self) -> InboundRecord:
        return read_sample(STRUCTURED).record("fv.hundesteuer.status")


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


def test_structured_mode_data_base64_is_unsupported() -> None:
    record = TestStructuredModeContract().valid_record()
    envelope = json.loads(record.value or b"")
    envelope["data_base64"] = "e30="
    assert _rejection(replace(record, value=json.dumps(envelope).encode())) is Reason.UNSUPPORTED_CONTENT_TYPE


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
