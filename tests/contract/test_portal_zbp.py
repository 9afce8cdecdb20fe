"""The portal contract for the BundID/ZBP adapter: against ``portal-sim --mode zbp`` (in-process, real HTTP on
127.0.0.1) and against the in-memory twin. Every contract message carries an antragsId (the applicationId)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from pydantic import HttpUrl

from adapters.inbound.config import FachverfahrenConfig
from adapters.portal.base import OutboundMessage
from adapters.portal.sim.config import SimConfig, SimMode, ZbpTrust
from adapters.portal.sim.server import RunningPortal, started
from adapters.portal.zbp import ZbpPortal
from adapters.portal.zbp_config import ZbpConfig
from adapters.portal.zbp_memory import InMemoryZbp
from tests.contract.portal_contract import (
    LEISTUNG,
    SOURCE,
    PortalAdapterContract,
    PortalHarness,
    antrags_id_for,
)
from tests.support.zbp_ca import Ca, SigningPair

FACHVERFAHREN = FachverfahrenConfig.model_validate(
    {
        "name": "hundesteuer",
        "topic": "fv.hundesteuer.status",
        "source": SOURCE,
        "format": "cloudevents",
        "mapping": {},
        "leistungen": {LEISTUNG: {"de": "Gewerbeanmeldung"}},
    }
)


def zbp_config(signing: SigningPair, status_url: str, message_url: str, **overrides: object) -> ZbpConfig:
    return ZbpConfig.model_validate(
        {
            "status_url": HttpUrl(status_url),
            "message_url": HttpUrl(message_url),
            "signing_key": signing.key_path,
            "signing_cert": signing.cert_path,
            **overrides,
        }
    )


class ZbpSimHarness(PortalHarness):
    def __init__(self, running: RunningPortal, signing: SigningPair) -> None:
        self.running = running
        base = zbp_config(signing, running.zbp_status_url, running.zbp_message_url)
        self.configured = ZbpPortal(base, [FACHVERFAHREN], sender_name="Stadt Leipzig")
        wrong = zbp_config(signing, running.base_url + "/zbp/v6/stat", running.base_url + "/zbp/v6/msg")
        self.misconfigured = ZbpPortal(wrong, [FACHVERFAHREN], sender_name="Stadt Leipzig")
        self.adapter = self.configured

    async def reject_vorgang(self, vorgang_id: str, code: str) -> None:
        self.running.portal.faults.update({"reject_vorgang_pattern": antrags_id_for(vorgang_id), "reject_code": code})

    async def throttle(self, message: OutboundMessage, retry_after_s: int) -> None:
        self.running.portal.faults.update({"throttle_rate": 1.0, "retry_after_s": retry_after_s})

    async def misconfigure(self) -> None:
        self.adapter = self.misconfigured

    async def heal(self) -> None:
        self.running.portal.faults.clear()
        self.adapter = self.configured

    async def aclose(self) -> None:
        await self.configured.aclose()
        await self.misconfigured.aclose()


class TestZbpAgainstPortalSim(PortalAdapterContract):
    @pytest.fixture
    async def harness(self, zbp_signing: SigningPair, zbp_ca_file: Path) -> AsyncIterator[PortalHarness]:
        config = SimConfig(port=0, mode=SimMode.ZBP, zbp=ZbpTrust(zbp_ca_file))
        async with started(config) as running:
            harness = ZbpSimHarness(running, zbp_signing)
            yield harness
            await harness.aclose()


class ZbpMemoryHarness(PortalHarness):
    def __init__(self, ca: Ca, signing: SigningPair) -> None:
        self.zbp = InMemoryZbp(ca.pem)
        config = zbp_config(signing, "http://127.0.0.1:1/zbp/v6/status", "http://127.0.0.1:1/zbp/v6/message")
        self.adapter = ZbpPortal(config, [FACHVERFAHREN], sender_name="Stadt Leipzig", transport=self.zbp)

    async def reject_vorgang(self, vorgang_id: str, code: str) -> None:
        self.zbp.reject[antrags_id_for(vorgang_id)] = code

    async def throttle(self, message: OutboundMessage, retry_after_s: int) -> None:
        self.zbp.faults.append((429, str(retry_after_s)))

    async def misconfigure(self) -> None:
        self.zbp.paths = {}

    async def heal(self) -> None:
        self.zbp.reject.clear()
        self.zbp.faults.clear()
        self.zbp.paths = {"/zbp/v6/status": "status", "/zbp/v6/message": "message"}


class TestZbpAgainstInMemoryTwin(PortalAdapterContract):
    @pytest.fixture
    async def harness(self, zbp_ca: Ca, zbp_signing: SigningPair) -> AsyncIterator[PortalHarness]:
        harness = ZbpMemoryHarness(zbp_ca, zbp_signing)
        yield harness
        await harness.adapter.aclose()
