"""The delivery stage's contract with its record log, as one base class subclassed per log (FastStream's
``tests/brokers/base/consume.py`` pattern): :class:`~streams.recordlog.MemoryLog` in
``tests/contract/test_stage_memory.py``, the real broker (:class:`~streams.kafka_log.KafkaLog`) in
``tests/integration/test_stage_kafka.py``.

A subclass provides the ``harness`` fixture (:class:`LogHarness`): a fresh outbox, receipts and DLQ, a way to put
records on the outbox, to read a topic back, and to make a log for a consumer group. Every test here then holds for
that log:

* every outbox record reaches the portal, each Vorgang's in offset order, with one receipt each, and the group's
  committed offsets reach the end of every partition;
* a message the portal refuses is dead-lettered with its reason and target and does not hold back its Vorgang's
  next one, nor the commit;
* a member started after another stopped (the same group) delivers nothing again that was committed, and picks up
  what was written after the stop;
* while the portal is down nothing is dead-lettered and nothing committed past undelivered work; once it is back
  everything arrives in order.
"""

from __future__ import annotations

import abc
import asyncio
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from prometheus_client import CollectorRegistry

from adapters.portal.base import OutboundMessage
from adapters.portal.memory import InMemoryPortal
from rueckkanal.errors import DeliveryError, PermanentDeliveryError, Reason, TransientDeliveryError
from rueckkanal.metrics import Metrics
from rueckkanal.settings import DEFAULT_TARGET
from streams.delivery.breaker import CircuitBreaker
from streams.delivery.dispatcher import DeliveryDispatcher, DispatcherConfig
from streams.delivery.retry import RetryPolicy
from streams.headers import H_NACHRICHTEN_UUID, H_REASON, H_TARGET, header
from streams.recordlog import RecordLog
from tests.support.flow import until_async

PARTITIONS = 2


@dataclass(frozen=True)
class Written:
    key: bytes | None
    value: bytes | None
    headers: Sequence[tuple[str, bytes]]


class LogHarness(abc.ABC):
    outbox: str
    dlq: str
    receipts: str

    @abc.abstractmethod
    def log(self, group: str) -> RecordLog: ...

    @abc.abstractmethod
    async def write(self, records: Sequence[tuple[bytes, bytes, list[tuple[str, bytes]]]]) -> None:
        """Put (key, value, headers) records on the outbox, each key on its partition by Kafka's partitioner."""

    @abc.abstractmethod
    async def read(self, topic: str) -> list[Written]: ...

    @abc.abstractmethod
    async def committed(self, group: str) -> dict[int, int]:
        """The group's committed offset per outbox partition."""

    @abc.abstractmethod
    async def end_offsets(self) -> dict[int, int]: ...


def outbox_record(vorgang: str, step: int) -> tuple[bytes, bytes, list[tuple[str, bytes]]]:
    uuid = f"{vorgang}-{step}"
    headers = [(H_NACHRICHTEN_UUID, uuid.encode()), ("status", b"200"), ("rk.source", b"hundesteuer")]
    return f"hundesteuer|{vorgang}".encode(), f"<m v='{vorgang}' s='{step}'/>".encode(), headers


def messages(vorgaenge: int, steps: int) -> list[tuple[bytes, bytes, list[tuple[str, bytes]]]]:
    """Interleaved: step 0 of every Vorgang, then step 1, ..., as Fachverfahren publish them."""
    return [outbox_record(f"V{v}", s) for s in range(steps) for v in range(vorgaenge)]


def by_vorgang(uuids: Sequence[str]) -> dict[str, list[int]]:
    order: dict[str, list[int]] = {}
    for uuid in uuids:
        vorgang, step = uuid.rsplit("-", 1)
        order.setdefault(vorgang, []).append(int(step))
    return order


async def until(condition: Callable[[], bool], within_s: float = 30.0) -> None:
    async with asyncio.timeout(within_s):
        while not condition():  # noqa: ASYNC110  # a condition on plain state that nothing signals
            await asyncio.sleep(0.01)


class DeliveryStageContract:
    """Subclasses provide ``harness`` (a :class:`LogHarness` on fresh topics)."""

    def dispatcher(
        self,
        harness: LogHarness,
        portal: InMemoryPortal,
        *,
        group: str = "delivery",
        breaker: CircuitBreaker | None = None,
    ) -> DeliveryDispatcher:
        config = DispatcherConfig(
            outbox_topic=harness.outbox,
            dlq_topic=harness.dlq,
            receipts_topic=harness.receipts,
            group_id=group,
            portal_name="portal",
            commit_interval_s=0.05,
            drain_deadline_s=5.0,
        )
        retry = RetryPolicy(base_delay_s=0.005, max_delay_s=0.02, budget_s=600.0)
        return DeliveryDispatcher(
            config, harness.log(group), portal, Metrics(CollectorRegistry()), retry, breaker or CircuitBreaker()
        )

    async def delivered_all(self, harness: LogHarness, portal: InMemoryPortal, count: int) -> None:
        await until(lambda: len(portal.delivered) >= count)

    async def test_every_message_arrives_in_order_per_vorgang_with_a_receipt_and_is_committed(
        self, harness: LogHarness
    ) -> None:
        written = messages(vorgaenge=12, steps=5)
        await harness.write(written)
        portal = InMemoryPortal()
        d = self.dispatcher(harness, portal)
        await d.start()
        try:
            await self.delivered_all(harness, portal, len(written))
            ends = await harness.end_offsets()
            await until_async(lambda: committed_reaches(harness, "delivery", ends))
        finally:
            await d.stop()
        uuids = [m.nachrichten_uuid for m in portal.delivered]
        assert sorted(uuids) == sorted(header(h, H_NACHRICHTEN_UUID) or "" for _, _, h in written)
        assert all(steps == sorted(steps) for steps in by_vorgang(uuids).values())
        receipts = await harness.read(harness.receipts)
        assert len(receipts) == len(written)
        assert await harness.read(harness.dlq) == []

    async def test_a_refused_message_is_dead_lettered_and_holds_back_neither_its_vorgang_nor_the_commit(
        self, harness: LogHarness
    ) -> None:
        def refuse(message: OutboundMessage) -> DeliveryError | None:
            if message.nachrichten_uuid == "V1-1":
                return PermanentDeliveryError("rejected", portal_code="X001")
            return None

        written = messages(vorgaenge=3, steps=3)
        await harness.write(written)
        portal = InMemoryPortal(refuse)
        d = self.dispatcher(harness, portal)
        await d.start()
        try:
            await self.delivered_all(harness, portal, len(written) - 1)
            ends = await harness.end_offsets()
            await until_async(lambda: committed_reaches(harness, "delivery", ends))
        finally:
            await d.stop()
        assert by_vorgang([m.nachrichten_uuid for m in portal.delivered])["V1"] == [0, 2]
        [dead] = await harness.read(harness.dlq)
        assert header(dead.headers, H_REASON) == Reason.PORTAL_REJECTED.value
        assert header(dead.headers, H_TARGET) == DEFAULT_TARGET
        assert dead.value == outbox_record("V1", 1)[1]

    async def test_a_later_member_of_the_group_delivers_only_what_was_not_committed(self, harness: LogHarness) -> None:
        first = messages(vorgaenge=4, steps=2)
        await harness.write(first)
        portal = InMemoryPortal()
        d = self.dispatcher(harness, portal)
        await d.start()
        try:
            await self.delivered_all(harness, portal, len(first))
        finally:
            await d.stop()  # drains and commits
        later = [outbox_record(f"V{v}", 2) for v in range(4)]
        await harness.write(later)
        again = InMemoryPortal()
        d = self.dispatcher(harness, again)
        await d.start()
        try:
            await self.delivered_all(harness, again, len(later))
            ends = await harness.end_offsets()
            await until_async(lambda: committed_reaches(harness, "delivery", ends))
        finally:
            await d.stop()
        assert sorted(m.nachrichten_uuid for m in again.delivered) == [f"V{v}-2" for v in range(4)]

    async def test_while_the_portal_is_down_nothing_is_dead_lettered_or_committed_past_it(
        self, harness: LogHarness
    ) -> None:
        down = {"on": True}

        def outage(message: OutboundMessage) -> DeliveryError | None:
            if down["on"]:
                return TransientDeliveryError("503", reason=Reason.PORTAL_UNAVAILABLE)
            return None

        written = messages(vorgaenge=5, steps=3)
        await harness.write(written)
        portal = InMemoryPortal(outage)
        breaker = CircuitBreaker(failure_threshold=3, open_s=0.05, max_open_s=0.1)
        d = self.dispatcher(harness, portal, breaker=breaker)
        await d.start()
        try:
            await until(lambda: len(portal.received) >= 10)
            assert await harness.read(harness.dlq) == []
            assert await harness.committed("delivery") == {}
            down["on"] = False
            await self.delivered_all(harness, portal, len(written))
            ends = await harness.end_offsets()
            await until_async(lambda: committed_reaches(harness, "delivery", ends))
        finally:
            await d.stop()
        assert all(steps == [0, 1, 2] for steps in by_vorgang([m.nachrichten_uuid for m in portal.delivered]).values())
        assert await harness.read(harness.dlq) == []


async def committed_reaches(harness: LogHarness, group: str, ends: dict[int, int]) -> bool:
    committed = await harness.committed(group)
    return all(committed.get(p, 0) >= end for p, end in ends.items() if end > 0)
