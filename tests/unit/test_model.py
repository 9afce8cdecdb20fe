"""The canonical event: strict types, bounded fields, business rules, errors without values, fast JSON round trip."""

from __future__ import annotations

import json
from typing import Any

import pytest
from pydantic import ValidationError

from rueckkanal.errors import InputRejected, Reason
from rueckkanal.model import StatusEvent, load_json, parse_status_data
from tests.unit.factories import event, event_values

ZAHLUNG = {"betrag": "96.00", "verwendungszweck": "Hundesteuer 2024 Kassenzeichen 5212024000123"}


def rejection(**overrides: Any) -> InputRejected:
    with pytest.raises(InputRejected) as caught:
        event(**overrides)
    return caught.value


def test_round_trip_through_canonical_json_is_lossless() -> None:
    original = event(
        status="300",
        aktenzeichen="22.3-HSt-2024/0123",
        zahlung={**ZAHLUNG, "zahlungsUrl": "https://epayment.leipzig.de/x?kz=1", "faelligkeit": "2024-04-15"},
        hinweistext="Zeile 1\nZeile 2",
    )
    assert StatusEvent.from_json_bytes(original.to_json_bytes()) == original
    assert json.loads(original.to_json_bytes())["zahlung"]["zahlungsUrl"].startswith("https://")


def test_vorgang_key_separates_fachverfahren_with_the_same_vorgang_id() -> None:
    first = event(vorgangId="4711")
    second = event(vorgangId="4711", source="urn:de:leipzig:fachverfahren:bewohnerparken")
    assert first.vorgang_key != second.vorgang_key
    assert first.vorgang_key == "urn:de:leipzig:fachverfahren:hundesteuer|4711"


def test_status_text_defaults_to_the_code_list_label() -> None:
    assert event(status="220").effective_status_text == "Unterlagen vollständig"
    assert event(status="220", statusText="Alles da").effective_status_text == "Alles da"


def test_unknown_status_has_its_own_reason() -> None:
    assert rejection(status="999").reason is Reason.UNKNOWN_STATUS


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"statusZeit": "2024-03-04T08:12:31"}, "statusZeit"),  # naive
        ({"statusZeit": "1999-12-31T23:00:00Z"}, "statusZeit"),  # out of range
        ({"statusZeit": "2024-03-04T08:12:31+14:30"}, "statusZeit"),  # beyond the XSD zone range
        ({"status": 100}, "status"),  # strict: no number for a code
        ({"leistung": "9910800100000"}, "leistung"),  # 13 digits
        ({"vorgangId": "A|B"}, "vorgangId"),  # would break the Vorgang key
        ({"statusText": "x" * 51}, "statusText"),
        ({"zusatzinformation": "x" * 101}, "zusatzinformation"),
        ({"entscheidung": "99"}, "entscheidung"),
        ({"source": "kein uri"}, "source"),
        ({"status": "300", "zahlung": {**ZAHLUNG, "betrag": "0.00"}}, "betrag"),
        ({"status": "300", "zahlung": {**ZAHLUNG, "betrag": "1.005"}}, "betrag"),
        ({"status": "300", "zahlung": {**ZAHLUNG, "zahlungsUrl": "http://x.de"}}, "zahlungsUrl"),
        ({"status": "300", "zahlung": {**ZAHLUNG, "waehrung": "eur"}}, "waehrung"),
    ],
)
def test_field_violations_are_schema_invalid_and_name_the_field(overrides: dict[str, Any], field: str) -> None:
    refused = rejection(**overrides)
    assert refused.reason is Reason.SCHEMA_INVALID
    assert field in refused.message


def test_a_line_break_in_a_single_line_field_is_a_forbidden_character() -> None:
    refused = rejection(statusText="zwei\nZeilen")
    assert (refused.reason, refused.message) == (Reason.FORBIDDEN_CHARACTER, "statusText: U+000A (Cc) not allowed")


@pytest.mark.parametrize(
    ("status", "field"), [("210", "frist"), ("300", "zahlung"), ("400", "entscheidung"), ("410", "frist")]
)
def test_statuses_require_their_detail(status: str, field: str) -> None:
    refused = rejection(status=status)
    assert refused.reason is Reason.SCHEMA_INVALID
    assert field in refused.message


@pytest.mark.parametrize(
    "zweck",
    [
        "Erstattung DE89370400440532013000",
        "IBAN DE89 3704 0044 0532 0130 00",
        "Konto: GB29NWBK60161331926819.",
    ],
)
def test_verwendungszweck_never_carries_an_iban(zweck: str) -> None:
    refused = rejection(status="300", zahlung={**ZAHLUNG, "verwendungszweck": zweck})
    assert "verwendungszweck" in refused.message


@pytest.mark.parametrize(
    "zweck", ["Gewerberegisterauszug Kassenzeichen 6410240912", "Kz. 52120240001234567890", "Bewohnerparken Zone 31"]
)
def test_verwendungszweck_allows_long_words_and_long_numbers(zweck: str) -> None:
    assert event(status="300", zahlung={**ZAHLUNG, "verwendungszweck": zweck}).zahlung is not None


def test_messages_never_contain_the_values() -> None:
    refused = rejection(aktenzeichen="Erika\u0007Mustermann", statusText="Frau Mustermann " * 5)
    assert "Mustermann" not in refused.message


def test_malformed_json_has_its_own_reason() -> None:
    with pytest.raises(InputRejected) as caught:
        StatusEvent.from_json_bytes(b'{"source": ')
    assert caught.value.reason is Reason.MALFORMED_JSON


def test_events_are_frozen() -> None:
    with pytest.raises(ValidationError):
        event().status = "200"  # type: ignore[misc]


def test_python_values_are_validated_the_same_way() -> None:
    valid = event()
    values = {**event_values(), "statusZeit": valid.status_time}
    assert StatusEvent.from_mapping(values) == valid
    with pytest.raises(InputRejected):
        StatusEvent.from_mapping({**values, "statusZeit": valid.status_time.replace(tzinfo=None)})


ZAHLUNG_300 = {"status": "300"}
CITIZEN_FIELDS = [
    ("statusText", lambda text: {"statusText": text}),
    ("zusatzinformation", lambda text: {"zusatzinformation": text}),
    ("hinweistext", lambda text: {"hinweistext": text}),
    ("aktenzeichen", lambda text: {"aktenzeichen": text}),
    ("zahlung.verwendungszweck", lambda text: {**ZAHLUNG_300, "zahlung": {**ZAHLUNG, "verwendungszweck": text}}),
]


@pytest.mark.parametrize(("field", "place"), CITIZEN_FIELDS, ids=[field for field, _ in CITIZEN_FIELDS])
@pytest.mark.parametrize(
    ("char", "category"),
    [("\u202e", "Cf"), ("\u200b", "Cf"), ("\ufeff", "Cf"), ("\u00ad", "Cf"), ("\u2028", "Zl"), ("\u2029", "Zp")],
)
def test_citizen_text_refuses_invisible_characters_naming_field_and_code_point(
    field: str, place: Any, char: str, category: str
) -> None:
    refused = rejection(**place(f"Kassenzeichen{char}4711"))
    assert refused.reason is Reason.FORBIDDEN_CHARACTER
    assert refused.message == f"{field}: U+{ord(char):04X} ({category}) not allowed"


@pytest.mark.parametrize(("field", "place"), CITIZEN_FIELDS, ids=[field for field, _ in CITIZEN_FIELDS])
def test_citizen_text_is_nfc_normalised(field: str, place: Any) -> None:
    decomposed = "Gebu\u0308hren fu\u0308r Zone 31"
    normalised = event(**place(decomposed))
    dumped = json.loads(normalised.to_json_bytes())
    value = dumped["zahlung"]["verwendungszweck"] if field.startswith("zahlung.") else dumped[field]
    # payment text is reduced to the SEPA character set after NFC: ü → ue
    assert value == ("Gebuehren fuer Zone 31" if field.startswith("zahlung.") else "Gebühren für Zone 31")


def test_nfc_happens_before_the_length_check() -> None:
    assert event(statusText="u\u0308" * 50).status_text == "ü" * 50


def test_multi_line_text_keeps_line_feeds_but_not_unicode_separators() -> None:
    assert event(hinweistext="Zeile 1\r\nZeile 2").hinweistext == "Zeile 1\r\nZeile 2"
    assert rejection(hinweistext="Zeile 1\u2028Zeile 2").reason is Reason.FORBIDDEN_CHARACTER


def test_ids_are_not_normalised_and_keep_their_ascii_pattern() -> None:
    refused = rejection(vorgangId="HST-\u212a-1")  # KELVIN SIGN, NFC would make it a plain K
    assert refused.reason is Reason.SCHEMA_INVALID
    assert rejection(postfachReferenz="bundid:\u200bx").reason is Reason.SCHEMA_INVALID


def test_forbidden_character_wins_over_other_schema_errors() -> None:
    refused = rejection(statusText="a\u202eb", leistung="1")
    assert refused.reason is Reason.FORBIDDEN_CHARACTER
    assert "leistung" in refused.message


def test_field_names_the_sender_chose_are_shown_as_extra_field() -> None:
    refused = rejection(**{"Erika Mustermann": 1}, status="300", zahlung={**ZAHLUNG, "Musterweg 5": "x"})
    assert refused.reason is Reason.SCHEMA_INVALID
    assert "(extra field): Extra inputs are not permitted" in refused.message
    assert "zahlung.(extra field): Extra inputs are not permitted" in refused.message
    assert "Mustermann" not in refused.message and "Musterweg" not in refused.message


@pytest.mark.parametrize(
    "document",
    [b'{"a": 1, "a": 2}', b'{"a": {"b": 1, "b": 1}}', b'[{"x": 1, "x": 1}]', b'{"a": NaN}', b'{"a": 1', b"\xff"],
)
def test_load_json_refuses_duplicates_constants_and_broken_text_as_malformed(document: bytes) -> None:
    with pytest.raises(InputRejected) as caught:
        load_json(document)
    assert caught.value.reason is Reason.MALFORMED_JSON
    assert caught.value.message in ("not valid JSON", "not valid JSON: duplicate object key")


def test_status_data_with_a_duplicate_key_is_malformed_not_last_wins() -> None:
    values = event_values()
    text = json.dumps(values)
    with pytest.raises(InputRejected) as caught:
        parse_status_data(text.replace('"status": "100"', '"status": "100", "status": "999"').encode())
    assert caught.value.reason is Reason.MALFORMED_JSON


PAYEE = {"empfaenger": "Stadt Leipzig, Stadtkasse", "iban": "DE90 8605 5592 1100 0001 23", "bic": "WELADE8LXXX"}


def test_payee_account_is_kept_in_electronic_form() -> None:
    zahlung = event(status="300", zahlung={**ZAHLUNG, **PAYEE, "kassenzeichen": "5212024000123"}).zahlung
    assert zahlung is not None
    assert (zahlung.iban, zahlung.bic, zahlung.kassenzeichen) == (
        "DE90860555921100000123",
        "WELADE8LXXX",
        "5212024000123",
    )


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("iban", "DE91860555921100000123"),  # check digits off by one
        ("iban", "DE9086055592110000012"),  # one digit short for Germany
        ("bic", "WELADE8"),
        ("kassenzeichen", "52120240001234567890123456789012345X"),  # 36 characters
        ("kassenzeichen", "KZ;1"),
    ],
)
def test_invalid_payee_fields_are_refused_without_their_value(field: str, value: str) -> None:
    refused = rejection(status="300", zahlung={**ZAHLUNG, **PAYEE, field: value})
    assert refused.reason is Reason.SCHEMA_INVALID
    assert field in refused.message
    assert value not in refused.message


@pytest.mark.parametrize("without", ["empfaenger", "iban"])
def test_an_account_names_its_payee_and_a_bic_needs_an_iban(without: str) -> None:
    refused = rejection(status="300", zahlung={**ZAHLUNG, **PAYEE, without: None})
    assert refused.reason is Reason.SCHEMA_INVALID
