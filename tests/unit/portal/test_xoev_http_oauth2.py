"""OAuth2 client credentials between the HTTP adapter and the reference portal's token endpoint."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest

from adapters.portal.sim.config import OAuth2Client, SimConfig
from adapters.portal.sim.server import RunningPortal, started
from adapters.portal.xoev_http import XoevHttpPortal
from adapters.portal.xoev_http_config import PortalHttpConfig
from rueckkanal.errors import Reason, TransientDeliveryError
from tests.contract.portal_contract import statusmeldung
from tests.support.processes import free_port

CLIENT_ID = "leipzig-rk"
SECRET = "s3cr+t/with:odd=chars"  # noqa: S105  # RFC 6749 §2.3.1 form-encoding must round-trip these


@pytest.fixture
async def sim() -> AsyncIterator[RunningPortal]:
    async with started(SimConfig(port=0, oauth2=OAuth2Client(CLIENT_ID, SECRET))) as running:
        yield running


def portal_for(running: RunningPortal, **oauth2: Any) -> XoevHttpPortal:
    settings = {"token_url": running.token_url, "client_id": CLIENT_ID, "client_secret": SECRET} | oauth2
    config = PortalHttpConfig.model_validate({"url": running.nachrichten_url, "auth": "oauth2", "oauth2": settings})
    return XoevHttpPortal(config)


async def test_without_a_token_the_portal_refuses(sim: RunningPortal) -> None:
    plain = XoevHttpPortal(PortalHttpConfig.model_validate({"url": sim.nachrichten_url}))
    with pytest.raises(TransientDeliveryError) as caught:
        await plain.send(statusmeldung())
    await plain.aclose()
    assert caught.value.reason is Reason.PORTAL_UNAUTHORIZED
    assert sim.portal.counters["unauthorised"] == 1


@pytest.mark.parametrize("client_auth", ["client_secret_basic", "client_secret_post"])
async def test_one_token_serves_many_concurrent_sends(sim: RunningPortal, client_auth: str) -> None:
    portal = portal_for(sim, client_auth=client_auth)
    receipts = await asyncio.gather(*(portal.send(statusmeldung()) for _ in range(20)))
    await portal.aclose()
    assert all(not receipt.duplicate for receipt in receipts)
    assert sim.portal.tokens is not None
    assert sim.portal.tokens.issued == 1
    assert sim.portal.counters["stored"] == 20


async def test_a_revoked_token_is_refreshed_once_and_the_send_repeated(sim: RunningPortal) -> None:
    portal = portal_for(sim)
    await portal.send(statusmeldung())
    assert sim.portal.tokens is not None
    sim.portal.tokens.revoke_all()  # as after a portal restart: our cached token is unknown there now
    receipts = await asyncio.gather(*(portal.send(statusmeldung()) for _ in range(10)))
    await portal.aclose()
    assert all(not receipt.duplicate for receipt in receipts)
    assert sim.portal.tokens.issued == 2  # ten 401s for the same stale token, one refresh
    assert sim.portal.counters["unauthorised"] == 10
    assert sim.portal.counters["stored"] == 11


async def test_short_lived_tokens_are_renewed_before_they_expire() -> None:
    config = SimConfig(port=0, oauth2=OAuth2Client(CLIENT_ID, SECRET, token_ttl_s=1))
    async with started(config) as running:
        portal = portal_for(running, refresh_margin_s=30)  # margin capped at half the lifetime: 0.5 s
        await portal.send(statusmeldung())
        await asyncio.sleep(0.6)  # the token is still valid at the portal, but inside our refresh margin
        await portal.send(statusmeldung())
        await portal.aclose()
        assert running.portal.tokens is not None
        assert running.portal.tokens.issued == 2
        assert running.portal.counters["unauthorised"] == 0


async def test_wrong_client_secret_opens_the_circuit_instead_of_dead_lettering(sim: RunningPortal) -> None:
    portal = portal_for(sim, client_secret="falsch")  # noqa: S106
    with pytest.raises(TransientDeliveryError) as caught:
        await portal.send(statusmeldung())
    await portal.aclose()
    assert caught.value.reason is Reason.PORTAL_UNAUTHORIZED
    assert "invalid_client" in caught.value.message
    assert "falsch" not in caught.value.message
    assert sim.portal.counters["requests"] == 0  # no message was sent without a token


async def test_unreachable_token_endpoint_is_transient(sim: RunningPortal) -> None:
    portal = portal_for(sim, token_url=f"http://127.0.0.1:{free_port()}/oauth2/token")
    with pytest.raises(TransientDeliveryError) as caught:
        await portal.send(statusmeldung())
    await portal.aclose()
    assert caught.value.reason is Reason.PORTAL_CONNECTION
