"""The lifecycle state on RocksDB against the real broker: what a restart reads, and retention with compaction.

Each test runs real ``rueckkanal worker --role ingest`` processes with their own topics and local stores, and waits
on log lines and on the broker, never on the clock.
"""

from __future__ import annotations

import asyncio
import json
import shutil
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path

from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.structs import ConsumerRecord

from tests.support.events import SOURCE, ValidEvent, hundesteuer_events, status_event
from tests.support.kafka_io import create_topics, end_offsets, produce, read_all, wait_until_caught_up
from tests.support.pipeline import PipelineEnv, pipeline_env
from tests.support.processes import CliProcess, free_port

RECOVERED = "lifecycle state recovered"


def _changelog(pipeline: PipelineEnv) -> str:
    return f"{pipeline.app_id}-vorgaenge-changelog"


@contextmanager
def _worker(pipeline: PipelineEnv, data_dir: Path, name: str, **env: str) -> Iterator[tuple[CliProcess, int]]:
    """A worker on its own local store; yields it and the changelog records its start-up recovery read."""
    data_dir.parent.mkdir(parents=True, exist_ok=True)
    settings = {**pipeline.env, "RK_DATA_DIR": str(data_dir), "RK_WEB__PORT": str(free_port()), **env}
    worker = CliProcess(["worker", "--role", "ingest"], env=settings, log_file=data_dir.parent / f"{name}.log")
    try:
        recovered = worker.wait_for_event(RECOVERED, timeout=120)
        if not any(line.get("event") == "worker ready" for line in worker.lines):
            worker.wait_for_event("worker ready", timeout=120)
        yield worker, int(recovered["records_read"])
    finally:
        assert worker.terminate() == 0


async def _caught_up(bootstrap: str, pipeline: PipelineEnv) -> None:
    topics = [*pipeline.source_topics.values(), pipeline.events]
    while True:
        before = await end_offsets(bootstrap, topics)
        await wait_until_caught_up(bootstrap, pipeline.app_id, topics, within_s=300)
        if await end_offsets(bootstrap, topics) == before:
            return


async def _records(bootstrap: str, topic: str) -> int:
    return sum((await end_offsets(bootstrap, [topic])).values())


def _header(record: ConsumerRecord[bytes, bytes], name: str) -> str:
    return next(v.decode() for k, v in record.headers if k == name)


def _late(event: ValidEvent, status: str, suffix: str) -> tuple[bytes | None, bytes | None, list[tuple[str, bytes]]]:
    return status_event(event.vorgang_id, event.step + 1, status, datetime(2024, 3, 6, tzinfo=UTC), suffix).record


def _through_410(unique: str, vorgaenge: int, first: int) -> list[ValidEvent]:
    events = hundesteuer_events(unique, vorgaenge=first + vorgaenge, steps=16)  # 16th step: 410
    return [e for e in events if int(e.vorgang_id.rsplit("-", 1)[1]) >= first]


async def test_a_restart_reads_only_the_changelog_tail_and_a_lost_store_everything(
    kafka_bootstrap: str, unique: str, tmp_path: Path
) -> None:
    pipeline = pipeline_env(kafka_bootstrap, unique, tmp_path, partitions=4)
    await create_topics(kafka_bootstrap, pipeline.source_topics.values(), 4)
    hundesteuer = pipeline.source_topics["hundesteuer"]
    changelog = _changelog(pipeline)
    store_a, store_b = tmp_path / "a" / "data", tmp_path / "b" / "data"
    first, second = _through_410(unique, 60, 0), _through_410(unique, 40, 60)

    with _worker(pipeline, store_a, "a-1") as (_, read):
        assert read == 0
        await produce(kafka_bootstrap, hundesteuer, [e.record for e in first])
        await _caught_up(kafka_bootstrap, pipeline)
    after_a = await _records(kafka_bootstrap, changelog)
    assert after_a >= 60  # at least each Vorgang's last state

    with _worker(pipeline, store_b, "b") as (_, read):  # an empty store: the whole changelog
        assert read == after_a
        await produce(kafka_bootstrap, hundesteuer, [e.record for e in second])
        await _caught_up(kafka_bootstrap, pipeline)
    after_b = await _records(kafka_bootstrap, changelog)

    # A's store is intact: it reads what B wrote meanwhile, and nothing else
    with _worker(pipeline, store_a, "a-2") as (_, read):
        assert read == after_b - after_a
        late = [first[-1], second[-1]]  # one Vorgang of each phase, both at 410
        await produce(kafka_bootstrap, hundesteuer, [_late(e, "200", "-illegal") for e in late])
        await produce(kafka_bootstrap, hundesteuer, [_late(e, "430", "-widerspruch") for e in late])
        await _caught_up(kafka_bootstrap, pipeline)
    after_a2 = await _records(kafka_bootstrap, changelog)

    shutil.rmtree(store_a)  # the pod lost its volume: everything again, and the same state
    with _worker(pipeline, store_a, "a-3") as (_, read):
        assert read == after_a2
        await produce(kafka_bootstrap, hundesteuer, [_late(e, "200", "-again") for e in late])
        await _caught_up(kafka_bootstrap, pipeline)

    dlq = await read_all(kafka_bootstrap, pipeline.dlq)
    assert [_header(r, "rk.error.reason") for r in dlq] == ["illegal_transition"] * 2  # 200 after 410, both phases
    outbox = await read_all(kafka_bootstrap, pipeline.outbox)
    for event in late:
        mine = [r for r in outbox if r.key == f"{SOURCE}|{event.vorgang_id}".encode()]
        assert [_header(r, "status") for r in mine[-2:]] == ["430", "200"]  # 200 after 430 is legal
        assert [int(_header(r, "rk.sequence")) for r in mine] == list(range(1, 19))


async def _create_fast_compacting(bootstrap: str, name: str) -> None:
    """The changelog as the worker would create it, but compacting within seconds instead of days."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        configs = {
            "cleanup.policy": "compact",
            "segment.ms": "200",
            "min.cleanable.dirty.ratio": "0.01",
            "delete.retention.ms": "200",
            "min.compaction.lag.ms": "0",
        }
        await admin.create_topics([NewTopic(name, 1, 1, topic_configs=configs)])
    finally:
        await admin.close()


def _keys(records: list[ConsumerRecord[bytes, bytes]], vorgang_id: str) -> list[ConsumerRecord[bytes, bytes]]:
    key = json.dumps(f"{SOURCE}|{vorgang_id}").encode()
    return [r for r in records if r.key == key]


async def test_a_closed_vorgang_leaves_the_state_and_after_compaction_the_changelog(
    kafka_bootstrap: str, unique: str, tmp_path: Path
) -> None:
    """420 bestandskräftig in March 2024 is past the default retention (400 days); a Vorgang withdrawn yesterday
    and an open one are kept. A new event for the forgotten Vorgang meets the documented policy."""
    pipeline = pipeline_env(kafka_bootstrap, unique, tmp_path, partitions=1)
    await create_topics(kafka_bootstrap, pipeline.source_topics.values(), 1)
    changelog = _changelog(pipeline)
    await _create_fast_compacting(kafka_bootstrap, changelog)
    hundesteuer = pipeline.source_topics["hundesteuer"]
    march = datetime(2024, 3, 4, 8, tzinfo=UTC)
    yesterday = datetime.now(UTC) - timedelta(days=1)
    closed = [
        status_event(f"CLOSED-{unique}", i, s, march + timedelta(hours=i))
        for i, s in enumerate(("100", "200", "400", "410", "420"), start=1)
    ]
    open_ = [status_event(f"OPEN-{unique}", i, s, march + timedelta(hours=i)) for i, s in enumerate(("100", "200"), 1)]
    withdrawn = [
        status_event(f"GONE-{unique}", i, s, yesterday + timedelta(minutes=i))
        for i, s in enumerate(("100", "200", "500"), start=1)
    ]

    with _worker(pipeline, tmp_path / "w" / "data", "worker", RK_STATE__SWEEP_INTERVAL_S="0.5") as (worker, _):
        await produce(kafka_bootstrap, hundesteuer, [e.record for e in closed + open_ + withdrawn])
        removed = worker.wait_for_event("closed Vorgänge removed from the lifecycle state", timeout=60)
        assert removed["removed"] == 1
        history = _keys(await read_all(kafka_bootstrap, changelog), closed[0].vorgang_id)
        assert history[-1].value is None  # the tombstone

        # compaction drops the Vorgang's states and then its tombstone; each new Vorgang rolls a segment
        deadline, filler = time.monotonic() + 240, 0
        while _keys(await read_all(kafka_bootstrap, changelog), closed[0].vorgang_id):
            assert time.monotonic() < deadline, "the changelog still holds the closed Vorgang"
            filler += 1
            await produce(
                kafka_bootstrap, hundesteuer, [status_event(f"FILL-{unique}-{filler}", 1, "100", march).record]
            )
            await asyncio.sleep(0.5)  # polling the broker's log cleaner, bounded by the deadline

        later = datetime.now(UTC)
        await produce(
            kafka_bootstrap,
            hundesteuer,
            [
                status_event(closed[0].vorgang_id, 6, "430", later, "-late").record,  # nothing to reopen: DLQ
                status_event(closed[0].vorgang_id, 7, "100", later, "-anew").record,  # a new Vorgang's first
                status_event(open_[0].vorgang_id, 3, "210", later).record,  # still open: its third status
                status_event(withdrawn[0].vorgang_id, 4, "200", later).record,  # still known as withdrawn: DLQ
            ],
        )
        await _caught_up(kafka_bootstrap, pipeline)

    dlq = await read_all(kafka_bootstrap, pipeline.dlq)
    assert sorted((r.key, _header(r, "rk.error.reason")) for r in dlq) == sorted(
        [
            (closed[0].vorgang_id.encode(), "illegal_transition"),
            (withdrawn[0].vorgang_id.encode(), "illegal_transition"),
        ]
    )
    outbox = await read_all(kafka_bootstrap, pipeline.outbox)

    def sequences(vorgang_id: str) -> list[tuple[str, int]]:
        key = f"{SOURCE}|{vorgang_id}".encode()
        return [(_header(r, "status"), int(_header(r, "rk.sequence"))) for r in outbox if r.key == key]

    assert sequences(closed[0].vorgang_id)[-1] == ("100", 1)  # started anew
    assert sequences(open_[0].vorgang_id)[-1] == ("210", 3)
    assert [s for s, _ in sequences(withdrawn[0].vorgang_id)] == ["100", "200", "500"]
