"""Tracking links: minted for a Vorgang, resolved from a token, revoked; with their QR codes (segno).

The rules are :mod:`rueckkanal.tracking`'s; this is where they meet the store and the clock. :meth:`Links.resolve`
answers None alike for a text that is not token-shaped, an unknown token, a revoked one and an expired one, so the
page can answer all of them with the same bytes.
"""

from __future__ import annotations

import io
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import segno

from adapters.statusstore.base import StatusStore
from rueckkanal.tracking import is_token_shaped, links_expired, new_token, token_digest

LINK_PATH = "/s/"


@dataclass(frozen=True)
class MintedLink:
    vorgang_key: str
    url: str

    def qr(self) -> segno.QRCode:
        """The link as a QR code, error correction M (survives a crease or a stain on the letter)."""
        return segno.make(self.url, error="m", boost_error=False)

    def qr_svg(self) -> bytes:
        out = io.BytesIO()
        self.qr().save(out, kind="svg", scale=4, border=4, xmldecl=False, title="QR-Code: Stand Ihres Antrags")
        return out.getvalue()

    def qr_png(self) -> bytes:
        out = io.BytesIO()
        self.qr().save(out, kind="png", scale=8, border=4)
        return out.getvalue()


class Links:
    def __init__(
        self,
        store: StatusStore,
        pepper: bytes,
        base_url: str,
        ttl: timedelta,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.store = store
        self._pepper = pepper
        self.base_url = base_url.rstrip("/")
        self.ttl = ttl
        self.clock = clock

    async def mint(self, vorgang_key: str) -> MintedLink:
        token = new_token()
        await self.store.add_token(vorgang_key, token_digest(token, self._pepper), self.clock())
        return MintedLink(vorgang_key, f"{self.base_url}{LINK_PATH}{token}")

    async def resolve(self, token: str) -> str | None:
        """The Vorgang key of a valid token; None for anything else."""
        if not is_token_shaped(token):
            return None
        link = await self.store.link(token_digest(token, self._pepper))
        if link is None or link.revoked or links_expired(link.final_at, self.clock(), self.ttl):
            return None
        return link.vorgang_key

    async def revoke(self, token: str) -> bool:
        if not is_token_shaped(token):
            return False
        return await self.store.revoke(token_digest(token, self._pepper), self.clock())

    def token_of(self, url: str) -> str | None:
        """The token of one of our links (the whole URL, as printed), or None."""
        prefix = f"{self.base_url}{LINK_PATH}"
        if not url.startswith(prefix):
            return None
        token = url.removeprefix(prefix)
        return token if is_token_shaped(token) else None
