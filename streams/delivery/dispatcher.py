"""The delivery dispatcher: the shell that reads the outbox from a record log and talks to the portal.

The decisions (queues per Vorgang, committable offsets, which partitions to pause, replays for other targets) are
the :class:`~streams.delivery.scheduler.Scheduler`'s; Kafka is behind :class:`~streams.recordlog.RecordLog`
(:class:`~streams.kafka_log.KafkaLog` in production, :class:`~streams.recordlog.MemoryLog` in tests). What the
shell keeps:

* One sender task per Vorgang queue with work: its next message starts only after the previous one is delivered
  or dead-lettered. Different keys run concurrently, bounded by a per-portal request limit.
* Commits what the scheduler calls committable, every ``commit_interval_s`` and on revoke and stop.
* Transient failures retry with backoff and a budget by age; permanent ones go to the DLQ; a delivered message
  gets a receipt record. While the circuit is open, all partitions are paused and no budget runs.
* On revoke and on stop: stop fetching, let in-flight work finish within a deadline, commit what is done, abandon
  the rest (the next owner delivers it again; the portal recognises the nachrichtenUUID).
* Nothing on the delivery path can stop it: every portal call ends with a verdict for the circuit breaker or
  releases its half-open probe (an adapter that raises something unexpected counts as a failure), and an unexpected
  exception while delivering, receipting or dead-lettering a message is logged and that message tried again with
  backoff, at the head of its Vorgang's queue.
* Only a valid W3C ``traceparent`` leaves for the portal; any other is dropped and counted.
* One dispatcher per delivery target (settings ``targets``), each its own consumer group: a dead letter names its
  target (``rk.error.target``), and a replayed record that names another target (``rk.replay.target``, written by
  ``rueckkanal dlq replay``) is skipped, so a replay reaches only the target that failed.
* Progress (``/healthz``): every portal verdict and every outcome is a step forward; messages queued while the
  circuit is not open are work waiting (an open circuit waiting for its timer is expected, not a stall).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import structlog

from adapters.portal.base import OutboundMessage, PortalAdapter, Receipt
from rueckkanal.errors import (
    DeliveryError,
    PermanentDeliveryError,
    Reason,
    RueckkanalError,
    TransientDeliveryError,
)
from rueckkanal.metrics import CIRCUIT_STATES, Metrics
from rueckkanal.settings import DEFAULT_TARGET
from rueckkanal.tracecontext import valid_traceparent
from streams.delivery.breaker import CircuitBreaker, CircuitState
from streams.delivery.retry import RetryPolicy
from streams.delivery.scheduler import Item, QueueKey, Scheduler
from streams.dlq import RECORD_HEADROOM, Origin, dead_letter_headers, estimated_size, stub_record
from streams.headers import (
    H_SEQUENCE,
    H_SOURCE,
    H_STATUS,
    H_STATUS_TIME,
    H_TARGET,
    H_TRACEPARENT,
    header_bytes,
)
from streams.headers import header as read_header
from streams.logs import log_outcome, where
from streams.obs import Progress, Readiness
from streams.recordlog import Headers, LogUnavailable, Record, RecordLog, RecordRefused, TopicPartition

log = structlog.get_logger("rueckkanal.delivery")

READY_CONDITION = "delivery.partitions"
STAGE = "delivery"


@dataclass(frozen=True)
class DispatcherConfig:
    outbox_topic: str
    dlq_topic: str
    receipts_topic: str
    group_id: str
    portal_name: str
    window_per_partition: int = 2000
    max_concurrent_requests: int = 256
    commit_interval_s: float = 1.0
    drain_deadline_s: float = 20.0
    fetch_max_records: int = 1000
    max_request_size: int = 1_048_576  # the producer's limit; a dead letter above it is written as a stub
    target: str = DEFAULT_TARGET  # the delivery target (settings targets): metric label, rk.error.target


class DeliveryDispatcher:
    def __init__(
        self,
        config: DispatcherConfig,
        log: RecordLog,
        portal: PortalAdapter,
        metrics: Metrics,
        retry: RetryPolicy | None = None,
        breaker: CircuitBreaker | None = None,
        readiness: Readiness | None = None,
        progress: Progress | None = None,
    ) -> None:
        self.config = config
        self.readiness = readiness or Readiness()
        self.readiness.require(READY_CONDITION, "delivery consumer has no outbox partitions yet")
        self.progress = progress or Progress()
        self.progress.watch(STAGE, self._work_waiting)
        self.portal = portal
        self.metrics = metrics
        self.retry = retry or RetryPolicy()
        self.breaker = breaker or CircuitBreaker()
        self.breaker.on_change = self._on_circuit_change
        self.log = log
        self.scheduler = Scheduler(target=config.target, window_per_partition=config.window_per_partition)
        self._tasks: dict[QueueKey, asyncio.Task[None]] = {}
        self._requests = asyncio.Semaphore(config.max_concurrent_requests)
        self._stopping = asyncio.Event()
        self._runner: asyncio.Task[None] | None = None
        self._last_commit = 0.0
        self._labels = config.portal_name
        self._target = config.target
        self._last_failure: Reason | None = None  # named when the circuit opens: the operator's first clue

    # -- lifecycle -----------------------------------------------------------------------------------------

    async def start(self) -> None:
        self.log.subscribe([self.config.outbox_topic], self)
        await self.log.start()
        self.metrics.circuit_state.labels(self._target, self._labels).set(CIRCUIT_STATES[self.breaker.state.value])
        self._runner = asyncio.create_task(self._run(), name="rueckkanal.delivery")

    async def stop(self) -> None:
        """Stop fetching, drain within the deadline, commit what is done, close the clients."""
        self._stopping.set()
        if self._runner is None:  # never started (the worker refused to start): nothing to drain or close
            await self.portal.aclose()
            return
        await self._runner
        await self._drain(set(self.scheduler.partitions))
        await self.log.stop()
        await self.portal.aclose()

    # -- the fetch loop ------------------------------------------------------------------------------------

    async def _run(self) -> None:
        while not self._stopping.is_set():
            self._apply_flow_control()
            batch = await self.log.fetch(0.2, self.config.fetch_max_records)
            for tp, records in batch.items():
                for record in records:
                    self._accept(tp, record)
            self._update_gauges()
            if time.monotonic() - self._last_commit >= self.config.commit_interval_s:
                await self._commit(set(self.scheduler.partitions))

    def _apply_flow_control(self) -> None:
        assignment = self.log.assignment()
        if not assignment:
            return
        pause, resume = self.scheduler.flow(assignment, self.breaker.state is CircuitState.CLOSED)
        if pause:
            self.log.pause(*pause)
        if resume:
            self.log.resume(*resume)

    def _accept(self, tp: TopicPartition, record: Record) -> None:
        key = self.scheduler.accept(tp, record)
        if key is not None and key not in self._tasks:
            self._tasks[key] = asyncio.create_task(self._drain_key(key))

    async def _drain_key(self, key: QueueKey) -> None:
        """Finish the Vorgang's messages in order; its queue is dropped only when the task is cancelled (revoke,
        stop), never because one message failed."""
        item = self.scheduler.head(key)
        try:
            while item is not None:
                await self._settle(item)
                item = self.scheduler.finish(key)
        finally:
            self.scheduler.abandon(key)
            self._tasks.pop(key, None)

    async def _settle(self, item: Item) -> None:
        """Deliver or dead-letter one message, however long it takes; only cancellation ends it unfinished.

        An unexpected exception (a bug, a broken header, a full disk) is logged without payload and the same message
        is tried again with backoff: nothing behind it in its Vorgang overtakes it, and other Vorgänge go on.
        """
        failures = 0
        while True:
            try:
                await self._deliver(item)
                return
            except Exception as error:
                failures += 1
                record = item.record
                log.error(
                    "delivering a message failed unexpectedly, trying it again",
                    portal=self._labels,
                    topic=record.topic,
                    partition=record.partition,
                    offset=record.offset,
                    error=type(error).__name__,
                    where=where(error),
                    failures=failures,
                )
                await asyncio.sleep(self.retry.delay(failures))

    # -- one message ---------------------------------------------------------------------------------------

    async def _deliver(self, item: Item) -> None:
        """Deliver or dead-letter one message; returns only when it is finished (or raises CancelledError)."""
        message = self._message(item)
        if item.receipt is not None:
            await self._delivered(item, item.receipt)
            return
        if item.failure is not None:
            await self._dead_letter(item, item.failure)
            return
        if self.scheduler.already_delivered(item):
            self.metrics.deliveries.labels(self._target, self._labels, "duplicate").inc()
            self._outcome(item, "duplicate", reason="already_delivered")
            return
        failing_since: float | None = None
        open_mark = 0.0
        while True:
            await self._wait_for_circuit()
            item.attempts += 1
            try:
                receipt = await self._attempt(message)
            except TransientDeliveryError as error:
                if failing_since is None:
                    failing_since, open_mark = time.monotonic(), self.breaker.current_open_total()
                failing_for = time.monotonic() - failing_since - self.breaker.open_time_since(open_mark)
                if self.retry.exhausted(failing_for):
                    item.failure = error
                    await self._dead_letter(item, error)
                    return
                await asyncio.sleep(self.retry.delay(item.attempts, error.retry_after))
            except DeliveryError as error:
                item.failure = error
                await self._dead_letter(item, error)
                return
            else:
                item.receipt = receipt
                await self._delivered(item, receipt)
                return

    def _message(self, item: Item) -> OutboundMessage:
        """The request for this item, built once: a traceparent that is not valid W3C Trace Context is dropped
        (and counted once per message), so no CR/LF or oversized header can reach the portal call."""
        if item.message is None:
            raw = _raw_header(item.record, H_TRACEPARENT)
            traceparent = valid_traceparent(raw)
            if raw is not None and traceparent is None:
                self.metrics.traceparent_dropped.labels(STAGE).inc()
            item.message = OutboundMessage(
                nachrichten_uuid=item.nachrichten_uuid,
                vorgang_key=(item.record.key or b"").decode("utf-8", "replace"),
                xml=item.record.value or b"",
                traceparent=traceparent,
                source=_header(item.record, H_SOURCE),
            )
        return item.message

    async def _attempt(self, message: OutboundMessage) -> Receipt:
        """One portal call under the breaker's permission, which the caller holds.

        Every way out tells the breaker: a verdict (success, or failure for a transient error and for any exception
        the adapter should never raise), or, when cancelled before a verdict, the half-open probe is released.
        """
        verdict_given = False
        try:
            async with self._requests:
                started = time.perf_counter()
                try:
                    receipt = await self.portal.send(message)
                finally:
                    self.metrics.delivery_duration.labels(self._target, self._labels).observe(
                        time.perf_counter() - started
                    )
        except TransientDeliveryError as error:
            verdict_given = True
            self._verdict("transient", error.reason)
            raise
        except PermanentDeliveryError as error:
            if error.sent:  # the portal is up; it refused this one message
                verdict_given = True
                self._verdict("permanent")
            raise  # not sent: no verdict, the finally below releases a half-open probe
        except DeliveryError:
            verdict_given = True
            self._verdict("permanent")
            raise
        except Exception as error:  # an adapter or request bug: a failure, retried within the budget, never lost
            verdict_given = True
            self._verdict("transient", Reason.INTERNAL_ERROR)
            log.error(
                "portal adapter failed unexpectedly",
                portal=self._labels,
                nachrichten_uuid=message.nachrichten_uuid,
                error=type(error).__name__,
                where=where(error),
            )
            raise TransientDeliveryError(
                f"portal adapter raised {type(error).__name__}", reason=Reason.INTERNAL_ERROR
            ) from None
        else:
            verdict_given = True
            self._verdict("success")
        finally:
            if not verdict_given:
                self.breaker.release_probe()
        return receipt

    def _verdict(self, result: str, reason: Reason | None = None) -> None:
        """Tell the breaker, the metrics and the progress watch what one portal call came to."""
        if result == "transient":
            self._last_failure = reason
            self.breaker.record_failure()
        else:
            self.breaker.record_success()
        self.metrics.delivery_attempts.labels(self._target, self._labels, result).inc()
        self.progress.advanced(STAGE)

    async def _wait_for_circuit(self) -> None:
        while not self.breaker.try_acquire():
            await self.breaker.wait_closed(max(self.breaker.seconds_until_probe(), 0.01))

    async def _delivered(self, item: Item, receipt: Receipt) -> None:
        delivered_at = datetime.now(UTC)
        record = item.record
        body = {
            "nachrichtenUUID": item.nachrichten_uuid,
            "vorgang": (record.key or b"").decode("utf-8", "replace"),
            "status": _header(record, H_STATUS),
            "sequence": _int_or_none(_header(record, H_SEQUENCE)),
            "portal": self._labels,
            "target": self._target,  # the delivery target (settings targets); status-web's figures read it
            "portal_receipt_id": receipt.portal_receipt_id,
            "duplicate": receipt.duplicate,
            "attempts": item.attempts,
            "first_seen": item.first_seen_wall.isoformat(timespec="milliseconds"),
            "delivered_at": delivered_at.isoformat(timespec="milliseconds"),
        }
        await self._produce(self.config.receipts_topic, record.key, json.dumps(body).encode(), [])
        self.scheduler.delivered(item)
        outcome = "duplicate" if receipt.duplicate else "delivered"
        self.metrics.deliveries.labels(self._target, self._labels, outcome).inc()
        status_time = _parse_time(_header(record, H_STATUS_TIME))
        if status_time is not None:
            latency = (delivered_at - status_time).total_seconds()
            self.metrics.end_to_end_latency.labels(self._target, self._labels).observe(max(latency, 0.0))
        self._outcome(item, outcome)

    async def _dead_letter(self, item: Item, error: RueckkanalError) -> None:
        record = item.record
        origin = Origin(record.topic, record.partition, record.offset, record.timestamp)
        original = list(record.headers or ())
        target = (H_TARGET, self._target.encode())
        headers = [*dead_letter_headers(original, error, stage=STAGE, origin=origin, attempts=item.attempts), target]
        limit = self.config.max_request_size - RECORD_HEADROOM
        stub_key, stub_value, stub_headers = stub_record(
            record.key, record.value, original, error, stage=STAGE, origin=origin, record_limit=limit,
            attempts=item.attempts,
        )  # fmt: skip
        stub = (stub_key, stub_value, [*stub_headers, target])
        if estimated_size(record.key, record.value, headers) > limit:
            await self._produce(self.config.dlq_topic, *stub)
        else:
            await self._produce(self.config.dlq_topic, record.key, record.value, headers, refused=stub)
        self.metrics.deliveries.labels(self._target, self._labels, "dead_lettered").inc()
        self.metrics.dead_letters.labels("delivery", error.reason.value, self._target).inc()
        self._outcome(item, "dead_lettered", reason=error.reason.value, portal_code=getattr(error, "portal_code", None))

    def _outcome(self, item: Item, outcome: str, **fields: Any) -> None:
        self.progress.advanced(STAGE)
        record = item.record
        log_outcome(
            topic=record.topic,
            partition=record.partition,
            offset=record.offset,
            source=_header(record, H_SOURCE) or "unknown",
            outcome=outcome,
            duration_ms=(time.perf_counter() - item.started) * 1000,
            vorgang_key=record.key,
            traceparent=item.message.traceparent if item.message is not None else None,
            stage="delivery",
            target=self._target,
            portal=self._labels,
            attempts=item.attempts,
            **fields,
        )

    async def _produce(
        self,
        topic: str,
        key: bytes | None,
        value: bytes | None,
        headers: Headers,
        *,
        refused: tuple[bytes | None, bytes | None, Headers] | None = None,
    ) -> None:
        """Write a receipt or dead letter, retrying until the log takes it: a message is finished only when written.

        A record the log refuses for what it is (too large) is written as ``refused`` instead, if given: retrying the
        same record could never succeed.
        """
        delay = 0.1
        while True:
            try:
                await self.log.produce(topic, key, value, headers)
                return
            except RecordRefused as error:
                if refused is None:
                    raise
                log.warning("record refused by Kafka, writing its stub", topic=topic, error=str(error))
                key, value, headers = refused
                refused = None
            except LogUnavailable as error:
                log.error("cannot write to Kafka, retrying", topic=topic, error=str(error))
                await asyncio.sleep(delay)
                delay = min(delay * 2, 5.0)

    # -- commits, rebalance, drain -------------------------------------------------------------------------

    async def _commit(self, tps: set[TopicPartition]) -> None:
        self._last_commit = time.monotonic()
        offsets = self.scheduler.committable(tps)
        if not offsets:
            return
        try:
            await self.log.commit(offsets)
        except LogUnavailable as error:
            log.warning("commit failed; the work is delivered again after the rebalance", error=str(error))
            return
        self.scheduler.committed(offsets)

    async def _drain(self, tps: set[TopicPartition]) -> None:
        """Let in-flight work of these partitions finish within the deadline, commit it, abandon the rest."""
        tasks = [task for (tp, _), task in list(self._tasks.items()) if tp in tps]
        if tasks:
            _done, pending = await asyncio.wait(tasks, timeout=self.config.drain_deadline_s)
            for task in pending:
                task.cancel()
            for task in pending:
                with contextlib.suppress(asyncio.CancelledError):
                    await task
            if pending:
                log.warning("abandoned unfinished messages at the drain deadline", keys=len(pending))
        await self._commit(tps)

    async def on_partitions_revoked(self, revoked: set[TopicPartition]) -> None:
        ours = {tp for tp in revoked if tp in self.scheduler.partitions}
        if ours:
            await self._drain(ours)
        self.scheduler.revoke(ours)
        self.metrics.assigned_partitions.labels("delivery", self._target).set(len(self.scheduler.partitions))
        if not self.scheduler.partitions:
            self.readiness.not_ready(READY_CONDITION, "delivery consumer owns no outbox partitions")

    async def on_partitions_assigned(self, assigned: set[TopicPartition]) -> None:
        self.scheduler.assign(assigned)
        self.metrics.assigned_partitions.labels("delivery", self._target).set(len(self.scheduler.partitions))
        if self.scheduler.partitions:
            self.readiness.ready(READY_CONDITION)

    # -- gauges and progress -------------------------------------------------------------------------------

    def _work_waiting(self) -> bool:
        """Messages are queued and the circuit is not open (open, they wait for its timer: expected)."""
        return self.breaker.state is not CircuitState.OPEN and self.scheduler.has_queued()

    def _on_circuit_change(self, state: CircuitState) -> None:
        self.metrics.circuit_state.labels(self._target, self._labels).set(CIRCUIT_STATES[state.value])
        reason = self._last_failure.value if state is CircuitState.OPEN and self._last_failure else None
        log.warning(
            "circuit breaker changed", target=self._target, portal=self._labels, state=state.value, reason=reason
        )

    def _update_gauges(self) -> None:
        self.metrics.in_flight.labels(self._target, self._labels).set(self.scheduler.in_flight())
        oldest = self.scheduler.oldest_timestamp_ms()
        age = 0.0 if oldest is None else max(0.0, time.time() - oldest / 1000)
        self.metrics.oldest_undelivered_age.labels(self._target, self._labels).set(age)
        self.metrics.consumer_lag.labels("delivery", self._target).set(self.scheduler.lag(self.log.end_offset))


def _header(record: Record, name: str) -> str | None:
    return read_header(record.headers, name)


def _raw_header(record: Record, name: str) -> bytes | None:
    return header_bytes(record.headers, name)


def _int_or_none(text: str | None) -> int | None:
    return int(text) if text and text.isdigit() else None


def _parse_time(text: str | None) -> datetime | None:
    if not text:
        return None
    try:
        return datetime.fromisoformat(text)
    except ValueError:
        return None
