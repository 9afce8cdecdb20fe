"""An in-memory portal for unit tests, like httpx's ``MockTransport``.

By default it behaves like a well-mannered portal: the first message with a nachrichtenUUID is delivered, every
later one is a duplicate. Tests script failures per nachrichtenUUID (a queue of outcomes, consumed one per send)
or for every message (a handler, sync or async, that may raise, wait or return None to let the default decide)::

    portal = InMemoryPortal()
    portal.script(uuid, TransientDeliveryError("down", retry_after=2.0), ACCEPT)
    portal.handler = lambda message: None

``received`` lists every call in order (failed ones too); ``delivered`` lists the messages that were stored, each
once, in the order the portal first accepted them.
"""

from __future__ import annotations

import inspect
from collections import Counter, deque
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from enum import Enum

from adapters.portal.base import OutboundMessage, PortalAdapter, Receipt
from rueckkanal.errors import DeliveryError


class _Accept(Enum):
    ACCEPT = "accept"


ACCEPT = _Accept.ACCEPT
"""A scripted outcome: behave like the default (deliver, or duplicate if already stored)."""

Outcome = DeliveryError | _Accept
Handler = Callable[[OutboundMessage], Outcome | Awaitable[Outcome | None] | None]


class InMemoryPortal(PortalAdapter):
    def __init__(self, handler: Handler | None = None) -> None:
        self.handler = handler
        self.received: list[OutboundMessage] = []
        self.delivered: list[OutboundMessage] = []
        self.closed = False
        self._receipts: dict[str, str] = {}
        self._counts: Counter[str] = Counter()
        self._scripts: dict[str, deque[Outcome]] = {}

    def script(self, nachrichten_uuid: str, *outcomes: Outcome) -> None:
        """Queue outcomes for the next sends of this nachrichtenUUID; when the queue is empty, defaults apply."""
        self._scripts.setdefault(nachrichten_uuid, deque()).extend(outcomes)

    def count(self, nachrichten_uuid: str) -> int:
        """How often this nachrichtenUUID was sent, whatever the outcome."""
        return self._counts[nachrichten_uuid]

    async def send(self, message: OutboundMessage) -> Receipt:
        if self.closed:
            raise RuntimeError("InMemoryPortal used after aclose()")
        self.received.append(message)
        self._counts[message.nachrichten_uuid] += 1
        outcome = await self._outcome(message)
        if isinstance(outcome, DeliveryError):
            raise outcome
        return self._store(message)

    async def aclose(self) -> None:
        self.closed = True

    async def _outcome(self, message: OutboundMessage) -> Outcome | None:
        queue = self._scripts.get(message.nachrichten_uuid)
        if queue:
            return queue.popleft()
        if self.handler is None:
            return None
        result = self.handler(message)
        if inspect.isawaitable(result):
            return await result
        return result

    def _store(self, message: OutboundMessage) -> Receipt:
        now = datetime.now(UTC)
        known = self._receipts.get(message.nachrichten_uuid)
        if known is not None:
            return Receipt(known, duplicate=True, status_code=409, received_at=now)
        receipt_id = f"mem-{len(self._receipts) + 1}"
        self._receipts[message.nachrichten_uuid] = receipt_id
        self.delivered.append(message)
        return Receipt(receipt_id, duplicate=False, status_code=200, received_at=now)
