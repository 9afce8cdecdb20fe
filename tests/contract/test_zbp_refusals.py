"""Against ``portal-sim --mode zbp`` (real HTTP on 127.0.0.1): the example Vorgänge arrive signed and mapped, and
each refusal of the acceptance list is refused by the simulator for its own rule and routed by the adapter as its
classification table says (adapters/portal/zbp.py). One test per case."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest

from adapters.portal.base import OutboundMessage
from adapters.portal.sim.config import SimConfig, SimMode, ZbpTrust
from adapters.portal.sim.server import RunningPortal, started
from adapters.portal.zbp import ZbpPortal
from adapters.portal.zbp_sign import EnvelopeSigner
from rueckkanal.codelists import codelists
from rueckkanal.errors import PermanentDeliveryError, Reason, TransientDeliveryError
from rueckkanal.lifecycle import Advanced, VorgangState, advance
from rueckkanal.settings import XoevSettings
from rueckkanal.xoev import MessageRenderer
from tests.contract.portal_contract import statusmeldung
from tests.contract.test_portal_zbp import FACHVERFAHREN, zbp_config
from tests.support.zbp_ca import SigningPair
from tests.unit.factories import example_events, shipped_fachverfahren


@pytest.fixture
async def sim(zbp_ca_file: Path) -> AsyncIterator[RunningPortal]:
    async with started(SimConfig(port=0, mode=SimMode.ZBP, zbp=ZbpTrust(zbp_ca_file))) as running:
        yield running


def adapter(
    running: RunningPortal, signing: SigningPair, *, signer: EnvelopeSigner | None = None, **config: Any
) -> ZbpPortal:
    return ZbpPortal(
        zbp_config(signing, running.zbp_status_url, running.zbp_message_url, **config),
        [FACHVERFAHREN],
        sender_name="Stadt Leipzig",
        signer=signer,
    )


async def refused(portal: ZbpPortal, message: OutboundMessage) -> TransientDeliveryError | PermanentDeliveryError:
    try:
        await portal.send(message)
    except (TransientDeliveryError, PermanentDeliveryError) as error:
        return error
    finally:
        await portal.aclose()
    raise AssertionError("the simulator took the message")


def assert_refused_for(running: RunningPortal, code: str) -> None:
    counters = running.portal.counters
    assert counters[f"zbp_{code}"] == 1
    assert counters["stored"] == 0
    assert running.portal.zbp_store.by_key == {}


class TamperingSigner(EnvelopeSigner):
    """Signs correctly, then changes the content: what a proxy rewriting the body would do."""

    def envelope(self, content: str) -> dict[str, str]:
        envelope = super().envelope(content)
        return {**envelope, "content": envelope["content"].replace("PROCESSING", "COMPLETED")}


async def test_a_tampered_signature_is_refused_and_routed_as_unauthorised(
    sim: RunningPortal, zbp_signing: SigningPair
) -> None:
    signer = TamperingSigner(zbp_signing.key_path, zbp_signing.cert_path)
    error = await refused(adapter(sim, zbp_signing, signer=signer), statusmeldung(status="200"))
    assert isinstance(error, TransientDeliveryError)
    assert error.reason is Reason.PORTAL_UNAUTHORIZED  # the circuit opens; the message waits, no dead letter
    assert_refused_for(sim, "signature_invalid")


async def test_an_expired_token_is_refused_and_routed_as_unauthorised(
    sim: RunningPortal, zbp_signing: SigningPair
) -> None:
    late_clock: Callable[[], float] = lambda: time.time() - 2 * 3600  # noqa: E731  # our clock is two hours behind
    signer = EnvelopeSigner(zbp_signing.key_path, zbp_signing.cert_path, clock=late_clock)
    error = await refused(adapter(sim, zbp_signing, signer=signer), statusmeldung())
    assert isinstance(error, TransientDeliveryError)
    assert error.reason is Reason.PORTAL_UNAUTHORIZED
    assert_refused_for(sim, "token_expired")


async def test_a_wrong_role_is_refused_and_routed_as_unauthorised(sim: RunningPortal, zbp_signing: SigningPair) -> None:
    error = await refused(adapter(sim, zbp_signing, roles=("CITIZEN",)), statusmeldung())
    assert isinstance(error, TransientDeliveryError)
    assert error.reason is Reason.PORTAL_UNAUTHORIZED
    assert_refused_for(sim, "role_forbidden")


async def test_an_unknown_status_is_refused_and_dead_lettered_as_rejected(
    sim: RunningPortal, zbp_signing: SigningPair
) -> None:
    portal = adapter(sim, zbp_signing, status_map={"200": "ARCHIVED"})  # a value this ZBP does not know
    error = await refused(portal, statusmeldung(status="200"))
    assert isinstance(error, PermanentDeliveryError)
    assert error.reason is Reason.PORTAL_REJECTED
    assert error.portal_code == "status_unknown"
    assert error.sent is True
    assert_refused_for(sim, "status_unknown")


async def test_an_over_long_field_is_refused_and_dead_lettered_as_rejected(
    sim: RunningPortal, zbp_signing: SigningPair
) -> None:
    portal = adapter(sim, zbp_signing, limits={"reference": 64})  # configured above what this ZBP accepts
    error = await refused(portal, statusmeldung(aktenzeichen="A" * 60))
    assert isinstance(error, PermanentDeliveryError)
    assert error.reason is Reason.PORTAL_REJECTED
    assert error.portal_code == "field_too_long"
    assert_refused_for(sim, "field_too_long")


async def test_the_example_vorgaenge_arrive_signed_with_mapped_statuses_and_mailbox_messages(
    sim: RunningPortal, zbp_signing: SigningPair
) -> None:
    portal = ZbpPortal(
        zbp_config(zbp_signing, sim.zbp_status_url, sim.zbp_message_url),
        list(shipped_fachverfahren().values()),
        sender_name="Stadt Leipzig",
    )
    renderer = MessageRenderer(XoevSettings())
    states: dict[str, VorgangState | None] = {}
    expected: dict[str, list[str]] = {}
    vorgaenge: set[str] = set()
    mailbox_messages = 0
    names = {fv.source: fv.name for fv in shipped_fachverfahren().values()}
    try:
        for _path, event in example_events():
            step = advance(states.get(event.vorgang_key), event)
            assert isinstance(step, Advanced)
            states[event.vorgang_key] = step.state
            rendered = renderer.render(event, step.state)
            message = OutboundMessage(
                rendered.nachrichten_uuid, event.vorgang_key, rendered.xml, None, names[event.source]
            )
            receipt = await portal.send(message)
            assert receipt.duplicate is False
            assert event.antrags_id is not None
            vorgaenge.add(event.vorgang_key)
            expected.setdefault(event.antrags_id, []).append(
                codelists().antragsstatus.value(event.status, "bundid") or ""
            )
            postfach = event.postfach_ref or ""
            if event.status in ("210", "300", "410") and postfach.startswith("bundid:postfach:"):
                mailbox_messages += 1
    finally:
        await portal.aclose()
    store = sim.portal.zbp_store
    for application_id, statuses in expected.items():
        stored = [s.payload["status"] for s in store.statuses(application_id)]
        assert stored == statuses
        assert {s.signer for s in store.statuses(application_id)} == {zbp_signing.common_name}
    assert len(expected) == len(vorgaenge) >= 6  # every example Vorgang has its own applicationId
    assert mailbox_messages > 0
    assert len(store.messages()) == mailbox_messages
