"""OAuth2 client credentials (RFC 6749 §4.4) for the portal: one cached token, refreshed once for everybody.

Hundreds of concurrent sends must not each fetch a token. :class:`TokenCache` hands out the cached token while it
is valid, refreshes it ``margin_s`` before it expires, and runs exactly one fetch (single flight) whose result all
waiting callers share. After a 401 the sender calls :meth:`TokenCache.invalidate` with the token it used: only
that token is dropped, so a burst of 401s for one stale token causes one refresh, not one per request.

:class:`ClientCredentials` is the fetch itself: a form POST to the token endpoint with HTTP Basic client
authentication (the RFC's default) or the client id and secret in the form (``client_secret_post``).
"""

from __future__ import annotations

import asyncio
import base64
import json
import re
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Literal
from urllib.parse import quote_plus

import aiohttp
from pydantic import SecretStr

from adapters.portal.httpbody import read_capped
from rueckkanal.errors import Reason, TransientDeliveryError
from rueckkanal.settings import PortalOAuth2

DEFAULT_EXPIRES_IN_S = 60.0
_B64TOKEN = re.compile(r"[A-Za-z0-9\-._~+/]{1,4096}=*")


@dataclass(frozen=True, slots=True)
class AccessToken:
    value: str
    expires_in_s: float


class TokenCache:
    """The current token and the single-flight refresh; ``clock`` is monotonic seconds (injectable for tests)."""

    def __init__(
        self,
        fetch: Callable[[], Awaitable[AccessToken]],
        *,
        margin_s: float = 30.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._fetch = fetch
        self._margin_s = margin_s
        self._clock = clock
        self._token: str | None = None
        self._refresh_at = 0.0
        self._inflight: asyncio.Future[str] | None = None

    async def token(self) -> str:
        """A token valid for at least the margin (or half its lifetime, if shorter); one fetch for all waiters.

        Waiters share the fetch's outcome, its error too: a dead token endpoint costs one request per round, not
        one per waiting send. The fetch is shielded, so a cancelled send does not cancel it for the others.
        """
        current = self._valid()
        if current is not None:
            return current
        if self._inflight is None:
            self._inflight = asyncio.ensure_future(self._refresh())
            self._inflight.add_done_callback(self._finished)
        return await asyncio.shield(self._inflight)

    async def _refresh(self) -> str:
        fetched = await self._fetch()
        margin = min(self._margin_s, fetched.expires_in_s / 2)
        self._token = fetched.value
        self._refresh_at = self._clock() + fetched.expires_in_s - margin
        return fetched.value

    def _finished(self, future: asyncio.Future[str]) -> None:
        self._inflight = None
        if not future.cancelled():
            future.exception()  # retrieved here, so an error nobody waited for is not reported as "never retrieved"

    def invalidate(self, used: str) -> None:
        """The portal refused ``used``: forget it, unless a newer token has already replaced it."""
        if self._token == used:
            self._token = None

    def _valid(self) -> str | None:
        if self._token is not None and self._clock() < self._refresh_at:
            return self._token
        return None


class ClientCredentials:
    """Fetches a token from the token endpoint with the session the adapter already has."""

    def __init__(
        self,
        session: Callable[[], aiohttp.ClientSession],
        *,
        token_url: str,
        client_id: str,
        client_secret: SecretStr,
        scope: str | None = None,
        client_auth: Literal["client_secret_basic", "client_secret_post"] = "client_secret_basic",
        max_bytes: int = 64 * 1024,
    ) -> None:
        self._session = session
        self._token_url = token_url
        self._client_id = client_id
        self._client_secret = client_secret
        self._scope = scope
        self._client_auth = client_auth
        self._max_bytes = max_bytes

    async def __call__(self) -> AccessToken:
        form = {"grant_type": "client_credentials"}
        if self._scope:
            form["scope"] = self._scope
        headers = {"Accept": "application/json"}
        if self._client_auth == "client_secret_basic":
            # RFC 6749 §2.3.1: id and secret are form-urlencoded before they go into the Basic header
            pair = f"{quote_plus(self._client_id)}:{quote_plus(self._client_secret.get_secret_value())}"
            headers["Authorization"] = "Basic " + base64.b64encode(pair.encode()).decode("ascii")
        else:
            form |= {"client_id": self._client_id, "client_secret": self._client_secret.get_secret_value()}
        try:
            async with self._session().post(
                self._token_url, data=form, headers=headers, allow_redirects=False
            ) as response:
                body = await read_capped(response, self._max_bytes)
                status = response.status
        except TimeoutError:
            raise TransientDeliveryError("token endpoint timed out", reason=Reason.PORTAL_TIMEOUT) from None
        except aiohttp.ClientError as exc:
            raise TransientDeliveryError(
                f"token endpoint unreachable ({type(exc).__name__})", reason=Reason.PORTAL_CONNECTION
            ) from None
        return _token_from(status, body)


def _token_from(status: int, body: bytes | None) -> AccessToken:
    """Read the token response; the error text names the status and the OAuth2 error code, never the body."""
    if status >= 500 or status in (408, 429):
        raise TransientDeliveryError(f"token endpoint answered HTTP {status}", reason=Reason.PORTAL_UNAVAILABLE)
    document = _json_object(body)
    if status != 200:
        error = document.get("error") if isinstance(document.get("error"), str) else "unknown"
        # Wrong client credentials fail every message alike: transient, so the circuit opens and nothing floods
        # the DLQ while an operator fixes the secret.
        raise TransientDeliveryError(
            f"token endpoint refused the client (HTTP {status}, {error})", reason=Reason.PORTAL_UNAUTHORIZED
        )
    value = document.get("access_token")
    token_type = document.get("token_type")
    expires_in = document.get("expires_in", DEFAULT_EXPIRES_IN_S)
    if not isinstance(value, str) or not value or not isinstance(token_type, str) or token_type.lower() != "bearer":
        raise TransientDeliveryError("token endpoint sent no bearer token", reason=Reason.PORTAL_UNAVAILABLE)
    if not _B64TOKEN.fullmatch(value):  # RFC 6750 §2.1: anything else (CR/LF, spaces) must never become a header
        raise TransientDeliveryError("token endpoint sent a malformed bearer token", reason=Reason.PORTAL_UNAVAILABLE)
    if not isinstance(expires_in, int | float) or isinstance(expires_in, bool) or expires_in <= 0:
        expires_in = DEFAULT_EXPIRES_IN_S
    return AccessToken(value=value, expires_in_s=float(expires_in))


def _json_object(body: bytes | None) -> dict[str, Any]:
    if body is None:  # larger than the cap
        return {}
    try:
        document = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        return {}
    return document if isinstance(document, dict) else {}


def token_cache(
    oauth2: PortalOAuth2 | None, session: Callable[[], aiohttp.ClientSession], *, max_bytes: int
) -> TokenCache | None:
    """The token cache of an adapter whose auth is OAuth2 client credentials (``oauth2`` given), else None."""
    if oauth2 is None:
        return None
    fetch = ClientCredentials(
        session,
        token_url=str(oauth2.token_url),
        client_id=oauth2.client_id,
        client_secret=oauth2.client_secret,
        scope=oauth2.scope,
        client_auth=oauth2.client_auth,
        max_bytes=max_bytes,
    )
    return TokenCache(fetch, margin_s=oauth2.refresh_margin_s)
