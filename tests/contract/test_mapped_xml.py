"""Mapped XML adapter (Gewerberegister): the contract, and XPath mapping of ISO-8859-1 legacy XML."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

import pytest

from adapters.inbound.base import InboundRecord
from adapters.inbound.samples import read_sample
from rueckkanal.errors import InputRejected, Reason
from tests.contract.inbound_contract import InboundAdapterContract
from tests.unit.factories import EXAMPLES_DIR

PAYMENT = EXAMPLES_DIR / "gewerberegister" / "ga-000912-03-s5.json"
REJECTED = EXAMPLES_DIR / "gewerberegister" / "ga-001037-03-s7.json"


class TestMappedXmlContract(InboundAdapterContract):
    fachverfahren = "gewerberegister"

    def valid_record(self) -> InboundRecord:
        return read_sample(PAYMENT).record("fv.gewerberegister.status")

    def with_status_text(self, text: str) -> InboundRecord:
        """Characters beyond ISO-8859-1 as XML character references, as a legacy system writes them."""
        record = self.valid_record()
        original = "<gw:Text>Gebühr für den Registerauszug</gw:Text>".encode("iso-8859-1")
        replacement = f"<gw:Text>{text}</gw:Text>".encode("iso-8859-1", "xmlcharrefreplace")
        assert original in (record.value or b"")
        return replace(record, value=(record.value or b"").replace(original, replacement))


def test_attributes_elements_and_umlauts_from_iso_8859_1_are_mapped() -> None:
    record = TestMappedXmlContract().valid_record()
    assert "Gebühr".encode("iso-8859-1") in (record.value or b"")
    event = TestMappedXmlContract().adapter().decode(record)
    assert event.vorgang_id == "GA-2024-000912"
    assert event.status == "300"
    assert event.status_text == "Gebühr für den Registerauszug"
    assert event.status_time.utcoffset() == timedelta(hours=2)
    assert event.zahlung is not None and event.zahlung.waehrung == "EUR"


def test_native_entscheidung_is_translated() -> None:
    event = TestMappedXmlContract().adapter().decode(read_sample(REJECTED).record("fv.gewerberegister.status"))
    assert (event.status, event.entscheidung) == ("400", "03")


def test_a_utf16_document_with_doctype_is_still_refused() -> None:
    record = TestMappedXmlContract().valid_record()
    text = (record.value or b"").decode("iso-8859-1").replace('encoding="ISO-8859-1"', 'encoding="UTF-16"')
    text = text.replace("?>\n", '?>\n<!DOCTYPE gw:Statusmitteilung [<!ENTITY a "b">]>\n', 1)
    with pytest.raises(InputRejected) as caught:
        TestMappedXmlContract().adapter().decode(replace(record, value=text.encode("utf-16")))
    assert caught.value.reason is Reason.XML_FORBIDDEN_CONSTRUCT


def test_missing_mapped_element_is_schema_invalid() -> None:
    record = TestMappedXmlContract().valid_record()
    value = (record.value or b"").replace(b"<gw:Zeitstempel>2024-06-03T11:00:40</gw:Zeitstempel>", b"")
    with pytest.raises(InputRejected) as caught:
        TestMappedXmlContract().adapter().decode(replace(record, value=value))
    assert caught.value.reason is Reason.SCHEMA_INVALID
