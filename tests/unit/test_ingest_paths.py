"""Which source topics the ingest stage processes in place: decided once, from the partition counts at start-up."""

from __future__ import annotations

from pathlib import Path

from prometheus_client import CollectorRegistry

from adapters.inbound.config import load_fachverfahren
from rueckkanal.metrics import Metrics
from rueckkanal.settings import Settings, TopicSettings
from rueckkanal.xoev import MessageRenderer
from streams.app import create_pipeline
from streams.ingest import IngestStage
from tests.unit.factories import FACHVERFAHREN_DIR


def test_only_sources_with_the_pipeline_s_partition_count_are_processed_in_place(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path, topics=TopicSettings(partitions=6))
    fachverfahren = load_fachverfahren(FACHVERFAHREN_DIR)
    stage = IngestStage(
        create_pipeline(settings), fachverfahren, MessageRenderer(settings.xoev), Metrics(CollectorRegistry())
    )
    topic = {fv.name: fv.topic for fv in fachverfahren}
    assert stage.in_place == frozenset()  # before the start-up decision, every record takes the hop

    # gewerberegister's topic is not on the broker (yet): it is not co-partitioned either
    stage.co_partition({topic["hundesteuer"]: 6, topic["bewohnerparken"]: 3})

    assert stage.in_place == {topic["hundesteuer"]}
