"""faust's aiokafka transport: a 100 ms fetch wait, commits that survive the end of a recovery and never pass an
unprocessed record, fetched records that are never dropped, a cheaper hand-off.

**Fetch wait.** faust builds its consumer with ``fetch_max_wait_ms=1500`` and no way to set it. aiokafka keeps one
fetch request in flight per broker, leaving out partitions that still have buffered records; when that request
holds only partitions without new data, the broker parks it for the full wait, and records arriving meanwhile on
the other partitions wait too. At a steady 500 events/s this showed as a median of ~2.8 s from source to portal in
two of three runs (1.2 s and 1.6 s in the two faust hops, the worker at half its CPU), and 150 ms in every run with
a 100 ms wait (docs/benchmarks.md). An idle consumer now asks the broker ten times a second: nothing for Kafka.

**Commits.** faust commits up to the first break in the sorted list of acknowledged offsets of a partition, and
a repeated offset is such a break. Offsets repeat when a record is read twice, as at the end of a Table recovery,
where faust seeks back to the committed offsets while it is still delivering a batch fetched before the seek.
The partition then
never commits again until the next rebalance (faust-streaming #596): lag grows, and a restart reprocesses the
whole backlog. Seen in the ingest crash test after SIGKILL restarts whose recovery overlapped a fetch.

**Seek at the end of a recovery.** faust seeks every partition to its committed offset and then sets the
partition's read offset to it. The fetcher is running by then, so records fetched during the seek's round-trip are
already in the agent queues; moving the read offset back under them made the next record look like a gap, and
faust counts a gap as done. A stop right after (SIGTERM, scale-in) emptied the queues and committed past records
never processed: 221–1,175 of 10,000 events lost in the scale-out test, 3 runs of 3 on a slower machine. The read
offset now only moves forward within an assignment; a re-fetched record is dropped as read, as faust does.

**Records fetched but not delivered.** faust's ``getmany`` drops a fetched record when the flow has stopped, the
generation has changed, or its partition was not active when the fetch began, and aiokafka's position is past it
by then. The next record of that partition then looks like a gap, and faust counts a gap as done. A partition
resumed while a fetch was waiting (the end of a recovery) lost exactly that way: records 2114–2150 of a source
partition, produced 7 ms before the resume, were fetched, dropped, and committed past when SIGTERM followed (scale-out
test, 1 run in about 240). An undelivered record is now fetched again: its partition's position goes back to it.
A partition resumed during the wait counts as active.

**Hand-off.** faust hands every fetched record to its agents inside mode's ``wait_first``, racing the hand-off
against a stop of the flow: four tasks and an ``asyncio.wait`` per record and hop, about 26 µs, and a fifth of the
ingest worker's CPU with the event-loop work they cause (docs/benchmarks.md). The race is still needed, since a
hand-off blocked on a full agent queue must give way when a rebalance stops the flow, but once per fetched batch
is enough. The fetch stays outside the race: raced, it was given up whenever the flow was stopped, and a recovery
never saw its changelog records (caught by the scale-out test).

**Records the stream skips** (not changed here; why it holds). faust's stream acknowledges a record it takes from an
agent queue while the flow is suspended or that is of an older generation (``Stream._c_aiter``), which would
commit past it. No such record reaches a queue in this worker: faust suspends the flow, pauses the partitions and
empties the queues in one step, with no ``await`` between; a hand-off blocked on a full queue has its ``put``
cancelled by that emptying; and records of an older generation are not handed off (``getmany``). A hand-off that
passed faust's flow check could still enqueue a record after the emptying only if it then waited for faust's
producer buffer (``wait_until_producer_ebb``), and nothing here fills that buffer: both stages produce directly
and write the Table's changelog themselves. Keep it so: ``send_soon`` or a Table write through ``table[key]``
would open that window.
"""

from __future__ import annotations

import asyncio
from collections import defaultdict
from collections.abc import AsyncIterator, Callable, Mapping
from typing import Any, cast

import aiokafka
import aiokafka.errors
import faust
import structlog
from faust.transport.consumer import CONSUMER_FETCHING, ensure_TP
from faust.transport.drivers import aiokafka as faust_aiokafka
from mode.utils.objects import cached_property
from mode.utils.queues import FlowControlEvent

from streams.kafka_records import install_record_reader
from streams.obs import Progress, Readiness, record_lag

FETCH_MAX_WAIT_MS = 100
YIELD_EVERY = 100  # records handed off between two turns of the event loop, as in faust


install_record_reader()  # faust's consumers build theirs with aiokafka directly


# -- faust's transport ----------------------------------------------------------------------------------------------


class _ConsumerThread(faust_aiokafka.AIOKafkaConsumerThread):
    def _create_worker_consumer(self, transport: Any) -> aiokafka.AIOKafkaConsumer:
        consumer = super()._create_worker_consumer(transport)
        consumer._fetch_max_wait_ms = FETCH_MAX_WAIT_MS  # what AIOKafkaConsumer.start() gives its Fetcher
        return consumer


class AckedOffsets(list[int]):
    """A partition's acknowledged offsets; faust sorts them before it looks for the next commit, so sorting is
    where the repeats go."""

    def sort(self, *args: Any, **kwargs: Any) -> None:
        self[:] = sorted(set(self), *args, **kwargs)


class CommittedOffsets(defaultdict[Any, int | None]):
    """The offsets faust believes committed, per partition; within one assignment they only move forward.

    faust reads them back from the broker when it seeks at the end of a recovery. A commit of its own that lands
    while that read is in flight is then overwritten with the older value, and faust, seeing acknowledgements start
    more than one offset above the committed one, never commits that partition again. Seen in 2 of about 20
    crash-test restarts once the two fixes above were in; under instrumentation: faust committed 472 during the
    seek, the seek then set 385, and every later commit of the partition was refused. Revocation removes a
    partition's entry, so a new assignment starts from the broker's value.
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


class _Consumer(faust_aiokafka.Consumer):
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
            if last_read and offset - last_read > 1 and acks_enabled_for(message.topic):
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


class _Producer(faust_aiokafka.Producer):
    """faust's producer, idempotent: a retried produce (a lost answer, a broker's failover) is written once.

    faust passes ``enable_idempotence`` to aiokafka only in exactly-once mode, which needs transactions; there is
    no setting for it. Idempotence needs ``acks=all``, as the app sets (``producer_acks=-1``).
    """

    def _settings_extra(self) -> Mapping[str, Any]:
        return {**super()._settings_extra(), "acks": "all", "enable_idempotence": True}


class Transport(faust_aiokafka.Transport):
    Consumer = _Consumer
    Producer = _Producer


class KeepQueuesOnResume(FlowControlEvent):
    """faust's flow control, except that resuming no longer empties the agents' queues, nor resumes a stopping app.

    At the end of a Table recovery faust resumes the stream partitions, then seeks them to their committed offsets
    (a round-trip to the broker), then resumes flow control, which empties every agent queue. Records fetched
    during the seek are in those queues by then. As faust is still delivering the batch it fetched before the seek,
    it also takes the offsets up to that batch for a gap in the log and counts them as done, so the emptied records
    were lost without a trace: single events, after SIGKILL restarts in the ingest crash test (faust-streaming
    #596, #606). Left in the queue they are processed like any other record. Revocation still empties the queues,
    explicitly, before the partitions can move to another worker.

    A stop (SIGTERM) that arrives during that seek suspends the flow and empties the queues first; the recovery then
    resumed the flow when its seek returned, and the fetcher handed the agents the records after the emptied ones.
    The stopping worker processed them out of order (offsets 1411–1416, then 1663 of one partition, in the scale-out
    test): a Vorgang's next status came before its previous one and was refused as an illegal transition. Once the
    app is stopping, nothing resumes the flow.
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
    """faust's consumer as seen through its rebalance signals, and its lag."""

    def __init__(self, app: faust.App, events_topic: str) -> None:
        self.app = app
        self.events_topic = events_topic
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


def track_faust_consumer(app: faust.App, readiness: Readiness, progress: Progress, events_topic: str) -> None:
    state = FaustConsumerState(app, events_topic)
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
