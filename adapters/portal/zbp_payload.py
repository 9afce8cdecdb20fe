"""The BundID/ZBP payloads of one outbox message, as pure functions of (XÖV XML, Fachverfahren, settings).

The outbox carries our own XAntragsstatus 0100; this module reads it (safe parser, fields by their XSD names) and
builds what the ZBP receives (docs/zbp.md names the public sources and where they disagree):

* ``status_v6``: ``applicationId`` (vorgang/antragsID), ``status`` (the ZBP value of the code list's ``bundid`` column,
  or ``zbp.status_map``), ``publicServiceName`` {"de"} (the Leistung's name from the Fachverfahren config named by
  the outbox header ``rk.source``), ``senderName``, ``createdDate`` (the status time in UTC, milliseconds, ``Z``),
  ``statusDetails`` {"de"} (statusText), ``additionalInformation`` {"de"} (zusatzinformation, else the Hinweis) and
  ``reference`` (the Aktenzeichen).
* ``message_v6`` for the statuses of ``zbp.message_statuses`` (210, 300, 410) when ``postfachReferenz`` names a
  BundID mailbox (``zbp.mailbox_prefix`` + UUID, or a bare UUID): ``mailboxUuid``, ``sender``, ``title``,
  ``content``, ``service``, ``stork_qaa_level``, ``reference``, ``applicationId`` and ``attachments``.

Every value comes from the message itself, so a retry or a replay of the same nachrichtenUUID builds byte-identical
content (:func:`canonical_json`). Limits are counted in code points; longer text is shortened at a word boundary
with "…" (:func:`shorten`) and reported through ``on_shortened``, never refused. What cannot be built at all is a
:class:`~rueckkanal.errors.PermanentDeliveryError` with ``sent=False`` and its own reason: no antragsID
(``zbp_missing_antrags_id``), a status without a ZBP value (``zbp_status_unmapped``), a Leistung without a name
(``zbp_service_name_missing``).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

from lxml import etree

from adapters.inbound.config import FachverfahrenConfig
from rueckkanal import safexml
from rueckkanal.codelists import codelists
from rueckkanal.errors import DecodeError, PermanentDeliveryError, Reason
from rueckkanal.settings import ZbpSettings
from rueckkanal.targets import is_mailbox_uuid

ELLIPSIS = "…"
MAX_XML_BYTES = 1024 * 1024


@dataclass(frozen=True, slots=True)
class Attachment:
    """A document sent with a mailbox message: only its name, SHA-512 (hex) and size enter the signed payload."""

    filename: str
    content: bytes

    def manifest(self) -> dict[str, Any]:
        return {
            "filename": self.filename,
            "sha512sum": hashlib.sha512(self.content).hexdigest(),
            "contentLength": len(self.content),
        }


@dataclass(frozen=True, slots=True)
class ZbpPayloads:
    status: dict[str, Any] | None  # None: a correction of an earlier status, which the status monitor cannot show
    message: dict[str, Any] | None  # None: no mailbox message for this status or no BundID mailbox


@dataclass(frozen=True, slots=True)
class _Meldung:
    """The fields of a Statusmeldung 0100 or Statusberichtigung 0102 the ZBP needs."""

    fachverfahren: str
    leistung: str
    antrags_id: str | None
    aktenzeichen: str | None
    postfach: str | None
    status: str
    zeitpunkt: datetime
    status_text: str
    zusatzinformation: str | None
    hinweis: str | None
    frist: date | None
    entscheidung: str | None
    betrag: str | None
    waehrung: str | None
    verwendungszweck: str | None
    zahlungs_url: str | None
    faelligkeit: date | None
    berichtigt: bool = False  # a Statusberichtigung 0102
    aktuell: bool = True  # False: it corrects an earlier status, not the current one


def shorten(text: str, limit: int) -> str:
    """``text`` in at most ``limit`` code points, ending in "…": cut before the word the limit falls into, unless
    that would drop more than half (one long word is cut inside)."""
    if len(text) <= limit:
        return text
    if limit <= 1:
        return ELLIPSIS[:limit]
    head = text[: limit - 1]
    if not text[limit - 1].isspace():  # the cut falls inside a word: go back to its start
        blank = head.rfind(" ")
        if blank >= (limit - 1) // 2:
            head = head[:blank]
    return head.rstrip(" ,;:-–") + ELLIPSIS


def canonical_json(payload: Mapping[str, Any]) -> str:
    """The one serialisation of a payload: UTF-8 text, no escapes for non-ASCII or "/", no blanks, keys in the
    order they were built. The same message always gives the same string, so a retry signs the same content."""
    return json.dumps(payload, ensure_ascii=False, separators=(",", ":"))


def utc_millis(moment: datetime) -> str:
    """``2024-03-21T06:45:00.000Z``: UTC with milliseconds and ``Z``, as the ZBP's createdDate."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def mailbox_uuid(postfach: str | None, prefix: str) -> str | None:
    """The BundID mailbox UUID of a postfachReferenz (``prefix`` + UUID or a bare UUID, lower-cased), else None."""
    if not postfach:
        return None
    candidate = postfach[len(prefix) :] if prefix and postfach.startswith(prefix) else postfach
    return candidate.lower() if is_mailbox_uuid(candidate) else None


class PayloadBuilder:
    """Builds the payloads of one target; ``on_shortened(field)`` is called once per shortened field."""

    def __init__(
        self,
        settings: ZbpSettings,
        fachverfahren: Sequence[FachverfahrenConfig],
        *,
        sender_name: str,
        on_shortened: Callable[[str], None] | None = None,
    ) -> None:
        self.settings = settings
        self.sender_name = sender_name
        self._by_name = {fv.name: fv for fv in fachverfahren}
        self._by_source = {fv.source: fv for fv in fachverfahren}
        self._on_shortened = on_shortened or (lambda _field: None)

    def zbp_status(self, code: str) -> str | None:
        """The ZBP status of an Antragsstatus code: ``status_map`` first, then the code list's ``bundid`` column."""
        if code in self.settings.status_map:
            return self.settings.status_map[code] or None
        antragsstatus = codelists().antragsstatus
        return (antragsstatus.value(code, "bundid") or None) if code in antragsstatus else None

    def build(self, xml: bytes, source: str | None) -> ZbpPayloads:
        meldung = read_meldung(xml)
        limits = self.settings.limits
        if meldung.antrags_id is None:
            raise _unsendable(
                "the message has no antragsID (the portal's applicationId)", Reason.ZBP_MISSING_ANTRAGS_ID
            )
        if meldung.berichtigt and not meldung.aktuell:
            # The status monitor shows one status per application, the current one: a correction of an earlier
            # status must not overwrite it. Only a mailbox message (the corrected letter) can show it.
            return ZbpPayloads(None, self._message(meldung, self._service_name(meldung, source)))
        status = self.zbp_status(meldung.status)
        if status is None:
            raise _unsendable(f"status {meldung.status} has no ZBP status", Reason.ZBP_STATUS_UNMAPPED)
        service = self._service_name(meldung, source)
        payload: dict[str, Any] = {
            "applicationId": meldung.antrags_id,
            "status": status,
            "publicServiceName": {"de": self._fit("publicServiceName", service, limits.public_service_name)},
            "senderName": self._fit("senderName", self.sender_name, limits.sender_name),
            "createdDate": utc_millis(meldung.zeitpunkt),
            "statusDetails": {"de": self._fit("statusDetails", meldung.status_text, limits.status_details)},
        }
        extra = meldung.zusatzinformation or meldung.hinweis
        if extra:
            payload["additionalInformation"] = {
                "de": self._fit("additionalInformation", extra, limits.additional_information)
            }
        if meldung.aktenzeichen:
            payload["reference"] = self._fit("reference", meldung.aktenzeichen, limits.reference)
        return ZbpPayloads(payload, self._message(meldung, service))

    def _message(
        self, meldung: _Meldung, service: str, attachments: Sequence[Attachment] = ()
    ) -> dict[str, Any] | None:
        mailbox = mailbox_uuid(meldung.postfach, self.settings.mailbox_prefix)
        if mailbox is None or meldung.status not in self.settings.message_statuses:
            return None
        limits = self.settings.limits
        label = codelists().antragsstatus.label(meldung.status)
        if meldung.berichtigt:
            label = f"Berichtigung: {label}"
        message: dict[str, Any] = {
            "stork_qaa_level": self.settings.stork_qaa_level,
            "mailboxUuid": mailbox,
            "sender": self._fit("sender", self.sender_name, limits.message_sender),
            "title": self._fit("title", f"{label}: {service}", limits.message_title),
            "content": message_content(meldung, service),
            "service": self._fit("service", service, limits.message_service),
            "applicationId": meldung.antrags_id,
        }
        if meldung.aktenzeichen:
            message["reference"] = self._fit("messageReference", meldung.aktenzeichen, limits.message_reference)
        if attachments:
            message["attachments"] = [attachment.manifest() for attachment in attachments]
        return message

    def _service_name(self, meldung: _Meldung, source: str | None) -> str:
        config = self._by_name.get(source or "") or self._by_source.get(meldung.fachverfahren)
        name = config.leistung_name(meldung.leistung) if config is not None else None
        if name is None:
            raise _unsendable(
                f"Leistung {meldung.leistung} has no name in the Fachverfahren config (leistungen)",
                Reason.ZBP_SERVICE_NAME_MISSING,
            )
        return name.de

    def _fit(self, field: str, text: str, limit: int) -> str:
        short = shorten(text, limit)
        if short != text:
            self._on_shortened(field)
        return short


def message_content(meldung: _Meldung, service: str) -> str:
    """The mailbox message's text: what happened, what to do by when, the payment, in plain German."""
    lines = [f"{meldung.status_text}", "", f"Leistung: {service}"]
    if meldung.aktenzeichen:
        lines.append(f"Aktenzeichen: {meldung.aktenzeichen}")
    if meldung.entscheidung:
        lines.append(f"Entscheidung: {codelists().entscheidungsart.label(meldung.entscheidung)}")
    if meldung.zusatzinformation:
        lines += ["", meldung.zusatzinformation]
    if meldung.hinweis:
        lines += ["", meldung.hinweis]
    if meldung.frist is not None:
        lines += ["", f"Frist: {meldung.frist:%d.%m.%Y}"]
    if meldung.betrag is not None:
        amount = f"{Decimal(meldung.betrag):.2f}".replace(".", ",")
        lines += ["", f"Zu zahlen: {amount} {meldung.waehrung or 'EUR'}"]
        if meldung.verwendungszweck:
            lines.append(f"Verwendungszweck: {meldung.verwendungszweck}")
        if meldung.faelligkeit is not None:
            lines.append(f"Fällig am: {meldung.faelligkeit:%d.%m.%Y}")
        if meldung.zahlungs_url:
            lines.append(f"Online bezahlen: {meldung.zahlungs_url}")
    return "\n".join(lines)


def read_meldung(xml: bytes) -> _Meldung:
    """The fields of our own Statusmeldung; a message that is not one is a bug upstream, dead-lettered unsent."""
    try:
        root = safexml.parse(xml, max_bytes=MAX_XML_BYTES)
    except DecodeError as exc:
        raise _unsendable(f"outbox message not readable ({exc.reason.value})", Reason.XML_MALFORMED) from None
    vorgang = root.find("vorgang")
    ereignis = root.find("statusereignis")
    if vorgang is None or ereignis is None:
        raise _unsendable("outbox message is no Statusmeldung 0100", Reason.SCHEMA_INVALID)
    try:
        zeitpunkt = datetime.fromisoformat(_text(ereignis, "zeitpunkt") or "")
        frist, faelligkeit = _date(ereignis, "frist"), _date(ereignis, "zahlung/faelligkeit")
    except ValueError:
        raise _unsendable("outbox message has an unreadable time or date", Reason.SCHEMA_INVALID) from None
    betrag = ereignis.find("zahlung/betrag")
    return _Meldung(
        fachverfahren=_text(vorgang, "fachverfahren") or "",
        leistung=_text(vorgang, "leistung") or "",
        antrags_id=_text(vorgang, "antragsID"),
        aktenzeichen=_text(vorgang, "aktenzeichen"),
        postfach=_text(vorgang, "postfachReferenz"),
        status=_text(ereignis, "status/code") or "",
        zeitpunkt=zeitpunkt,
        status_text=_text(ereignis, "statusText") or "",
        zusatzinformation=_text(ereignis, "zusatzinformation"),
        hinweis=_text(ereignis, "hinweis"),
        frist=frist,
        entscheidung=_text(ereignis, "entscheidung/code"),
        betrag=betrag.text if betrag is not None else None,
        waehrung=betrag.get("waehrung") if betrag is not None else None,
        verwendungszweck=_text(ereignis, "zahlung/verwendungszweck"),
        zahlungs_url=_text(ereignis, "zahlung/zahlungsURL"),
        faelligkeit=faelligkeit,
        berichtigt=root.find("bezug") is not None,
        aktuell=_text(root, "aktuellerStatus") != "false",
    )


def _text(element: etree._Element, path: str) -> str | None:
    text = element.findtext(path)
    return text.strip() or None if text is not None else None


def _date(element: etree._Element, path: str) -> date | None:
    text = _text(element, path)
    return date.fromisoformat(text) if text else None


def _unsendable(message: str, reason: Reason) -> PermanentDeliveryError:
    return PermanentDeliveryError(message, reason=reason, sent=False)
