"""status-web's reader of the delivery log: receipts and dead-letter headers into its database, for the figures.

The transparency figures (``rueckkanal report``) need, per delivery target, when each status reached it, and the
dead letters by reason. Receipts (``rueckkanal.receipts``, one JSON per delivered message, written by the delivery
dispatcher) are kept only for 90 days and the report covers a year, so status-web reads both topics with its own
consumer group (``{app_id}.status-web.deliveries``) and keeps what the figures need:

* of a receipt: nachrichtenUUID, target (``target``; receipts written before targets had names count for
  :data:`~rueckkanal.settings.DEFAULT_TARGET`) and ``delivered_at`` as whole seconds;
* of a dead letter: its DLQ partition and offset (the key that makes a re-read harmless), and the pipeline's own
  headers ``rk.error.stage``, ``rk.error.reason``, ``rk.error.target`` and ``rk.failed_at``. Never its key, value or
  the Fachverfahren's headers: no payload and no personal data reach the figures.

A record that does not have this shape (a reason that is not a :class:`~rueckkanal.errors.Reason`, a target name
that is not one, an unreadable time) is counted as ``skipped`` and logged without content. Each batch is stored in
one transaction before its offsets are committed; a crash means the batch comes again and changes nothing. A batch
the database refuses, or does not take within ``status_web.store_deadline_s``, is counted
(``rueckkanal_status_web_store_errors_total{reader="delivery_log"}``) and read again after a pause.
"""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import Mapping
from datetime import datetime
from typing import Any

import structlog
from aiokafka import TopicPartition
from aiokafka.errors import CommitFailedError, KafkaError

from adapters.statusstore.base import StatusStore
from rueckkanal.errors import Reason
from rueckkanal.metrics import STAGES
from rueckkanal.settings import DEFAULT_TARGET, TARGET_NAME_PATTERN
from rueckkanal.transparency import DeadLetterRecord, DeliveryRecord, epoch_seconds
from streams.headers import H_FAILED_AT, H_REASON, H_STAGE, H_TARGET, header
from streams.status_web.consumer import read_again_later, reader_consumer, store_or_read_again
from streams.status_web.metrics import StatusWebMetrics

log = structlog.get_logger("rueckkanal.status_web")

_REASONS = frozenset(reason.value for reason in Reason)
_TARGET = re.compile(TARGET_NAME_PATTERN)
_UUID = re.compile(r"^[0-9A-Za-z-]{1,64}$")
MAX_RECEIPT_BYTES = 16 * 1024


def _seconds(text: object) -> int | None:
    if not isinstance(text, str) or len(text) > 40:
        return None
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        return None
    return epoch_seconds(moment) if moment.tzinfo is not None else None


def receipt_record(value: bytes | None) -> DeliveryRecord | None:
    """What the figures keep of one receipt, or None if it is not one."""
    if not value or len(value) > MAX_RECEIPT_BYTES:
        return None
    try:
        body = json.loads(value)
    except (ValueError, UnicodeDecodeError):
        return None
    if not isinstance(body, dict):
        return None
    uuid, target = body.get("nachrichtenUUID"), body.get("target", DEFAULT_TARGET)
    at = _seconds(body.get("delivered_at"))
    if not isinstance(uuid, str) or not _UUID.match(uuid) or not isinstance(target, str) or at is None:
        return None
    if not _TARGET.match(target):
        return None
    return DeliveryRecord(uuid, target, at)


def dead_letter_record(partition: int, offset: int, headers: Any) -> DeadLetterRecord | None:
    """What the figures keep of one dead letter (its position and the pipeline's headers), or None."""
    stage, reason = header(headers, H_STAGE), header(headers, H_REASON)
    target = header(headers, H_TARGET) or ""
    at = _seconds(header(headers, H_FAILED_AT))
    if stage not in STAGES or reason not in _REASONS or at is None:
        return None
    if target and not _TARGET.match(target):
        return None
    return DeadLetterRecord(partition, offset, stage, reason, target, at)


class DeliveryLogReader:
    def __init__(
        self,
        *,
        kafka_options: Mapping[str, Any],
        receipts_topic: str,
        dlq_topic: str,
        group_id: str,
        store: StatusStore,
        metrics: StatusWebMetrics,
        session_timeout_ms: int = 10_000,
        store_deadline_s: float,
    ) -> None:
        self._kafka_options = dict(kafka_options)
        self.receipts_topic = receipts_topic
        self.dlq_topic = dlq_topic
        self.group_id = group_id
        self.store = store
        self.metrics = metrics
        self._session_timeout_ms = session_timeout_ms
        self.store_deadline_s = store_deadline_s
        self._stopping = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        self.consumer = reader_consumer(
            self._kafka_options, self.group_id, self._session_timeout_ms, 1000, metadata_max_age_ms=30_000
        )
        await self.consumer.start()
        # subscribed after start: topics that do not exist yet (no worker has run) are picked up when they appear
        self.consumer.subscribe(topics=[self.receipts_topic, self.dlq_topic])
        self._task = asyncio.create_task(self._run(), name="rueckkanal.status_web.deliveries")

    async def stop(self) -> None:
        self._stopping.set()
        if self._task is not None:
            await self._task
        await self.consumer.stop()

    def problem(self) -> str | None:
        """Why this reader cannot go on by itself (for ``/healthz``), or None."""
        if self._task is not None and self._task.done() and not self._stopping.is_set():
            return "the delivery log reader has stopped"
        return None

    async def _run(self) -> None:
        while not self._stopping.is_set():
            try:
                batch = await self.consumer.getmany(timeout_ms=200, max_records=1000)
                if batch:
                    await self._handle(batch)
            except (KafkaError, OSError) as error:  # the broker; the batch comes again
                log.warning("status-web delivery log batch not read, reading it again", error=type(error).__name__)
                await read_again_later(self.consumer)

    async def _handle(self, batch: Mapping[TopicPartition, list[Any]]) -> None:
        deliveries: list[DeliveryRecord] = []
        letters: list[DeadLetterRecord] = []
        skipped = 0
        for tp, records in batch.items():
            for record in records:
                if tp.topic == self.receipts_topic:
                    found: DeliveryRecord | DeadLetterRecord | None = receipt_record(record.value)
                    if found is not None:
                        deliveries.append(found)  # type: ignore[arg-type]
                else:
                    found = dead_letter_record(record.partition, record.offset, record.headers)
                    if found is not None:
                        letters.append(found)
                if found is None:
                    skipped += 1
                    log.warning(
                        "status-web skipped a delivery log record",
                        topic=record.topic,
                        partition=record.partition,
                        offset=record.offset,
                    )
        stored, _ = await store_or_read_again(
            self.consumer,
            lambda: self.store.record_deliveries(deliveries, letters),
            deadline_s=self.store_deadline_s,
            errors=self.metrics.store_errors.labels("delivery_log"),
            event="status-web could not store a delivery log batch, reading it again",
        )
        if not stored:
            return
        self.metrics.delivery_log.labels("receipt").inc(len(deliveries))
        self.metrics.delivery_log.labels("dead_letter").inc(len(letters))
        self.metrics.delivery_log.labels("skipped").inc(skipped)
        try:
            await self.consumer.commit({tp: records[-1].offset + 1 for tp, records in batch.items() if records})
        except (CommitFailedError, KafkaError):
            log.info("status-web delivery log commit refused after a rebalance; read again by the new owner")
