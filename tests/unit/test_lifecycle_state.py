"""The lifecycle Table's local store and the retention sweep, on the memory store and on RocksDB.

The stage runs against a faust app that is never started: the producer is replaced by a recorder that
acknowledges with offsets as a broker would, the consumer's assignment by every partition.
"""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from faust.types import TP
from prometheus_client import CollectorRegistry

from adapters.inbound.config import load_fachverfahren
from rueckkanal.metrics import Metrics
from rueckkanal.settings import Settings, StateSettings, TopicSettings
from rueckkanal.xoev import MessageRenderer
from streams.app import create_pipeline
from streams.ingest import IngestStage
from streams.partitioner import vorgang_partition
from tests.support.events import SOURCE, status_event
from tests.unit.factories import FACHVERFAHREN_DIR

PARTITIONS = 3
CLOSED = datetime(2024, 3, 4, 8, 0, tzinfo=UTC)
NOW = CLOSED + timedelta(days=500)
STEPS = ("100", "200", "400", "410")


@dataclass
class _Message:
    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None
    headers: list[tuple[str, bytes]]
    timestamp: float = 0.0


@dataclass
class _Event:
    message: _Message


@dataclass
class _Ack:
    offset: int


@dataclass
class _Written:
    topic: str
    key: bytes | None
    value: bytes | None
    partition: int
    offset: int


def _stage(
    tmp_path: Path, store: str, monkeypatch: pytest.MonkeyPatch, **state: Any
) -> tuple[IngestStage, list[_Written]]:
    settings = Settings(
        data_dir=tmp_path,
        topics=TopicSettings(partitions=PARTITIONS),
        state=StateSettings(store=store, **state),  # type: ignore[arg-type]
    )
    stage = IngestStage(
        create_pipeline(settings),
        load_fachverfahren(FACHVERFAHREN_DIR),
        MessageRenderer(settings.xoev),
        Metrics(CollectorRegistry()),
    )
    stage.co_partition(dict.fromkeys(stage.source_topics, PARTITIONS))
    stage.clock = lambda: NOW
    written: list[_Written] = []
    ends: dict[tuple[str, int], int] = {}

    async def send(topic: Any, *, key: Any, value: Any, headers: Any, partition: int | None = None) -> Any:
        partition = partition or 0  # the DLQ's records are spread by the producer
        name = topic.get_topic_name()
        offset = ends.get((name, partition), 0)
        ends[(name, partition)] = offset + 1
        written.append(_Written(name, key, value, partition, offset))
        done: asyncio.Future[_Ack] = asyncio.get_running_loop().create_future()
        done.set_result(_Ack(offset))
        return done

    assignment = {TP(stage.events_topic, p) for p in range(PARTITIONS)}
    monkeypatch.setattr(stage, "_send", send)
    monkeypatch.setattr(stage.pipeline.app.consumer, "assignment", lambda: assignment)
    return stage, written


def _event(vorgang: str, step: int, status: str, when: datetime, suffix: str = "") -> _Event:
    key, value, headers = status_event(vorgang, step, status, when, suffix).record
    partition = vorgang_partition(vorgang, PARTITIONS)
    return _Event(_Message("fv.hundesteuer.status", partition, step, key, value, headers))


def _lifecycle(vorgang: str, last: str | None, when: datetime = CLOSED) -> list[_Event]:
    steps = (*STEPS, last) if last else STEPS
    return [_event(vorgang, i, s, when + timedelta(minutes=i)) for i, s in enumerate(steps)]


def _stored(stage: IngestStage, vorgang: str) -> Any:
    key = f"{SOURCE}|{vorgang}"
    return stage.state.get(vorgang_partition(vorgang, PARTITIONS), key, stage._change(key, None).key_bytes)


def _outbox(stage: IngestStage, written: list[_Written]) -> list[_Written]:
    return [w for w in written if w.topic == stage.pipeline.topics.outbox.get_topic_name()]


STORES = ["memory", "rocksdb"]


@pytest.mark.parametrize("store", STORES)
async def test_the_sweep_removes_expired_vorgaenge_with_a_tombstone_and_keeps_the_rest(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, store: str
) -> None:
    stage, written = _stage(tmp_path, store, monkeypatch)
    await stage._batch(
        _lifecycle("V-CLOSED", "420")
        + _lifecycle("V-WITHDRAWN", "500")
        + _lifecycle("V-OPEN", None)
        + _lifecycle("V-RECENT", "510", when=NOW - timedelta(days=30))
    )
    assert all(_stored(stage, v) is not None for v in ("V-CLOSED", "V-WITHDRAWN", "V-OPEN", "V-RECENT"))

    assert await stage.sweep() == 2

    changelog = stage.changelog_topic_name
    tombstones = {w.key for w in written if w.topic == changelog and w.value is None}
    assert tombstones == {json.dumps(f"{SOURCE}|{v}").encode() for v in ("V-CLOSED", "V-WITHDRAWN")}
    assert _stored(stage, "V-CLOSED") is None and _stored(stage, "V-WITHDRAWN") is None
    assert _stored(stage, "V-OPEN")["status"] == "410"
    assert _stored(stage, "V-RECENT")["status"] == "510"
    assert stage.metrics.registry.get_sample_value("rueckkanal_lifecycle_state_expired_total") == 2
    assert await stage.sweep() == 0  # nothing left to remove


@pytest.mark.parametrize("store", STORES)
async def test_a_late_event_of_a_forgotten_vorgang_is_judged_as_a_new_vorgang_s_first(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, store: str
) -> None:
    """The documented policy (docs/operations.md): a Widerspruch (430) has nothing to reopen and is dead-lettered
    (illegal_transition); an entry status starts the Vorgang anew at sequence 1."""
    stage, written = _stage(tmp_path, store, monkeypatch)
    await stage._batch(_lifecycle("V-GONE", "500"))
    assert await stage.sweep() == 1
    delivered = len(_outbox(stage, written))

    later = NOW - timedelta(days=1)
    await stage._batch([_event("V-GONE", 10, "430", later, "-late"), _event("V-GONE", 11, "100", later, "-new")])

    dlq = [w for w in written if w.topic == stage.pipeline.topics.dlq.get_topic_name()]
    assert len(dlq) == 1 and b'"430"' in (dlq[0].value or b"")
    fresh = _outbox(stage, written)[delivered:]
    assert len(fresh) == 1
    assert _stored(stage, "V-GONE")["sequence"] == 1


@pytest.mark.parametrize("store", STORES)
async def test_a_sweep_examines_at_most_its_budget_and_goes_round_all_partitions(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, store: str
) -> None:
    stage, _ = _stage(tmp_path, store, monkeypatch, sweep_max_keys=2)
    vorgaenge = [f"V-{i:02d}" for i in range(9)]
    await stage._batch([e for v in vorgaenge for e in _lifecycle(v, "420")])
    examined: list[int] = []
    scan = stage.state.scan

    def counting(partition: int, after: bytes | None, limit: int) -> list[tuple[bytes, str, Any]]:
        page = scan(partition, after, limit)
        examined.append(len(page))
        return page

    monkeypatch.setattr(stage.state, "scan", counting)
    removed = []
    for _ in range(20):
        before = len(examined)
        removed.append(await stage.sweep())
        assert sum(examined[before:]) <= 2
        if sum(removed) == len(vorgaenge):
            break
    assert sum(removed) == len(vorgaenge)
    assert all(_stored(stage, v) is None for v in vorgaenge)


async def test_rocksdb_keeps_each_partition_s_changelog_offset_with_its_state(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The offset a recovery starts from is the last changelog record the local store holds, per partition."""
    stage, written = _stage(tmp_path, "rocksdb", monkeypatch)
    await stage._batch(_lifecycle("V-A", None) + _lifecycle("V-B", "420"))
    await stage.sweep()
    changelog = stage.changelog_topic_name
    for partition in range(PARTITIONS):
        records = [w for w in written if w.topic == changelog and w.partition == partition]
        persisted = stage.table.persisted_offset(TP(changelog, partition))
        assert persisted == (records[-1].offset if records else None), partition
