"""The contract every inbound adapter keeps, as one base class subclassed per adapter (FastStream's pattern).

A subclass says which shipped Fachverfahren it tests (``fachverfahren``) and gives one valid record of it
(``valid_record``); every test here then holds for that adapter:

* a valid record decodes to a :class:`StatusEvent` of the configured source, the same event every time;
* garbage, an empty value and an oversized value are refused with a typed rejection and a precise reason;
* whatever the bytes (random, or a valid payload with random damage), the result is an event or an
  :class:`InputRejected` with a :class:`Reason`, never any other exception;
* citizen text (``with_status_text``) is NFC-normalised, and a format character (bidi control, zero-width, BOM,
  soft hyphen) or a line/paragraph separator in it is ``forbidden_character``, named by code point, never shown;
* for a JSON format (:class:`JsonInboundAdapterContract`), a duplicate key is ``malformed_json``, the key not named.
"""

from __future__ import annotations

import json
from dataclasses import replace

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from adapters.inbound.base import InboundAdapter, InboundRecord
from adapters.inbound.config import FachverfahrenConfig, build_adapter
from rueckkanal.errors import InputRejected, Reason
from rueckkanal.model import StatusEvent
from tests.unit.factories import shipped_fachverfahren

FUZZ = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@st.composite
def damaged(draw: st.DrawFn, payload: bytes) -> bytes:
    """``payload`` with a random slice replaced by random bytes: near-valid input, where parsers break."""
    start = draw(st.integers(0, len(payload)))
    end = draw(st.integers(start, min(len(payload), start + 64)))
    return payload[:start] + draw(st.binary(max_size=64)) + payload[end:]


FORBIDDEN = ["\u202e", "\u200b", "\ufeff", "\u00ad", "\u2066", "\u2028", "\u2029"]


class InboundAdapterContract:
    fachverfahren: str

    def valid_record(self) -> InboundRecord:
        raise NotImplementedError

    def with_status_text(self, text: str) -> InboundRecord:
        """The valid record with ``text`` where the format carries the citizen's status line."""
        raise NotImplementedError

    def config(self) -> FachverfahrenConfig:
        return shipped_fachverfahren()[self.fachverfahren]

    def adapter(self) -> InboundAdapter:
        return build_adapter(self.config())

    def outcome(self, record: InboundRecord) -> StatusEvent | Reason:
        """The event, or the rejection's reason; any other exception fails the test that calls it."""
        try:
            return self.adapter().decode(record)
        except InputRejected as rejected:
            assert isinstance(rejected.reason, Reason)
            assert rejected.message
            return rejected.reason

    def test_valid_record_decodes_to_an_event_of_the_configured_source(self) -> None:
        event = self.adapter().decode(self.valid_record())
        assert event.source == self.config().source
        assert event.vorgang_key.startswith(f"{self.config().source}|")

    def test_decoding_is_deterministic(self) -> None:
        record = self.valid_record()
        assert self.adapter().decode(record) == self.adapter().decode(record)

    def test_garbage_is_refused_with_a_reason(self) -> None:
        outcome = self.outcome(replace(self.valid_record(), value=b"\x00\x9f garbage \xff{<"))
        assert isinstance(outcome, Reason)
        assert outcome is not Reason.INTERNAL_ERROR

    def test_empty_value_is_refused(self) -> None:
        assert isinstance(self.outcome(replace(self.valid_record(), value=None)), Reason)

    def test_oversized_value_is_refused_before_parsing(self) -> None:
        record = self.valid_record()
        oversized = (record.value or b"") + b" " * (self.config().max_payload_bytes + 1)
        assert self.outcome(replace(record, value=oversized)) is Reason.PAYLOAD_TOO_LARGE

    # The property tests build their @given function per call: hypothesis refuses one decorated method shared by
    # several subclasses ("differing executors"), and each adapter deserves its own examples anyway.

    def test_any_bytes_give_an_event_or_a_typed_rejection(self) -> None:
        record = self.valid_record()

        @FUZZ
        @given(value=st.binary(max_size=2048))
        def check(value: bytes) -> None:
            assert self.outcome(replace(record, value=value)) is not Reason.INTERNAL_ERROR

        check()

    def test_damaged_valid_payloads_give_an_event_or_a_typed_rejection(self) -> None:
        record = self.valid_record()

        @FUZZ
        @given(value=damaged(record.value or b""))
        def check(value: bytes) -> None:
            assert self.outcome(replace(record, value=value)) is not Reason.INTERNAL_ERROR

        check()

    def test_any_headers_give_an_event_or_a_typed_rejection(self) -> None:
        record = self.valid_record()
        names = st.sampled_from(["ce_id", "ce_source", "ce_specversion", "ce_type", "content-type", "x"])

        @FUZZ
        @given(headers=st.lists(st.tuples(names, st.binary(max_size=64)), max_size=6))
        def check(headers: list[tuple[str, bytes]]) -> None:
            outcome = self.outcome(replace(record, headers=record.headers + tuple(headers)))
            assert outcome is not Reason.INTERNAL_ERROR

        check()

    @pytest.mark.parametrize("char", FORBIDDEN, ids=[f"U+{ord(c):04X}" for c in FORBIDDEN])
    def test_a_forbidden_character_in_citizen_text_is_refused_by_code_point(self, char: str) -> None:
        with pytest.raises(InputRejected) as caught:
            self.adapter().decode(self.with_status_text(f"Ihr Antrag{char}Mustermann"))
        assert caught.value.reason is Reason.FORBIDDEN_CHARACTER
        assert f"statusText: U+{ord(char):04X} (" in caught.value.message
        assert "Mustermann" not in caught.value.message and char not in caught.value.message

    def test_citizen_text_is_nfc_normalised(self) -> None:
        event = self.adapter().decode(self.with_status_text("Gebu\u0308hr fu\u0308r Sie"))
        assert event.status_text == "Gebühr für Sie"


class JsonInboundAdapterContract(InboundAdapterContract):
    """The contract of an adapter whose record value is a JSON object."""

    def test_a_duplicate_json_key_is_malformed_json_without_naming_it(self) -> None:
        record = self.valid_record()
        value = record.value or b""
        first = next(iter(json.loads(value)))
        duplicate = json.dumps(first).encode() + b': "Erika", '
        with pytest.raises(InputRejected) as caught:
            self.adapter().decode(replace(record, value=value[:1] + duplicate + value[1:]))
        assert caught.value.reason is Reason.MALFORMED_JSON
        assert first not in caught.value.message and "Erika" not in caught.value.message
