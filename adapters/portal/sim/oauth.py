"""The reference portal's OAuth2 token endpoint (client credentials, RFC 6749 §4.4) and bearer check.

One configured client. It authenticates with HTTP Basic or with ``client_id``/``client_secret`` in the form.
Tokens are random, kept in memory with their expiry: a restarted portal has forgotten them, so a sender must
cope with a 401 for a token it believes valid (that is the point). ``revoke_all`` does the same at run time.
"""

from __future__ import annotations

import base64
import binascii
import hmac
import secrets
import time
from collections.abc import Callable
from urllib.parse import unquote_plus

from aiohttp import web


class TokenIssuer:
    def __init__(
        self, client_id: str, client_secret: str, *, ttl_s: int = 300, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._client_id = client_id
        self._client_secret = client_secret
        self._ttl_s = ttl_s
        self._clock = clock
        self._tokens: dict[str, float] = {}
        self.issued = 0

    async def token_endpoint(self, request: web.Request) -> web.Response:
        form = await request.post()
        client = _basic_credentials(request.headers.get("Authorization")) or (
            str(form.get("client_id", "")),
            str(form.get("client_secret", "")),
        )
        if not self._client_ok(*client):
            return web.json_response(
                {"error": "invalid_client"}, status=401, headers={"WWW-Authenticate": 'Basic realm="portal-sim"'}
            )
        if form.get("grant_type") != "client_credentials":
            return web.json_response({"error": "unsupported_grant_type"}, status=400)
        return web.json_response(
            {"access_token": self._issue(), "token_type": "Bearer", "expires_in": self._ttl_s},
            headers={"Cache-Control": "no-store"},
        )

    def authorised(self, request: web.Request) -> bool:
        header = request.headers.get("Authorization", "")
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "bearer" or not token:
            return False
        expiry = self._tokens.get(token.strip())
        return expiry is not None and self._clock() < expiry

    def revoke_all(self) -> int:
        count = len(self._tokens)
        self._tokens.clear()
        return count

    def _issue(self) -> str:
        now = self._clock()
        self._tokens = {token: expiry for token, expiry in self._tokens.items() if expiry > now}
        token = secrets.token_urlsafe(32)
        self._tokens[token] = now + self._ttl_s
        self.issued += 1
        return token

    def _client_ok(self, client_id: str, client_secret: str) -> bool:
        id_ok = hmac.compare_digest(client_id.encode(), self._client_id.encode())
        secret_ok = hmac.compare_digest(client_secret.encode(), self._client_secret.encode())
        return id_ok and secret_ok


def unauthorised() -> web.Response:
    return web.json_response(
        {"error": "invalid_token"}, status=401, headers={"WWW-Authenticate": 'Bearer error="invalid_token"'}
    )


def _basic_credentials(header: str | None) -> tuple[str, str] | None:
    """HTTP Basic client credentials; RFC 6749 §2.3.1 form-urlencodes id and secret before encoding them."""
    if not header:
        return None
    scheme, _, value = header.partition(" ")
    if scheme.lower() != "basic":
        return None
    try:
        decoded = base64.b64decode(value.strip(), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        return None
    client_id, sep, client_secret = decoded.partition(":")
    if not sep:
        return None
    return unquote_plus(client_id), unquote_plus(client_secret)
