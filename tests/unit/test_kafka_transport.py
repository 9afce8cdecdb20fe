"""The worker's faust consumer asks the broker to hold a fetch for 100 ms, not faust's fixed 1.5 s."""

from __future__ import annotations

from pathlib import Path

from aiokafka import AIOKafkaConsumer

from rueckkanal.settings import Settings
from streams.app import create_pipeline
from streams.kafka_transport import FETCH_MAX_WAIT_MS, Transport


async def test_the_pipeline_s_consumer_waits_at_most_100_ms_for_a_fetch(tmp_path: Path) -> None:
    app = create_pipeline(Settings(data_dir=tmp_path)).app
    assert isinstance(app.transport, Transport)
    thread = app.consumer._thread  # type: ignore[attr-defined]
    consumer = thread._create_worker_consumer(app.transport)
    try:
        assert isinstance(consumer, AIOKafkaConsumer)
        assert consumer._fetch_max_wait_ms == FETCH_MAX_WAIT_MS == 100
    finally:
        await consumer.stop()
