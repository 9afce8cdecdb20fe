import asyncio

import pytest

from adapters.portal.base import OutboundMessage
from adapters.portal.memory import ACCEPT, InMemoryPortal
from rueckkanal.errors import PermanentDeliveryError, TransientDeliveryError


def message(uuid: str, vorgang: str = "hundesteuer|4711") -> OutboundMessage:
    return OutboundMessage(nachrichten_uuid=uuid, vorgang_key=vorgang, xml=b"<x/>")


async def test_scripted_outcomes_are_consumed_in_order_then_defaults_apply() -> None:
    portal = InMemoryPortal()
    portal.script("u1", TransientDeliveryError("down", retry_after=2.0), ACCEPT)
    with pytest.raises(TransientDeliveryError):
        await portal.send(message("u1"))
    first = await portal.send(message("u1"))
    again = await portal.send(message("u1"))
    assert (first.duplicate, again.duplicate) == (False, True)
    assert again.portal_receipt_id == first.portal_receipt_id
    assert portal.count("u1") == 3
    assert [m.nachrichten_uuid for m in portal.delivered] == ["u1"]


async def test_handler_decides_for_every_message_and_may_be_async() -> None:
    release = asyncio.Event()

    async def handler(msg: OutboundMessage) -> PermanentDeliveryError | None:
        await release.wait()
        return PermanentDeliveryError("nein", portal_code="X002") if msg.vorgang_key.endswith("bad") else None

    portal = InMemoryPortal(handler)
    pending = asyncio.create_task(portal.send(message("u2", "x|bad")))
    await asyncio.sleep(0)
    assert not pending.done()
    release.set()
    with pytest.raises(PermanentDeliveryError) as caught:
        await pending
    assert caught.value.portal_code == "X002"
    assert (await portal.send(message("u3"))).duplicate is False
    assert [m.nachrichten_uuid for m in portal.received] == ["u2", "u3"]
    assert [m.nachrichten_uuid for m in portal.delivered] == ["u3"]


async def test_closed_portal_refuses_use() -> None:
    async with InMemoryPortal() as portal:
        pass
    assert portal.closed
    with pytest.raises(RuntimeError):
        await portal.send(message("u4"))
