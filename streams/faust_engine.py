"""Everything that reaches into faust: its transport, consumer and producer, its flow control, the App class, and
the consumer's assignment and committed offsets as readiness and lag see them. Nothing else in the project imports
faust internals. Why each rule exists, with the incidents behind it: docs/architecture.md.

The rules this module keeps for the ingest worker:

* **Fetch wait** of :data:`FETCH_MAX_WAIT_MS` (faust hard-codes 1500 ms): a record arriving on one partition never
  waits behind a fetch parked for others.
* **Paused means not fetched** (:func:`hold_inactive`): a partition faust does not read now (a recovered table's
  changelog) is paused in aiokafka too, or its unread records would hold every fetch from the broker back.
* **Committed records only**: the consumer reads ``read_committed`` (faust does only in exactly-once mode), so an
  aborted transaction of a Fachverfahren is never processed, and an open one waits for its end; what an open one
  holds back, and for how long, is measured after each fetch (:class:`streams.obs.OpenTransactions`).
* **Commits** never stop for a repeated offset (:class:`AckedOffsets`) nor for an older committed offset read back
  during a seek (:class:`CommittedOffsets`), nor at offsets without a record for faust (transaction markers,
  aborted records: between records as a gap, also after offset 0; after the last one as a :class:`SkippedTails`),
  and never pass a record that was not processed.
* **Read offsets** only move forward within an assignment (:meth:`FaustConsumer.perform_seek`): a record fetched during
  the seek at the end of a recovery is not taken for a gap.
* **No fetched record is dropped** (:meth:`FaustConsumer.getmany`): one faust cannot hand over now is fetched again,
  its partition's position moved back to it; a partition resumed during the wait counts as active.
* **Hand-off** of a fetched batch is raced against a stop of the flow once per batch, not once per record; the
  fetch itself is not raced.
* **Flow control** (:class:`KeepQueuesOnResume`): resuming keeps the agents' queues; only revocation empties them;
  a stopping app never resumes.
* **Producer** idempotent with acks=all.
* **Stream skips**: faust's stream acknowledges a record taken from a queue while the flow is suspended or of an
  older generation; none reaches a queue here, because suspend, pause and clear happen in one step and nothing
  fills faust's producer buffer. Keep it so: never ``send_soon`` and never write the Table through
  ``table[key]`` (streams/ingest.py writes the changelog itself).
* **The Table's local store** (:class:`LocalState`) is read and written by partition, never through faust's
  ``current_event``; a partition's changes and the changelog offset they reached are written together, after the
  broker acknowledged them, so a restart with an intact RocksDB store reads only the changelog's tail.
"""

from __future__ import annotations

import asyncio
import heapq
from collections import defaultdict
from collections.abc import AsyncIterator, Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, cast

import aiokafka
import aiokafka.errors
import faust
import rocksdict
import structlog
from faust.stores import rocksdb as faust_rocksdb
from faust.transport.consumer import CONSUMER_FETCHING, ensure_TP
from faust.transport.drivers import aiokafka as faust_aiokafka
from mode.utils.objects import cached_property
from mode.utils.queues import FlowControlEvent

from streams.kafka_records import install_record_reader
from streams.obs import OpenTransactions, Progress, Readiness, record_lag, record_open_transactions

FETCH_MAX_WAIT_MS = 100
YIELD_EVERY = 100  # records handed off between two turns of the event loop, as in faust


install_record_reader()  # faust's consumers build theirs with aiokafka directly


# -- faust's transport ----------------------------------------------------------------------------------------------


class SkippedTails:
    """Per partition, offsets the fetcher passed without a record for faust: transaction markers and the records
    of aborted transactions at the end of what was fetched (kept by the consumer's thread, read by faust's).

    ``tail(tp)`` is ``(handed, position)``: every offset from ``handed`` (the next one after the last record a
    fetch returned, or the position before the first fetch) up to ``position`` was skipped. Once everything before
    ``handed`` is acknowledged, ``position`` may be committed: a Kafka consumer commits its position, not the offset
    after its last record, or a transactional topic would always show the marker as lag and a restart would read
    from it again.
    """

    def __init__(self) -> None:
        self._handed: dict[Any, int] = {}
        self._tails: dict[Any, tuple[int, int]] = {}
        self._returned: set[Any] = set()  # partitions a fetch returned a record of in this assignment
        self._positions: dict[Any, int] = {}  # after the last fetch

    def before_fetch(self, positions: Mapping[Any, int]) -> None:
        """The positions before a fetch: where nothing was handed yet (or a seek moved back), they start it."""
        for tp in [tp for tp in self._handed if tp not in positions]:
            del self._handed[tp]
            self._tails.pop(tp, None)
        self._returned.intersection_update(positions)
        for tp, position in positions.items():
            handed = self._handed.get(tp)
            if handed is None or position < handed:
                self._handed[tp] = position
                self._tails.pop(tp, None)

    def after_fetch(self, records: Mapping[Any, Sequence[Any]], positions: Mapping[Any, int]) -> None:
        """The records a fetch returned and the positions after it."""
        for tp, batch in records.items():
            if batch:
                self._handed[tp] = batch[-1].offset + 1
                self._returned.add(tp)
        self._positions = dict(positions)
        for tp, position in positions.items():
            handed = self._handed.get(tp)
            if handed is not None and position > handed:
                self._tails[tp] = (handed, position)
            else:
                self._tails.pop(tp, None)

    def tail(self, tp: Any) -> tuple[int, int] | None:
        return self._tails.get(tp)

    def untouched_position(self, tp: Any) -> int | None:
        """The position of a partition no fetch of this assignment returned a record of: nothing below it is
        faust's to process (a new group's partition whose first records are an aborted transaction), or None."""
        return None if tp in self._returned else self._positions.get(tp)

    def partitions(self) -> list[Any]:
        """The partitions with a skipped tail, or without any record fetched yet, now."""
        return [*self._tails, *(tp for tp in self._positions if tp not in self._tails and tp not in self._returned)]


def positions(consumer: aiokafka.AIOKafkaConsumer) -> dict[Any, int]:
    """The fetch position of every assigned partition that has one, read without waiting (the consumer's thread)."""
    assignment = consumer._subscription.subscription
    if assignment is None or assignment.assignment is None:
        return {}
    found = {}
    for tp in assignment.assignment.tps:
        state = assignment.assignment.state_value(tp)
        if state is not None and state.has_valid_position:
            found[tp] = state.position
    return found


class _ConsumerThread(faust_aiokafka.AIOKafkaConsumerThread):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.skipped = SkippedTails()
        self.transactions = OpenTransactions()

    def _create_worker_consumer(self, transport: Any) -> aiokafka.AIOKafkaConsumer:
        consumer = super()._create_worker_consumer(transport)
        consumer._fetch_max_wait_ms = FETCH_MAX_WAIT_MS  # what AIOKafkaConsumer.start() gives its Fetcher
        # faust reads committed records only with its own exactly-once processing; a Fachverfahren that writes in
        # transactions has taken back what it aborted, and an open transaction's records are not yet its word.
        consumer._isolation_level = "read_committed"  # also given to the Fetcher by start()
        return consumer

    async def _fetch_records(
        self,
        consumer: aiokafka.AIOKafkaConsumer,
        active_partitions: set[Any],
        timeout: float | None = None,  # noqa: ASYNC109 - faust's signature
        max_records: int | None = None,
    ) -> Any:
        """faust's fetch, with the partitions faust does not read now paused in aiokafka too (runs in the consumer's
        thread, where aiokafka's state may be touched)."""
        hold_inactive(consumer, active_partitions)
        self.skipped.before_fetch(positions(consumer))
        records = await super()._fetch_records(consumer, active_partitions, timeout=timeout, max_records=max_records)
        self.skipped.after_fetch(records, positions(consumer))
        self.transactions.observe(fetch_ends(consumer, active_partitions))
        return records


def fetch_ends(consumer: aiokafka.AIOKafkaConsumer, active: set[Any]) -> dict[Any, tuple[int | None, int | None]]:
    """The high watermark and last stable offset of each partition faust reads now, as its last fetch response gave
    them (the consumer's thread)."""
    reading = frozenset(active)  # faust's own set, changed by the app's thread: read once
    return {
        tp: (consumer.highwater(tp), consumer.last_stable_offset(tp)) for tp in consumer.assignment() if tp in reading
    }


def hold_inactive(consumer: Any, active: set[Any]) -> None:
    """Pause in aiokafka the assigned partitions faust does not read now, resume those it reads again.

    faust pauses a partition only in its own books (a table's changelog once recovered, the sources while it
    recovers) and asks aiokafka for the records of the others; aiokafka goes on fetching the paused ones. Their
    records stay in its buffer, and while a partition's buffered records are younger than aiokafka's
    ``prefetch_backoff`` (100 ms) it fetches nothing from that broker: every changelog write would hold the sources
    back for up to 100 ms.
    """
    reading = frozenset(active)  # faust's own set, changed by the app's thread: read once
    paused = consumer.paused()
    # Both taken from aiokafka's own sets: faust's TPs compare equal, but aiokafka's pause and resume refuse them.
    hold = {tp for tp in consumer.assignment() if tp not in reading and tp not in paused}
    release = {tp for tp in paused if tp in reading}
    if hold:
        consumer.pause(*hold)
    if release:
        consumer.resume(*release)


class AckedOffsets(list[int]):
    """A partition's acknowledged offsets; faust sorts them before it looks for the next commit, so sorting is
    where the repeats go."""

    def sort(self, *args: Any, **kwargs: Any) -> None:
        self[:] = sorted(set(self), *args, **kwargs)


class CommittedOffsets(defaultdict[Any, int | None]):
    """The offsets faust believes committed, per partition; within one assignment they only move forward.

    An older value read back from the broker (a seek racing a commit of faust's own) is ignored, or faust would
    never commit that partition again. Revocation removes a partition's entry, so a new assignment starts from the
    broker's value.
    """

    def __init__(self) -> None:
        super().__init__(lambda: None)

    def __setitem__(self, tp: Any, offset: int | None) -> None:
        known = self.get(tp)
        if known is None or (offset is not None and offset > known):
            super().__setitem__(tp, offset)

    def update(self, *args: Any, **kwargs: Any) -> None:
        for tp, offset in dict(*args, **kwargs).items():
            self[tp] = offset


class FaustConsumer(faust_aiokafka.Consumer):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._acked = defaultdict(AckedOffsets)
        self._committed_offset = CommittedOffsets()

    async def _drain_messages(self, fetcher: Any) -> None:
        """faust's fetch loop (``faust.transport.consumer.Consumer._drain_messages``), one race per batch."""
        consumer_should_stop = self._stopped.is_set
        fetcher_should_stop = fetcher._stopped.is_set
        try:
            while not (consumer_should_stop() or fetcher_should_stop()):
                self.diag.set_flag(CONSUMER_FETCHING)
                # The fetch itself is not raced, as in faust: it waits while the flow is stopped (a recovery resumes
                # it to read the changelogs), and a fetch given up half-way would lose the records it brought.
                batch = [record async for record in self.getmany(timeout=1.0)]
                await self.sleep(0)  # getmany can return at once, again and again
                if batch and not self.should_stop:
                    await self.wait_first(self._hand_off(batch), self.suspend_flow.wait())
                self.diag.unset_flag(CONSUMER_FETCHING)
        except self.consumer_stopped_errors:
            if self.transport.app.should_stop:
                return
            raise
        except asyncio.CancelledError:
            if self.transport.app.should_stop:
                return
            raise
        finally:
            self.diag.unset_flag(CONSUMER_FETCHING)

    async def getmany(self, timeout: float) -> AsyncIterator[tuple[Any, Any]]:  # noqa: ASYNC109 - faust's signature
        """faust's ``Consumer.getmany``, except that a record it cannot deliver is fetched again (module docstring)."""
        records, _ = await self._wait_next_records(timeout)  # the active partitions from before the wait
        generation_id = self.app.consumer_generation_id
        if records is None or self.should_stop:
            return
        if not self.flow_active:  # as faust: the flow stopped while fetching; back to the committed offsets
            await self._seek_back_to_committed()
            return
        active = self._get_active_partitions() | self._buffered_partitions
        undelivered: dict[Any, int] = {}
        for tp, record in self.scheduler.iterate(records):
            if tp in undelivered:
                continue  # nothing after an undelivered record, or the partition would be out of order
            if tp not in active or not self.flow_active or self.app.consumer_generation_id != generation_id:
                undelivered[tp] = record.offset
                continue
            self.app.monitor.track_tp_end_offset(tp, self.highwater(tp))
            yield tp, self._to_message(tp, record)
        await self._fetch_again(undelivered)

    async def _fetch_again(self, first_undelivered: dict[Any, int]) -> None:
        """Move each partition's fetch position back to its first undelivered record, if it is still ours."""
        if not first_undelivered:
            return  # the common case: no need to ask the consumer thread for the assignment on every fetch
        assigned = self.assignment()
        for tp, offset in first_undelivered.items():
            if tp not in assigned:
                continue  # a new owner starts from the committed offset
            try:
                await self._seek(tp, offset)
            except aiokafka.errors.IllegalStateError:
                continue  # revoked meanwhile: the same

    async def _seek_back_to_committed(self) -> None:
        try:
            await self.perform_seek()
        except Exception as error:  # as faust: the next assignment seeks again
            self.log.warning("exception performing seek when flow not active %r", error)

    async def _hand_off(self, batch: list[tuple[Any, Any]]) -> None:
        """Pass each record to the agents, as faust does, marking it read once handed off.

        If the flow stops mid-batch, the rest is left unread: the rebalance that stopped it revokes every
        partition, and the next assignment starts again from the committed offsets.
        """
        callback = self.callback
        read_offset = self._read_offset
        acks_enabled_for = self.app.topics.acks_enabled_for
        since_yield = 0
        for tp, message in batch:
            since_yield += 1
            if since_yield > YIELD_EVERY:
                await asyncio.sleep(0)
                since_yield = 0
            offset = message.offset
            last_read = read_offset[tp]
            if last_read is not None and offset < last_read:
                continue  # read already (faust's "DROPPED MESSAGE")
            if last_read is not None and offset - last_read > 1 and acks_enabled_for(message.topic):
                await self._add_gap(tp, last_read + 1, offset)  # compacted or transactional topics skip offsets
            if self._commit_every is not None and self._n_acked >= self._commit_every:
                self._n_acked = 0
                await self.commit()
            await callback(message)
            read_offset[tp] = offset

    async def perform_seek(self) -> None:
        """faust's seek to the committed offsets, except that no read offset moves back (module docstring)."""
        seeked = await self.seek_to_committed()
        read_offset = self._read_offset
        for tp, offset in seeked.items():
            committed = offset if offset is not None and offset >= 0 else None
            handed_off = read_offset.get(tp)
            if handed_off is None or (committed is not None and committed > handed_off):
                read_offset[tp] = committed
        self._committed_offset.update(
            {ensure_TP(tp): offset if offset else None for tp, offset in seeked.items() if offset is not None}
        )

    def _new_consumer_thread(self) -> faust_aiokafka.AIOKafkaConsumerThread:
        return _ConsumerThread(self, loop=self.loop, beacon=self.beacon)

    @property
    def _skipped(self) -> SkippedTails | None:
        """The consumer thread's skipped tails (none before faust has made its thread)."""
        thread = self._thread
        return thread.skipped if isinstance(thread, _ConsumerThread) else None

    def open_transactions(self) -> dict[Any, tuple[int, float]]:
        """Per source partition, the records an open transaction holds back and for how long
        (:meth:`streams.obs.OpenTransactions.held`); none before faust has made its thread."""
        thread = self._thread
        return thread.transactions.held() if isinstance(thread, _ConsumerThread) else {}

    def _filter_tps_with_pending_acks(self, topics: Any = None) -> Iterator[Any]:
        """faust's partitions with acknowledged records, and those with a skipped tail: a partition whose only
        news since the last commit are markers and aborted records is committed past them too."""
        pending = list(super()._filter_tps_with_pending_acks(topics))
        if self._skipped is not None:
            acks_enabled_for = self.app.topics.acks_enabled_for  # the agents' topics, not the changelogs
            for tp in map(ensure_TP, self._skipped.partitions()):
                wanted = topics is None or tp in topics or tp.topic in topics
                if tp not in pending and wanted and acks_enabled_for(tp.topic):
                    pending.append(tp)
        return iter(pending)

    def _new_offset(self, tp: Any) -> int | None:
        """faust's next offset to commit, or past a skipped tail (:class:`SkippedTails`) once everything before it
        is acknowledged."""
        offset = super()._new_offset(tp)
        skipped = self._skipped
        if skipped is None:
            return offset
        tail = skipped.tail(tp)
        if tail is not None:
            handed, position = tail
            # committed past ``handed`` already: an earlier tail's position, the tail grown by a later fetch
            reached = offset if offset is not None else self._committed_offset.get(tp)
            if reached is not None and handed <= reached < position:
                return position
        untouched = skipped.untouched_position(tp)
        if offset is None and untouched is not None:
            return untouched  # committed only if past the committed offset (faust's _should_commit)
        return offset


class _Producer(faust_aiokafka.Producer):
    """faust's producer, idempotent: a retried produce (a lost answer, a broker's failover) is written once.

    faust passes ``enable_idempotence`` to aiokafka only in exactly-once mode, which needs transactions; there is
    no setting for it. Idempotence needs ``acks=all``, as the app sets (``producer_acks=-1``).
    """

    def _settings_extra(self) -> Mapping[str, Any]:
        return {**super()._settings_extra(), "acks": "all", "enable_idempotence": True}


class Transport(faust_aiokafka.Transport):
    Consumer = FaustConsumer
    Producer = _Producer


class KeepQueuesOnResume(FlowControlEvent):
    """faust's flow control, except that resuming keeps the agents' queues, and a stopping app never resumes.

    Records fetched during the seek at the end of a Table recovery are in the queues when faust resumes; emptying
    them there lost them (faust counted their offsets as a gap, done). Revocation still empties the queues,
    explicitly, before the partitions can move to another worker. A stop during that seek must not be undone by
    the resume that follows it, or the stopping worker processes a partition's later records before earlier ones.
    """

    def __init__(self, *, stopping: Callable[[], bool], loop: asyncio.AbstractEventLoop | None = None) -> None:
        super().__init__(loop=loop)
        self._stopping = stopping

    def resume(self) -> None:
        if self._stopping():
            return
        self._suspend.clear()
        self._resume.set()


class RueckkanalApp(faust.App):
    """faust's App with this module's Kafka transport and flow control."""

    def _new_transport(self) -> Any:
        return Transport(self.conf.broker_consumer, self)

    @cached_property
    def flow_control(self) -> FlowControlEvent:
        return KeepQueuesOnResume(stopping=lambda: self.should_stop, loop=self.loop)


# -- the consumer as /readyz, /healthz and the lag gauges see it ----------------------------------------------------

LAG_INTERVAL_S = 10.0
log = structlog.get_logger("rueckkanal.web")


class FaustConsumerState:
    """faust's consumer as seen through its rebalance signals, its lag and its open transactions."""

    def __init__(self, app: faust.App, events_topic: str, sources: Mapping[str, str] | None = None) -> None:
        self.app = app
        self.events_topic = events_topic
        self.sources = dict(sources or {})  # source topic → Fachverfahren
        self.joined = False
        self.rebalancing = False
        self.lag: dict[str, int] = {}  # stage → lag at the last sample

    async def on_assigned(self, sender: Any, *args: Any, signal: Any = None, **kwargs: Any) -> None:
        # Logged before the flags flip, so that no /readyz 200 can precede this line.
        log.info("partitions assigned", stage="ingest", active_partitions=self.active_partitions())
        self.joined = True
        self.rebalancing = False

    async def on_revoked(self, sender: Any, *args: Any, signal: Any = None, **kwargs: Any) -> None:
        self.rebalancing = True

    def active_partitions(self) -> int:
        return len(self.app.assignor.assigned_actives())

    def stage_of(self, topic: str) -> str | None:
        """lifecycle for the events topic, ingest for a Fachverfahren topic, None for faust's own topics."""
        if topic == self.events_topic:
            return "lifecycle"
        if topic.endswith("-changelog") or "__assignor" in topic:
            return None
        return "ingest"

    async def sample(self) -> None:
        """Set assigned partitions and lag per stage from the broker's end offsets and our committed offsets."""
        if not self.app.agents or not self.joined or self.rebalancing:
            return
        consumer: Any = self.app.consumer
        by_stage: dict[str, list[Any]] = {"ingest": [], "lifecycle": []}
        for tp in self.app.assignor.assigned_actives():
            stage = self.stage_of(tp.topic)
            if stage is not None:
                by_stage[stage].append(tp)
        tps = [tp for partitions in by_stage.values() for tp in partitions]
        ends = await consumer.highwaters(*tps) if tps else {}
        unknown = [tp for tp in tps if consumer._committed_offset.get(tp) is None]
        earliest = await consumer.earliest_offsets(*unknown) if unknown else {}
        for stage, partitions in by_stage.items():
            positions = {tp: _or_none(consumer._committed_offset.get(tp), earliest.get(tp)) for tp in partitions}
            self.lag[stage] = record_lag(stage, "", {tp: ends.get(tp) for tp in partitions}, positions)
        record_open_transactions(self.sources, consumer.open_transactions())

    def work_waiting(self) -> bool:
        """Ingest has work: records behind the end of its assigned partitions at the last sample."""
        if not self.app.agents or not self.joined or self.rebalancing or self.active_partitions() == 0:
            return False
        return sum(self.lag.values()) > 0

    def problem(self) -> str | None:
        if not self.app.agents:
            return None  # nothing consumed through faust in this role (delivery reports its own consumer)
        if not self.joined:
            return "consumer has not joined its group yet"
        if self.rebalancing:
            return "consumer group is rebalancing"
        if self.active_partitions() == 0:
            return "no partitions assigned (more workers than partitions?)"
        return None


def track_faust_consumer(
    app: faust.App,
    readiness: Readiness,
    progress: Progress,
    events_topic: str,
    sources: Mapping[str, str] | None = None,
) -> None:
    """Readiness, lag and open transactions of the ingest's faust consumer; ``sources`` maps each source topic to
    its Fachverfahren."""
    state = FaustConsumerState(app, events_topic, sources)
    progress.watch("ingest", state.work_waiting)
    app.on_partitions_assigned.connect(cast(Any, state.on_assigned))  # mode types handlers too narrowly
    app.on_partitions_revoked.connect(cast(Any, state.on_revoked))
    readiness.add_check("faust.partitions", state.problem)

    async def sample_lag() -> None:
        try:
            await state.sample()
        except Exception as exc:  # a failed sample leaves the last values; the next one tries again
            log.warning("consumer lag sample failed", error=type(exc).__name__)

    app.timer(LAG_INTERVAL_S, name="rueckkanal_consumer_lag")(sample_lag)


def _or_none(value: int | None, default: int | None) -> int | None:
    return default if value is None else value


# -- the lifecycle Table and its local store ------------------------------------------------------------------------

MB = 1024 * 1024
state_log = structlog.get_logger("rueckkanal.state")


def rocksdb_options(block_cache_mb: int, write_buffer_mb: int) -> dict[str, Any]:
    """faust's RocksDB options for one partition's database (faust's defaults: a 2 GiB block cache and three
    64 MiB memtables, per partition). The store keeps its data on disk; RAM holds the memtables being filled, the
    block cache and the index and filter blocks."""
    return {
        "block_cache_size": block_cache_mb * MB,
        "write_buffer_size": write_buffer_mb * MB,
        "max_write_buffer_number": 2,
        "target_file_size_base": 4 * write_buffer_mb * MB,
        "max_open_files": 256,
    }


class LifecycleTable(faust.Table[str, Any]):
    """faust's Table that counts the changelog records its recovery reads, and says so once it is done.

    ``recovered_records`` is the number of changelog records applied to actively assigned partitions by the last
    recovery: the whole changelog with the memory store, only its tail with a RocksDB store that was intact.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._applied: defaultdict[Any, int] = defaultdict(int)  # changelog partition → records since the last end
        self._recovery_started: float | None = None
        self.recovered_records = 0

    async def on_rebalance(self, assigned: Any, revoked: Any, newly_assigned: Any, generation_id: int = 0) -> None:
        self._recovery_started = asyncio.get_running_loop().time()
        self._applied.clear()  # standbys applied before this rebalance are not this recovery's reads
        await super().on_rebalance(assigned, revoked, newly_assigned, generation_id)

    def apply_changelog_batch(self, batch: Any) -> None:
        for event in batch:
            self._applied[event.message.tp] += 1
        super().apply_changelog_batch(batch)

    async def on_recovery_completed(self, active_tps: Any, standby_tps: Any) -> None:
        await super().on_recovery_completed(active_tps, standby_tps)
        mine = {tp for tp in active_tps if tp.topic == self.changelog_topic.get_topic_name()}
        self.recovered_records = sum(n for tp, n in self._applied.items() if tp in mine)
        standby = sum(n for tp, n in self._applied.items() if tp not in mine)
        started, self._recovery_started = self._recovery_started, None
        seconds = asyncio.get_running_loop().time() - started if started is not None else 0.0
        self._applied.clear()
        state_log.info(
            "lifecycle state recovered",
            records_read=self.recovered_records,
            standby_records_read=standby,
            active_partitions=len(mine),
            seconds=round(seconds, 3),
            store=self.data.__class__.__module__.rsplit(".", 1)[-1],
        )


class LocalState:
    """The lifecycle Table's local store, read and written by partition, never through faust's ``current_event``.

    faust's stores find a key's partition through the event being processed; the ingest processes batches of
    records from many partitions and writes the changelog itself, so it names the partition. The rule that keeps
    recovery exact: a partition's state changes and the changelog offset they reached are written together (one
    RocksDB write batch), and only after the broker has acknowledged those changelog records, as faust's own
    ``table[key] = value`` does through ``set_persisted_offset``. A crash before that write leaves an older offset,
    so the next recovery reads the records again; it can never record an offset whose records it lacks.

    On the memory store the changes go to its dict (and its key → partition index, so that a revoked partition's
    keys are dropped as faust drops its own); it has no offsets: every start reads the whole changelog.
    """

    def __init__(self, table: LifecycleTable) -> None:
        self.table = table

    def recovering(self) -> bool:
        """Whether the group is rebalancing or the Table recovering: the local state is not complete then."""
        app: Any = self.table.app
        return bool(app.rebalancing or app.tables.recovery.in_recovery)

    @property
    def _store(self) -> Any:
        return self.table.data

    @property
    def persistent(self) -> bool:
        return bool(isinstance(self._store, faust_rocksdb.Store))

    def get(self, partition: int, key: str, key_bytes: bytes) -> Any | None:
        """The stored value of ``key`` on ``partition`` (the decoded JSON), or None."""
        store = self._store
        if not self.persistent:
            return store.data.get(key)
        raw = store._db_for_partition(partition).get(key_bytes)
        return None if raw is None else store._decode_value(raw)

    def apply(self, partition: int, changes: Sequence[Change], offset: int) -> None:
        """Write ``changes`` (a value of None deletes) and the changelog ``offset`` they reached, at once."""
        store = self._store
        if not self.persistent:
            for change in changes:
                if change.value is None:
                    store.data.pop(change.key, None)
                    store._key_partition.pop(change.key, None)
                else:
                    store.data[change.key] = change.value
                    store._key_partition[change.key] = partition
            return
        batch = rocksdict.WriteBatch(raw_mode=True)
        for change in changes:
            if change.value_bytes is None:
                batch.delete(change.key_bytes)
            else:
                batch.put(change.key_bytes, change.value_bytes)
        batch.put(store.offset_key, str(offset).encode())
        store._db_for_partition(partition).write(batch)

    def scan(self, partition: int, after: bytes | None, limit: int) -> list[tuple[bytes, str, Any]]:
        """Up to ``limit`` entries of ``partition`` after the cursor ``after`` (None: from the first), in key order,
        as (cursor, key, decoded value)."""
        store = self._store
        if not self.persistent:
            keys = (k for k, p in store._key_partition.items() if p == partition)
            page = heapq.nsmallest(limit, (k.encode() for k in keys if after is None or k.encode() > after))
            return [(c, c.decode(), store.data.get(c.decode())) for c in page]
        entries: list[tuple[bytes, str, Any]] = []
        it = store._db_for_partition(partition).iter()
        if after is None:
            it.seek_to_first()
        else:
            it.seek(after)
            if it.valid() and it.key() == after:
                it.next()
        while it.valid() and len(entries) < limit:
            key_bytes = it.key()
            if key_bytes != store.offset_key:
                entries.append((key_bytes, store._decode_key(key_bytes), store._decode_value(it.value())))
            it.next()
        return entries


@dataclass(frozen=True, slots=True)
class Change:
    """One key's new value in the local store, decoded and as its changelog record has it; None deletes it."""

    key: str
    key_bytes: bytes
    value: Any | None
    value_bytes: bytes | None
