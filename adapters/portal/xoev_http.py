"""The XÖV back channel over HTTP: POST a Statusmeldung 0100, read the Quittung 0190 or Rückweisung 0191.

One request per message, ``Content-Type: application/xml``, ``Idempotency-Key: <nachrichtenUUID>`` and the W3C
``traceparent`` when the message has a valid one. Every header value is checked before it reaches aiohttp (the
dispatcher checks the traceparent too; this is the last line): an invalid traceparent is left out, a
nachrichtenUUID that is no header value is a permanent ``portal_client_error``. Redirects are never followed. The
answer is read with a size cap, parsed with the core's safe parser
and XSD check (:func:`rueckkanal.xoev.parse_portal_answer`) and routed by :mod:`adapters.portal.classify`.

Auth (``portal.auth``): none; ``oauth2`` client credentials with a cached, single-flight token that is refreshed
before it expires and once after a 401 (the request is then sent once more); ``mtls`` with a client certificate.
A custom CA bundle and a client certificate may be given with any mode.

Logs name the portal, the status and the nachrichtenUUID; never the message, the answer body or a secret.
"""

from __future__ import annotations

import re
import ssl
from dataclasses import dataclass
from datetime import UTC, datetime

import aiohttp
import structlog

from adapters.portal.base import OutboundMessage, PortalAdapter, Receipt
from adapters.portal.classify import classify, is_transient
from adapters.portal.httpbody import read_capped
from adapters.portal.oauth2 import token_cache
from adapters.portal.retry_after import parse_retry_after
from adapters.portal.session import PortalSession
from adapters.portal.xoev_http_config import PortalAuth, PortalHttpConfig, PortalTls
from rueckkanal.errors import ConfigError, PermanentDeliveryError, Reason, RueckkanalError, TransientDeliveryError
from rueckkanal.tracecontext import valid_traceparent
from rueckkanal.xoev import PortalAnswer, Quittung, parse_portal_answer

log = structlog.get_logger("rueckkanal.portal")

# Visible ASCII only: no CR/LF, no control characters, nothing aiohttp would refuse or a server would split on.
_HEADER_VALUE = re.compile(r"[\x21-\x7e]{1,200}")


@dataclass(frozen=True, slots=True)
class _Response:
    status: int
    retry_after: str | None
    body: bytes | None  # None: larger than the cap, not read to the end


class XoevHttpPortal(PortalAdapter):
    """A portal reached over HTTP. Create it anywhere; its session is opened on the first send, in the loop."""

    def __init__(self, config: PortalHttpConfig, *, session: aiohttp.ClientSession | None = None) -> None:
        self.config = config
        self._http = PortalSession(
            session,
            ssl_context=build_ssl_context(config),
            max_connections=config.max_connections,
            timeouts=config.timeouts,
        )
        self._url = str(config.url)
        self._tokens = token_cache(
            config.oauth2 if config.auth is PortalAuth.OAUTH2 else None,
            self._http,
            max_bytes=config.max_response_bytes,
        )

    @property
    def name(self) -> str:
        return self.config.name

    async def send(self, message: OutboundMessage) -> Receipt:
        token = await self._tokens.token() if self._tokens is not None else None
        response = await self._post(message, token)
        if response.status == 401 and self._tokens is not None and token is not None:
            self._tokens.invalidate(token)
            token = await self._tokens.token()
            response = await self._post(message, token)
        return self._classify(message, response)

    async def aclose(self) -> None:
        await self._http.aclose()

    async def _post(self, message: OutboundMessage, token: str | None) -> _Response:
        headers = {
            "Content-Type": "application/xml",
            "Accept": "application/xml",
            "Idempotency-Key": self._idempotency_key(message),
        }
        if message.traceparent is not None:
            traceparent = valid_traceparent(message.traceparent)
            if traceparent is None:
                log.warning(
                    "invalid traceparent left out", portal=self.name, nachrichten_uuid=headers["Idempotency-Key"]
                )
            else:
                headers["traceparent"] = traceparent
        if token is not None:
            if not _HEADER_VALUE.fullmatch(token):  # the token cache checks too; a header must never carry CR/LF
                raise TransientDeliveryError("token is not a valid header value", reason=Reason.PORTAL_UNAUTHORIZED)
            headers["Authorization"] = f"Bearer {token}"
        try:
            async with self._http().post(
                self._url, data=message.xml, headers=headers, allow_redirects=False
            ) as response:
                body = await read_capped(response, self.config.max_response_bytes)
                return _Response(response.status, response.headers.get("Retry-After"), body)
        except TimeoutError:
            raise TransientDeliveryError("portal did not answer in time", reason=Reason.PORTAL_TIMEOUT) from None
        except aiohttp.ClientError as exc:
            raise TransientDeliveryError(
                f"portal connection failed ({type(exc).__name__})", reason=Reason.PORTAL_CONNECTION
            ) from None

    @staticmethod
    def _idempotency_key(message: OutboundMessage) -> str:
        if not _HEADER_VALUE.fullmatch(message.nachrichten_uuid):
            raise PermanentDeliveryError(
                "nachrichtenUUID is not a valid header value", reason=Reason.PORTAL_CLIENT_ERROR, sent=False
            )
        return message.nachrichten_uuid

    def _classify(self, message: OutboundMessage, response: _Response) -> Receipt:
        now = datetime.now(UTC)
        uuid = message.nachrichten_uuid
        if is_transient(response.status):
            retry_after = parse_retry_after(response.retry_after, now=now, cap_s=self.config.retry_after_cap_s)
            return classify(response.status, None, nachrichten_uuid=uuid, retry_after=retry_after, received_at=now)
        answer = self._answer(message, response)
        received_at = answer.eingangszeitpunkt if isinstance(answer, Quittung) else now
        return classify(
            response.status,
            answer,
            nachrichten_uuid=uuid,
            retry_after=None,
            received_at=received_at,
            receipt=self.config.receipt,
        )

    def _answer(self, message: OutboundMessage, response: _Response) -> PortalAnswer | None:
        """The parsed 0190/0191, or None for an empty, oversized or unreadable body (classify decides then)."""
        fields = {"portal": self.name, "status": response.status, "nachrichten_uuid": message.nachrichten_uuid}
        if response.body is None:
            log.warning("portal answer too large, not parsed", limit=self.config.max_response_bytes, **fields)
            return None
        if not response.body.strip():
            return None
        try:
            answer = parse_portal_answer(response.body, max_bytes=self.config.max_response_bytes)
        except (RueckkanalError, ValueError) as exc:
            reason = getattr(exc, "reason", Reason.SCHEMA_INVALID)
            log.warning("portal answer not readable", reason=str(reason), **fields)
            return None
        if answer.bezug_uuid != message.nachrichten_uuid:
            log.warning("portal answer refers to another message", **fields)
        return answer


def build_ssl_context(config: PortalHttpConfig) -> ssl.SSLContext | None:
    """The TLS context for a custom CA bundle and/or a client certificate; None: aiohttp's default verification.

    Built when the adapter is created, so a missing or wrong file stops the worker at start, not at first send.
    """
    return ssl_context_for(config.tls, "portal.tls")


def ssl_context_for(tls: PortalTls, section: str) -> ssl.SSLContext | None:
    """The TLS context of a ``tls`` section (CA bundle, client certificate), or None for aiohttp's default."""
    if tls.ca_bundle is None and tls.client_cert is None:
        return None
    try:
        context = ssl.create_default_context(cafile=str(tls.ca_bundle) if tls.ca_bundle else None)
        if tls.client_cert is not None:
            context.load_cert_chain(str(tls.client_cert), str(tls.client_key) if tls.client_key else None)
    except (OSError, ssl.SSLError) as exc:
        raise ConfigError(f"{section}: cannot load the CA bundle or client certificate ({exc.strerror})") from None
    return context
