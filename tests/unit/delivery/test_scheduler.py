"""The delivery scheduler without a loop: queues per Vorgang, contiguous commits, flow control, replays, lag."""

from __future__ import annotations

import random

from streams.delivery.scheduler import RECENT_UUIDS_PER_PARTITION, Scheduler
from streams.headers import H_NACHRICHTEN_UUID, H_REPLAY_TARGET
from streams.recordlog import LogRecord, TopicPartition

TP0, TP1 = TopicPartition("outbox", 0), TopicPartition("outbox", 1)


def rec(offset: int, key: bytes = b"a", tp: TopicPartition = TP0, *headers: tuple[str, bytes]) -> LogRecord:
    return LogRecord(
        tp.topic, tp.partition, offset, 1000 + offset, key, b"<x/>", ((H_NACHRICHTEN_UUID, b"u%d" % offset), *headers)
    )


def scheduler(window: int = 100) -> Scheduler:
    s = Scheduler(target="default", window_per_partition=window)
    s.assign([TP0, TP1])
    return s


def test_only_the_head_of_a_vorgang_s_queue_starts_and_the_next_follows_it() -> None:
    s = scheduler()
    assert s.accept(TP0, rec(0, b"a")) == (TP0, b"a")
    assert s.accept(TP0, rec(1, b"a")) is None  # behind offset 0
    assert s.accept(TP0, rec(2, b"b")) == (TP0, b"b")  # another Vorgang: its own sender
    head = s.head((TP0, b"a"))
    assert head is not None and head.record.offset == 0
    following = s.finish((TP0, b"a"))
    assert following is not None and following.record.offset == 1
    assert s.finish((TP0, b"a")) is None and (TP0, b"a") not in s.queues


def test_commits_never_pass_an_unfinished_offset_whatever_order_things_finish_in() -> None:
    rng = random.Random(7)
    for _ in range(50):
        s = scheduler()
        keys = [bytes([rng.randrange(5)]) for _ in range(40)]
        for offset, key in enumerate(keys):
            s.accept(TP0, rec(offset, key))
        finished: set[int] = set()
        while s.queues:
            key = rng.choice(list(s.queues))
            item = s.head(key)
            assert item is not None
            finished.add(item.record.offset)
            s.finish(key)
            committable = s.committable([TP0]).get(TP0)
            if committable is not None:
                assert all(o in finished for o in range(committable))
                s.committed({TP0: committable})
        assert s.partitions[TP0].committed == 40


def test_a_replay_for_another_target_is_finished_on_arrival() -> None:
    s = scheduler()
    assert s.accept(TP0, rec(0, b"a", TP0, (H_REPLAY_TARGET, b"zbp"))) is None
    assert s.accept(TP0, rec(1, b"a", TP0, (H_REPLAY_TARGET, b"default"))) == (TP0, b"a")
    assert s.committable([TP0]) == {TP0: 1}


def test_a_record_of_a_revoked_partition_is_ignored_and_revoking_forgets_its_queues() -> None:
    s = scheduler()
    s.accept(TP1, rec(0, b"a", TP1))
    s.revoke([TP1])
    assert s.queues == {} and TP1 not in s.partitions
    assert s.accept(TP1, rec(1, b"a", TP1)) is None
    assert s.committable([TP1]) == {}


def test_a_full_window_pauses_its_partition_and_an_open_circuit_pauses_all() -> None:
    s = scheduler(window=2)
    s.accept(TP0, rec(0, b"a"))
    s.accept(TP0, rec(1, b"b"))
    assert s.flow({TP0, TP1}, circuit_closed=True) == ({TP0}, {TP1})
    assert s.flow({TP0, TP1}, circuit_closed=False) == ({TP0, TP1}, set())
    s.finish((TP0, b"a"))
    assert s.flow({TP0, TP1}, circuit_closed=True) == (set(), {TP0, TP1})


def test_recently_delivered_uuids_are_remembered_up_to_a_bound() -> None:
    s = scheduler()
    s.accept(TP0, rec(0))
    item = s.head((TP0, b"a"))
    assert item is not None and not s.already_delivered(item)
    s.delivered(item)
    assert s.already_delivered(item)
    partition = s.partitions[TP0]
    for n in range(RECENT_UUIDS_PER_PARTITION):
        partition.remember(f"other-{n}")
    assert not s.already_delivered(item)  # the oldest is forgotten first


def test_gauges_count_in_flight_the_oldest_head_and_lag_from_the_last_commit() -> None:
    s = scheduler()
    assert s.oldest_timestamp_ms() is None and not s.has_queued()
    s.accept(TP0, rec(3, b"a"))
    s.accept(TP1, rec(5, b"b", TP1))
    assert s.in_flight() == 2 and s.has_queued()
    assert s.oldest_timestamp_ms() == 1003
    s.committed({TP0: 3})
    ends = {TP0: 10, TP1: None}
    assert s.lag(ends.get) == 7
    s.abandon((TP0, b"a"))
    assert (TP0, b"a") not in s.queues
