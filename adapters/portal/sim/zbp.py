"""The reference portal as the BundID/ZBP status monitor and mailbox (``rueckkanal portal-sim --mode zbp``).

``POST /zbp/v6/status`` takes a status_v6 envelope, ``POST /zbp/v6/message`` a message_v6 envelope. In order, each
step able to end the request (nothing is stored unless every step passes; ``{"error": {"code", "message"}}``):

==========================================  ================================================================
step                                        answer when it ends the request
==========================================  ================================================================
fault injection (faults.py)                 dropped connection, 503, 429, 5xx, as in XÖV mode
OAuth2 bearer check, if configured          401 ``invalid_token``
Content-Type application/json, size         415; 413 ``too_large``
envelope: JSON object of four strings       400 ``envelope_invalid``
authorCertificate: PEM, issued by the CA,   401 ``certificate_untrusted``
valid now
authorToken: RS512 by the certificate's     401 ``token_invalid``; 401 ``token_expired``;
key, iat and exp, not expired, signer = CN  401 ``token_signer_mismatch``
roles contain the required role             403 ``role_forbidden``
sha512sum: RSA-SHA512 over content          401 ``signature_invalid``
content: JSON, required fields, UUIDs,      422 ``content_invalid``, ``status_unknown``, ``field_too_long``
ZBP status value, limits (code points)
reject rule (applicationId, full match)     422 with ``reject_code``
store by Idempotency-Key (else content)     201 ``{"id": ...}``; a known key: 409 with the same id
==========================================  ================================================================

Views: ``GET /zbp/antraege`` (every application with its status history and the mailbox messages about it),
``GET /zbp/antraege/{applicationId}``, ``GET /zbp/postfach/{mailboxUuid}``, and ``GET /zbp/ansicht/{applicationId}``:
the page a citizen would see in the BundID status monitor and mailbox. The store is in memory.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime
from html import escape
from typing import Any

import jwt
import structlog
from aiohttp import web
from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.x509.oid import NameOID

from rueckkanal.targets import ZBP_STATUSES

log = structlog.get_logger("rueckkanal.portal_sim")

STATUS_PATH = "/zbp/v6/status"
MESSAGE_PATH = "/zbp/v6/message"
_UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
_CREATED = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z")
_ENVELOPE_KEYS = {"content", "sha512sum", "authorToken", "authorCertificate"}


@dataclass(frozen=True)
class ZbpRules:
    """What the simulated ZBP enforces; limits in code points (the SDK's, docs/zbp.md)."""

    ca_pem: bytes
    required_role: str = "THIRD_PARTY"
    leeway_s: int = 0
    status_limits: dict[str, int] = field(
        default_factory=lambda: {
            "publicServiceName": 100,
            "senderName": 100,
            "statusDetails": 50,
            "additionalInformation": 100,
            "reference": 50,
        }
    )
    message_limits: dict[str, int] = field(
        default_factory=lambda: {"sender": 255, "title": 1024, "service": 255, "reference": 255}
    )


class Refusal(Exception):
    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message

    def response(self) -> web.Response:
        return web.json_response({"error": {"code": self.code, "message": self.message}}, status=self.status)


@dataclass
class Stored:
    receipt_id: str
    kind: str  # "status" or "message"
    payload: dict[str, Any]
    signer: str
    received_at: str
    received_count: int = 1


class ZbpStore:
    """Everything the simulated ZBP took, by Idempotency-Key, in arrival order."""

    def __init__(self) -> None:
        self.by_key: dict[str, Stored] = {}

    def record(self, key: str, kind: str, payload: dict[str, Any], signer: str) -> tuple[Stored, bool]:
        known = self.by_key.get(key)
        if known is not None:
            known.received_count += 1
            return known, True
        stored = Stored(
            receipt_id=f"zbp-{len(self.by_key) + 1}",
            kind=kind,
            payload=payload,
            signer=signer,
            received_at=datetime.now(UTC).isoformat(timespec="milliseconds"),
        )
        self.by_key[key] = stored
        return stored, False

    def statuses(self, application_id: str | None = None) -> list[Stored]:
        return [
            s
            for s in self.by_key.values()
            if s.kind == "status" and (application_id is None or s.payload.get("applicationId") == application_id)
        ]

    def messages(self, *, mailbox: str | None = None, application_id: str | None = None) -> list[Stored]:
        return [
            s
            for s in self.by_key.values()
            if s.kind == "message"
            and (mailbox is None or s.payload.get("mailboxUuid") == mailbox)
            and (application_id is None or s.payload.get("applicationId") == application_id)
        ]


def verify_envelope(body: bytes, rules: ZbpRules, *, now: float) -> tuple[dict[str, Any], str]:
    """The payload and the signer's CN of a valid envelope; raises :class:`Refusal` naming the first failed rule."""
    try:
        envelope = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        raise Refusal(400, "envelope_invalid", "body is not JSON") from None
    if (
        not isinstance(envelope, dict)
        or set(envelope) != _ENVELOPE_KEYS
        or not all(isinstance(v, str) for v in envelope.values())
    ):
        raise Refusal(400, "envelope_invalid", "envelope must be content, sha512sum, authorToken, authorCertificate")
    certificate, common_name = _trusted_certificate(envelope["authorCertificate"], rules, now)
    key = certificate.public_key()
    if not isinstance(key, rsa.RSAPublicKey):
        raise Refusal(401, "certificate_untrusted", "certificate key is not RSA")
    try:
        claims = jwt.decode(
            envelope["authorToken"],
            key,
            algorithms=["RS512"],
            options={"require": ["iat", "exp"], "verify_iat": False, "verify_exp": False},
        )
    except jwt.InvalidTokenError:
        raise Refusal(401, "token_invalid", "authorToken is not a valid RS512 JWT of the certificate") from None
    exp = claims.get("exp")
    if not isinstance(exp, int) or isinstance(exp, bool):
        raise Refusal(401, "token_invalid", "authorToken exp is not a number")
    if exp + rules.leeway_s <= now:  # checked against the simulator's clock, like the certificate's validity
        raise Refusal(401, "token_expired", "authorToken has expired")
    if claims.get("signer") != common_name:
        raise Refusal(401, "token_signer_mismatch", "authorToken signer is not the certificate's CN")
    roles = claims.get("roles")
    if not isinstance(roles, list) or rules.required_role not in roles:
        raise Refusal(403, "role_forbidden", f"authorToken roles lack {rules.required_role}")
    try:
        signature = base64.b64decode(envelope["sha512sum"], validate=True)
        key.verify(signature, envelope["content"].encode("utf-8"), padding.PKCS1v15(), hashes.SHA512())
    except (ValueError, InvalidSignature):
        raise Refusal(401, "signature_invalid", "sha512sum is not the certificate's signature of content") from None
    try:
        payload = json.loads(envelope["content"])
    except ValueError:
        raise Refusal(422, "content_invalid", "content is not JSON") from None
    if not isinstance(payload, dict):
        raise Refusal(422, "content_invalid", "content must be a JSON object")
    return payload, common_name


def _trusted_certificate(pem: str, rules: ZbpRules, now: float) -> tuple[x509.Certificate, str]:
    try:
        certificate = x509.load_pem_x509_certificate(pem.encode("ascii"))
        ca = x509.load_pem_x509_certificate(rules.ca_pem)
        certificate.verify_directly_issued_by(ca)
    except (ValueError, TypeError, InvalidSignature, UnicodeEncodeError):
        raise Refusal(401, "certificate_untrusted", "authorCertificate is not issued by the trusted CA") from None
    moment = datetime.fromtimestamp(now, UTC)
    if not certificate.not_valid_before_utc <= moment <= certificate.not_valid_after_utc:
        raise Refusal(401, "certificate_untrusted", "authorCertificate is not valid now")
    names = certificate.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
    if not names:
        raise Refusal(401, "certificate_untrusted", "authorCertificate has no CN")
    return certificate, str(names[0].value)


def check_status(payload: dict[str, Any], rules: ZbpRules) -> str:
    """The applicationId of a valid status_v6 payload; raises :class:`Refusal`."""
    application_id = payload.get("applicationId")
    if not isinstance(application_id, str) or not _UUID.fullmatch(application_id):
        raise Refusal(422, "content_invalid", "applicationId must be a UUID")
    if payload.get("status") not in ZBP_STATUSES:
        raise Refusal(422, "status_unknown", "status is not a ZBP status value")
    if not isinstance(payload.get("createdDate"), str) or not _CREATED.fullmatch(payload["createdDate"]):
        raise Refusal(422, "content_invalid", "createdDate must be UTC with milliseconds and Z")
    required = {"publicServiceName", "senderName"}
    for name, limit in rules.status_limits.items():
        value = payload.get(name)
        if value is None:
            if name in required:
                raise Refusal(422, "content_invalid", f"{name} is required")
            continue
        text = value.get("de") if isinstance(value, dict) else value
        if not isinstance(text, str) or not text:
            raise Refusal(422, "content_invalid", f"{name} must be a non-empty text")
        if len(text) > limit:
            raise Refusal(422, "field_too_long", f"{name} is longer than {limit} characters")
    return application_id


def check_message(payload: dict[str, Any], rules: ZbpRules) -> str:
    """The mailboxUuid of a valid message_v6 payload; raises :class:`Refusal`."""
    mailbox = payload.get("mailboxUuid")
    if not isinstance(mailbox, str) or not _UUID.fullmatch(mailbox):
        raise Refusal(422, "content_invalid", "mailboxUuid must be a UUID")
    if payload.get("stork_qaa_level") not in (1, 2, 3, 4):
        raise Refusal(422, "content_invalid", "stork_qaa_level must be 1 to 4")
    if not isinstance(payload.get("content"), str) or not payload["content"]:
        raise Refusal(422, "content_invalid", "content is required")
    for name, limit in rules.message_limits.items():
        value = payload.get(name)
        if value is None and name == "reference":
            continue
        if not isinstance(value, str) or not value:
            raise Refusal(422, "content_invalid", f"{name} must be a non-empty text")
        if len(value) > limit:
            raise Refusal(422, "field_too_long", f"{name} is longer than {limit} characters")
    for attachment in payload.get("attachments") or []:
        if not isinstance(attachment, dict) or not re.fullmatch(r"[0-9a-f]{128}", str(attachment.get("sha512sum"))):
            raise Refusal(422, "content_invalid", "attachments need sha512sum (hex) and contentLength")
    return mailbox


def content_key(body: bytes) -> str:
    return "sha512:" + hashlib.sha512(body).hexdigest()


# -- the citizen's view ----------------------------------------------------------------------------------------


def application_json(store: ZbpStore, application_id: str) -> dict[str, Any]:
    """One application: its status updates in arrival order (the view sorts by createdDate), and its messages."""
    statuses = store.statuses(application_id)
    return {
        "applicationId": application_id,
        "statuses": [{**s.payload, "receiptId": s.receipt_id, "signer": s.signer} for s in statuses],
        "messages": [{**m.payload, "receiptId": m.receipt_id} for m in store.messages(application_id=application_id)],
    }


def view_page(store: ZbpStore, application_id: str) -> str | None:
    """The BundID status monitor for one application and the mailbox messages about it, in German."""
    statuses = sorted(store.statuses(application_id), key=lambda s: s.payload.get("createdDate", ""))
    if not statuses:
        return None
    current = statuses[-1].payload
    service = escape(str(current.get("publicServiceName", {}).get("de", "")))
    items = "".join(
        f"<li><time datetime='{escape(s.payload['createdDate'])}'>{escape(s.payload['createdDate'][:10])}</time> "
        f"<strong>{escape(_german_status(s.payload['status']))}</strong> "
        f"{escape(str(s.payload.get('statusDetails', {}).get('de', '')))}</li>"
        for s in statuses
    )
    letters = "".join(
        f"<article><h3>{escape(m.payload['title'])}</h3><p>Von: {escape(m.payload['sender'])}</p>"
        f"<pre>{escape(m.payload['content'])}</pre></article>"
        for m in store.messages(application_id=application_id)
    )
    body = (
        f"<section><h2>Statusmonitor</h2><p>{service} · {escape(str(current.get('senderName', '')))}</p>"
        f"<p>Aktueller Stand: <strong>{escape(_german_status(current['status']))}</strong></p><ol>{items}</ol>"
        f"</section><section><h2>Postfach</h2>{letters or '<p>Keine Nachrichten.</p>'}</section>"
    )
    return (
        "<!DOCTYPE html><html lang='de'><head><meta charset='utf-8'><title>BundID – Ihr Antrag</title></head>"
        f"<body><h1>BundID – Ihr Antrag</h1>{body}</body></html>"
    )


_GERMAN = {
    "INITIATED": "Begonnen",
    "SUBMITTED": "Gesendet",
    "RECEIVED": "Eingegangen",
    "PROCESSING": "In Bearbeitung",
    "ACTION_REQUIRED": "Handlung erforderlich",
    "COMPLETED": "Abgeschlossen",
}


def _german_status(status: str) -> str:
    return _GERMAN.get(status, status)
