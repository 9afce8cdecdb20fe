from collections.abc import AsyncIterator

import pytest

from adapters.portal.base import OutboundMessage
from adapters.portal.memory import InMemoryPortal
from rueckkanal.errors import DeliveryError, PermanentDeliveryError, Reason, TransientDeliveryError
from tests.contract.portal_contract import PortalAdapterContract, PortalHarness, vorgang_id_of


class MemoryHarness(PortalHarness):
    def __init__(self) -> None:
        self.portal = InMemoryPortal(self._rules)
        self.adapter = self.portal
        self.rejected: dict[str, str] = {}
        self.misconfigured = False

    def _rules(self, message: OutboundMessage) -> DeliveryError | None:
        if self.misconfigured:
            return TransientDeliveryError("404", reason=Reason.PORTAL_MISCONFIGURED)
        code = self.rejected.get(vorgang_id_of(message))
        return None if code is None else PermanentDeliveryError("rejected", portal_code=code)

    async def reject_vorgang(self, vorgang_id: str, code: str) -> None:
        self.rejected[vorgang_id] = code

    async def throttle(self, message: OutboundMessage, retry_after_s: int) -> None:
        error = TransientDeliveryError("429", reason=Reason.PORTAL_THROTTLED, retry_after=float(retry_after_s))
        self.portal.script(message.nachrichten_uuid, error)

    async def misconfigure(self) -> None:
        self.misconfigured = True

    async def heal(self) -> None:
        self.rejected.clear()
        self.misconfigured = False


class TestInMemoryPortal(PortalAdapterContract):
    @pytest.fixture
    async def harness(self) -> AsyncIterator[PortalHarness]:
        harness = MemoryHarness()
        yield harness
        await harness.adapter.aclose()
