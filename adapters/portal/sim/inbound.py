"""How the reference portal reads a Statusmeldung 0100 or Statusberichtigung 0102: as strictly as a real portal
should.

Safe parse (no DTD, no entities, size cap) → version (namespace) → root element 0100/0102 → XSD → code lists → the
fields the portal keeps. Every refusal names a Rückweisungsgrund (the XÖV list where it has one: X000 not
well-formed, V000 another version of the standard, X001 schema, S011 code; AS105 too large) and a short text
without values from the message.
"""

from __future__ import annotations

import hashlib
import re
import uuid
from dataclasses import dataclass

from lxml import etree

from adapters.portal.sim.store import Incoming
from rueckkanal import safexml
from rueckkanal.errors import DecodeError, Reason
from rueckkanal.xoev import (
    NACHRICHTEN_NAMESPACE,
    PREVIOUS_NAMESPACES,
    STATUSBERICHTIGUNG,
    STATUSMELDUNG,
    code_problems,
    root_tag,
    schema_errors,
    xsd,
)

_UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[1-8][0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}")
_UUID_PATH = "nachrichtenkopf.g2g/identifikation.nachricht/nachrichtenUUID"
_MAX_SEQUENCE = 2**63 - 1  # SQLite INTEGER; the XSD's positiveInteger has no upper bound


@dataclass(frozen=True, slots=True)
class Refused:
    """The message cannot be taken: Rückweisungsgrund ``code`` with ``text``, about message ``bezug_uuid``."""

    code: str
    text: str
    bezug_uuid: str


def read_statusmeldung(body: bytes, *, max_bytes: int, idempotency_key: str | None) -> Incoming | Refused:
    """The portal's view of a 0100, or why it refuses it."""
    try:
        root = safexml.parse(body, max_bytes=max_bytes)
    except DecodeError as exc:
        code = "AS105" if exc.reason is Reason.PAYLOAD_TOO_LARGE else "X000"
        return Refused(code, f"Nachricht nicht lesbar ({exc.reason.value})", bezug_for(None, idempotency_key, body))
    bezug = bezug_for(root, idempotency_key, body)
    namespace = etree.QName(root).namespace or ""
    if namespace in PREVIOUS_NAMESPACES:
        version = PREVIOUS_NAMESPACES[namespace]
        return Refused("V000", f"XAntragsstatus {version} wird nicht mehr angenommen, nur 2.0.0", bezug)
    if root.tag not in (root_tag(STATUSMELDUNG), root_tag(STATUSBERICHTIGUNG)):
        return Refused("X001", "Nachricht ist keine Statusmeldung 0100 oder Statusberichtigung 0102", bezug)
    schema = xsd()
    if not schema.validate(root):
        return Refused("X001", _cut(f"Nachricht schemaungültig: {schema_errors(schema, limit=3)}"), bezug)
    problems = code_problems(root)
    if problems:
        return Refused("S011", _cut(f"Codelistenwert unbekannt: {'; '.join(problems[:3])}"), bezug)
    sequence = int(root.findtext("statusereignis/sequenznummer", "0"))
    if sequence > _MAX_SEQUENCE:
        return Refused("X001", "sequenznummer zu groß", bezug)
    return Incoming(
        nachrichten_uuid=bezug,
        fachverfahren=root.findtext("vorgang/fachverfahren", ""),
        vorgangs_id=root.findtext("vorgang/vorgangsID", ""),
        sequence=sequence,
        status=root.findtext("statusereignis/status/code", ""),
        status_text=root.findtext("statusereignis/statusText", ""),
        status_time=root.findtext("statusereignis/zeitpunkt", ""),
        berichtigt=root.findtext("bezug/nachrichtenUUID"),
        aktuell=root.findtext("aktuellerStatus", "true") == "true",
    )


def bezug_for(root: etree._Element | None, idempotency_key: str | None, body: bytes) -> str:
    """The nachrichtenUUID an answer refers to: the message's own, else the Idempotency-Key, else one derived from
    the body (the XSD requires a Bezug even when the message is unreadable)."""
    if root is not None:
        own = (root.findtext(_UUID_PATH) or "").strip()
        if _UUID.fullmatch(own):
            return own
    if idempotency_key is not None and _UUID.fullmatch(idempotency_key):
        return idempotency_key
    return str(uuid.uuid5(NACHRICHTEN_NAMESPACE, "unlesbar\n" + hashlib.sha256(body).hexdigest()))


def _cut(text: str, limit: int = 500) -> str:
    """fehlertext is at most 500 characters (String.Text.500)."""
    return text if len(text) <= limit else text[: limit - 1] + "…"
