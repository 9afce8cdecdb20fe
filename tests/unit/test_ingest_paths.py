"""Which path a source record takes through the ingest stage: in place, or the hop through rueckkanal.events.

The stage runs against a faust app that is never started: the producer is replaced by a recorder, the consumer's
assignment by the partitions a test gives.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from faust.types import TP
from prometheus_client import CollectorRegistry

from adapters.inbound.config import load_fachverfahren
from rueckkanal.metrics import Metrics
from rueckkanal.settings import Settings, TopicSettings
from rueckkanal.xoev import MessageRenderer
from streams.app import create_pipeline
from streams.ingest import IngestStage
from streams.partitioner import vorgang_partition
from tests.support.events import hundesteuer_events
from tests.unit.factories import FACHVERFAHREN_DIR

PARTITIONS = 6


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


def _stage(tmp_path: Path) -> IngestStage:
    settings = Settings(data_dir=tmp_path, topics=TopicSettings(partitions=PARTITIONS))
    fachverfahren = load_fachverfahren(FACHVERFAHREN_DIR)
    return IngestStage(
        create_pipeline(settings), fachverfahren, MessageRenderer(settings.xoev), Metrics(CollectorRegistry())
    )


def _writes(stage: IngestStage, monkeypatch: pytest.MonkeyPatch, held: set[int]) -> list[tuple[str, int | None]]:
    """Record every produce as (topic, partition); the worker holds ``held`` partitions of rueckkanal.events."""
    written: list[tuple[str, int | None]] = []

    async def send(topic: Any, *, key: Any, value: Any, headers: Any, partition: int | None = None) -> Any:
        written.append((topic.get_topic_name(), partition))
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        done.set_result(None)
        return done

    assignment = {TP(stage.events_topic, p) for p in held}
    monkeypatch.setattr(stage, "_send", send)
    monkeypatch.setattr(stage.pipeline.app.consumer, "assignment", lambda: assignment)
    return written


def _on_its_partition(stage: IngestStage, unique: str) -> list[_Event]:
    """The first event of 12 Vorgänge, each on its Vorgang's partition of the hundesteuer topic."""
    topic = next(t for t, fv in stage.sources.items() if fv.name == "hundesteuer")
    events = hundesteuer_events(unique, vorgaenge=12, steps=1)
    return [
        _Event(_Message(topic, vorgang_partition(e.vorgang_id, PARTITIONS), i, *e.record)) for i, e in enumerate(events)
    ]


def test_only_sources_with_the_pipeline_s_partition_count_are_processed_in_place(tmp_path: Path) -> None:
    stage = _stage(tmp_path)
    topic = {fv.name: fv.topic for fv in stage.sources.values()}
    assert stage.in_place == frozenset()  # before the start-up decision, every record takes the hop

    # gewerberegister's topic is not on the broker (yet): it is not co-partitioned either
    stage.co_partition({topic["hundesteuer"]: PARTITIONS, topic["bewohnerparken"]: 3})

    assert stage.in_place == {topic["hundesteuer"]}


async def test_a_record_whose_state_another_worker_holds_takes_the_hop(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Workers subscribed to different source topics (a rollout adding a Fachverfahren) break faust's
    co-partitioning for those topics: this worker may read a source partition whose Vorgang state it lacks."""
    stage = _stage(tmp_path)
    stage.co_partition(dict.fromkeys(stage.source_topics, PARTITIONS))
    held = {0, 1, 2}
    written = _writes(stage, monkeypatch, held)
    batch = _on_its_partition(stage, "held")

    await stage._batch(batch)

    for event in batch:
        p = event.message.partition
        here = [(stage.pipeline.topics.outbox.get_topic_name(), p), (stage.table.changelog_topic.get_topic_name(), p)]
        hop = [(stage.events_topic, p)]
        expected = here if p in held else hop
        assert all(w in written for w in expected), (p, written)
    assert {p for t, p in written if t == stage.events_topic} == {e.message.partition for e in batch} - held
    assert {e.message.partition for e in batch} - held  # the batch had records of both kinds
