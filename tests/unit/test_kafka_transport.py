"""The worker's faust consumer: a 100 ms fetch wait, and commits that go on after offsets were read twice."""

from __future__ import annotations

from pathlib import Path

from aiokafka import AIOKafkaConsumer
from faust.types import TP
from faust.utils.functional import consecutive_numbers

from rueckkanal.settings import Settings
from streams.app import create_pipeline
from streams.kafka_transport import FETCH_MAX_WAIT_MS, AckedOffsets, Transport


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


def test_offsets_read_twice_do_not_stop_the_partition_s_commits(tmp_path: Path) -> None:
    consumer = create_pipeline(Settings(data_dir=tmp_path)).app.consumer
    tp = TP("rk.events", 0)
    consumer._committed_offset[tp] = 10  # type: ignore[attr-defined]
    acked = consumer._acked[tp]  # type: ignore[attr-defined]
    assert isinstance(acked, AckedOffsets)
    acked.extend([10, 11, 12, 11, 12, 13])  # 11 and 12 read and acknowledged twice, around a seek
    assert consumer._new_offset(tp) == 14  # type: ignore[attr-defined]
    consumer._committed_offset[tp] = 14  # type: ignore[attr-defined]  # what a successful commit records
    acked.extend([14, 15])
    assert consumer._new_offset(tp) == 16  # type: ignore[attr-defined]


def test_faust_s_own_list_stops_at_the_first_repeat() -> None:
    acked = [10, 11, 12, 11, 12, 13]
    acked.sort()
    assert next(consecutive_numbers(acked)) == [10, 11]  # commits 12, and 12 again, for ever
