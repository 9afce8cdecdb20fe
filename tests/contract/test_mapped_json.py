"""Mapped JSON adapter (Bewohnerparken): the contract, and the mapping rules for legacy JSON."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import timedelta
from decimal import Decimal
from typing import Any

import pytest

from adapters.inbound.base import InboundRecord
from adapters.inbound.mapped_json import lookup
from adapters.inbound.samples import read_sample
from rueckkanal.errors import InputRejected, Reason
from rueckkanal.model import StatusEvent
from tests.contract.inbound_contract import JsonInboundAdapterContract
from tests.unit.factories import EXAMPLES_DIR

PAYMENT = EXAMPLES_DIR / "bewohnerparken" / "bwp-004711-05-geb.json"


class TestMappedJsonContract(JsonInboundAdapterContract):
    fachverfahren = "bewohnerparken"

    def valid_record(self) -> InboundRecord:
        return read_sample(PAYMENT).record("fv.bewohnerparken.status")

    def with_status_text(self, text: str) -> InboundRecord:
        record = self.valid_record()
        document = json.loads(record.value or b"")
        document["bearbeitung"]["text"] = text
        return replace(record, value=json.dumps(document).encode())


def _decode(change: dict[str, Any] | None = None, *, drop_meldung_id: bool = False) -> StatusEvent:
    record = TestMappedJsonContract().valid_record()
    document = json.loads(record.value or b"")
    for path, value in (change or {}).items():
        section, key = path.split(".")
        document[section][key] = value
    if drop_meldung_id:
        del document["meldungId"]
    return TestMappedJsonContract().adapter().decode(replace(record, value=json.dumps(document).encode()))


def test_native_codes_local_times_and_german_dates_become_canonical() -> None:
    event = _decode()
    assert event.status == "300"
    assert event.status_time.utcoffset() == timedelta(hours=2)  # May: CEST, from the configured zone
    assert event.zahlung is not None
    assert event.zahlung.betrag == Decimal("30.7")
    assert event.zahlung.faelligkeit is not None and event.zahlung.faelligkeit.isoformat() == "2024-05-24"
    assert event.leistung == "99102011000000"  # fixed in the mapping
    assert event.event_id == "BWP-M-4711-05"


def test_winter_times_get_the_winter_offset() -> None:
    event = _decode({"bearbeitung.zeit": "2024-01-10 13:46:30"})
    assert event.status_time.utcoffset() == timedelta(hours=1)


def test_numeric_vorgang_numbers_are_taken_as_text() -> None:
    assert _decode({"antrag.nummer": 4711}).vorgang_id == "4711"


def test_unmapped_native_status_is_an_unknown_status() -> None:
    with pytest.raises(InputRejected) as caught:
        _decode({"bearbeitung.code": "ARCHIV"})
    assert caught.value.reason is Reason.UNKNOWN_STATUS


def test_time_in_another_format_is_schema_invalid() -> None:
    with pytest.raises(InputRejected) as caught:
        _decode({"bearbeitung.zeit": "10.05.2024 13:46"})
    assert caught.value.reason is Reason.SCHEMA_INVALID


def test_without_event_id_field_the_id_is_missing() -> None:
    with pytest.raises(InputRejected) as caught:
        _decode(drop_meldung_id=True)
    assert caught.value.reason is Reason.SCHEMA_INVALID


def test_non_object_json_is_schema_invalid_and_nan_is_malformed() -> None:
    adapter = TestMappedJsonContract().adapter()
    record = TestMappedJsonContract().valid_record()
    for value, reason in ((b"[1, 2]", Reason.SCHEMA_INVALID), (b'{"a": NaN}', Reason.MALFORMED_JSON)):
        with pytest.raises(InputRejected) as caught:
            adapter.decode(replace(record, value=value))
        assert caught.value.reason is reason


def test_lookup_walks_objects_and_lists() -> None:
    document = {"a": {"b": [{"c": "x"}]}}
    assert lookup(document, "a.b.0.c") == "x"
    assert lookup(document, "a.b.1.c") is None
    assert lookup(document, "a.z") is None


def test_a_mapped_field_holding_an_object_does_not_echo_its_keys() -> None:
    with pytest.raises(InputRejected) as caught:
        _decode({"bearbeitung.text": {"Erika Mustermann": "Musterstraße 1"}, "gebuehr.zweck": {"DE02 1203": 1}})
    assert caught.value.reason is Reason.SCHEMA_INVALID
    assert "statusText" in caught.value.message
    assert "Mustermann" not in caught.value.message and "DE02" not in caught.value.message


def test_a_correction_names_the_event_it_corrects_through_its_mapped_field() -> None:
    assert _decode().berichtigt is None
    event = _decode({"bearbeitung.berichtigtMeldungId": "BWP-M-4711-04"})
    assert event.berichtigt == "BWP-M-4711-04"
