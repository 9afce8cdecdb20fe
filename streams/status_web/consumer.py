"""The outbox reader of status-web: its own consumer group, so no portal target can hold it back.

Per fetched batch: every record is read into a :class:`~rueckkanal.tracking.StoredStatus` (safe parser, XSD);
the batch is stored in one database transaction; then Vorgänge that have no published link yet get one on the
tracking topic (if enabled); and only then are the batch's offsets committed. A crash anywhere before the commit
means the batch comes again, to this replica or another one, and the database's key on nachrichtenUUID makes the
repetition harmless. A record that is not a readable Statusmeldung (the outbox is written by the pipeline only, so
this is a bug or a foreign producer) is counted as ``skipped`` and logged without its content; it never stops the
partition.

The Fachverfahren of a message (for the Leistung's name) is the pipeline-written header ``rk.source``; records
without it fall back to the Fachverfahren whose configured source URN the message names.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Awaitable, Callable, Mapping
from datetime import UTC, datetime
from typing import Any, TypeVar

import structlog
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.errors import CommitFailedError, KafkaError
from prometheus_client import Counter

from adapters.statusstore.base import Applied, StatusStore
from rueckkanal.errors import InputRejected
from rueckkanal.settings import STORE_RETRY_PAUSE_S
from rueckkanal.tracking import StoredStatus, status_from_message
from rueckkanal.transparency import completed_now, milestone_of, points_of
from streams import kafka_records
from streams.headers import H_SOURCE, header
from streams.logs import vorgang_ref, where
from streams.obs import Progress
from streams.status_web.links import Links
from streams.status_web.metrics import StatusWebMetrics

log = structlog.get_logger("rueckkanal.status_web")

MAX_BATCH = 500
PROGRESS_STAGE = "status-web"


def reader_consumer(
    kafka_options: Mapping[str, Any],
    group_id: str,
    session_timeout_ms: int,
    max_poll_records: int,
    *topics: str,
    **extra: Any,
) -> AIOKafkaConsumer:
    """A consumer of status-web's own group: it commits itself, after the database has the batch; a new group starts
    at the beginning; only committed records are read."""
    return kafka_records.consumer(
        *topics,
        **kafka_options,
        group_id=group_id,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        isolation_level="read_committed",
        session_timeout_ms=session_timeout_ms,
        heartbeat_interval_ms=max(300, session_timeout_ms // 3),
        max_poll_records=max_poll_records,
        **extra,
    )


async def read_again_later(consumer: AIOKafkaConsumer) -> None:
    """After a batch that was not stored (the database or the broker failed): seek every assigned partition back to
    its committed offset, the beginning without one, so nothing uncommitted is skipped; then pause before reading."""
    for tp in consumer.assignment():
        committed = await consumer.committed(tp)
        if committed is None:
            await consumer.seek_to_beginning(tp)
        else:
            consumer.seek(tp, committed)
    await asyncio.sleep(STORE_RETRY_PAUSE_S)


T = TypeVar("T")


async def store_or_read_again(
    consumer: AIOKafkaConsumer,
    store: Callable[[], Awaitable[T]],
    *,
    deadline_s: float,
    errors: Counter,
    event: str,
    refused: Callable[[], None] = lambda: None,
) -> tuple[bool, T | None]:
    """Runs ``store`` for a batch, within ``deadline_s``: ``(True, its result)``. A batch the database refuses or
    does not take in time (a locked table is a refusal too) is counted, logged by class and place only (a database
    error can quote the values), and read again after a pause: ``(False, None)``. ``refused`` runs before the
    pause."""
    try:
        async with asyncio.timeout(deadline_s):
            return True, await store()
    except Exception as error:
        errors.inc()
        log.warning(event, error=type(error).__name__, where=where(error))
        refused()
        await read_again_later(consumer)
        return False, None


class OutboxReader:
    def __init__(
        self,
        *,
        kafka_options: Mapping[str, Any],
        outbox_topic: str,
        group_id: str,
        store: StatusStore,
        links: Links,
        metrics: StatusWebMetrics,
        fachverfahren_by_source: Mapping[str, str],
        tracking_topic: str | None,
        session_timeout_ms: int = 10_000,
        progress: Progress | None = None,
        store_deadline_s: float,
    ) -> None:
        """``progress`` is told of every attempt to store a batch and watches whether outbox records wait
        (``/healthz``). An attempt the database refuses is a step forward too: a database outage is waited out
        (a restart would not cure it) and counted; only a reader that stops attempting is stalled."""
        self._kafka_options = dict(kafka_options)
        self.outbox_topic = outbox_topic
        self.group_id = group_id
        self.store = store
        self.links = links
        self.metrics = metrics
        self._by_source = dict(fachverfahren_by_source)
        self.tracking_topic = tracking_topic
        self._session_timeout_ms = session_timeout_ms
        self._stopping = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self.producer: AIOKafkaProducer | None = None
        self.started = False
        self.lag = 0  # outbox records behind the newest known offset, at the last fetch
        self._next: dict[TopicPartition, int] = {}  # the next offset to read, per partition read so far
        self.progress = progress
        self.store_deadline_s = store_deadline_s
        if progress is not None:
            progress.watch(PROGRESS_STAGE, lambda: self.started and self.lag > 0)

    async def start(self) -> None:
        self.consumer = reader_consumer(
            self._kafka_options, self.group_id, self._session_timeout_ms, MAX_BATCH, self.outbox_topic
        )
        if self.tracking_topic is not None:
            self.producer = AIOKafkaProducer(**self._kafka_options, acks="all", enable_idempotence=True, linger_ms=5)
            await self.producer.start()
        await self.consumer.start()
        self.started = True
        self._task = asyncio.create_task(self._run(), name="rueckkanal.status_web.outbox")

    async def stop(self) -> None:
        self._stopping.set()
        if self._task is not None:
            await self._task
        await self.consumer.stop()
        if self.producer is not None:
            await self.producer.stop()

    def problem(self) -> str | None:
        """Why this reader cannot go on by itself (for ``/healthz``), or None."""
        if self._task is not None and self._task.done() and not self._stopping.is_set():
            return "the outbox reader has stopped"
        return None

    def _measure_lag(self) -> None:
        """Records behind the broker's newest offset, over the partitions this reader holds and has read."""
        assigned = self.consumer.assignment()
        lag = 0
        for tp in assigned:
            end, position = self.consumer.highwater(tp), self._next.get(tp)
            if end is not None and position is not None:
                lag += max(0, end - position)
        for tp in [tp for tp in self._next if tp not in assigned]:
            del self._next[tp]
        self.lag = lag
        self.metrics.outbox_lag.set(lag)

    async def _run(self) -> None:
        while not self._stopping.is_set():
            try:
                batch = await self.consumer.getmany(timeout_ms=200, max_records=MAX_BATCH)
                for tp, records in batch.items():
                    if records:
                        self._next.setdefault(tp, records[0].offset)
                self._measure_lag()
                if batch:
                    await self._handle(batch)
            except (KafkaError, OSError) as error:  # the database or the broker; the batch comes again
                log.warning("status-web batch not stored, reading it again", error=type(error).__name__)
                await read_again_later(self.consumer)

    async def _handle(self, batch: Mapping[TopicPartition, list[Any]]) -> None:
        statuses: list[StoredStatus] = []
        newest_ms = 0
        for records in batch.values():
            for record in records:
                newest_ms = max(newest_ms, record.timestamp or 0)
                status = self._read(record)
                if status is not None:
                    statuses.append(status)
        milestone_keys = sorted({s.vorgang_key for s in statuses if milestone_of(s.status) is not None})

        async def store() -> tuple[dict[str, list[StoredStatus]], Applied]:
            before = {key: await self.store.statuses(key) for key in milestone_keys}
            return before, await self.store.apply(statuses, datetime.now(UTC))

        stored, result = await store_or_read_again(
            self.consumer,
            store,
            deadline_s=self.store_deadline_s,
            errors=self.metrics.store_errors.labels("outbox"),
            event="status-web could not store a batch, reading it again",
            refused=self._advanced,
        )
        if not stored or result is None:
            return
        before, applied = result
        if applied.stored:
            await self._observe_steps(before)
        self.metrics.statuses.labels("stored").inc(applied.stored)
        self.metrics.statuses.labels("duplicate").inc(applied.duplicates)
        if self.producer is not None and statuses:
            await self._publish_links([s.vorgang_key for s in statuses])
        offsets = {tp: records[-1].offset + 1 for tp, records in batch.items() if records}
        self._next.update(offsets)
        self._advanced()
        try:
            await self.consumer.commit(offsets)
        except (
            CommitFailedError,
            KafkaError,
        ):  # the partitions moved on a rebalance: their next owner reads them again
            log.info("status-web commit refused after a rebalance; the batch is read again by its new owner")
        if newest_ms:
            delay = max(0.0, time.time() - newest_ms / 1000)
            self.metrics.lag.set(delay)
            self.metrics.lag_histogram.observe(delay)
        log.debug("status-web batch stored", stored=applied.stored, duplicates=applied.duplicates)

    def _advanced(self) -> None:
        """A batch was stored or refused: an attempt, which is progress for ``/healthz``."""
        if self.progress is not None:
            self.progress.advanced(PROGRESS_STAGE)

    async def _observe_steps(self, before: Mapping[str, list[StoredStatus]]) -> None:
        """Observe the step durations this batch completed (rueckkanal.transparency: their rules)."""
        for key, earlier in before.items():
            try:
                after = await self.store.statuses(key)
            except Exception:  # the figures are stored; only this observation is lost
                log.warning("status-web could not read a timeline for the step metrics")
                return
            if not after:
                continue
            source = after[-1].fachverfahren or "unknown"
            for step, seconds in completed_now(points_of(earlier), points_of(after)).items():
                self.metrics.step_duration.labels(source, step).observe(seconds)

    def _read(self, record: Any) -> StoredStatus | None:
        name = header(record.headers, H_SOURCE)
        try:
            status = status_from_message(record.value or b"", fachverfahren=name or "")
        except InputRejected as error:
            self.metrics.statuses.labels("skipped").inc()
            log.error(
                "status-web skipped an outbox record that is not a readable Statusmeldung",
                reason=error.reason.value,
                topic=record.topic,
                partition=record.partition,
                offset=record.offset,
            )
            return None
        if not name:
            source = status.vorgang_key.split("|", 1)[0]
            status = _with_fachverfahren(status, self._by_source.get(source, ""))
        return status

    async def _publish_links(self, vorgang_keys: list[str]) -> None:
        """A link record for each Vorgang that has none yet; marked only after the broker has it."""
        if self.producer is None or self.tracking_topic is None:
            return
        for key in await self.store.unpublished(vorgang_keys):
            link = await self.links.mint(key)
            source, vorgang_id = key.split("|", 1)
            value = {
                "vorgangKey": key,
                "source": source,
                "vorgangId": vorgang_id,
                "url": link.url,
                "qrSvg": link.qr_svg().decode(),
                "createdAt": datetime.now(UTC).isoformat(timespec="milliseconds"),
            }
            await self.producer.send_and_wait(
                self.tracking_topic,
                json.dumps(value).encode(),
                key=key.encode(),
                headers=[("content-type", b"application/json")],
            )
            await self.store.mark_published(key, datetime.now(UTC))
            self.metrics.tokens_minted.labels("topic").inc()
            log.info("status-web link published", vorgang=vorgang_ref(key))


def _with_fachverfahren(status: StoredStatus, name: str) -> StoredStatus:
    from dataclasses import replace

    return replace(status, fachverfahren=name)
