"""The contract every portal adapter keeps, as one base class subclassed per adapter (FastStream's pattern).

A subclass provides the ``harness`` fixture: an adapter plus the means to make its portal reject a Vorgang
permanently or throttle every request, and to heal it again. Every test here then holds for that adapter:

* a new message is delivered: a :class:`Receipt` with a receipt id, not a duplicate;
* the same nachrichtenUUID again is delivered as a duplicate, with the same receipt id when the portal gives one;
* a rejection is a :class:`PermanentDeliveryError` with reason ``portal_rejected`` and the portal's code;
* throttling is a :class:`TransientDeliveryError` with reason ``portal_throttled`` and the portal's Retry-After,
  and the message goes through once the portal recovers (nothing was stored while it failed);
* a request that reaches something other than the back channel (a wrong path, a moved portal) is a
  :class:`TransientDeliveryError` with reason ``portal_misconfigured`` (the circuit opens, no dead letter), never a
  receipt, and the message goes through once the configuration is fixed.
"""

from __future__ import annotations

import abc
import itertools
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime

import pytest

from adapters.portal.base import OutboundMessage, PortalAdapter
from rueckkanal.errors import PermanentDeliveryError, Reason, TransientDeliveryError
from rueckkanal.lifecycle import VorgangState
from rueckkanal.model import StatusEvent
from rueckkanal.settings import XoevSettings
from rueckkanal.xoev import MessageRenderer

SOURCE = "urn:de:leipzig:fachverfahren:hundesteuer"
LEISTUNG = "99050012104000"
_ids = itertools.count(1)
_ANTRAGS_IDS = uuid.UUID("0f5c3b1e-8d2a-5e47-9c61-7a0b2d4e6f13")


def antrags_id_for(vorgang_id: str) -> str:
    """The portal's application UUID of a test Vorgang (every contract message carries one; the ZBP needs it)."""
    return str(uuid.uuid5(_ANTRAGS_IDS, vorgang_id))


def statusmeldung(
    sequence: int = 1,
    *,
    status: str = "200",
    vorgang_id: str | None = None,
    source: str = SOURCE,
    event_id: str | None = None,
    traceparent: str | None = None,
    status_text: str | None = None,
    **extra: object,
) -> OutboundMessage:
    """A schema-valid Statusmeldung 0100 rendered by the core, as the outbox would carry it.

    Each call makes a new event (new nachrichtenUUID) unless ``event_id`` is given; without ``vorgang_id`` each
    call is also a Vorgang of its own, so tests do not see each other's messages.
    """
    number = next(_ids)
    vorgang_id = vorgang_id or f"vorgang-{number}"
    values: dict[str, object] = {
        "source": source,
        "eventId": event_id or f"event-{number}",
        "vorgangId": vorgang_id,
        "antragsId": antrags_id_for(vorgang_id),
        "leistung": LEISTUNG,
        "status": status,
        "statusZeit": datetime(2026, 3, 1, 12, sequence % 60, tzinfo=UTC),
    }
    if status_text is not None:
        values["statusText"] = status_text
    values.update(extra)
    event = StatusEvent.from_mapping(values)
    state = VorgangState(status=status, sequence=sequence, last_event_time=event.status_time, recent_event_ids=())
    rendered = MessageRenderer(XoevSettings()).render(event, state)
    return OutboundMessage(rendered.nachrichten_uuid, event.vorgang_key, rendered.xml, traceparent)


def vorgang_id_of(message: OutboundMessage) -> str:
    return message.vorgang_key.rsplit("|", 1)[1]


class PortalHarness(abc.ABC):
    """An adapter and a handle on the portal behind it."""

    adapter: PortalAdapter

    @abc.abstractmethod
    async def reject_vorgang(self, vorgang_id: str, code: str) -> None:
        """From now on the portal refuses every message of this Vorgang with Rückweisungsgrund ``code``."""

    @abc.abstractmethod
    async def throttle(self, message: OutboundMessage, retry_after_s: int) -> None:
        """The portal answers the next send of ``message`` with 429 and this Retry-After."""

    @abc.abstractmethod
    async def misconfigure(self) -> None:
        """From now on the adapter's requests reach something that is not the back channel (a wrong URL)."""

    @abc.abstractmethod
    async def heal(self) -> None:
        """Every rule, fault and misconfiguration is gone."""


class PortalAdapterContract:
    @pytest.fixture
    async def harness(self) -> AsyncIterator[PortalHarness]:
        raise NotImplementedError
        yield

    async def test_new_message_is_delivered_with_a_receipt(self, harness: PortalHarness) -> None:
        receipt = await harness.adapter.send(statusmeldung())
        assert receipt.duplicate is False
        assert receipt.portal_receipt_id
        assert receipt.received_at.tzinfo is not None

    async def test_same_nachrichten_uuid_again_is_a_duplicate_delivery(self, harness: PortalHarness) -> None:
        message = statusmeldung()
        first = await harness.adapter.send(message)
        again = await harness.adapter.send(message)
        assert first.duplicate is False
        assert again.duplicate is True
        if again.portal_receipt_id is not None:
            assert again.portal_receipt_id == first.portal_receipt_id

    async def test_rejection_is_permanent_with_the_portal_code(self, harness: PortalHarness) -> None:
        message = statusmeldung()
        await harness.reject_vorgang(vorgang_id_of(message), "S011")
        with pytest.raises(PermanentDeliveryError) as caught:
            await harness.adapter.send(message)
        assert caught.value.reason is Reason.PORTAL_REJECTED
        assert caught.value.portal_code == "S011"
        assert not caught.value.retriable

    async def test_rejected_message_goes_through_once_the_portal_is_fixed(self, harness: PortalHarness) -> None:
        message = statusmeldung()
        await harness.reject_vorgang(vorgang_id_of(message), "AS101")
        with pytest.raises(PermanentDeliveryError):
            await harness.adapter.send(message)
        await harness.heal()
        assert (await harness.adapter.send(message)).duplicate is False  # the rejection stored nothing

    async def test_throttling_is_transient_with_retry_after(self, harness: PortalHarness) -> None:
        message = statusmeldung()
        await harness.throttle(message, retry_after_s=7)
        with pytest.raises(TransientDeliveryError) as caught:
            await harness.adapter.send(message)
        assert caught.value.reason is Reason.PORTAL_THROTTLED
        assert caught.value.retry_after == 7
        assert caught.value.retriable
        await harness.heal()
        assert (await harness.adapter.send(message)).duplicate is False  # the failed attempt stored nothing

    async def test_a_misconfigured_portal_opens_the_circuit_and_never_counts_as_delivered(
        self, harness: PortalHarness
    ) -> None:
        message = statusmeldung()
        await harness.misconfigure()
        with pytest.raises(TransientDeliveryError) as caught:
            await harness.adapter.send(message)
        assert caught.value.reason is Reason.PORTAL_MISCONFIGURED
        assert caught.value.retriable
        await harness.heal()
        assert (await harness.adapter.send(message)).duplicate is False  # nothing was stored meanwhile
