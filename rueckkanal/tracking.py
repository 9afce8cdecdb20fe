"""What the citizen's status page knows about a Vorgang, and the rules of its tracking links. Pure: no I/O.

**Statuses.** :func:`status_from_message` reads one outbox message (our own Statusmeldung 0100, XSD-checked with the
safe parser) into a :class:`StoredStatus`: exactly what the page shows, nothing more. The Aktenzeichen and the
Postfach reference are left out: the page shows no names, addresses or Aktenzeichen. A Vorgang's statuses form its
timeline in ``sequence`` order (the Fachverfahren's order as the lifecycle numbered it), never in arrival order, so
a late message lands in its place; :func:`timeline` keeps one entry per nachrichtenUUID.

**Tracking tokens.** A token is :data:`TOKEN_BYTES` bytes from the operating system's CSPRNG (160 bit), written as
URL-safe base64 without padding (27 characters). It is never derived from the Vorgang id. Only
:func:`token_digest` of it is stored: HMAC-SHA-256 under a server-side pepper, so a copy of the database alone
cannot be turned back into working links, nor tested against guessed tokens. A text that does not have the shape
of a token is never looked up (:func:`is_token_shaped`). A Vorgang may have several valid tokens (reprints); each
can be revoked; all of them stop working :data:`DEFAULT_TTL` (configurable) after the Vorgang reached a final
status, counted from when that status arrived here (a Fachverfahren's clock and late replays do not shorten it).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import re
import secrets
from collections.abc import Iterable
from dataclasses import dataclass, replace
from datetime import date, datetime, timedelta
from decimal import Decimal

from rueckkanal import safexml
from rueckkanal.codelists import codelists
from rueckkanal.errors import EventInvalid, Reason

TOKEN_BYTES = 20
TOKEN_LENGTH = 27  # base64url of 20 bytes, without "=" padding
_TOKEN_SHAPE = re.compile(r"[A-Za-z0-9_-]{27}")
DEFAULT_TTL = timedelta(days=90)
MAX_MESSAGE_BYTES = 256 * 1024


def new_token() -> str:
    """A fresh tracking token: 160 random bits from :mod:`secrets`, URL-safe."""
    return base64.urlsafe_b64encode(secrets.token_bytes(TOKEN_BYTES)).rstrip(b"=").decode()


def is_token_shaped(text: str) -> bool:
    """Whether ``text`` could be a token at all (length and alphabet); anything else is answered "not found"."""
    return _TOKEN_SHAPE.fullmatch(text) is not None


def token_digest(token: str, pepper: bytes) -> str:
    """The stored form of a token: hex HMAC-SHA-256 under the server's pepper."""
    return hmac.new(pepper, token.encode("ascii"), hashlib.sha256).hexdigest()


def links_expired(final_at: datetime | None, now: datetime, ttl: timedelta = DEFAULT_TTL) -> bool:
    """Whether a Vorgang's links have expired: ``ttl`` after its final status arrived (``final_at``); a Vorgang
    that is not final (or was reopened by a Widerspruch) keeps its links."""
    return final_at is not None and now >= final_at + ttl


def is_final(status: str) -> bool:
    """A status after which nothing more is expected (``terminal`` in the Antragsstatus code list)."""
    return status in codelists().terminal_statuses


@dataclass(frozen=True)
class Payment:
    """The payment of a status (300 requested, 310 received), with the authority's account when given."""

    betrag: Decimal
    waehrung: str
    verwendungszweck: str
    zahlungs_url: str | None = None
    faelligkeit: date | None = None
    empfaenger: str | None = None
    iban: str | None = None
    bic: str | None = None
    kassenzeichen: str | None = None


@dataclass(frozen=True)
class StoredStatus:
    """One status of one Vorgang as the page shows it; ``nachrichten_uuid`` identifies it across redeliveries."""

    vorgang_key: str
    nachrichten_uuid: str
    sequence: int
    status: str
    status_text: str
    zeitpunkt: datetime
    leistung: str
    fachverfahren: str  # the configured Fachverfahren name (outbox header rk.source), for the Leistung's name
    zusatzinformation: str | None = None
    hinweis: str | None = None
    frist: date | None = None
    entscheidung: str | None = None
    zahlung: Payment | None = None
    berichtigt: str | None = None  # a Statusberichtigung (0102): the nachrichtenUUID of the status it replaces
    aktuell: bool = True  # False: a correction of an earlier status; the current status stays
    corrected: bool = False  # set by timeline(): this entry replaced the one at its place


def status_from_message(xml: bytes, *, fachverfahren: str) -> StoredStatus:
    """The :class:`StoredStatus` of one Statusmeldung 0100 or Statusberichtigung 0102; anything else raises
    :class:`EventInvalid`.

    The message is parsed with the safe parser and checked against the XSD before anything is read from it.
    """
    from rueckkanal.xoev import STATUSBERICHTIGUNG, STATUSMELDUNG, root_tag, schema_check  # import late

    root = safexml.parse(xml, max_bytes=MAX_MESSAGE_BYTES)
    check = schema_check()
    if not check.valid(root):
        raise EventInvalid(f"outbox message violates the XSD: {check.errors(root)}", reason=Reason.SCHEMA_INVALID)
    if root.tag not in (root_tag(STATUSMELDUNG), root_tag(STATUSBERICHTIGUNG)):
        raise EventInvalid("outbox message is not a Statusmeldung (0100/0102)", reason=Reason.SCHEMA_INVALID)
    vorgang = root.find("vorgang")
    ereignis = root.find("statusereignis")
    if vorgang is None or ereignis is None:  # required by the XSD
        raise EventInvalid("Statusmeldung without vorgang or statusereignis", reason=Reason.SCHEMA_INVALID)
    source = vorgang.findtext("fachverfahren", "")
    zahlung = ereignis.find("zahlung")
    payment = None
    if zahlung is not None:
        faelligkeit = zahlung.findtext("faelligkeit")
        payment = Payment(
            betrag=Decimal(zahlung.findtext("betrag", "0")),
            waehrung=zahlung.find("betrag").get("waehrung", "EUR"),  # type: ignore[union-attr]  # XSD
            verwendungszweck=zahlung.findtext("verwendungszweck", ""),
            zahlungs_url=zahlung.findtext("zahlungsURL"),
            faelligkeit=date.fromisoformat(faelligkeit) if faelligkeit else None,
            empfaenger=zahlung.findtext("empfaenger"),
            iban=zahlung.findtext("iban"),
            bic=zahlung.findtext("bic"),
            kassenzeichen=zahlung.findtext("kassenzeichen"),
        )
    frist = ereignis.findtext("frist")
    return StoredStatus(
        vorgang_key=f"{source}|{vorgang.findtext('vorgangsID', '')}",
        nachrichten_uuid=root.findtext("nachrichtenkopf.g2g/identifikation.nachricht/nachrichtenUUID", ""),
        sequence=int(ereignis.findtext("sequenznummer", "0")),
        status=ereignis.findtext("status/code", ""),
        status_text=ereignis.findtext("statusText", ""),
        zeitpunkt=datetime.fromisoformat(ereignis.findtext("zeitpunkt", "")),
        leistung=vorgang.findtext("leistung", ""),
        fachverfahren=fachverfahren,
        zusatzinformation=ereignis.findtext("zusatzinformation"),
        hinweis=ereignis.findtext("hinweis"),
        frist=date.fromisoformat(frist) if frist else None,
        entscheidung=ereignis.findtext("entscheidung/code"),
        zahlung=payment,
        berichtigt=root.findtext("bezug/nachrichtenUUID"),
        aktuell=root.findtext("aktuellerStatus", "true") == "true",
    )


def timeline(statuses: Iterable[StoredStatus]) -> list[StoredStatus]:
    """The statuses in sequence order, one per nachrichtenUUID (the first seen wins); ties keep arrival order.

    A correction (0102) stands in the place of the status it corrects (following chains of corrections), marked
    ``corrected``, with that status's sequence number; a correction whose target is not here keeps its own place.
    """
    seen: set[str] = set()
    unique = []
    for status in statuses:
        if status.nachrichten_uuid not in seen:
            seen.add(status.nachrichten_uuid)
            unique.append(status)
    ordered = sorted(unique, key=lambda status: status.sequence)
    place = {status.nachrichten_uuid: index for index, status in enumerate(ordered)}
    shown = dict(enumerate(ordered))
    for status in ordered:
        if status.berichtigt is None or status.berichtigt not in place:
            continue
        index = place[status.berichtigt]
        del shown[place[status.nachrichten_uuid]]
        place[status.nachrichten_uuid] = index
        shown[index] = replace(status, sequence=ordered[index].sequence, corrected=True)
    return [shown[index] for index in sorted(shown)]


def status_to_json(status: StoredStatus) -> str:
    """The stored form of a status (the database keeps it as one JSON text beside its key columns)."""
    payment = status.zahlung
    document: dict[str, object] = {
        "vorgangKey": status.vorgang_key,
        "nachrichtenUUID": status.nachrichten_uuid,
        "sequence": status.sequence,
        "status": status.status,
        "statusText": status.status_text,
        "zeitpunkt": status.zeitpunkt.isoformat(),
        "leistung": status.leistung,
        "fachverfahren": status.fachverfahren,
        "zusatzinformation": status.zusatzinformation,
        "hinweis": status.hinweis,
        "frist": status.frist.isoformat() if status.frist else None,
        "entscheidung": status.entscheidung,
    }
    if status.berichtigt is not None:
        document["berichtigt"] = status.berichtigt
        document["aktuell"] = status.aktuell
    if payment is not None:
        document["zahlung"] = {
            "betrag": str(payment.betrag),
            "waehrung": payment.waehrung,
            "verwendungszweck": payment.verwendungszweck,
            "zahlungsUrl": payment.zahlungs_url,
            "faelligkeit": payment.faelligkeit.isoformat() if payment.faelligkeit else None,
            "empfaenger": payment.empfaenger,
            "iban": payment.iban,
            "bic": payment.bic,
            "kassenzeichen": payment.kassenzeichen,
        }
    return json.dumps(document, ensure_ascii=False, separators=(",", ":"))


def status_from_json(text: str) -> StoredStatus:
    d = json.loads(text)
    z = d.get("zahlung")
    payment = None
    if z is not None:
        payment = Payment(
            betrag=Decimal(z["betrag"]),
            waehrung=z["waehrung"],
            verwendungszweck=z["verwendungszweck"],
            zahlungs_url=z.get("zahlungsUrl"),
            faelligkeit=date.fromisoformat(z["faelligkeit"]) if z.get("faelligkeit") else None,
            empfaenger=z.get("empfaenger"),
            iban=z.get("iban"),
            bic=z.get("bic"),
            kassenzeichen=z.get("kassenzeichen"),
        )
    return StoredStatus(
        vorgang_key=d["vorgangKey"],
        nachrichten_uuid=d["nachrichtenUUID"],
        sequence=d["sequence"],
        status=d["status"],
        status_text=d["statusText"],
        zeitpunkt=datetime.fromisoformat(d["zeitpunkt"]),
        leistung=d["leistung"],
        fachverfahren=d["fachverfahren"],
        zusatzinformation=d.get("zusatzinformation"),
        hinweis=d.get("hinweis"),
        frist=date.fromisoformat(d["frist"]) if d.get("frist") else None,
        entscheidung=d.get("entscheidung"),
        zahlung=payment,
        berichtigt=d.get("berichtigt"),
        aktuell=d.get("aktuell", True),
    )
