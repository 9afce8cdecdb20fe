"""The aiohttp session of an HTTP portal adapter, shared by the XÖV and the ZBP adapters."""

from __future__ import annotations

import ssl

import aiohttp

from rueckkanal.settings import PortalTimeouts


class PortalSession:
    """The adapter's session: made on first use (inside the running loop) with the target's connection limit, TLS
    context and timeouts; closed by :meth:`aclose` only if it was made here
    (a session handed in belongs to whoever made it). Calling it returns the session."""

    def __init__(
        self,
        session: aiohttp.ClientSession | None,
        *,
        ssl_context: ssl.SSLContext | None,
        max_connections: int,
        timeouts: PortalTimeouts,
    ) -> None:
        self._session = session
        self._owned = session is None
        self._ssl = ssl_context
        self._max_connections = max_connections
        self._timeouts = timeouts

    def __call__(self) -> aiohttp.ClientSession:
        if self._session is None:
            connector = aiohttp.TCPConnector(limit=self._max_connections, ssl=self._ssl or True)
            self._session = aiohttp.ClientSession(
                connector=connector,
                timeout=aiohttp.ClientTimeout(total=self._timeouts.total_s, sock_connect=self._timeouts.connect_s),
                raise_for_status=False,
            )
        return self._session

    async def aclose(self) -> None:
        if self._session is not None and self._owned:
            await self._session.close()
        self._session = None
