"""Go and Node.js Fachverfahren against the running worker, each with its language's common Kafka client and the
official CloudEvents SDK's Kafka binding, in binary and in structured mode, the Vorgang id as the record key:

- Go: IBM's sarama with ``github.com/cloudevents/sdk-go/protocol/kafka_sarama/v2`` (tests/go/producer). sarama's
  default partitioner hashes the key with FNV-1a, not Kafka's murmur2, so its records land elsewhere than the worker
  keeps their Vorgang: they take the rerouted path, and still reach the portal in order. With the Java client's
  murmur2 plugged into sarama's hash partitioner (docs/fachverfahren.md, "Partitions") they are processed in place.
- Node.js: kafkajs with the ``cloudevents`` npm package (tests/js/producer). kafkajs 2's default partitioner is the
  Java client's: in place. The SDK's binary mode gives the attributes an event leaves unset undefined headers,
  which kafkajs refuses; the producer drops them, as docs/fachverfahren.md tells JavaScript teams.

Every event reaches the reference portal in its Vorgang's order, and nothing is dead-lettered.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from pathlib import Path

from streams.partitioner import vorgang_partition
from tests.integration.test_foreign_clients import pipeline_worker
from tests.support.events import ValidEvent, hundesteuer_events
from tests.support.kafka_io import create_topics, read_all
from tests.support.pipeline import pipeline_env
from tests.support.portal import portal_sim
from tests.support.processes import free_port
from tests.support.sdk_producers import by_style, delivered_in_order, event_line, produce
from tests.support.tools import tools_env

PARTITIONS = 4


async def test_sarama_and_the_cloudevents_go_sdk_every_event_delivered_in_order_in_place_with_murmur2(
    kafka_bootstrap: str, unique: str, tmp_path: Path
) -> None:
    events = hundesteuer_events(unique, vorgaenge=18, steps=4)
    pipeline = pipeline_env(kafka_bootstrap, unique, tmp_path, partitions=PARTITIONS, web_port=free_port())
    topic = pipeline.source_topics["hundesteuer"]
    await create_topics(kafka_bootstrap, pipeline.source_topics.values(), PARTITIONS)
    styles = by_style(events, ["binary sarama", "structured sarama", "binary murmur2", "structured murmur2"])
    moved: list[ValidEvent] = []

    with portal_sim(tmp_path / "portal.sqlite3") as portal, pipeline_worker(pipeline, portal) as worker:
        for style, sent in styles.items():
            mode, partitioner = style.split()
            argv = [tools_env()["RK_GO_PRODUCER"], kafka_bootstrap, topic, mode, partitioner]
            written = await asyncio.to_thread(produce, argv, [event_line(e) for e in sent])
            expected = [vorgang_partition(e.vorgang_id, PARTITIONS) for e in sent]
            if partitioner == "murmur2":
                assert [p for p, _ in written] == expected, "the Java client's partitioner, plugged into sarama"
            else:
                moved += [e for e, (p, _), want in zip(sent, written, expected, strict=True) if p != want]
        await delivered_in_order(kafka_bootstrap, pipeline, portal, events)
        assert worker.proc.poll() is None

    assert moved, "sarama's FNV-1a put no Vorgang elsewhere: the rerouted path went untested"
    rerouted = await read_all(kafka_bootstrap, pipeline.events)
    # keyed by source and Vorgang, one record per moved event
    assert Counter((r.key or b"").rpartition(b"|")[2] for r in rerouted) == Counter(
        e.vorgang_id.encode() for e in moved
    )


async def test_kafkajs_and_the_cloudevents_javascript_sdk_in_both_modes_every_event_delivered_in_order_in_place(
    kafka_bootstrap: str, unique: str, tmp_path: Path
) -> None:
    events = hundesteuer_events(unique, vorgaenge=16, steps=4)
    pipeline = pipeline_env(kafka_bootstrap, unique, tmp_path, partitions=PARTITIONS, web_port=free_port())
    topic = pipeline.source_topics["hundesteuer"]
    await create_topics(kafka_bootstrap, pipeline.source_topics.values(), PARTITIONS)
    tools = tools_env()

    with portal_sim(tmp_path / "portal.sqlite3") as portal, pipeline_worker(pipeline, portal) as worker:
        for mode, sent in by_style(events, ["binary", "structured"]).items():
            argv = [tools["RK_NODE"], tools["RK_JS_PRODUCER"], kafka_bootstrap, topic, mode]
            written = await asyncio.to_thread(produce, argv, [event_line(e) for e in sent])
            # kafkajs 2 partitions a keyed record as the Java client does: processed where it is
            assert [p for p, _ in written] == [vorgang_partition(e.vorgang_id, PARTITIONS) for e in sent]
        await delivered_in_order(kafka_bootstrap, pipeline, portal, events)
        assert worker.proc.poll() is None

    assert await read_all(kafka_bootstrap, pipeline.events) == [], "nothing rerouted"
