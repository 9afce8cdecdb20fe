"""The portal adapter protocol: one async method, like httpx's ``AsyncBaseTransport.handle_async_request``.

The delivery stage knows nothing about HTTP, XÖV answers or tokens. It hands an :class:`OutboundMessage` to
:meth:`PortalAdapter.send` and gets back either a :class:`Receipt` or one of exactly two errors::

    send(message) ──► Receipt(duplicate=False)   the portal took it: proven by its receipt (the XÖV Quittung,
                                                 or the adapter's configured receipt rule where there is none)
                  ──► Receipt(duplicate=True)    the portal already had this nachrichtenUUID: also delivered
                  ──► TransientDeliveryError     try again later (reason + optional retry_after seconds); an
                                                 answer that is no proof of delivery and would be the same for
                                                 every message (redirect, 404/405, a proxy page, a Quittung
                                                 about another message) is ``portal_misconfigured``: the
                                                 circuit opens, the DLQ stays empty
                  ──► PermanentDeliveryError     never try again (reason + the portal's Rückweisung code)

A Receipt is never returned on hope: an answer that does not prove delivery is an error. Anything else escaping
``send`` is an adapter bug; the dispatcher counts it as a failure for the circuit breaker and retries the message
within its budget like a transient error, so no message is lost and no breaker probe is left in flight.
"""

from __future__ import annotations

import abc
from dataclasses import dataclass
from datetime import datetime
from types import TracebackType
from typing import Self


@dataclass(frozen=True, slots=True)
class OutboundMessage:
    """One rendered XÖV message on its way out; ``vorgang_key`` is for routing and logs (hash it before logging).

    ``source`` is the configured Fachverfahren name from the outbox header ``rk.source`` (written by the pipeline
    only), for adapters that need the Fachverfahren's config (the Leistung's name); None when it is missing.
    """

    nachrichten_uuid: str
    vorgang_key: str
    xml: bytes
    traceparent: str | None = None
    source: str | None = None


@dataclass(frozen=True, slots=True)
class Receipt:
    """The portal's proof of delivery. ``portal_receipt_id`` is None when a duplicate answer carries none."""

    portal_receipt_id: str | None
    duplicate: bool
    status_code: int
    received_at: datetime


class PortalAdapter(abc.ABC):
    """A portal back channel. Implementations must raise only the two delivery errors from :meth:`send`."""

    @abc.abstractmethod
    async def send(self, message: OutboundMessage) -> Receipt:
        """Deliver one message, idempotently by its nachrichtenUUID."""

    async def aclose(self) -> None:  # noqa: B027  # optional hook: adapters without resources need not close
        """Release connections, sessions and files; the adapter is not used afterwards."""

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.aclose()
