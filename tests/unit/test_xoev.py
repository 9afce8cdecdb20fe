"""The XAntragsstatus renderer, the portal answers, and the property that every accepted event renders valid."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from lxml import etree

from rueckkanal.errors import DecodeError, EventInvalid, InputRejected, Reason, RenderError
from rueckkanal.lifecycle import VorgangState
from rueckkanal.model import (
    HTTPS_URL_PATTERN,
    PRINTABLE_PATTERN,
    URI_PATTERN,
    VERWENDUNGSZWECK_PATTERN,
    VORGANG_ID_PATTERN,
    StatusEvent,
)
from rueckkanal.settings import XoevSettings
from rueckkanal.xoev import (
    NAMESPACE,
    QUITTUNG,
    STATUSMELDUNG,
    XSD_PATH,
    MessageRenderer,
    Quittung,
    QuittungTemplate,
    Rueckweisung,
    Rueckweisungsgrund,
    code_problems,
    nachrichten_uuid,
    parse_portal_answer,
    schema_check,
    xsd,
)
from tests.unit.factories import FIXED_CREATED_AT, SOURCE, event, example_events
from tests.unit.xoev_reference import reference_statusmeldung

RENDERER = MessageRenderer(XoevSettings())
STATE = VorgangState(status="100", sequence=3, last_event_time=FIXED_CREATED_AT, recent_event_ids=("evt-1",))


def test_rendered_message_is_valid_and_carries_its_identity() -> None:
    message = RENDERER.render(event(), STATE, created_at=FIXED_CREATED_AT)
    root = etree.fromstring(message.xml)
    assert xsd().validate(root)
    assert root.tag == f"{{{NAMESPACE}}}antragsstatus.statusmeldung.0100"
    assert root.findtext(".//nachrichtenUUID") == message.nachrichten_uuid
    assert root.findtext(".//sequenznummer") == "3" == str(message.sequence)
    assert root.findtext(".//erstellungszeitpunkt") == "2024-07-01T12:00:00.123+00:00"
    assert (message.status, root.findtext(".//status/code"), root.get("test")) == ("100", "100", None)  # no test


@pytest.mark.parametrize("typ", [STATUSMELDUNG, QUITTUNG])
def test_heads_copied_from_a_template_equal_heads_built_element_by_element(typ: str) -> None:
    settings = XoevSettings()
    renderer = MessageRenderer(settings)
    for n, when in enumerate((FIXED_CREATED_AT, FIXED_CREATED_AT + timedelta(days=400, milliseconds=7))):
        uuid_n = f"3f2504e0-4f89-41d3-9a0c-0305e82c330{n}"
        copied = renderer._head(typ, uuid_n, when, settings.leser, settings.autor)
        built = renderer._build_head(typ, uuid_n, when, settings.leser, settings.autor)
        assert etree.tostring(copied) == etree.tostring(built)
    answer_head = renderer._head(typ, uuid_n, when, settings.autor, settings.leser)  # the other direction
    assert etree.tostring(answer_head) == etree.tostring(
        renderer._build_head(typ, uuid_n, when, settings.autor, settings.leser)
    )


@pytest.mark.parametrize("test_flag", [False, True])
def test_the_written_statusmeldung_equals_lxmls_serialisation_of_its_tree_for_every_example(test_flag: bool) -> None:
    renderer = MessageRenderer(XoevSettings(test=test_flag))
    examples = [e for _, e in example_events()]
    corrections = [e for e in examples if e.berichtigt is not None]
    assert len(examples) > 30 and corrections  # Statusberichtigungen too
    for n, e in enumerate(examples):
        for state in (STATE, VorgangState(e.status, n + 1, e.status_time, (e.event_id,))):
            message_uuid = nachrichten_uuid(e.source, e.event_id)
            written = renderer.statusmeldung_xml(e, state, message_uuid, FIXED_CREATED_AT)
            assert written == reference_statusmeldung(renderer, e, state, message_uuid, FIXED_CREATED_AT), e.event_id


# Every character class libxml2 writes differently: the five XML specials, line ends and tabs, non-ASCII, astral.
XML_TEXT = st.text(
    st.one_of(st.sampled_from(list("&<>\"'\r\n\t ]]>äß€\u00a0\U0001f600")), st.characters(codec="utf-8")),
    max_size=40,
).filter(lambda text: _xml_safe(text))
TEXT_FIELDS = [
    "aktenzeichen",
    "status_text",
    "zusatzinformation",
    "hinweistext",
    "postfach_ref",
    "antrags_id",
    "source",
    "vorgang_id",
    "event_id",
    "leistung",
    "entscheidung",
]
ZAHLUNG_FIELDS = ["waehrung", "verwendungszweck", "zahlungs_url", "empfaenger", "iban", "bic", "kassenzeichen"]


@settings(max_examples=300, deadline=None)
@given(field=st.sampled_from(TEXT_FIELDS + ZAHLUNG_FIELDS), text=XML_TEXT, which=st.integers(0, 10**6))
def test_any_xml_text_in_any_value_is_written_as_lxml_writes_it(field: str, text: str, which: int) -> None:
    examples = [e for _, e in example_events() if field not in ZAHLUNG_FIELDS or e.zahlung is not None]
    e = examples[which % len(examples)]
    if field in ZAHLUNG_FIELDS:
        assert e.zahlung is not None
        e = e.model_copy(update={"zahlung": e.zahlung.model_copy(update={field: text})})  # bypasses the model
    else:
        e = e.model_copy(update={field: text})
    message_uuid = nachrichten_uuid(SOURCE, "evt-1")
    written = RENDERER.statusmeldung_xml(e, STATE, message_uuid, FIXED_CREATED_AT)
    assert written == reference_statusmeldung(RENDERER, e, STATE, message_uuid, FIXED_CREATED_AT)


def test_every_character_xml_writes_apart_is_written_as_lxml_writes_it_in_every_value() -> None:
    examples = [e for _, e in example_events() if e.zahlung is not None]
    for field in TEXT_FIELDS + ZAHLUNG_FIELDS:
        for special in ["&", "<", ">", '"', "'", "\r", "\n", "\t", "]]>", "\u00e4", "\U0001f600", "&amp;"]:
            text = f"a{special}b"
            e = examples[0]
            if field in ZAHLUNG_FIELDS:
                assert e.zahlung is not None
                e = e.model_copy(update={"zahlung": e.zahlung.model_copy(update={field: text})})
            else:
                e = e.model_copy(update={field: text})
            written = RENDERER.statusmeldung_xml(e, STATE, "u", FIXED_CREATED_AT)
            assert written == reference_statusmeldung(RENDERER, e, STATE, "u", FIXED_CREATED_AT), (field, special)


def test_a_value_xml_cannot_carry_is_a_render_error_without_the_value() -> None:
    broken = event().model_copy(update={"status_text": "Muster\x01mann"})  # bypasses validation, as a bug would
    with pytest.raises(RenderError) as caught:
        RENDERER.render(broken, STATE)
    assert caught.value.reason is Reason.XSD_INVALID
    assert "Muster" not in caught.value.message


def test_nachrichten_uuid_is_a_uuid5_of_source_and_event_id() -> None:
    first = nachrichten_uuid(SOURCE, "evt-1")
    assert first == nachrichten_uuid(SOURCE, "evt-1")
    assert uuid.UUID(first).version == 5
    assert first != nachrichten_uuid(SOURCE, "evt-2")
    assert first != nachrichten_uuid("urn:de:leipzig:fachverfahren:bewohnerparken", "evt-1")
    assert RENDERER.render(event(), STATE).nachrichten_uuid == first  # the same on a re-render, any time


def test_test_flag_and_local_creation_time_with_milliseconds() -> None:
    renderer = MessageRenderer(XoevSettings(test=True))
    created = datetime(2024, 7, 1, 14, 0, 0, 5000, tzinfo=timezone(timedelta(hours=2)))
    root = etree.fromstring(renderer.render(event(), STATE, created_at=created).xml)
    assert root.get("test") == "true"
    assert root.findtext(".//erstellungszeitpunkt") == "2024-07-01T14:00:00.005+02:00"


def test_schema_violation_is_a_render_error_without_the_value() -> None:
    broken = event().model_copy(update={"leistung": "Mustermann"})  # bypasses validation, as a bug would
    with pytest.raises(RenderError) as caught:
        RENDERER.render(broken, STATE)
    assert caught.value.reason is Reason.XSD_INVALID
    assert "leistung" in caught.value.message
    assert "Mustermann" not in caught.value.message


def test_unknown_praefix_in_settings_is_a_config_error() -> None:
    from rueckkanal.errors import ConfigError
    from rueckkanal.settings import BehoerdeSettings

    with pytest.raises(ConfigError):
        MessageRenderer(XoevSettings(autor=BehoerdeSettings(praefix="xyz", kennung="1", name="Stadt")))


def test_quittung_round_trip() -> None:
    eingang = datetime(2024, 7, 1, 12, 0, 1, 250000, tzinfo=UTC)
    answer = RENDERER.render_quittung("65b99f6d-ba77-5b71-8799-b7e26912c862", "AMT24-Q-1", eingang)
    parsed = parse_portal_answer(answer.xml)
    assert parsed == Quittung(answer.nachrichten_uuid, "65b99f6d-ba77-5b71-8799-b7e26912c862", "AMT24-Q-1", eingang)
    root = etree.fromstring(answer.xml)
    assert root.findtext("nachrichtenkopf.g2g/autor/behoerdenkennung/kennung") == "14-amt24"  # the portal writes


def test_quittung_template_equals_the_rendered_and_validated_quittung_byte_for_byte() -> None:
    """portal-sim answers from the template (adapters/portal/sim/answers.py); the document must not differ."""
    template = QuittungTemplate(RENDERER)
    cases = [
        (nachrichten_uuid(SOURCE, "evt-1"), "Q-5f0c", datetime(2024, 7, 1, 12, 0, 1, 250000, tzinfo=UTC)),
        (nachrichten_uuid(SOURCE, "evt-2"), "AMT24-Q-1:2/3", datetime(1999, 12, 31, 23, 59, 59, tzinfo=UTC)),
        (nachrichten_uuid(SOURCE, "evt-3"), "q" * 64, datetime(2026, 3, 29, 2, 30, tzinfo=ZoneInfo("Europe/Berlin"))),
    ]
    created = datetime(2024, 7, 1, 12, 0, 2, 5000, tzinfo=UTC)
    for bezug, quittung_id, eingang in cases:
        filled = template.render(bezug, quittung_id, eingang, created_at=created)
        assert filled == RENDERER.render_quittung(bezug, quittung_id, eingang, created_at=created)


def test_quittung_template_renders_values_xml_must_escape_the_long_way() -> None:
    bezug, eingang = nachrichten_uuid(SOURCE, "evt-1"), datetime(2024, 7, 1, 12, 0, 1, tzinfo=UTC)
    created = datetime(2024, 7, 1, 12, 0, 2, tzinfo=UTC)
    filled = QuittungTemplate(RENDERER).render(bezug, "Q-<b>&'\"", eingang, created_at=created)
    assert filled == RENDERER.render_quittung(bezug, "Q-<b>&'\"", eingang, created_at=created)
    parsed = parse_portal_answer(filled.xml)
    assert isinstance(parsed, Quittung) and parsed.quittung_id == "Q-<b>&'\""


@pytest.mark.parametrize(
    ("bezug", "quittung_id"),
    [
        (nachrichten_uuid(SOURCE, "evt-1"), "Q 1"),  # a space: outside the XSD's Kennung
        (nachrichten_uuid(SOURCE, "evt-1"), "Q" * 65),  # too long
        ("00000000-0000-0000-0000-000000000000", "Q-1"),  # not a UUID the XSD accepts
    ],
)
def test_quittung_template_does_not_fill_in_values_the_xsd_refuses(bezug: str, quittung_id: str) -> None:
    with pytest.raises(RenderError):
        QuittungTemplate(RENDERER).render(bezug, quittung_id, datetime(2024, 7, 1, 12, 0, 1, tzinfo=UTC))


def test_rueckweisung_round_trip_and_already_processed() -> None:
    bezug = nachrichten_uuid(SOURCE, "evt-1")
    gruende = [Rueckweisungsgrund("X001", "statusText: maxLength"), Rueckweisungsgrund("AS102")]
    parsed = parse_portal_answer(RENDERER.render_rueckweisung(bezug, gruende).xml)
    assert isinstance(parsed, Rueckweisung)
    assert parsed.gruende == tuple(gruende)
    assert not parsed.gilt_als_zugestellt
    duplicate = parse_portal_answer(RENDERER.render_rueckweisung(bezug, [Rueckweisungsgrund("S100")]).xml)
    assert isinstance(duplicate, Rueckweisung) and duplicate.gilt_als_zugestellt


@pytest.mark.parametrize(
    ("answer", "reason"),
    [
        (b"not xml", Reason.XML_MALFORMED),
        (b'<!DOCTYPE x [<!ENTITY a "b">]><x>&a;</x>', Reason.XML_FORBIDDEN_CONSTRUCT),
        (b"<x/>" + b" " * 70_000, Reason.PAYLOAD_TOO_LARGE),
        (b"<x/>", Reason.SCHEMA_INVALID),
    ],
)
def test_bad_portal_answers_are_typed_rejections(answer: bytes, reason: Reason) -> None:
    with pytest.raises(InputRejected) as caught:
        parse_portal_answer(answer)
    assert caught.value.reason is reason


def test_a_statusmeldung_is_not_a_portal_answer() -> None:
    with pytest.raises(EventInvalid):
        parse_portal_answer(RENDERER.render(event(), STATE).xml)


def test_code_problems_finds_codes_the_xsd_cannot_check() -> None:
    root = etree.fromstring(RENDERER.render(event(), STATE).xml)
    assert code_problems(root) == []
    code = root.find(".//status/code")
    assert code is not None
    code.text = "999"
    assert [problem for problem in code_problems(root) if "999" in problem]


def test_naive_creation_time_is_refused() -> None:
    with pytest.raises(RenderError):
        RENDERER.render(event(), STATE, created_at=datetime(2024, 7, 1))


# ---------------------------------------------------------------- property: accepted ⇒ renders valid

ANY_TEXT = st.text(st.characters(codec="utf-8"), min_size=0, max_size=120)


def maybe(strategy: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    return st.one_of(st.none(), strategy)


def pattern(regex: str, max_size: int) -> st.SearchStrategy[str]:
    return st.from_regex(regex, fullmatch=True).filter(lambda text: len(text) <= max_size)


# Built once: constructing a from_regex strategy is expensive, drawing from it is not.
SOURCES = st.one_of(st.just(SOURCE), pattern(URI_PATTERN, 260))
PRINTABLE_130 = pattern(PRINTABLE_PATTERN, 130)
PRINTABLE_260 = maybe(pattern(PRINTABLE_PATTERN, 260))
VORGANG_IDS = pattern(VORGANG_ID_PATTERN, 70)
LEISTUNGEN = st.from_regex(r"[0-9]{14}", fullmatch=True)
VERWENDUNGSZWECKE = st.one_of(pattern(VERWENDUNGSZWECK_PATTERN, 150), ANY_TEXT)
URLS = maybe(pattern(HTTPS_URL_PATTERN, 2010))
MOMENTS = st.datetimes(datetime(1995, 1, 1), datetime(2105, 1, 1), timezones=st.timezones())


@st.composite
def candidate_events(draw: st.DrawFn) -> dict[str, Any]:
    """Values near and beyond every bound; the model decides which are events."""
    zahlung = {
        "betrag": draw(st.decimals(Decimal("0.01"), Decimal("1e10"), places=draw(st.integers(0, 3)))),
        "waehrung": draw(st.sampled_from(["EUR", "CHF", "eur"])),
        "verwendungszweck": draw(VERWENDUNGSZWECKE),
        "zahlungsUrl": draw(URLS),
        "faelligkeit": draw(maybe(st.dates())),
    }
    values = {
        "source": draw(SOURCES),
        "eventId": draw(PRINTABLE_130),
        "vorgangId": draw(VORGANG_IDS),
        "leistung": draw(LEISTUNGEN),
        "status": draw(st.sampled_from(["100", "200", "210", "300", "310", "400", "410", "420", "430", "440", "450"])),
        "statusZeit": draw(MOMENTS),
        "aktenzeichen": draw(maybe(ANY_TEXT)),
        "frist": draw(maybe(st.dates())),
        "entscheidung": draw(maybe(st.sampled_from(["01", "02", "03", "04"]))),
        "zahlung": draw(maybe(st.just(zahlung))),
        "statusText": draw(maybe(ANY_TEXT)),
        "zusatzinformation": draw(maybe(ANY_TEXT)),
        "hinweistext": draw(maybe(st.text(st.characters(codec="utf-8"), max_size=520))),
        "postfachReferenz": draw(PRINTABLE_260),
    }
    return {key: value for key, value in values.items() if value is not None}


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.filter_too_much, HealthCheck.too_slow])
@given(values=candidate_events(), sequence=st.integers(1, 10**6))
def test_every_event_the_model_accepts_renders_to_a_valid_message(values: dict[str, Any], sequence: int) -> None:
    try:
        accepted = StatusEvent.from_mapping(values)
    except InputRejected:
        assume(False)
        return
    state = VorgangState(accepted.status, sequence, accepted.status_time, (accepted.event_id,))
    message = RENDERER.render(accepted, state)  # raises RenderError if the XSD disagrees
    assert xsd().validate(etree.fromstring(message.xml))


def test_decode_error_is_an_input_rejection() -> None:
    assert issubclass(DecodeError, InputRejected)


def test_the_schema_is_compiled_once_per_process() -> None:
    assert xsd() is xsd()  # compiling it takes about a millisecond: once per message would halve a portal


# ---------------------------------------------------------------- the split schema check agrees with the XSD

# Near the edges of DIN SPEC 91379: letters with and without their defined combining sequences, lone combining
# marks, Greek and Cyrillic, typographic quotes, controls, line breaks and anything else.
EDGE_TEXT = st.lists(
    st.one_of(
        st.sampled_from(list("aZäßÄ ,.-'\t\n\r\u00a0\u0306\u0328\u0331\u0300αЖ“”–€\u200b\ufeff<&")),
        st.sampled_from(["C\u0328\u0306", "K\u035fH", "x\u0306", "L\u0325\u0304"]),
        st.characters(codec="utf-8", exclude_categories=["Cs"]),
    ),
    max_size=70,
).map("".join)
LATIN_ELEMENTS = ["behoerdenname", "statusText", "zusatzinformation", "hinweis", "aktenzeichen"]
LATIN_ATTRIBUTES = ["produkt", "produkthersteller", "produktversion"]


def _xml_safe(text: str) -> bool:
    try:
        etree.Element("x").text = text
    except ValueError:
        return False
    return True


@settings(max_examples=300, deadline=None)
@given(where=st.sampled_from(LATIN_ELEMENTS + LATIN_ATTRIBUTES), text=EDGE_TEXT, full=st.booleans())
def test_the_split_schema_check_accepts_exactly_what_the_xsd_accepts(where: str, text: str, full: bool) -> None:
    assume(_xml_safe(text))
    e = event(aktenzeichen="AZ-1", zusatzinformation="Zusatz", hinweistext="Hinweis") if full else event()
    root = etree.fromstring(
        RENDERER.statusmeldung_xml(e, STATE, nachrichten_uuid(SOURCE, e.event_id), FIXED_CREATED_AT)
    )
    if where in LATIN_ATTRIBUTES:
        root.set(where, text)
    else:
        targets = list(root.iter(where))
        assume(targets)
        for target in targets:
            target.text = text
    assert schema_check().valid(root) == xsd().validate(root)


def test_the_split_schema_check_refuses_what_only_the_structure_decides() -> None:
    e = event()
    root = etree.fromstring(
        RENDERER.statusmeldung_xml(e, STATE, nachrichten_uuid(SOURCE, e.event_id), FIXED_CREATED_AT)
    )
    assert schema_check().valid(root)
    ereignis = root.find("statusereignis")
    assert ereignis is not None
    ereignis.append(etree.Element("statusText"))  # a second statusText: allowed characters, wrong structure
    ereignis[-1].text = "Eingegangen"
    assert not xsd().validate(root)
    assert not schema_check().valid(root)
    assert "statusText" in schema_check().errors(root)


def test_the_split_schema_check_covers_every_latin_type_of_the_xsd() -> None:
    schema = etree.parse(str(XSD_PATH))
    xs = "{http://www.w3.org/2001/XMLSchema}"
    latin = {s.get("name") for s in schema.iter(f"{xs}simpleType") if s.get("name", "").startswith("String.Latin.")}
    declared = {
        d.get("name")
        for kind in ("element", "attribute")
        for d in schema.iter(f"{xs}{kind}")
        if d.get("type", "").rpartition(":")[2] in latin
    }
    check = schema_check()
    assert declared == set(check._elements) | set(check._attributes)
    assert set(LATIN_ELEMENTS) | set(LATIN_ATTRIBUTES) <= declared
