"""The contract for the XÖV HTTP adapter against the real reference portal, in-process on 127.0.0.1."""

from collections.abc import AsyncIterator

import pytest

from adapters.portal.base import OutboundMessage
from adapters.portal.sim.config import DuplicateAnswer, SimConfig
from adapters.portal.sim.server import RunningPortal, started
from adapters.portal.xoev_http import XoevHttpPortal
from adapters.portal.xoev_http_config import PortalHttpConfig
from tests.contract.portal_contract import PortalAdapterContract, PortalHarness


class SimHarness(PortalHarness):
    def __init__(self, running: RunningPortal) -> None:
        self.running = running
        self.configured = XoevHttpPortal(PortalHttpConfig(name="sim", url=running.nachrichten_url))
        wrong = running.nachrichten_url.rsplit("/", 1)[0] + "/nachricht"  # a typo in the path: 404 from the portal
        self.misconfigured = XoevHttpPortal(PortalHttpConfig(name="sim", url=wrong))
        self.adapter = self.configured

    async def misconfigure(self) -> None:
        self.adapter = self.misconfigured

    async def aclose(self) -> None:
        await self.configured.aclose()
        await self.misconfigured.aclose()

    async def reject_vorgang(self, vorgang_id: str, code: str) -> None:
        self.running.portal.faults.update({"reject_vorgang_pattern": vorgang_id, "reject_code": code})

    async def throttle(self, message: OutboundMessage, retry_after_s: int) -> None:
        self.running.portal.faults.update({"throttle_rate": 1.0, "retry_after_s": retry_after_s})

    async def heal(self) -> None:
        self.running.portal.faults.clear()
        self.adapter = self.configured


class TestXoevHttpAgainstPortalSim(PortalAdapterContract):
    duplicates = DuplicateAnswer.CONFLICT

    @pytest.fixture
    async def harness(self) -> AsyncIterator[PortalHarness]:
        async with started(SimConfig(port=0, duplicates=self.duplicates)) as running:
            harness = SimHarness(running)
            yield harness
            await harness.aclose()


class TestXoevHttpAgainstPortalSimAnsweringS100(TestXoevHttpAgainstPortalSim):
    """The same, with duplicates answered by a Rückweisung S100 in a 200 instead of a 409."""

    duplicates = DuplicateAnswer.S100
