"""XAntragsstatus messages: render a status event as ``antragsstatus.statusmeldung.0100`` (or, for a correction,
``antragsstatus.statusberichtigung.0102``), and the portal's answers.

A Statusmeldung is written as text (its head from a serialised template per message type and direction, each value
escaped as libxml2 escapes it), then parsed with the safe parser and checked against the XSD
(:class:`SchemaCheck`, built once per process): the bytes that leave are the bytes that were checked. The answers
are built as trees with lxml, checked and serialised. A message that fails the schema is a bug in this project, not
bad input: :class:`~rueckkanal.errors.RenderError`, whose text names the rule and the element, never the value.

Answers of the portal (Quittung 0190, Rückweisung 0191) are rendered here too, for the portal simulator, and
parsed by :func:`parse_portal_answer` with the safe parser.
"""

from __future__ import annotations

import copy
import re
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import cache
from pathlib import Path

from lxml import etree

from rueckkanal import safexml
from rueckkanal.codelists import CodeList, CodeLists, codelists
from rueckkanal.errors import ConfigError, EventInvalid, Reason, RenderError
from rueckkanal.lifecycle import VorgangState, corrects_current
from rueckkanal.model import StatusEvent
from rueckkanal.resources import data_path
from rueckkanal.settings import BehoerdeSettings, XoevSettings

#: The namespace carries the schema version, so that a new version can be read beside the old one.
NAMESPACE = "urn:xoev-de:rueckkanal:xantragsstatus:schema:2.0.0"
STANDARD = "XAntragsstatus"
VERSION = "2.0.0"
XSD_PATH = data_path("xoev", "xantragsstatus-2.0.0.xsd")
#: Earlier versions of the standard, by namespace: a receiver answers their messages with V000.
PREVIOUS_NAMESPACES = {"urn:xoev-de:rueckkanal:standard:xantragsstatus": "1.0"}

STATUSMELDUNG = "0100"
STATUSBERICHTIGUNG = "0102"
QUITTUNG = "0190"
RUECKWEISUNG = "0191"

#: The fixed namespace of all nachrichtenUUIDs of this project (UUIDv5 needs one). Never change it: every
#: receiver de-duplicates by these UUIDs, and a new namespace would make every replay look new.
NACHRICHTEN_NAMESPACE = uuid.UUID("6f1c7a4e-3b2d-5e8f-9a10-4c5d6e7f8091")

MAX_ANSWER_BYTES = 64 * 1024
_NSMAP = {"xas": NAMESPACE}
_IDENTIFIKATION = "nachrichtenkopf.g2g/identifikation.nachricht"
# What a head template carries until a message's own values replace them (MessageRenderer._head).
_STAND_IN_UUID = "00000000-0000-4000-8000-000000000000"
_STAND_IN_TIME = datetime(2000, 1, 1, tzinfo=UTC)


def nachrichten_uuid(source: str, event_id: str) -> str:
    """The message UUID of an event: the same event always gets the same UUID, so a retry is recognisable."""
    return str(uuid.uuid5(NACHRICHTEN_NAMESPACE, f"{source}\n{event_id}"))


def answer_uuid(typ: str, bezug_uuid: str) -> str:
    """The message UUID of the portal's answer to ``bezug_uuid``: the same for every repetition of that answer."""
    return str(uuid.uuid5(NACHRICHTEN_NAMESPACE, f"{typ}\n{bezug_uuid}"))


@cache
def xsd() -> etree.XMLSchema:
    """The XAntragsstatus schema, compiled once per process."""
    return etree.XMLSchema(etree.parse(str(XSD_PATH)))


_XS = "{http://www.w3.org/2001/XMLSchema}"
_LATIN_TYPE_PREFIX = "String.Latin."


class SchemaCheck:
    """The XAntragsstatus schema, checked in two parts that together accept exactly what the XSD accepts.

    libxml2 matches the DIN SPEC 91379 patterns of the ``String.Latin.*`` types (alternations of some 900 units)
    character by character through its automaton, most of a validation's time (docs/architecture.md). So the
    schema is compiled a second time from the same file with only those pattern facets removed (structure, order,
    lengths and every other facet stay), and each element or attribute of a ``String.Latin.*`` type is matched
    against that type's pattern, read from the same file, with Python's ``re``: the patterns are written in the
    dialect both read alike (:func:`rueckkanal.latinchars.unit_pattern`). A declaration name with two different
    text types would make the split inexact; the check refuses to be built then.

    :meth:`errors` runs the complete XSD, for the text of an error.
    """

    def __init__(self, path: Path = XSD_PATH) -> None:
        document = etree.parse(str(path))
        patterns: dict[str, _TextPattern] = {}
        for simple in document.iter(f"{_XS}simpleType"):
            name = simple.get("name", "")
            facet = simple.find(f"{_XS}restriction/{_XS}pattern")
            if name.startswith(_LATIN_TYPE_PREFIX) and facet is not None:
                patterns[name] = _TextPattern(facet.get("value", ""))
                facet.getparent().remove(facet)  # type: ignore[union-attr]
        self._elements: dict[str, _TextPattern] = {}
        self._attributes: dict[str, _TextPattern] = {}
        for kind, table in (("element", self._elements), ("attribute", self._attributes)):
            declared: dict[str, str] = {}
            for declaration in document.iter(f"{_XS}{kind}"):
                local, typ = declaration.get("name"), str(declaration.get("type", "")).rpartition(":")[2]
                if local is None:
                    continue
                if declared.setdefault(local, typ) != typ and (typ in patterns or declared[local] in patterns):
                    raise ConfigError(f"xoev: {kind} {local} is declared with two types; the schema check needs one")
                if typ in patterns:
                    is_global = declaration.getparent() is document.getroot()
                    qualified = kind == "element" and (is_global or _qualified(document))
                    table[f"{{{NAMESPACE}}}{local}" if qualified else local] = patterns[typ]
        self._structure = etree.XMLSchema(document)
        self._latin_tags = tuple(self._elements)

    def valid(self, root: etree._Element) -> bool:
        """Whether ``root`` conforms to the complete XSD."""
        if not self._structure.validate(root):
            return False
        for name, value in root.attrib.items():
            pattern = self._attributes.get(str(name))
            if pattern is not None and not pattern.fullmatch(str(value)):
                return False
        elements, tags = self._elements, self._latin_tags
        if not tags:
            return True  # root.iter() without tags would visit every element
        return all(elements[e.tag].fullmatch(e.text or "") for e in root.iter(*tags))  # type: ignore[index]

    @staticmethod
    def errors(root: etree._Element, limit: int = 5) -> str:
        """The complete XSD's errors for ``root``, as :func:`schema_errors` gives them."""
        schema = xsd()
        schema.validate(root)
        return schema_errors(schema, limit)


class _TextPattern:
    """The pattern facet of a text type, matched as the XSD matches it (the whole value).

    The patterns are ``(sequence|sequence|…|[characters])+``. A value made only of the single characters is matched
    by the character class alone, ten times faster than trying the hundred sequences at every position; any other
    value is matched against the whole pattern.
    """

    __slots__ = ("_characters", "_whole")

    def __init__(self, value: str) -> None:
        self._whole = re.compile(value)
        cut = value.rfind("|[")
        self._characters = re.compile(value[cut + 1 : -2] + "+") if cut > 0 and value.endswith("])+") else None

    def fullmatch(self, text: str) -> bool:
        if self._characters is not None and self._characters.fullmatch(text) is not None:
            return True
        return self._whole.fullmatch(text) is not None


def _qualified(document: etree._ElementTree) -> bool:
    return document.getroot().get("elementFormDefault") == "qualified"


@cache
def schema_check() -> SchemaCheck:
    """The :class:`SchemaCheck` of the XAntragsstatus schema, built once per process."""
    return SchemaCheck()


def root_tag(typ: str) -> str:
    """The Clark name of the root element of message type ``typ`` (e.g. 0100), taken from the code list."""
    element = codelists().nachrichtentyp.value(typ, "element")
    if element is None:
        raise KeyError(typ)
    return f"{{{NAMESPACE}}}{element}"


@dataclass(frozen=True)
class RenderedMessage:
    nachrichten_uuid: str
    xml: bytes
    sequence: int
    status: str


@dataclass(frozen=True)
class RenderedAnswer:
    nachrichten_uuid: str
    xml: bytes


#: XÖV Rückweisung codes that mean the portal already has the message: the sender counts it as delivered.
#: S100 is "Rückweisung aufgrund erneuter Lieferung eines bereits erfolgreich verarbeiteten Datensatzes".
ALREADY_DELIVERED = frozenset({"S100"})


@dataclass(frozen=True)
class Rueckweisungsgrund:
    """One reason of a Rückweisung: a code of the XÖV Rückweisungsgründe or, where that list lacks it, of this
    standard's Rückweisungsgrund list (codes ``AS`` + three digits), and an optional operator text."""

    code: str
    text: str | None = None


@dataclass(frozen=True)
class Quittung:
    nachrichten_uuid: str
    bezug_uuid: str
    quittung_id: str
    eingangszeitpunkt: datetime


@dataclass(frozen=True)
class Rueckweisung:
    nachrichten_uuid: str
    bezug_uuid: str
    gruende: tuple[Rueckweisungsgrund, ...]

    @property
    def gilt_als_zugestellt(self) -> bool:
        """True if the portal already has the message (e.g. S100): the sender counts it as delivered."""
        return any(grund.code in ALREADY_DELIVERED for grund in self.gruende)


PortalAnswer = Quittung | Rueckweisung


class MessageRenderer:
    """Renders messages as the configured autor for the configured leser (answers go the other way)."""

    def __init__(self, settings: XoevSettings, lists: CodeLists | None = None) -> None:
        self._lists = lists or codelists()
        self._settings = settings
        self._check = schema_check()
        self._heads: dict[tuple[str, BehoerdeSettings, BehoerdeSettings], etree._Element] = {}
        self._head_texts: dict[tuple[str, BehoerdeSettings, BehoerdeSettings], _HeadText] = {}
        self._codes: dict[tuple[str, str, str], str] = {}
        self._root_attributes = {
            "produkt": settings.produkt,
            "produkthersteller": settings.produkthersteller,
            "produktversion": settings.produktversion,
            "standard": STANDARD,
            "version": VERSION,
        }
        if settings.test:  # XInneres: the attribute's presence marks a test message
            self._root_attributes["test"] = "true"
        for role in (settings.autor, settings.leser):
            if role.praefix not in self._lists.behoerdenkennung_praefix:
                raise ConfigError(f"xoev: Behördenkennung-Präfix {role.praefix!r} is not in the code list")

    def render(self, event: StatusEvent, state: VorgangState, *, created_at: datetime | None = None) -> RenderedMessage:
        """The Statusmeldung (or, for a correction, the Statusberichtigung) for ``event``; ``state`` is the Vorgang
        state after the event (its sequence number, and whether a correction replaced the current status)."""
        message_uuid = nachrichten_uuid(event.source, event.event_id)
        xml = self.statusmeldung_xml(event, state, message_uuid, created_at or datetime.now(UTC))
        self._checked(_parse_own(xml))
        return RenderedMessage(message_uuid, xml, state.sequence, event.status)

    def statusmeldung_xml(
        self, event: StatusEvent, state: VorgangState, message_uuid: str, created_at: datetime
    ) -> bytes:
        """The unchecked bytes of :meth:`render`, as lxml would serialise the message's tree (public for the
        benchmark's baseline and for tests that change a tree before checking it)."""
        typ = STATUSMELDUNG if event.berichtigt is None else STATUSBERICHTIGUNG
        head = self._head_text(typ, self._settings.leser, self._settings.autor)
        parts = [head.before_uuid, message_uuid, head.before_time, _millis(created_at), head.after_time]
        add = parts.append
        if event.berichtigt is not None:
            add(f"<bezug>{_element('nachrichtenUUID', nachrichten_uuid(event.source, event.berichtigt))}</bezug>")
            add(_element("aktuellerStatus", "true" if corrects_current(state, event) else "false"))
        add("<vorgang>")
        add(_element("fachverfahren", event.source))
        add(_element("vorgangsID", event.vorgang_id))
        if event.aktenzeichen is not None:
            add(_element("aktenzeichen", event.aktenzeichen))
        add(_element("leistung", event.leistung))
        if event.antrags_id is not None:
            add(_element("antragsID", event.antrags_id))
        if event.postfach_ref is not None:
            add(_element("postfachReferenz", event.postfach_ref))
        add("</vorgang><statusereignis>")
        add(_element("ereignisID", event.event_id))
        add(_element("zeitpunkt", event.status_time.isoformat()))
        add(_element("sequenznummer", str(state.sequence)))
        add(self._code_text("status", self._lists.antragsstatus, event.status))
        add(_element("statusText", event.effective_status_text))
        if event.zusatzinformation is not None:
            add(_element("zusatzinformation", event.zusatzinformation))
        if event.hinweistext is not None:
            add(_element("hinweis", event.hinweistext))
        if event.frist is not None:
            add(_element("frist", event.frist.isoformat()))
        if event.entscheidung is not None:
            add(self._code_text("entscheidung", self._lists.entscheidungsart, event.entscheidung))
        zahlung = event.zahlung
        if zahlung is not None:
            add(f'<zahlung><betrag waehrung="{_attribute(zahlung.waehrung)}">{zahlung.betrag:.2f}</betrag>')
            add(_element("verwendungszweck", zahlung.verwendungszweck))
            if zahlung.zahlungs_url is not None:
                add(_element("zahlungsURL", zahlung.zahlungs_url))
            if zahlung.faelligkeit is not None:
                add(_element("faelligkeit", zahlung.faelligkeit.isoformat()))
            for tag, value in (
                ("empfaenger", zahlung.empfaenger),
                ("iban", zahlung.iban),
                ("bic", zahlung.bic),
                ("kassenzeichen", zahlung.kassenzeichen),
            ):
                if value is not None:
                    add(_element(tag, value))
            add("</zahlung>")
        add("</statusereignis>")
        add(head.end)
        return "".join(parts).encode()

    def _head_text(self, typ: str, leser: BehoerdeSettings, autor: BehoerdeSettings) -> _HeadText:
        """The text around a message's own values up to its nachrichtenkopf's end, and its end tag: lxml's
        serialisation of the head built once per message type and direction, split at two stand-in values."""
        key = (typ, leser, autor)
        head = self._head_texts.get(key)
        if head is None:
            head = _HeadText.of(self._head_template(typ, leser, autor))
            self._head_texts[key] = head
        return head

    def _code_text(self, tag: str, codelist: CodeList, code: str) -> str:
        """A Code element as text; those of the list's own codes are kept (a finite set), others written each time."""
        key = (tag, codelist.uri, code)
        text = self._codes.get(key)
        if text is None:
            attributes = f'listURI="{_attribute(codelist.uri)}" listVersionID="{_attribute(codelist.version)}"'
            name = _element("name", codelist.label(code)) if code in codelist else ""
            text = f"<{tag} {attributes}>{_element('code', code)}{name}</{tag}>"
            if code in codelist:
                self._codes[key] = text
        return text

    def render_quittung(
        self, bezug_uuid: str, quittung_id: str, eingang: datetime, *, created_at: datetime | None = None
    ) -> RenderedAnswer:
        """The portal's receipt for message ``bezug_uuid``, as the portal (our leser) writes it to us."""
        message_uuid = answer_uuid(QUITTUNG, bezug_uuid)
        root = self._answer_head(QUITTUNG, message_uuid, created_at, bezug_uuid)
        _text(root, "quittungsID", quittung_id)
        _text(root, "eingangszeitpunkt", _millis(eingang))
        return RenderedAnswer(message_uuid, self._finish(root))

    def render_rueckweisung(
        self, bezug_uuid: str, gruende: Sequence[Rueckweisungsgrund], *, created_at: datetime | None = None
    ) -> RenderedAnswer:
        """The portal's rejection of message ``bezug_uuid`` with at least one reason."""
        message_uuid = answer_uuid(RUECKWEISUNG, bezug_uuid)
        root = self._answer_head(RUECKWEISUNG, message_uuid, created_at, bezug_uuid)
        for grund in gruende:
            element = _sub(root, "rueckweisung")
            codelist = self._lists.rueckweisungsgrund_list(grund.code)
            if codelist is None:
                raise RenderError("Rückweisung code is in no Rückweisungsgrund list", reason=Reason.XSD_INVALID)
            tag = "grund" if codelist is self._lists.rueckweisungsgruende_xoev else "grund.xantragsstatus"
            _code(element, tag, codelist, grund.code)
            if grund.text is not None:
                _text(element, "fehlertext", grund.text)
        return RenderedAnswer(message_uuid, self._finish(root))

    def _answer_head(self, typ: str, message_uuid: str, created_at: datetime | None, bezug_uuid: str) -> etree._Element:
        settings = self._settings
        root = self._head(typ, message_uuid, created_at or datetime.now(UTC), settings.autor, settings.leser)
        _text(_sub(root, "bezug"), "nachrichtenUUID", bezug_uuid)
        return root

    def _head(
        self, typ: str, message_uuid: str, created_at: datetime, leser: BehoerdeSettings, autor: BehoerdeSettings
    ) -> etree._Element:
        """The root with its nachrichtenkopf, copied from one built per message type and direction: only the UUID
        and the creation time differ between messages."""
        root = copy.deepcopy(self._head_template(typ, leser, autor))
        identifikation = root.find(_IDENTIFIKATION)
        identifikation.find("nachrichtenUUID").text = message_uuid  # type: ignore[union-attr]
        identifikation.find("erstellungszeitpunkt").text = _millis(created_at)  # type: ignore[union-attr]
        return root

    def _head_template(self, typ: str, leser: BehoerdeSettings, autor: BehoerdeSettings) -> etree._Element:
        """The head of message type ``typ`` in one direction with stand-in UUID and time, built once."""
        key = (typ, leser, autor)  # frozen settings: hashable by value
        template = self._heads.get(key)
        if template is None:
            template = self._build_head(typ, _STAND_IN_UUID, _STAND_IN_TIME, leser, autor)
            self._heads[key] = template
        return template

    def _build_head(
        self, typ: str, message_uuid: str, created_at: datetime, leser: BehoerdeSettings, autor: BehoerdeSettings
    ) -> etree._Element:
        root = etree.Element(root_tag(typ), self._root_attributes, nsmap=_NSMAP)
        kopf = _sub(root, "nachrichtenkopf.g2g")
        identifikation = _sub(kopf, "identifikation.nachricht")
        _text(identifikation, "nachrichtenUUID", message_uuid)
        _code(identifikation, "nachrichtentyp", self._lists.nachrichtentyp, typ)
        _text(identifikation, "erstellungszeitpunkt", _millis(created_at))
        for tag, behoerde in (("leser", leser), ("autor", autor)):
            element = _sub(kopf, tag)
            kennung = _sub(element, "behoerdenkennung")
            _code(kennung, "praefix", self._lists.behoerdenkennung_praefix, behoerde.praefix)
            _text(kennung, "kennung", behoerde.kennung)
            _text(element, "behoerdenname", behoerde.name)
        return root

    def _finish(self, root: etree._Element) -> bytes:
        self._checked(root)
        return etree.tostring(root, xml_declaration=True, encoding="UTF-8")

    def _checked(self, root: etree._Element) -> None:
        """A message that fails the schema is a bug here: a RenderError naming the rule and element, not the value."""
        if not self._check.valid(root):
            raise RenderError(f"message violates the XSD: {self._check.errors(root)}", reason=Reason.XSD_INVALID)


@dataclass(frozen=True, slots=True)
class _HeadText:
    """A serialised head, split where a message's UUID and creation time go; ``end`` closes the root."""

    before_uuid: str
    before_time: str
    after_time: str
    end: str

    @classmethod
    def of(cls, root: etree._Element) -> _HeadText:
        text = etree.tostring(root, xml_declaration=True, encoding="UTF-8").decode()
        uuid_at, time_at = text.find(_STAND_IN_UUID), text.find(_millis(_STAND_IN_TIME))
        end_at = text.rfind("</")
        if text.count(_STAND_IN_UUID) != 1 or text.count(_millis(_STAND_IN_TIME)) != 1 or not uuid_at < time_at:
            raise ConfigError("the head template does not hold each stand-in value exactly once, in order")
        after = time_at + len(_millis(_STAND_IN_TIME))
        return cls(text[:uuid_at], text[uuid_at + len(_STAND_IN_UUID) : time_at], text[after:end_at], text[end_at:])


def _parse_own(xml: bytes) -> etree._Element:
    """A message this project wrote, parsed for its check with the hardened parser; unparseable text is a bug (a
    value XML cannot carry), named by its line only."""
    try:
        return etree.fromstring(xml, parser=safexml.parser())
    except (etree.XMLSyntaxError, ValueError) as error:
        line = error.position[0] if isinstance(error, etree.XMLSyntaxError) and error.position else 0
        raise RenderError(f"rendered message is not well-formed XML (line {line})", reason=Reason.XSD_INVALID) from None


class QuittungTemplate:
    """Quittungen filled into one validated sample, for a portal that answers thousands of messages a second.

    Every Quittung has the same structure; only two UUIDs, the quittungsID and two times vary. The sample is
    rendered and XSD-validated once with stand-in values, which are then replaced by the real ones in its text:
    a few replacements instead of building and serialising a tree. A value outside the XSD's own pattern
    for its field does not take this path; it is rendered and validated like any other answer.
    """

    _BEZUG = "00000000-0000-4000-8000-0000000000b1"
    _QUITTUNGS_ID = "Q-00000000-0000-4000-8000-0000000000b2"
    _EINGANG = datetime(2000, 1, 1, 0, 0, 0, 111000, tzinfo=UTC)
    _ERSTELLT = datetime(2000, 1, 1, 0, 0, 0, 222000, tzinfo=UTC)

    def __init__(self, renderer: MessageRenderer) -> None:
        self._renderer = renderer
        sample = renderer.render_quittung(self._BEZUG, self._QUITTUNGS_ID, self._EINGANG, created_at=self._ERSTELLT)
        self._text = sample.xml.decode()
        self._stand_ins = (
            sample.nachrichten_uuid,
            self._BEZUG,
            self._QUITTUNGS_ID,
            _millis(self._EINGANG),
            _millis(self._ERSTELLT),
        )
        if any(self._text.count(value) != 1 for value in self._stand_ins):
            raise ConfigError("the Quittung sample does not hold each stand-in value exactly once")

    def render(
        self, bezug_uuid: str, quittung_id: str, eingang: datetime, *, created_at: datetime | None = None
    ) -> RenderedAnswer:
        created = created_at or datetime.now(UTC)
        values = (answer_uuid(QUITTUNG, bezug_uuid), bezug_uuid, quittung_id, _millis(eingang), _millis(created))
        patterns = (_UUID, _UUID, _KENNUNG, _ZEITPUNKT_MS, _ZEITPUNKT_MS)
        if not all(pattern.fullmatch(value) for pattern, value in zip(patterns, values, strict=True)):
            return self._renderer.render_quittung(bezug_uuid, quittung_id, eingang, created_at=created)
        text = self._text
        for stand_in, value in zip(self._stand_ins, values, strict=True):
            text = text.replace(stand_in, value)
        return RenderedAnswer(values[0], text.encode())


# The XSD's patterns for the values a QuittungTemplate fills in as they are
# (rueckkanal/data/xoev/xantragsstatus-2.0.0.xsd).
_UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[1-8][0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}")
_KENNUNG = re.compile(r"[!#-%(-;=?-~]{1,64}")  # [!-~]{1,64} without the characters XML would escape: "&'<>
_ZEITPUNKT_MS = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}\.[0-9]{3}(Z|[+\-][0-9]{2}:[0-9]{2})")


def schema_errors(schema: etree.XMLSchema, limit: int = 5) -> str:
    """The schema's last errors as rule and element path, without the offending values (personal data)."""
    entries = list(schema.error_log)[:limit]
    return "; ".join(f"{entry.path}: {entry.type_name}" for entry in entries)


def parse_portal_answer(xml: bytes, *, max_bytes: int = MAX_ANSWER_BYTES) -> PortalAnswer:
    """A portal's Quittung or Rückweisung; anything else raises an :class:`~rueckkanal.errors.InputRejected`.

    Safe-parsed (no DTD, no entities, no network, size cap) and validated against the XSD before it is read.
    """
    root = safexml.parse(xml, max_bytes=max_bytes)
    check = schema_check()
    if not check.valid(root):
        raise EventInvalid(f"portal answer violates the XSD: {check.errors(root)}", reason=Reason.SCHEMA_INVALID)
    message_uuid = root.findtext("nachrichtenkopf.g2g/identifikation.nachricht/nachrichtenUUID", "")
    bezug_uuid = root.findtext("bezug/nachrichtenUUID", "")
    if root.tag == root_tag(QUITTUNG):
        eingang = datetime.fromisoformat(root.findtext("eingangszeitpunkt", ""))
        return Quittung(message_uuid, bezug_uuid, root.findtext("quittungsID", ""), eingang)
    if root.tag == root_tag(RUECKWEISUNG):
        gruende = tuple(
            Rueckweisungsgrund(
                element.findtext("grund/code") or element.findtext("grund.xantragsstatus/code") or "",
                element.findtext("fehlertext"),
            )
            for element in root.iterfind("rueckweisung")
        )
        return Rueckweisung(message_uuid, bezug_uuid, gruende)
    raise EventInvalid("not a portal answer (0190 or 0191)", reason=Reason.SCHEMA_INVALID)


def code_problems(root: etree._Element, lists: CodeLists | None = None) -> list[str]:
    """Codes the XSD cannot check: each Code element's value must be in the code list of its type (named by its
    listURI, which the schema fixes per element and a sender may leave out)."""
    by_uri = (lists or codelists()).by_uri
    problems = []
    for element in root.iter():
        uri = element.get("listURI") or _CODE_ELEMENTS.get(etree.QName(element).localname)
        if uri is None or element.find("code") is None:
            continue
        codelist = by_uri.get(uri)
        code = element.findtext("code")
        where = f"line {element.sourceline}: {etree.QName(element).localname}"
        if codelist is None:
            problems.append(f"{where}: unknown code list {uri}")
        elif element.get("listVersionID", codelist.version) != codelist.version:
            problems.append(f"{where}: code list version {element.get('listVersionID')} is not {codelist.version}")
        elif code not in codelist:
            problems.append(f"{where}: code {code} is not in {uri}")
    return problems


#: The Code elements of the schema and the list each one's type fixes (for a Code sent without its listURI).
_CODE_ELEMENTS = {
    "status": "urn:xoev-de:rueckkanal:codeliste:antragsstatus",
    "entscheidung": "urn:xoev-de:rueckkanal:codeliste:entscheidungsart",
    "nachrichtentyp": "urn:xoev-de:rueckkanal:codeliste:nachrichtentyp",
    "praefix": "urn:xoev-de:rueckkanal:codeliste:behoerdenkennung.praefix",
    "grund": "urn:xoev-de:xgewerbeordnung:codeliste:rueckweisungsgruende",
    "grund.xantragsstatus": "urn:xoev-de:rueckkanal:codeliste:rueckweisungsgrund",
}


def _sub(parent: etree._Element, tag: str) -> etree._Element:
    return etree.SubElement(parent, tag)


def _text(parent: etree._Element, tag: str, text: str) -> etree._Element:
    element = etree.SubElement(parent, tag)
    element.text = text
    return element


def _code(parent: etree._Element, tag: str, codelist: CodeList, code: str) -> None:
    element = etree.SubElement(parent, tag, listURI=codelist.uri, listVersionID=codelist.version)
    _text(element, "code", code)
    if code in codelist:
        _text(element, "name", codelist.label(code))


# What libxml2 escapes when it writes text and attribute values (xmlEscapeContent, xmlAttrSerializeTxtContent):
# the values of :meth:`MessageRenderer.statusmeldung_xml` come out as lxml would write them.
_TEXT_ESCAPES = str.maketrans({"&": "&amp;", "<": "&lt;", ">": "&gt;", "\r": "&#13;"})
_ATTRIBUTE_ESCAPES = str.maketrans(
    {"&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "\n": "&#10;", "\r": "&#13;", "\t": "&#9;"}
)
_TEXT_SPECIAL = re.compile("[&<>\r]")


def _element(tag: str, text: str) -> str:
    if _TEXT_SPECIAL.search(text) is not None:
        text = text.translate(_TEXT_ESCAPES)
    return f"<{tag}>{text}</{tag}>"


def _attribute(value: str) -> str:
    return value.translate(_ATTRIBUTE_ESCAPES)


def _millis(moment: datetime) -> str:
    if moment.tzinfo is None:
        raise RenderError("a message time needs a time zone", reason=Reason.XSD_INVALID)
    return moment.isoformat(timespec="milliseconds")
