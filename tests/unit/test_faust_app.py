"""The worker's faust app: its own settings only, a 100 ms fetch wait, commits that go on after offsets were read
twice, and agent queues kept when flow control resumes."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import faust
import pytest
from aiokafka import AIOKafkaConsumer, TopicPartition
from faust.types import TP
from faust.utils.functional import consecutive_numbers
from mode.utils.queues import FlowControlQueue

from rueckkanal.settings import Settings
from streams.app import create_pipeline
from streams.faust_engine import (
    FETCH_MAX_WAIT_MS,
    AckedOffsets,
    CommittedOffsets,
    FaustConsumer,
    KeepQueuesOnResume,
    SkippedTails,
    Transport,
    hold_inactive,
)


def _consumer(tmp_path: Path) -> FaustConsumer:
    """The pipeline app's consumer, as this project's faust consumer (its bookkeeping is what the tests read)."""
    return _as_ours(create_pipeline(Settings(data_dir=tmp_path)).app.consumer)


def _as_ours(consumer: object) -> FaustConsumer:
    assert isinstance(consumer, FaustConsumer)
    return consumer


async def test_the_pipeline_s_consumer_waits_at_most_100_ms_for_a_fetch(tmp_path: Path) -> None:
    app = create_pipeline(Settings(data_dir=tmp_path)).app
    assert isinstance(app.transport, Transport)
    thread = _as_ours(app.consumer)._thread
    consumer = thread._create_worker_consumer(app.transport)
    try:
        assert isinstance(consumer, AIOKafkaConsumer)
        assert consumer._fetch_max_wait_ms == FETCH_MAX_WAIT_MS == 100
        # a Fachverfahren's aborted transactions are not read (faust reads them unless it runs exactly-once)
        assert consumer._isolation_level == "read_committed"
    finally:
        await consumer.stop()


def test_offsets_read_twice_do_not_stop_the_partition_s_commits(tmp_path: Path) -> None:
    consumer = _consumer(tmp_path)
    tp = TP("rk.events", 0)
    consumer._committed_offset[tp] = 10
    acked = consumer._acked[tp]
    assert isinstance(acked, AckedOffsets)
    acked.extend([10, 11, 12, 11, 12, 13])  # 11 and 12 read and acknowledged twice, around a seek
    assert consumer._new_offset(tp) == 14
    consumer._committed_offset[tp] = 14  # what a successful commit records
    acked.extend([14, 15])
    assert consumer._new_offset(tp) == 16


def test_an_older_committed_offset_read_back_does_not_stop_the_partition_s_commits(tmp_path: Path) -> None:
    consumer = _consumer(tmp_path)
    tp = TP("fv.hundesteuer.status", 0)
    committed = consumer._committed_offset
    assert isinstance(committed, CommittedOffsets)
    committed.update({tp: 1700})  # our own commit lands...
    committed.update({tp: 1625})  # ...and then the seek's read of the broker from before it
    assert committed[tp] == 1700
    consumer._acked[tp].extend([1700, 1701])
    assert consumer._new_offset(tp) == 1702  # with 1625, faust returns None for ever
    committed.pop(tp)  # revocation: the next assignment starts from the broker's value
    committed.update({tp: 10})
    assert committed[tp] == 10


@pytest.mark.upstream_canary
def test_faust_s_own_list_stops_at_the_first_repeat() -> None:
    acked = [10, 11, 12, 11, 12, 13]
    acked.sort()
    assert next(consecutive_numbers(acked)) == [10, 11]  # commits 12, and 12 again, for ever


def test_faust_s_unprefixed_environment_does_not_override_the_settings(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("WEB_PORT", "tcp://10.0.0.7:80")  # what Kubernetes sets for a Service named "web"
    monkeypatch.setenv("BROKER_COMMIT_INTERVAL", "9")
    monkeypatch.setenv("APP_DATADIR", "/elsewhere")
    settings = Settings(data_dir=tmp_path)
    conf = create_pipeline(settings).app.conf
    assert conf.web_port == settings.web.port
    assert conf.broker_commit_interval == 0.5
    assert str(conf.datadir).startswith(str(tmp_path))


def _agent_queue(app: faust.App) -> FlowControlQueue[str]:
    # What faust gives every agent channel (faust/channels.py).
    return app.FlowControlQueue(maxsize=10, clear_on_resume=True)


@pytest.mark.upstream_canary
def test_faust_itself_empties_agent_queues_on_resume() -> None:
    app = faust.App("stock", broker="kafka://127.0.0.1:1")
    queue = _agent_queue(app)
    app.flow_control.resume()
    queue.put_nowait("fetched before the recovery seek")
    app.flow_control.resume()
    assert queue.empty()


def test_the_pipeline_keeps_queued_records_on_resume_and_empties_them_on_clear(tmp_path: Path) -> None:
    app = create_pipeline(Settings(data_dir=tmp_path)).app
    assert isinstance(app.flow_control, KeepQueuesOnResume)
    queue = _agent_queue(app)
    app.flow_control.resume()
    queue.put_nowait("fetched before the recovery seek")
    app.flow_control.suspend()
    app.flow_control.resume()
    assert queue.qsize() == 1
    assert app.flow_control.is_active()
    app.flow_control.clear()  # what revocation does, before partitions can move
    assert queue.empty()


def test_a_stopping_pipeline_does_not_resume_the_flow(tmp_path: Path) -> None:
    """faust resumes the flow when the seek at the end of a recovery returns; a SIGTERM during that seek has
    suspended the flow and emptied the queues, and resuming would let records after the emptied ones through."""
    app = create_pipeline(Settings(data_dir=tmp_path)).app
    app.flow_control.resume()
    app.flow_control.suspend()
    app._stopped.set()  # what mode's Service.stop does before on_stop
    app.flow_control.resume()  # Recovery.on_recovery_completed after its seek
    assert not app.flow_control.is_active()


class _Record:
    def __init__(self, topic: str, partition: int, offset: int) -> None:
        self.topic, self.partition, self.offset = topic, partition, offset


async def _fetched(tp: TP, offsets: list[int]) -> AsyncIterator[tuple[TP, _Record]]:
    for offset in offsets:
        yield tp, _Record(tp.topic, tp.partition, offset)


async def test_records_fetched_for_a_partition_not_active_are_fetched_again_not_dropped(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """faust drops them after aiokafka has moved past them; the next record then looks like a gap, counted as done.
    A partition resumed while the fetch waited (the end of a recovery) is active: its records are delivered."""
    app = create_pipeline(Settings(data_dir=tmp_path)).app
    consumer = _as_ours(app.consumer)
    paused, resumed, revoked = TP("fv.hundesteuer.status", 3), TP("rk.events", 1), TP("rk.events", 2)
    fetched = {
        tp: [_Record(tp.topic, tp.partition, offset) for offset in (2114, 2115, 2116)]
        for tp in (paused, resumed, revoked)
    }
    seeks: list[tuple[TP, int]] = []

    async def wait_next_records(timeout: float) -> tuple[dict[TP, list[_Record]], set[TP]]:  # noqa: ASYNC109
        return fetched, {paused}  # what was active when the fetch began

    async def seek(tp: TP, offset: int) -> None:
        seeks.append((tp, offset))

    monkeypatch.setattr(consumer, "_wait_next_records", wait_next_records)
    monkeypatch.setattr(consumer, "_get_active_partitions", lambda: {resumed})
    monkeypatch.setattr(consumer, "assignment", lambda: {paused, resumed})
    monkeypatch.setattr(consumer, "_seek", seek)
    monkeypatch.setattr(consumer, "highwater", lambda tp: 3000)
    monkeypatch.setattr(consumer, "_to_message", lambda tp, record: record)
    monkeypatch.setattr(consumer, "flow_active", True)
    delivered = [(tp, record.offset) async for tp, record in consumer.getmany(timeout=1.0)]
    assert delivered == [(resumed, 2114), (resumed, 2115), (resumed, 2116)]
    assert seeks == [(paused, 2114)]  # the revoked partition's next owner starts from the committed offset


async def test_the_hand_off_passes_records_in_order_skips_re_reads_and_notes_gaps(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    app = create_pipeline(Settings(data_dir=tmp_path)).app
    consumer = _as_ours(app.consumer)
    tp = TP("fv.hundesteuer.status", 3)
    app.topics._acking_topics.add(tp.topic)  # type: ignore[attr-defined]  # an agent's topic: acks enabled
    handed: list[int] = []

    async def agents(message: _Record) -> None:
        handed.append(message.offset)

    monkeypatch.setattr(consumer, "callback", agents)
    consumer._read_offset[tp] = 4
    await consumer._hand_off([(tp, _Record(tp.topic, tp.partition, offset)) for offset in (5, 6, 3, 9)])
    assert handed == [5, 6, 9]  # 3 was read before a seek back: faust drops it too
    assert consumer._read_offset[tp] == 9
    # 7 and 8 count as done, as in faust; its interval ends with 9, the record that revealed the gap, and is merged
    # into the acknowledged offsets only once 9 itself is acknowledged.
    gap = consumer._gap[tp]
    assert [(interval.begin, interval.end) for interval in gap] == [(7, 10)]


async def test_the_seek_after_a_recovery_does_not_move_read_offsets_back_under_queued_records(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Records fetched during the seek's round-trip are queued already; moving the read offset back to the committed
    offset made the next record look like a gap, counted as done, and a stop then committed past them unprocessed."""
    app = create_pipeline(Settings(data_dir=tmp_path)).app
    consumer = _as_ours(app.consumer)
    queued, fresh, behind = TP("rk.events", 2), TP("rk.events", 0), TP("rk.events", 1)
    app.topics._acking_topics.add(queued.topic)  # type: ignore[attr-defined]
    handed: list[tuple[int, int]] = []

    async def agents(message: _Record) -> None:
        handed.append((message.partition, message.offset))

    async def seek_to_committed() -> dict[TP, int]:
        # The fetcher runs during the seek's round-trip: 799..1102 of partition 2 reach the agent queues.
        await consumer._hand_off([(queued, _Record(queued.topic, 2, offset)) for offset in range(799, 1103)])
        return {queued: 799, fresh: 10, behind: 50}

    monkeypatch.setattr(consumer, "callback", agents)
    consumer._read_offset[behind] = 40  # someone else committed further meanwhile
    monkeypatch.setattr(consumer, "seek_to_committed", seek_to_committed)
    await consumer.perform_seek()
    assert consumer._read_offset[queued] == 1102  # faust's own seek sets 799
    assert consumer._read_offset[fresh] == 10
    assert consumer._read_offset[behind] == 50
    assert consumer._committed_offset[queued] == 799
    handed.clear()
    # The batch fetched before the seek goes on at 1103; then the fetch from the committed offset re-reads 799...
    await consumer._hand_off(
        [(queued, _Record(queued.topic, 2, offset)) for offset in (1103, 1104, 799, 800, 1104, 1105)]
    )
    assert handed == [(2, 1103), (2, 1104), (2, 1104), (2, 1105)]  # re-reads dropped, one handed twice as in faust
    assert not consumer._gap[queued]
    consumer._acked[queued].extend(range(799, 900))  # processed so far
    assert consumer._new_offset(queued) == 900  # not 1103: the rest is unprocessed


async def test_a_hand_off_blocked_on_a_full_queue_gives_way_when_a_rebalance_stops_the_flow(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    app = create_pipeline(Settings(data_dir=tmp_path)).app
    consumer = _as_ours(app.consumer)
    tp = TP("rk.events", 0)
    handed: list[int] = []
    fetches = 0
    never = asyncio.Event()

    async def agents(message: _Record) -> None:
        handed.append(message.offset)
        if message.offset == 1:
            consumer.stop_flow()  # a rebalance starts while this record waits for room in an agent queue
            await never.wait()

    def getmany(timeout: float) -> AsyncIterator[tuple[TP, _Record]]:
        nonlocal fetches
        fetches += 1
        if fetches == 2:  # the loop came back for more: the blocked hand-off gave way
            fetcher._stopped.set()
        return _fetched(tp, [0, 1, 2])

    fetcher = faust.Service()
    monkeypatch.setattr(consumer, "callback", agents)
    monkeypatch.setattr(consumer, "getmany", getmany)
    await asyncio.wait_for(consumer._drain_messages(fetcher), timeout=10)
    assert fetches == 2
    assert handed == [0, 1, 0, 1]  # 2 was never handed off nor marked read; 1 was abandoned, unacknowledged
    assert consumer._read_offset[tp] == 0


async def test_a_fetch_waiting_for_the_flow_to_resume_is_not_given_up(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    app = create_pipeline(Settings(data_dir=tmp_path)).app
    consumer = _as_ours(app.consumer)
    tp = TP("rk-vorgaenge-changelog", 0)
    consumer.stop_flow()  # a rebalance: faust's fetch waits until the recovery resumes the flow
    resumed = asyncio.Event()
    handed: list[int] = []
    fetches = 0

    async def agents(message: _Record) -> None:
        handed.append(message.offset)

    async def getmany(timeout: float) -> AsyncIterator[tuple[TP, _Record]]:  # noqa: ASYNC109  # faust's signature
        nonlocal fetches
        fetches += 1
        if fetches > 1:
            fetcher._stopped.set()
            return
        await resumed.wait()  # faust's _wait_next_records, waiting for can_resume_flow
        async for record in _fetched(tp, [0, 1, 2]):
            yield record

    fetcher = faust.Service()
    monkeypatch.setattr(consumer, "callback", agents)
    monkeypatch.setattr(consumer, "getmany", getmany)
    drain = asyncio.ensure_future(consumer._drain_messages(fetcher))
    for _ in range(20):
        await asyncio.sleep(0)  # the drain loop runs while the flow is stopped
    consumer.resume_flow()
    resumed.set()
    await asyncio.wait_for(drain, timeout=10)
    assert handed == [0, 1, 2]  # a raced fetch was given up at once, again and again, and these never arrived
    assert fetches == 2


@pytest.mark.upstream_canary
def test_faust_pauses_a_partition_only_in_its_own_books(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    consumer = _consumer(tmp_path)
    asked: list[str] = []

    class _Thread:  # the consumer thread that owns aiokafka's consumer: anything faust asks of it is noted
        def __getattr__(self, name: str) -> Any:
            asked.append(name)
            return lambda *args, **kwargs: None

    changelog = TP("rk-vorgaenge-changelog", 0)
    monkeypatch.setattr(consumer, "_thread", _Thread())
    consumer._active_partitions = {changelog, TP("fv.hundesteuer.status", 0)}
    consumer.pause_partitions([changelog])
    assert changelog not in consumer._get_active_partitions()
    assert asked == []  # aiokafka still fetches it: hold_inactive pauses it there


class _PausableConsumer:
    """aiokafka's consumer as hold_inactive sees it: an assignment and a set of paused partitions, of aiokafka's
    TopicPartition (faust's TP compares equal, but aiokafka's pause and resume refuse it)."""

    def __init__(self, assigned: set[TP]) -> None:
        self.assigned = {TopicPartition(*tp) for tp in assigned}
        self.paused_tps: set[TopicPartition] = set()
        self.calls: list[tuple[str, frozenset[TopicPartition]]] = []

    def assignment(self) -> set[TopicPartition]:
        return set(self.assigned)

    def paused(self) -> set[TopicPartition]:
        return set(self.paused_tps)

    def pause(self, *tps: TopicPartition) -> None:
        assert all(type(tp) is TopicPartition for tp in tps), tps
        self.calls.append(("pause", frozenset(tps)))
        self.paused_tps |= set(tps)

    def resume(self, *tps: TopicPartition) -> None:
        assert all(type(tp) is TopicPartition for tp in tps), tps
        self.calls.append(("resume", frozenset(tps)))
        self.paused_tps -= set(tps)


def test_partitions_faust_does_not_read_are_paused_in_aiokafka_and_resumed_when_it_reads_them_again() -> None:
    sources = {TP("fv.hundesteuer.status", p) for p in range(3)}
    changelog = {TP("rk-vorgaenge-changelog", p) for p in range(3)}
    consumer = _PausableConsumer(sources | changelog)
    hold_inactive(consumer, set(changelog))  # recovering: faust reads only the changelog
    assert consumer.paused_tps == sources
    hold_inactive(consumer, set(sources))  # recovered: faust reads the sources, not the changelog
    assert consumer.paused_tps == changelog
    calls = len(consumer.calls)
    hold_inactive(consumer, set(sources))  # nothing changed: nothing asked of aiokafka
    assert len(consumer.calls) == calls
    consumer.assigned |= {TopicPartition("fv.hundesteuer.status", 3)}  # a new partition, not read yet
    hold_inactive(consumer, set(sources))
    assert consumer.paused_tps == changelog | {TP("fv.hundesteuer.status", 3)}
    hold_inactive(consumer, sources | changelog)  # a standby: its changelog is read again
    assert consumer.paused_tps == {TP("fv.hundesteuer.status", 3)}


async def test_a_gap_after_offset_0_is_noted_too(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """faust tests the last read offset for truth: after a record at offset 0, a transaction's marker and aborted
    records (offsets 1 to 4) were no gap, and the partition's commits stopped at 1 for ever."""
    app = create_pipeline(Settings(data_dir=tmp_path)).app
    consumer = _as_ours(app.consumer)
    tp = TP("fv.hundesteuer.status", 0)
    app.topics._acking_topics.add(tp.topic)  # type: ignore[attr-defined]  # an agent's topic: acks enabled

    async def agents(message: _Record) -> None:
        consumer._acked[tp].append(message.offset)  # processed and acknowledged at once

    monkeypatch.setattr(consumer, "callback", agents)
    await consumer._hand_off([(tp, _Record(tp.topic, tp.partition, offset)) for offset in (0, 5, 6)])
    assert [(interval.begin, interval.end) for interval in consumer._gap[tp]] == [(1, 6)]
    assert consumer._new_offset(tp) == 7


class _Fetched:
    def __init__(self, offset: int) -> None:
        self.offset = offset


def test_skipped_tails_are_the_offsets_after_the_last_record_a_fetch_returned() -> None:
    tp, other = TopicPartition("fv.hundesteuer.status", 0), TopicPartition("fv.hundesteuer.status", 1)
    tails = SkippedTails()
    tails.before_fetch({tp: 10, other: 3})
    tails.after_fetch({tp: [_Fetched(10), _Fetched(11)]}, {tp: 12, other: 3})
    assert tails.tail(tp) is None and tails.tail(other) is None  # nothing skipped
    tails.before_fetch({tp: 12, other: 3})
    tails.after_fetch({}, {tp: 14, other: 5})  # a commit marker after 11; an aborted transaction's 3 and 4
    assert tails.tail(tp) == (12, 14) and tails.tail(other) == (3, 5)
    tails.before_fetch({tp: 14, other: 5})
    tails.after_fetch({tp: [_Fetched(14)]}, {tp: 15, other: 5})  # a record after the marker: no tail any more
    assert tails.tail(tp) is None and tails.tail(other) == (3, 5)
    tails.before_fetch({tp: 9, other: 5})  # a seek back (a rebalance, a record fetched again)
    assert tails.tail(tp) is None
    tails.after_fetch({}, {tp: 9, other: 5})
    assert tails.tail(tp) is None
    tails.before_fetch({tp: 9})  # the other partition was revoked
    assert tails.tail(other) is None


def test_the_commit_passes_a_skipped_tail_only_when_everything_before_it_is_acknowledged(tmp_path: Path) -> None:
    """A transaction's commit marker after the last record: Kafka consumers commit past it (their position);
    committing only up to the last record left the marker as lag for ever and read from it again after a restart."""
    consumer = _consumer(tmp_path)
    thread = consumer._thread
    tp = TP("fv.hundesteuer.status", 0)
    skipped: SkippedTails = thread.skipped  # type: ignore[attr-defined]
    skipped.before_fetch({tp: 20})
    skipped.after_fetch({tp: [_Fetched(20), _Fetched(21), _Fetched(22)]}, {tp: 24})  # the marker at 23
    consumer._committed_offset[tp] = 20
    consumer._acked[tp].extend([20, 21])  # 22 not yet processed
    assert consumer._new_offset(tp) == 22  # not past 22's record
    consumer._committed_offset[tp] = 22
    consumer._acked[tp].append(22)
    assert consumer._new_offset(tp) == 24  # 22 done: past the marker
    consumer._committed_offset[tp] = 24
    assert consumer._new_offset(tp) is None  # nothing new


def test_a_tail_that_grows_after_its_commit_is_committed_past_again(tmp_path: Path) -> None:
    """A transaction aborted after a fetch saw the committed one before it: the first fetch stops at the open
    transaction (its last stable offset), a later one passes the aborted records and their marker."""
    consumer = _consumer(tmp_path)
    tp = TP("fv.hundesteuer.status", 3)
    skipped: SkippedTails = consumer._thread.skipped  # type: ignore[attr-defined]
    skipped.before_fetch({tp: 0})
    skipped.after_fetch({tp: [_Fetched(0), _Fetched(1), _Fetched(2)]}, {tp: 4})  # the commit marker at 3
    consumer._acked[tp].extend([0, 1, 2])
    assert consumer._new_offset(tp) == 4
    consumer._committed_offset[tp] = 4
    skipped.before_fetch({tp: 4})
    skipped.after_fetch({}, {tp: 8})  # 4 to 6 aborted, their marker at 7
    assert list(consumer._filter_tps_with_pending_acks()) == [tp]
    assert consumer._new_offset(tp) == 8  # was None: 4, the committed offset, is past the tail's start
    consumer._committed_offset[tp] = 8
    assert consumer._new_offset(tp) is None


def test_a_partition_whose_only_news_is_an_aborted_transaction_is_committed_past_it(tmp_path: Path) -> None:
    consumer = _consumer(tmp_path)
    skipped: SkippedTails = consumer._thread.skipped  # type: ignore[attr-defined]
    tp, quiet = TopicPartition("fv.hundesteuer.status", 2), TopicPartition("fv.hundesteuer.status", 3)
    consumer.app.topics._acking_topics.add(tp.topic)  # type: ignore[attr-defined]  # an agent's topic
    consumer._committed_offset[TP(tp.topic, tp.partition)] = 30
    skipped.before_fetch({tp: 30, quiet: 7})
    skipped.after_fetch({}, {tp: 33, quiet: 7})  # three aborted records and their marker; nothing on the other
    pending = list(consumer._filter_tps_with_pending_acks())
    assert pending == [TP(tp.topic, tp.partition), TP(quiet.topic, quiet.partition)]
    assert consumer._new_offset(pending[0]) == 33
    # nothing of the quiet partition was fetched in this assignment: its position is safe to commit (once: faust's
    # _should_commit refuses an offset not past the committed one)
    assert consumer._new_offset(pending[1]) == 7
    consumer._committed_offset[pending[1]] = 7
    assert not consumer._should_commit(pending[1], 7)
    assert list(consumer._filter_tps_with_pending_acks({"rk.events"})) == []  # a commit of other topics only


def test_a_new_group_commits_past_an_aborted_transaction_that_opens_a_partition(tmp_path: Path) -> None:
    """A new group's partition whose first records are an aborted transaction: the position was reset inside the
    first fetch, so no start was seen; no record was ever fetched, so the position is safe to commit."""
    consumer = _consumer(tmp_path)
    skipped: SkippedTails = consumer._thread.skipped  # type: ignore[attr-defined]
    tp = TopicPartition("fv.hundesteuer.status", 1)
    skipped.before_fetch({})  # no valid position yet
    skipped.after_fetch({}, {tp: 8})  # reset to 0, then 7 aborted records and their marker skipped
    assert consumer._new_offset(TP(tp.topic, tp.partition)) == 8
    skipped.before_fetch({tp: 8})
    skipped.after_fetch({tp: [_Fetched(8)]}, {tp: 9})  # a record fetched: no longer untouched
    assert consumer._new_offset(TP(tp.topic, tp.partition)) is None  # 8 is not acknowledged yet
