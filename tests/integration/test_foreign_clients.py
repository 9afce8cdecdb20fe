"""Foreign producers against the running worker: the official CloudEvents Python SDK in binary and structured
mode, written by librdkafka (confluent-kafka) with its default partitioner ``consistent_random`` and with
``murmur2_random`` (the Java client's). Every event is processed: the valid ones reach the reference portal in
order, the deliberately bad ones reach the DLQ with the reason their defect calls for.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from cloudevents.v1.http import CloudEvent

from tests.support.events import hundesteuer_events
from tests.support.flow import all_caught_up
from tests.support.foreign import Mode, RawRecord, cloudevent_of, produce_librdkafka, sdk_record
from tests.support.kafka_io import create_topics, read_all
from tests.support.pipeline import PipelineEnv, pipeline_env
from tests.support.portal import PortalSim, portal_sim
from tests.support.processes import CliProcess, free_port

PARTITIONS = 4
# (mode, partitioner, compression): every codec a librdkafka producer may choose, so a batch of each must be read.
STYLES: list[tuple[Mode, str, str]] = [
    ("binary", "consistent_random", "lz4"),
    ("structured", "consistent_random", "zstd"),
    ("binary", "murmur2_random", "snappy"),
    ("structured", "murmur2_random", "gzip"),
]


@contextmanager
def pipeline_worker(pipeline: PipelineEnv, portal: PortalSim) -> Iterator[CliProcess]:
    env = {**pipeline.env, "RK_PORTAL__URL": portal.url, "RK_DELIVERY__RETRY_BASE_DELAY_S": "0.05"}
    log_file = pipeline.fachverfahren_dir.parent / "worker.log"
    worker = CliProcess(["worker", "--role", "all"], env=env, log_file=log_file)
    try:
        worker.wait_for_event("worker ready", timeout=120)
        yield worker
    finally:
        worker.terminate()


def _bad(records: list[RawRecord], reason: str) -> list[tuple[RawRecord, str]]:
    return [(record, reason) for record in records]


async def test_cloudevents_sdk_in_both_modes_through_librdkafka_every_event_processed(
    kafka_bootstrap: str, unique: str, tmp_path: Path
) -> None:
    events = hundesteuer_events(unique, vorgaenge=24, steps=6)
    pipeline = pipeline_env(kafka_bootstrap, unique, tmp_path, partitions=PARTITIONS, web_port=free_port())
    topic = pipeline.source_topics["hundesteuer"]
    await create_topics(kafka_bootstrap, pipeline.source_topics.values(), PARTITIONS)

    # Each Vorgang is sent in one style throughout (one producer setting: one partition, a defined order).
    by_style: dict[tuple[Mode, str, str], list[RawRecord]] = {style: [] for style in STYLES}
    for e in events:
        style = STYLES[int(e.vorgang_id.rsplit("-", 1)[-1]) % len(STYLES)]
        by_style[style].append(sdk_record(cloudevent_of(e), style[0]))
    # Deliberately bad SDK events: an unknown status code, a missing required field, in both modes.
    bad: list[tuple[RawRecord, str]] = []
    for mode in ("binary", "structured"):
        broken = cloudevent_of(hundesteuer_events(f"{unique}-bad-{mode}", vorgaenge=1, steps=1)[0])
        unknown = dict(broken.get_data() or {}) | {"status": "999"}
        missing = {k: v for k, v in (broken.get_data() or {}).items() if k != "leistung"}
        bad += _bad([sdk_record(_with_data(broken, unknown, "u"), mode)], "unknown_status")
        bad += _bad([sdk_record(_with_data(broken, missing, "m"), mode)], "schema_invalid")

    with portal_sim(tmp_path / "portal.sqlite3") as portal, pipeline_worker(pipeline, portal) as worker:
        for (_mode, partitioner, codec), records in by_style.items():
            compression = {"compression.type": codec}
            await asyncio.to_thread(produce_librdkafka, kafka_bootstrap, topic, records, partitioner, **compression)
        bad_landed = await asyncio.to_thread(produce_librdkafka, kafka_bootstrap, topic, [r for r, _ in bad])
        await all_caught_up(kafka_bootstrap, pipeline)
        stored = await portal.nachrichten(sorted({e.vorgang_id for e in events}))
        assert worker.proc.poll() is None

    dlq = await read_all(kafka_bootstrap, pipeline.dlq)
    reasons = {
        (int(dict(d.headers)["rk.original.partition"]), int(dict(d.headers)["rk.original.offset"])): dict(d.headers)[
            "rk.error.reason"
        ].decode()
        for d in dlq
    }
    expected_bad = {where: reason for where, (_, reason) in zip(bad_landed, bad, strict=True)}
    assert reasons == expected_bad, "only the bad events are dead-lettered, each with its reason"
    for e in events:
        got = sorted(stored[e.vorgang_id], key=lambda n: n["firstReceivedAt"])
        want = [x for x in events if x.vorgang_id == e.vorgang_id]
        assert [n["nachrichtenUUID"] for n in got] == [x.nachrichten_uuid for x in want], e.vorgang_id
    receipts = [json.loads(r.value or b"") for r in await read_all(kafka_bootstrap, pipeline.receipts)]
    assert {r["nachrichtenUUID"] for r in receipts} == {e.nachrichten_uuid for e in events}


def _with_data(event: CloudEvent, data: dict[str, object], suffix: str) -> CloudEvent:
    attributes = dict(event.get_attributes()) | {"id": f"{event['id']}-{suffix}"}
    return CloudEvent(attributes, data)
