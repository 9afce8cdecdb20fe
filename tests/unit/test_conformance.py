"""Conformance of XAntragsstatus 2.0.0: DIN SPEC 91379 text, both XSD engines, the 1.0 migration goldens.

* Every character and sequence of the DIN SPEC 91379 list that a field's datatype allows is accepted unchanged by
  the event model and the rendered message is valid for lxml and for xmlschema; a sample of characters outside is
  refused (``forbidden_character``) or transliterated exactly as ``docs/xantragsstatus.md`` documents, and the XSD
  refuses them too when they are written into a message directly, bypassing the model.
* lxml and xmlschema give the same verdict on every golden and on 1,000 generated messages (valid and invalid).
* The messages of version 1.0 stay valid against the 1.0 schema, which is kept for receivers that migrate; the
  2.0.0 schema refuses them (another namespace).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from functools import cache
from pathlib import Path
from typing import Any

import pytest
import xmlschema
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from lxml import etree

from rueckkanal import latinchars
from rueckkanal.errors import EventInvalid, Reason
from rueckkanal.lifecycle import VorgangState
from rueckkanal.model import TEXT_RULES, StatusEvent
from rueckkanal.settings import XoevSettings
from rueckkanal.xoev import XSD_PATH, MessageRenderer, xsd
from tests.unit.factories import FIXED_CREATED_AT, FIXTURES_DIR, event_values

RENDERER = MessageRenderer(XoevSettings(produktversion="0.1.0"))
GOLDEN_1_0 = FIXTURES_DIR / "golden-1.0"
XSD_1_0 = XSD_PATH.parent / "xantragsstatus-1.0.xsd"
ZAHLUNG = {"betrag": "10.00", "verwendungszweck": "Gebuehr"}

#: field → (place the value in the event, element path in the message, max length)
FIELDS: dict[str, tuple[Any, str, int]] = {
    "statusText": (lambda v: {"statusText": v}, "statusereignis/statusText", 50),
    "zusatzinformation": (lambda v: {"zusatzinformation": v}, "statusereignis/zusatzinformation", 100),
    "hinweistext": (lambda v: {"hinweistext": v}, "statusereignis/hinweis", 500),
    "aktenzeichen": (lambda v: {"aktenzeichen": v}, "vorgang/aktenzeichen", 64),
}


@cache
def xmlschema_2() -> xmlschema.XMLSchema:
    return xmlschema.XMLSchema(str(XSD_PATH))


def render(values: dict[str, Any]) -> bytes:
    accepted = StatusEvent.from_json_bytes(json.dumps(event_values(**values)).encode())
    state = VorgangState(accepted.status, 1, accepted.status_time, (accepted.event_id,))
    return RENDERER.render(accepted, state, created_at=FIXED_CREATED_AT).xml


def units(field: str) -> list[str]:
    """Every character and sequence the field's datatype allows."""
    rule = TEXT_RULES[field]
    chars = latinchars.characters(rule.datatype, single_line=rule.single_line)
    return sorted(chars) + list(latinchars.sequences(rule.datatype))


def chunks(field: str, limit: int) -> Iterator[str]:
    """All units of the field, each after a blank (a combining mark must not compose with its neighbour under
    NFC), in values of at most ``limit`` characters."""
    current = ""
    for unit in units(field):
        piece = " " + unit
        if len(current) + len(piece) > limit:
            yield current
            current = ""
        current += piece
    if current:
        yield current


@pytest.mark.parametrize("field", sorted(FIELDS))
def test_every_allowed_character_and_sequence_passes_the_model_and_both_xsd_engines(field: str) -> None:
    place, path, limit = FIELDS[field]
    seen = 0
    for value in chunks(field, limit):
        xml = render(place(value))
        root = etree.fromstring(xml)
        assert root.findtext(path) == value  # accepted unchanged
        assert xsd().validate(root)
        xmlschema_2().validate(xml.decode())
        seen += len(value)
    rule = TEXT_RULES[field]
    assert seen >= len(latinchars.characters(rule.datatype, single_line=rule.single_line))


# A sample outside each set: (character, what the documented rule does with it: None = refused, else the result).
OUTSIDE_C = [
    ("\u2603", None),  # SNOWMAN
    ("\U0001f600", None),  # an emoji
    ("\u03b1", None),  # Greek small alpha: datatype D/E only
    ("\u0416", None),  # Cyrillic Zhe
    ("\u200b", None),  # ZERO WIDTH SPACE
    ("\u202e", None),  # RIGHT-TO-LEFT OVERRIDE
    ("\u0007", None),  # BELL
    ("\u2122", None),  # TRADE MARK SIGN: extended non-letter (enl)
    ("\u2013", "-"),  # EN DASH: typographic replacement
    ("\u201e", '"'),  # DOUBLE LOW-9 QUOTATION MARK
    ("\u2026", "..."),  # HORIZONTAL ELLIPSIS
]
OUTSIDE_B = [
    ("\u00a4", None),  # CURRENCY SIGN: N3, not in B
    ("\u00bd", None),  # VULGAR FRACTION ONE HALF: N3
    ("\u00a0", None),  # NO-BREAK SPACE: N4
    ("\u2013", None),  # EN DASH: an Aktenzeichen is never changed
    ("\u03b1", None),
]


@pytest.mark.parametrize(
    ("field", "char", "result"),
    [(f, c, r) for f in ("statusText", "zusatzinformation", "hinweistext") for c, r in OUTSIDE_C]
    + [("aktenzeichen", c, r) for c, r in OUTSIDE_B],
)
def test_characters_outside_are_refused_or_transliterated_as_documented(
    field: str, char: str, result: str | None
) -> None:
    place, path, _ = FIELDS[field]
    value = f"Az 7{char}11"
    if result is None:
        with pytest.raises(EventInvalid) as refused:
            render(place(value))
        assert refused.value.reason is Reason.FORBIDDEN_CHARACTER
        assert f"U+{ord(char):04X}" in refused.value.message and value not in refused.value.message
    else:
        assert etree.fromstring(render(place(value))).findtext(path) == f"Az 7{result}11"
    if ord(char) < 0x20:
        return  # XML 1.0 cannot carry it at all: no message can contain it
    # The schema refuses the character itself, whatever the model does with it.
    valid = etree.fromstring(render(place("Az 711")))
    target = valid.find(path)
    assert target is not None
    target.text = value
    assert not xsd().validate(valid)
    assert not xmlschema_2().is_valid(etree.tostring(valid).decode())


@pytest.mark.parametrize(
    ("given_text", "sent"),
    [
        ("Gebühr Müller Straße", "Gebuehr Mueller Strasse"),
        ("Łódź Çelik Øre", "Lodz Celik Ore"),
        ("Rechnung „Nr. 5“ – Teil 1", "Rechnung 'Nr. 5' - Teil 1"),
    ],
)
def test_payment_text_is_transliterated_to_the_sepa_character_set(given_text: str, sent: str) -> None:
    xml = render({"status": "300", "zahlung": {**ZAHLUNG, "verwendungszweck": given_text, "empfaenger": given_text}})
    root = etree.fromstring(xml)
    assert root.findtext("statusereignis/zahlung/verwendungszweck") == sent
    assert root.findtext("statusereignis/zahlung/empfaenger") == sent


@pytest.mark.parametrize("char", ["€", "α", "\u2603", "@"])
def test_payment_text_that_cannot_be_transliterated_is_refused(char: str) -> None:
    with pytest.raises(EventInvalid) as refused:
        render({"status": "300", "zahlung": {**ZAHLUNG, "verwendungszweck": f"Gebuehr {char} 5"}})
    assert refused.value.reason is Reason.FORBIDDEN_CHARACTER


GOLDENS = sorted((FIXTURES_DIR / "golden").glob("*/*.xml"))


@pytest.mark.parametrize("golden", GOLDENS, ids=lambda path: path.name)
def test_lxml_and_xmlschema_agree_on_every_golden(golden: Path) -> None:
    assert xsd().validate(etree.parse(str(golden))) is True
    assert xmlschema_2().is_valid(str(golden)) is True


# Generated messages: a valid golden whose text fields, codes and optional elements are replaced by drawn values,
# some inside the character sets, some outside. Both engines must give the same verdict on each.
_BASE = etree.fromstring((FIXTURES_DIR / "golden" / "hundesteuer" / "hst-000205-03-0102.xml").read_bytes())
_C_UNITS = units("hinweistext")
_OUTSIDE = ["\u2603", "\u03b1", "\u200b", "\u2013", "\U0001f600", "\u00ad", "\u2028", "\u0301", "\t", "x" * 60]
TEXT = st.lists(st.one_of(st.sampled_from(_C_UNITS), st.sampled_from(_OUTSIDE)), min_size=0, max_size=12).map("".join)
PATHS = [
    "statusereignis/statusText",
    "statusereignis/zusatzinformation",
    "vorgang/aktenzeichen",
    "nachrichtenkopf.g2g/autor/behoerdenname",
    "statusereignis/zahlung/verwendungszweck",
    "statusereignis/zahlung/empfaenger",
    "statusereignis/status/code",
    "bezug/nachrichtenUUID",
]


@settings(max_examples=1000, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    changes=st.dictionaries(st.sampled_from(PATHS), TEXT, max_size=3),
    drop=st.sets(st.sampled_from(["vorgang/aktenzeichen", "statusereignis/zusatzinformation", "aktuellerStatus"])),
    list_uri=st.booleans(),
)
def test_lxml_and_xmlschema_agree_on_generated_messages(
    changes: dict[str, str], drop: set[str], list_uri: bool
) -> None:
    root = etree.fromstring(etree.tostring(_BASE))
    for path, text in changes.items():
        target = root.find(path)
        assert target is not None
        target.text = text
    for path in drop:
        target = root.find(path)
        if target is not None:
            target.getparent().remove(target)  # type: ignore[union-attr]
    if not list_uri:  # listURI and listVersionID are optional (fixed): a sender may leave them out
        for element in root.iter():
            element.attrib.pop("listURI", None)
            element.attrib.pop("listVersionID", None)
    text = etree.tostring(root, encoding="unicode")
    assert xsd().validate(root) == xmlschema_2().is_valid(text), (changes, drop, list_uri)


GOLDENS_1_0 = sorted(GOLDEN_1_0.glob("*/*.xml"))


def test_version_1_0_messages_stay_valid_against_their_own_schema_and_not_against_2_0_0() -> None:
    """The migration test: 1.0 receivers keep their schema; a 2.0.0 receiver recognises 1.0 by its namespace."""
    assert len(GOLDENS_1_0) >= 30
    old = etree.XMLSchema(etree.parse(str(XSD_1_0)))
    old_xmlschema = xmlschema.XMLSchema(str(XSD_1_0))
    for golden in GOLDENS_1_0:
        document = etree.parse(str(golden))
        assert old.validate(document), golden.name
        assert old_xmlschema.is_valid(str(golden)), golden.name
        assert not xsd().validate(document), golden.name
        assert etree.QName(document.getroot()).namespace == "urn:xoev-de:rueckkanal:standard:xantragsstatus"


def test_a_1_0_message_is_refused_by_the_portal_with_v000() -> None:
    from adapters.portal.sim.inbound import Refused, read_statusmeldung

    body = (GOLDEN_1_0 / "hundesteuer" / "hst-000123-04-300.xml").read_bytes()
    refused = read_statusmeldung(body, max_bytes=1 << 20, idempotency_key=None)
    assert isinstance(refused, Refused) and refused.code == "V000"
    assert json.dumps(refused.text)  # a text without values from the message
