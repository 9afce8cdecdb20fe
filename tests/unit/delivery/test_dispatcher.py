"""The dispatcher's per-message path without a broker: ``_deliver``/``_drain_key`` driven with the in-memory portal
and the in-memory record log (httpx's MockTransport pattern), so every failure can be placed exactly.

What it proves: the circuit breaker always gets a verdict or its probe back, whatever the adapter raises; a Vorgang's
queue survives any exception in delivering, receipting or dead-lettering, in order; only valid traceparents reach
the portal; the dispatcher reports progress and work waiting to :class:`streams.obs.Progress`.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
import structlog.testing
from prometheus_client import CollectorRegistry

from adapters.portal.base import OutboundMessage
from adapters.portal.memory import ACCEPT, InMemoryPortal
from rueckkanal.errors import PermanentDeliveryError, Reason, TransientDeliveryError
from rueckkanal.metrics import Metrics
from streams.delivery.breaker import CircuitBreaker, CircuitState
from streams.delivery.dispatcher import DeliveryDispatcher, DispatcherConfig
from streams.delivery.retry import RetryPolicy
from streams.delivery.scheduler import Item
from streams.obs import Progress
from streams.recordlog import LogRecord, LogUnavailable, MemoryBroker, MemoryLog, RecordRefused, TopicPartition
from tests.support.clock import ManualClock

TP = TopicPartition("outbox", 0)
VALID_TRACEPARENT = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
CONFIG = DispatcherConfig(
    outbox_topic="outbox", dlq_topic="dlq", receipts_topic="receipts", group_id="g", portal_name="portal"
)


class FakeProducer:
    """What the dispatcher wrote to its in-memory log; ``failures`` are raised, one per produce, before anything is
    written (the broker's errors as the seam names them: RecordRefused, LogUnavailable, or anything unexpected)."""

    def __init__(self, broker: MemoryBroker) -> None:
        self.broker = broker
        self.journal: list[LogRecord] = []
        real = broker.append

        def append(*args: Any, **kwargs: Any) -> LogRecord:
            written = real(*args, **kwargs)
            self.journal.append(written)
            return written

        broker.append = append  # type: ignore[method-assign]

    @property
    def failures(self) -> list[BaseException]:
        return self.broker.failures

    @failures.setter
    def failures(self, failures: list[BaseException]) -> None:
        self.broker.failures[:] = failures

    @property
    def sent(self) -> list[tuple[str, bytes | None, bytes | None]]:
        return [(r.topic, r.key, r.value) for r in self.journal]

    @property
    def headers(self) -> list[list[tuple[str, bytes]]]:
        return [list(r.headers) for r in self.journal]

    def on(self, topic: str) -> list[tuple[bytes | None, bytes | None]]:
        return [(key, value) for t, key, value in self.sent if t == topic]


def dispatcher(
    portal: InMemoryPortal,
    *,
    breaker: CircuitBreaker | None = None,
    progress: Progress | None = None,
    max_concurrent_requests: int = 16,
) -> tuple[DeliveryDispatcher, FakeProducer, Metrics]:
    metrics = Metrics(CollectorRegistry())
    config = DispatcherConfig(**{**CONFIG.__dict__, "max_concurrent_requests": max_concurrent_requests})
    retry = RetryPolicy(base_delay_s=0.001, max_delay_s=0.005, budget_s=60.0)
    broker = MemoryBroker()
    log = MemoryLog(broker, "g")
    d = DeliveryDispatcher(config, log, portal, metrics, retry, breaker or CircuitBreaker(), progress=progress)
    producer = FakeProducer(broker)
    log._assigned = {TP}
    d.scheduler.assign([TP])
    return d, producer, metrics


def record(offset: int, vorgang: str = "hundesteuer|1", traceparent: bytes | None = None) -> LogRecord:
    headers = [("nachrichtenUUID", f"uuid-{offset}".encode()), ("status", b"200")]
    if traceparent is not None:
        headers.append(("traceparent", traceparent))
    return LogRecord(
        topic=TP.topic,
        partition=TP.partition,
        offset=offset,
        timestamp=0,
        key=vorgang.encode(),
        value=b"<xml/>",
        headers=tuple(headers),
    )


def item(offset: int, **kwargs: Any) -> Item:
    rec = record(offset, **kwargs)
    return Item(record=rec, tp=TP, nachrichten_uuid=f"uuid-{offset}")


async def until(condition: Callable[[], bool]) -> None:
    """Wait for a condition on the dispatcher's state (no event signals it), bounded in time."""
    async with asyncio.timeout(5.0):
        while not condition():  # noqa: ASYNC110  # polling plain state; nothing to await
            await asyncio.sleep(0.001)


async def all_finished(d: DeliveryDispatcher) -> None:
    await until(lambda: not d._tasks)


async def cancel_all(d: DeliveryDispatcher) -> None:
    tasks = list(d._tasks.values())
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)


def half_open(clock: ManualClock) -> CircuitBreaker:
    """A breaker whose next try_acquire is the half-open probe."""
    breaker = CircuitBreaker(failure_threshold=1, open_s=5, max_open_s=20, clock=clock)
    breaker.record_failure()
    clock.now += 5
    return breaker


def receipt_uuids(producer: FakeProducer) -> list[str]:
    return [json.loads(value or b"{}")["nachrichtenUUID"] for _, value in producer.on("receipts")]


# -- the breaker never hangs -------------------------------------------------------------------------------------


UNEXPECTED = [
    ValueError("Newline or carriage return character detected in HTTP status message or header"),
    RuntimeError("session closed"),
    KeyError("x"),
    TypeError("bad"),
    ZeroDivisionError(),
    AssertionError(),
]


@pytest.mark.parametrize("error", UNEXPECTED, ids=lambda e: type(e).__name__)
async def test_an_unexpected_exception_of_the_half_open_probe_counts_as_a_failure(error: Exception) -> None:
    clock = ManualClock()
    breaker = half_open(clock)

    def boom(message: OutboundMessage) -> None:
        raise error

    d, _, metrics = dispatcher(InMemoryPortal(boom), breaker=breaker)
    await d._wait_for_circuit()
    assert breaker.state is CircuitState.HALF_OPEN
    with pytest.raises(TransientDeliveryError) as caught:
        await d._attempt(d._message(item(0)))
    assert caught.value.reason is Reason.INTERNAL_ERROR
    assert breaker.state is CircuitState.OPEN  # not left HALF_OPEN with a probe in flight for ever
    assert metrics.delivery_attempts.labels("default", "portal", "transient")._value.get() == 1
    clock.now += 10
    assert breaker.try_acquire()  # the next probe is allowed


@pytest.mark.parametrize(
    ("outcome", "state"),
    [
        (TransientDeliveryError("503", reason=Reason.PORTAL_UNAVAILABLE), CircuitState.OPEN),
        (TransientDeliveryError("302", reason=Reason.PORTAL_MISCONFIGURED), CircuitState.OPEN),
        (PermanentDeliveryError("X001", portal_code="X001"), CircuitState.CLOSED),
        (ACCEPT, CircuitState.CLOSED),
    ],
)
async def test_every_portal_verdict_of_the_probe_leaves_half_open(outcome: Any, state: CircuitState) -> None:
    clock = ManualClock()
    breaker = half_open(clock)
    portal = InMemoryPortal()
    portal.script("uuid-0", outcome)
    d, _, _ = dispatcher(portal, breaker=breaker)
    await d._wait_for_circuit()
    with pytest.raises(Exception) if outcome is not ACCEPT else contextlib.nullcontext():
        await d._attempt(d._message(item(0)))
    assert breaker.state is state


async def test_a_cancelled_probe_releases_it() -> None:
    clock = ManualClock()
    breaker = half_open(clock)
    sent = asyncio.Event()

    async def hang(message: OutboundMessage) -> None:
        sent.set()
        await asyncio.Event().wait()

    d, _, _ = dispatcher(InMemoryPortal(hang), breaker=breaker)
    await d._wait_for_circuit()
    task = asyncio.create_task(d._attempt(d._message(item(0))))
    await sent.wait()
    assert not breaker.try_acquire()  # the probe is in flight
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert breaker.try_acquire()  # released: another probe may go


async def test_a_probe_cancelled_while_waiting_for_a_request_slot_releases_it() -> None:
    clock = ManualClock()
    breaker = half_open(clock)
    d, _, _ = dispatcher(InMemoryPortal(), breaker=breaker, max_concurrent_requests=1)
    await d._requests.acquire()  # every request slot is taken
    await d._wait_for_circuit()
    task = asyncio.create_task(d._attempt(d._message(item(0))))
    await asyncio.sleep(0)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert breaker.try_acquire()


async def test_a_message_whose_adapter_keeps_failing_is_retried_and_then_delivered_in_order() -> None:
    """The CR/LF-header incident: the adapter raised for one message; now it fails, retries, and goes through."""
    portal = InMemoryPortal()
    failures = {"left": 3}

    def flaky(message: OutboundMessage) -> None:
        if message.nachrichten_uuid == "uuid-0" and failures["left"]:
            failures["left"] -= 1
            raise ValueError("header")

    portal.handler = flaky
    breaker = CircuitBreaker(failure_threshold=2, open_s=0.01, max_open_s=0.02)
    d, producer, _ = dispatcher(portal, breaker=breaker)
    for offset in range(3):
        d._accept(TP, record(offset))
    await all_finished(d)
    assert [m.nachrichten_uuid for m in portal.delivered] == ["uuid-0", "uuid-1", "uuid-2"]
    assert receipt_uuids(producer) == ["uuid-0", "uuid-1", "uuid-2"]
    assert breaker.state is CircuitState.CLOSED
    assert d.scheduler.partitions[TP].offsets.committable() == 3


# -- a drain task never drops its queue --------------------------------------------------------------------------


@pytest.mark.parametrize(
    "failure",
    [RuntimeError("disk full"), LogUnavailable("KafkaTimeoutError"), ValueError("bad header")],
    ids=lambda e: type(e).__name__,
)
async def test_a_failing_receipt_write_retries_that_message_and_nothing_overtakes_it(failure: Exception) -> None:
    portal = InMemoryPortal()
    d, producer, _ = dispatcher(portal)
    producer.failures = [failure, failure]
    for offset in range(3):
        d._accept(TP, record(offset))
    await all_finished(d)
    assert receipt_uuids(producer) == ["uuid-0", "uuid-1", "uuid-2"]
    assert portal.count("uuid-0") == 1  # the retry resumed with the receipt, it did not ask the portal again
    assert d.scheduler.partitions[TP].offsets.committable() == 3


async def test_a_failing_dead_letter_write_retries_the_dead_letter_in_order() -> None:
    portal = InMemoryPortal()
    portal.script("uuid-0", PermanentDeliveryError("rejected", portal_code="X001"))
    d, producer, metrics = dispatcher(portal)
    producer.failures = [RuntimeError("broken"), RuntimeError("broken")]
    for offset in range(2):
        d._accept(TP, record(offset))
    await all_finished(d)
    assert [key for key, _ in producer.on("dlq")] == [b"hundesteuer|1"]
    assert receipt_uuids(producer) == ["uuid-1"]
    assert [topic for topic, _, _ in producer.sent] == ["dlq", "receipts"]
    assert portal.count("uuid-0") == 1
    assert metrics.deliveries.labels("default", "portal", "dead_lettered")._value.get() == 1


async def test_while_one_vorgang_keeps_failing_its_queue_stays_and_other_vorgaenge_go_on() -> None:
    portal = InMemoryPortal()
    broken = {"on": True, "failures": 0}
    d, producer, _ = dispatcher(portal)

    real = d._delivered

    async def delivered(item: Item, receipt: Any) -> None:
        if item.nachrichten_uuid == "uuid-0" and broken["on"]:
            broken["failures"] += 1
            raise RuntimeError("unexpected")
        await real(item, receipt)

    d._delivered = delivered  # type: ignore[method-assign]
    d._accept(TP, record(0, vorgang="a|1"))
    d._accept(TP, record(1, vorgang="b|1"))
    d._accept(TP, record(2, vorgang="a|1"))
    await until(lambda: "uuid-1" in receipt_uuids(producer) and broken["failures"] >= 3)
    key_a = (TP, b"a|1")
    assert key_a in d._tasks and [i.nachrichten_uuid for i in d.scheduler.queues[key_a]] == ["uuid-0", "uuid-2"]
    assert "uuid-2" not in [m.nachrichten_uuid for m in portal.received]  # nothing overtook uuid-0
    assert d.scheduler.partitions[TP].offsets.committable() is None  # offset 0 is not done, so nothing is committable
    broken["on"] = False
    await all_finished(d)
    assert receipt_uuids(producer) == ["uuid-1", "uuid-0", "uuid-2"]
    assert d.scheduler.partitions[TP].offsets.committable() == 3


@pytest.mark.parametrize("started", [True, False])
async def test_a_drain_at_the_deadline_abandons_the_queue_and_a_new_assignment_starts_afresh(started: bool) -> None:
    calls: list[str] = []

    async def hang_first(message: OutboundMessage) -> None:
        calls.append(message.nachrichten_uuid)
        if len(calls) == 1:
            await asyncio.Event().wait()

    d, producer, _ = dispatcher(InMemoryPortal(hang_first))
    d.config = DispatcherConfig(**{**CONFIG.__dict__, "drain_deadline_s": 0.01})
    d._accept(TP, record(0))
    if started:
        await until(lambda: bool(calls))
    await d._drain({TP})  # revoke: the hanging message is abandoned at the deadline
    assert d._tasks == {} and d.scheduler.queues == {}
    d.scheduler.assign([TP])  # assigned again: the next owner reads the message again
    d._accept(TP, record(0))
    await all_finished(d)
    assert receipt_uuids(producer) == ["uuid-0"]


# -- outgoing traceparent ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "raw",
    [
        VALID_TRACEPARENT.encode() + b"\r\nX-Injected: 1",
        b"00-" + b"a" * 100_000,
        b"\xff\xfe",
        VALID_TRACEPARENT.upper().encode(),
        b"",
    ],
    ids=["crlf", "oversized", "not-ascii", "upper-case", "empty"],
)
async def test_an_invalid_traceparent_is_dropped_and_counted_once_per_message(raw: bytes) -> None:
    portal = InMemoryPortal()
    portal.script("uuid-0", TransientDeliveryError("503"), TransientDeliveryError("503"), ACCEPT)
    d, producer, metrics = dispatcher(portal)
    d._accept(TP, record(0, traceparent=raw))
    await all_finished(d)
    assert [m.traceparent for m in portal.received] == [None, None, None]
    assert metrics.traceparent_dropped.labels("delivery")._value.get() == 1
    assert receipt_uuids(producer) == ["uuid-0"]


async def test_a_valid_traceparent_is_passed_on_and_nothing_is_counted() -> None:
    portal = InMemoryPortal()
    d, _, metrics = dispatcher(portal)
    d._accept(TP, record(0, traceparent=VALID_TRACEPARENT.encode()))
    d._accept(TP, record(1, vorgang="x|2"))
    await all_finished(d)
    assert sorted((m.nachrichten_uuid, m.traceparent) for m in portal.received) == [
        ("uuid-0", VALID_TRACEPARENT),
        ("uuid-1", None),
    ]
    assert metrics.traceparent_dropped.labels("delivery")._value.get() == 0


# -- progress ----------------------------------------------------------------------------------------------------


async def blocked_portal() -> tuple[InMemoryPortal, asyncio.Event, asyncio.Event]:
    sent, release = asyncio.Event(), asyncio.Event()

    async def wait(message: OutboundMessage) -> None:
        sent.set()
        await release.wait()

    return InMemoryPortal(wait), sent, release


async def test_queued_work_without_a_verdict_is_a_stall_and_a_verdict_ends_it() -> None:
    clock = ManualClock()
    progress = Progress(stall_after_s=60, clock=clock)
    portal, sent, release = await blocked_portal()
    d, _, _ = dispatcher(portal, progress=progress)
    assert progress.problem() is None  # nothing queued: idle, not stalled
    d._accept(TP, record(0))
    await sent.wait()
    assert progress.problem() is None
    clock.now += 61
    problem = progress.problem()
    assert problem is not None and "delivery" in problem
    release.set()
    await all_finished(d)
    assert progress.problem() is None


async def test_an_open_circuit_waiting_for_its_timer_is_not_a_stall() -> None:
    clock = ManualClock()
    progress = Progress(stall_after_s=60, clock=clock)
    breaker = CircuitBreaker(failure_threshold=1, open_s=3600, max_open_s=3600, clock=clock)
    d, _, _ = dispatcher(InMemoryPortal(), breaker=breaker, progress=progress)
    breaker.record_failure()
    d._accept(TP, record(0))
    await asyncio.sleep(0.01)
    assert progress.problem() is None
    clock.now += 600
    assert progress.problem() is None
    assert d.scheduler.queues  # the message is still waiting, as it should
    await cancel_all(d)


@pytest.mark.parametrize(
    "step",
    [
        lambda portal: portal.script("uuid-0", TransientDeliveryError("503"), ACCEPT),
        lambda portal: portal.script("uuid-0", PermanentDeliveryError("X001", portal_code="X001")),
        lambda portal: None,
    ],
    ids=["transient-then-delivered", "rejected", "delivered"],
)
async def test_every_verdict_and_outcome_is_progress(step: Callable[[InMemoryPortal], Awaitable[None] | None]) -> None:
    clock = ManualClock()
    progress = Progress(stall_after_s=60, clock=clock)
    portal = InMemoryPortal()
    step(portal)
    advanced: list[str] = []
    real = progress.advanced

    def spy(stage: str) -> None:
        advanced.append(stage)
        real(stage)

    progress.advanced = spy  # type: ignore[method-assign]
    d, _, _ = dispatcher(portal, progress=progress)
    d._accept(TP, record(0))
    await all_finished(d)
    verdicts = portal.count("uuid-0")
    assert advanced == ["delivery"] * (verdicts + 1)  # one per portal verdict, one for the outcome


async def test_the_circuit_opening_names_the_last_failure_reason() -> None:
    portal = InMemoryPortal(lambda message: TransientDeliveryError("404", reason=Reason.PORTAL_MISCONFIGURED))
    breaker = CircuitBreaker(failure_threshold=1, open_s=3600, max_open_s=3600)
    d, _, _ = dispatcher(portal, breaker=breaker)
    with structlog.testing.capture_logs() as logs:
        d._accept(TP, record(0))
        await until(lambda: breaker.state is CircuitState.OPEN)
    (line,) = [entry for entry in logs if entry["event"] == "circuit breaker changed"]
    assert (line["state"], line["reason"]) == ("open", "portal_misconfigured")
    assert producer_empty(d)
    await cancel_all(d)


def producer_empty(d: DeliveryDispatcher) -> bool:
    assert isinstance(d.log, MemoryLog)
    return (
        d.log.broker.records("dlq") == [] and d.log.broker.records("receipts") == []
    )  # an open circuit dead-letters nothing


# -- dead letters Kafka cannot take whole ------------------------------------------------------------------------


def _big(offset: int, size: int) -> Item:
    rec = record(offset)
    big = dataclasses.replace(rec, value=b"<x>" + b"a" * size + b"</x>")
    return Item(record=big, tp=TP, nachrichten_uuid=f"uuid-{offset}")


async def test_a_dead_letter_over_the_producer_limit_is_written_as_a_stub() -> None:
    portal = InMemoryPortal()
    portal.script("uuid-0", PermanentDeliveryError("X001", portal_code="X001"))
    d, producer, _ = dispatcher(portal)
    big = _big(0, CONFIG.max_request_size)

    await d._deliver(big)

    [(key, value)] = producer.on("dlq")
    assert key == big.record.key and value == b""
    headers = dict(producer.headers[-1])
    assert headers["rk.error.reason"] == b"payload_too_large"
    assert headers["rk.error.original_reason"] == b"portal_rejected"
    assert int(headers["rk.original.size"]) == len(big.record.value or b"")


async def test_a_dead_letter_kafka_refuses_is_written_as_a_stub_not_retried_for_ever() -> None:
    portal = InMemoryPortal()
    portal.script("uuid-0", PermanentDeliveryError("X001", portal_code="X001"))
    d, producer, _ = dispatcher(portal)
    producer.failures = [RecordRefused("MessageSizeTooLargeError")]  # the broker's limit is below ours
    letter = _big(0, 1000)

    await asyncio.wait_for(d._deliver(letter), 5.0)

    [(_, value)] = producer.on("dlq")
    assert value == b""
    assert dict(producer.headers[-1])["rk.error.reason"] == b"payload_too_large"


async def test_a_dispatcher_that_never_started_stops_cleanly() -> None:
    closed = []
    portal = InMemoryPortal()
    portal.aclose = lambda: closed.append(True) or asyncio.sleep(0)  # type: ignore[method-assign]
    d = DeliveryDispatcher(CONFIG, MemoryLog(MemoryBroker(), "g"), portal, Metrics(CollectorRegistry()))

    await d.stop()

    assert closed == [True]


async def test_a_message_refused_before_sending_is_no_verdict_on_the_portal() -> None:
    """The adapter could not express the message on the wire: the probe goes back, the circuit stays as it was."""
    clock = ManualClock()
    breaker = half_open(clock)
    portal = InMemoryPortal()
    portal.script("uuid-0", PermanentDeliveryError("bad header", reason=Reason.PORTAL_CLIENT_ERROR, sent=False))
    d, producer, _ = dispatcher(portal, breaker=breaker)

    await d._deliver(item(0))

    assert breaker.state is CircuitState.HALF_OPEN
    assert breaker.try_acquire()  # the probe was released: the next message may probe
    assert len(producer.on("dlq")) == 1
