"""The BundID/ZBP back channel: status updates (``status_v6``) and mailbox messages (``message_v6``).

For each outbox message: build the payloads (:mod:`adapters.portal.zbp_payload`), wrap each in the signed envelope
(:mod:`adapters.portal.zbp_sign`) and POST it as JSON to ``zbp.status_url``, then, for 210/300/410 with a BundID
mailbox, to ``zbp.message_url``. Headers: ``Idempotency-Key`` (the nachrichtenUUID for the status; a UUIDv5 of it
for the mailbox message), ``X-Service-Identifier`` and ``X-Schema-URI`` (the FIT-Connect service and schema, for a
gateway that forwards the envelope as a FIT-Connect submission), ``traceparent`` when valid, ``Authorization``
with OAuth2. A retry of the same nachrichtenUUID sends the same content and the same signature: both depend only
on the message (the JWT inside carries its own ``iat``, as it must).

Answers (the receiving side of ``rueckkanal portal-sim --mode zbp``; docs/zbp.md):

==============================================  =====================================================
HTTP status / answer                            verdict
==============================================  =====================================================
401, 403 (certificate, signature, token,         transient ``portal_unauthorized``: our key, certificate,
expiry, role)                                   clock or roles are wrong, not the message (circuit opens)
408, 425, 429, 5xx                              transient, as for every portal (Retry-After honoured)
1xx, 3xx, 404, 405, 406, 410, 415               transient ``portal_misconfigured``
2xx or 409 with ``{"id": ...}``                 delivered (409: duplicate), the id is the receipt
2xx or 409 without a readable id                transient ``portal_misconfigured`` (no proof)
other 4xx with ``{"error": {"code": ...}}``      permanent ``portal_rejected`` with that code
                                                (``status_unknown``, ``field_too_long``, ...)
other 4xx without a readable error              permanent ``portal_client_error``
==============================================  =====================================================

The message counts as delivered when the status update is; a mailbox message that is then refused permanently
dead-letters the outbox message (a replay resends the status, answered as a duplicate, and the mailbox message).
Logs name the target, the status and the nachrichtenUUID, never a payload, a key or a token.
"""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import aiohttp
import structlog

from adapters.inbound.config import FachverfahrenConfig
from adapters.portal.base import OutboundMessage, PortalAdapter, Receipt
from adapters.portal.classify import transient_reason
from adapters.portal.httpbody import read_capped
from adapters.portal.oauth2 import token_cache
from adapters.portal.retry_after import parse_retry_after
from adapters.portal.session import PortalSession
from adapters.portal.xoev_http import ssl_context_for
from adapters.portal.zbp_config import ZbpConfig
from adapters.portal.zbp_payload import PayloadBuilder, canonical_json
from adapters.portal.zbp_sign import EnvelopeSigner
from rueckkanal.errors import PermanentDeliveryError, Reason, TransientDeliveryError
from rueckkanal.settings import PortalAuth
from rueckkanal.tracecontext import valid_traceparent

log = structlog.get_logger("rueckkanal.portal.zbp")

_HEADER_VALUE = re.compile(r"[\x21-\x7e]{1,200}")
_CODE = re.compile(r"[A-Za-z0-9_.\-]{1,64}")
_MISCONFIGURED_4XX = frozenset({404, 405, 406, 410, 415})
MESSAGE_NAMESPACE = uuid.UUID("5b0e3f8e-2f55-5d7c-9a44-3c1b7f0e6a21")  # Idempotency-Key of message_v6


@dataclass(frozen=True, slots=True)
class ZbpAnswer:
    """One HTTP answer: status, Retry-After, and the body (None: larger than the cap)."""

    status: int
    retry_after: str | None
    body: bytes | None


ZbpTransport = Callable[[str, bytes, dict[str, str]], Awaitable[ZbpAnswer]]
"""``(url, body, headers) -> answer``: the HTTP call, replaceable by the in-memory twin (zbp_memory.py)."""


class ZbpPortal(PortalAdapter):
    def __init__(
        self,
        config: ZbpConfig,
        fachverfahren: Sequence[FachverfahrenConfig],
        *,
        sender_name: str,
        signer: EnvelopeSigner | None = None,
        session: aiohttp.ClientSession | None = None,
        on_shortened: Callable[[str], None] | None = None,
        transport: ZbpTransport | None = None,
    ) -> None:
        self.config = config
        self._transport = transport
        self.signer = signer or EnvelopeSigner(
            config.signing_key,
            config.signing_cert,
            password=config.signing_key_password.get_secret_value().encode() if config.signing_key_password else None,
            roles=config.roles,
            token_ttl_s=config.token_ttl_s,
        )
        self.builder = PayloadBuilder(
            config, fachverfahren, sender_name=config.sender_name or sender_name, on_shortened=on_shortened
        )
        self._http = PortalSession(
            session,
            ssl_context=ssl_context_for(config.tls, "zbp.tls"),
            max_connections=config.max_connections,
            timeouts=config.timeouts,
        )
        self._tokens = token_cache(
            config.oauth2 if config.auth is PortalAuth.OAUTH2 else None,
            self._http,
            max_bytes=config.max_response_bytes,
        )

    @property
    def name(self) -> str:
        return self.config.name

    async def send(self, message: OutboundMessage) -> Receipt:
        uuid_key = _header_value(message.nachrichten_uuid)
        payloads = self.builder.build(message.xml, message.source)
        mailbox_payload = payloads.message

        async def mailbox_message(content: dict[str, Any]) -> Receipt:
            return await self._deliver(
                str(self.config.message_url),
                canonical_json(content),
                key=str(uuid.uuid5(MESSAGE_NAMESPACE, uuid_key)),
                service=self.config.message_service,
                schema=self.config.message_schema,
                message=message,
            )

        if payloads.status is None:  # a correction of an earlier status: at most the corrected mailbox message
            if mailbox_payload is None:
                return Receipt(None, duplicate=False, status_code=204, received_at=datetime.now(UTC))
            return await mailbox_message(mailbox_payload)
        status = await self._deliver(
            str(self.config.status_url),
            canonical_json(payloads.status),
            key=uuid_key,
            service=self.config.status_service,
            schema=self.config.status_schema,
            message=message,
        )
        if mailbox_payload is None:
            return status
        mailbox = await mailbox_message(mailbox_payload)
        return Receipt(
            status.portal_receipt_id,
            duplicate=status.duplicate and mailbox.duplicate,
            status_code=status.status_code,
            received_at=status.received_at,
        )

    async def aclose(self) -> None:
        await self._http.aclose()

    async def _deliver(
        self, url: str, content: str, *, key: str, service: str, schema: str, message: OutboundMessage
    ) -> Receipt:
        token = await self._tokens.token() if self._tokens is not None else None
        answer = await self._post(url, content, key, service, schema, message, token)
        if answer.status == 401 and self._tokens is not None and token is not None:
            self._tokens.invalidate(token)
            token = await self._tokens.token()
            answer = await self._post(url, content, key, service, schema, message, token)
        return self._classify(answer, message)

    async def _post(
        self,
        url: str,
        content: str,
        key: str,
        service: str,
        schema: str,
        message: OutboundMessage,
        token: str | None,
    ) -> ZbpAnswer:
        body = json.dumps(self.signer.envelope(content), ensure_ascii=False).encode("utf-8")
        headers = {
            "Content-Type": "application/json",
            "Accept": "application/json",
            "Idempotency-Key": key,
            "X-Service-Identifier": service,
            "X-Schema-URI": schema,
        }
        traceparent = valid_traceparent(message.traceparent) if message.traceparent is not None else None
        if traceparent is not None:
            headers["traceparent"] = traceparent
        if token is not None:
            if not _HEADER_VALUE.fullmatch(token):
                raise TransientDeliveryError("token is not a valid header value", reason=Reason.PORTAL_UNAUTHORIZED)
            headers["Authorization"] = f"Bearer {token}"
        if self._transport is not None:
            return await self._transport(url, body, headers)
        try:
            async with self._http().post(url, data=body, headers=headers, allow_redirects=False) as response:
                answer = await read_capped(response, self.config.max_response_bytes)
                return ZbpAnswer(response.status, response.headers.get("Retry-After"), answer)
        except TimeoutError:
            raise TransientDeliveryError("zbp did not answer in time", reason=Reason.PORTAL_TIMEOUT) from None
        except aiohttp.ClientError as exc:
            raise TransientDeliveryError(
                f"zbp connection failed ({type(exc).__name__})", reason=Reason.PORTAL_CONNECTION
            ) from None

    def _classify(self, answer: ZbpAnswer, message: OutboundMessage) -> Receipt:
        now = datetime.now(UTC)
        status = answer.status
        transient = transient_reason(status)
        if transient is not None:
            retry_after = parse_retry_after(answer.retry_after, now=now, cap_s=self.config.retry_after_cap_s)
            if transient is Reason.PORTAL_UNAUTHORIZED:
                log.warning(
                    "zbp refused our credentials",
                    portal=self.name,
                    status=status,
                    code=_error_code(answer.body),
                    nachrichten_uuid=message.nachrichten_uuid,
                )
            raise TransientDeliveryError(f"zbp answered HTTP {status}", reason=transient, retry_after=retry_after)
        if status < 200 or 300 <= status < 400 or status in _MISCONFIGURED_4XX:
            raise TransientDeliveryError(
                f"zbp answered HTTP {status}; check the target's status_url and message_url",
                reason=Reason.PORTAL_MISCONFIGURED,
            )
        if 200 <= status < 300 or status == 409:
            receipt_id = _receipt_id(answer.body)
            if receipt_id is None:
                raise TransientDeliveryError(
                    f"zbp answered HTTP {status} without a receipt id", reason=Reason.PORTAL_MISCONFIGURED
                )
            return Receipt(receipt_id, duplicate=status == 409, status_code=status, received_at=now)
        code = _error_code(answer.body)
        if code is None:
            raise PermanentDeliveryError(f"zbp answered HTTP {status}", reason=Reason.PORTAL_CLIENT_ERROR)
        raise PermanentDeliveryError(
            f"zbp refused the message (HTTP {status}, {code})", reason=Reason.PORTAL_REJECTED, portal_code=code
        )


def _json(body: bytes | None) -> Any:
    if not body:
        return None
    try:
        return json.loads(body)
    except ValueError:
        return None


def _receipt_id(body: bytes | None) -> str | None:
    document = _json(body)
    value = document.get("id") if isinstance(document, dict) else None
    return value if isinstance(value, str) and _HEADER_VALUE.fullmatch(value) else None


def _error_code(body: bytes | None) -> str | None:
    """The portal's error code, only if it has the shape of a code (it goes into logs and DLQ headers)."""
    document = _json(body)
    error = document.get("error") if isinstance(document, dict) else None
    code = error.get("code") if isinstance(error, dict) else None
    return code if isinstance(code, str) and _CODE.fullmatch(code) else None


def _header_value(nachrichten_uuid: str) -> str:
    if not _HEADER_VALUE.fullmatch(nachrichten_uuid):
        raise PermanentDeliveryError(
            "nachrichtenUUID is not a valid header value", reason=Reason.PORTAL_CLIENT_ERROR, sent=False
        )
    return nachrichten_uuid
