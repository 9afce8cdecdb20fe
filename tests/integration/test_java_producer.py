"""A Java Fachverfahren against the running worker: Apache Kafka's own Java client with its default partitioner and
the CloudEvents Java SDK's Kafka binding (``CloudEventSerializer``) in binary and in structured mode, the Vorgang id
as the record key (tests/java/producer, built by scripts/tools.sh). Every event reaches the reference portal in its
Vorgang's order, in place (no reroute: the Java client partitions as the worker does), and nothing is dead-lettered.
A Fachverfahren that writes in Kafka transactions (Spring Kafka's transactional KafkaTemplate) and aborts one has
taken those events back: none of them reaches the portal.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

from streams.partitioner import vorgang_partition
from tests.integration.test_foreign_clients import pipeline_worker
from tests.support.events import hundesteuer_events
from tests.support.flow import all_caught_up
from tests.support.kafka_io import create_topics, read_all
from tests.support.pipeline import pipeline_env
from tests.support.portal import portal_sim
from tests.support.processes import free_port
from tests.support.sdk_producers import by_style, delivered_in_order, event_line, produce
from tests.support.tools import tools_env

PARTITIONS = 4
MODES = ("binary", "structured")
JAVA_MAIN = "de.rueckkanal.testclients.ProduceCloudEvents"


def produce_java(
    bootstrap: str, topic: str, mode: str, lines: list[str], transactional_id: str | None = None
) -> list[tuple[int, int]]:
    """Write the lines with the Java producer, in order; (partition, offset) of each."""
    tools = tools_env()
    extra = [transactional_id] if transactional_id is not None else []
    java = [tools["RK_JAVA"], "-cp", tools["RK_JAVA_PRODUCER_CLASSPATH"], JAVA_MAIN]
    return produce([*java, bootstrap, topic, mode, *extra], lines)


async def test_the_java_client_and_the_cloudevents_java_sdk_in_both_modes_every_event_delivered_in_order(
    kafka_bootstrap: str, unique: str, tmp_path: Path
) -> None:
    events = hundesteuer_events(unique, vorgaenge=16, steps=5)
    pipeline = pipeline_env(kafka_bootstrap, unique, tmp_path, partitions=PARTITIONS, web_port=free_port())
    topic = pipeline.source_topics["hundesteuer"]
    await create_topics(kafka_bootstrap, pipeline.source_topics.values(), PARTITIONS)

    with portal_sim(tmp_path / "portal.sqlite3") as portal, pipeline_worker(pipeline, portal) as worker:
        for mode, sent in by_style(events, MODES).items():
            lines = [event_line(e) for e in sent]
            written = await asyncio.to_thread(produce_java, kafka_bootstrap, topic, mode, lines)
            # Kafka's Java client puts a keyed record where the worker looks for its Vorgang: processed in place
            assert [p for p, _ in written] == [vorgang_partition(e.vorgang_id, PARTITIONS) for e in sent]
        await delivered_in_order(kafka_bootstrap, pipeline, portal, events)
        assert worker.proc.poll() is None

    assert await read_all(kafka_bootstrap, pipeline.events) == [], "nothing rerouted"


async def test_events_of_an_aborted_transaction_never_reach_the_portal(
    kafka_bootstrap: str, unique: str, tmp_path: Path
) -> None:
    events = hundesteuer_events(unique, vorgaenge=9, steps=3)
    pipeline = pipeline_env(kafka_bootstrap, unique, tmp_path, partitions=PARTITIONS, web_port=free_port())
    topic = pipeline.source_topics["hundesteuer"]
    await create_topics(kafka_bootstrap, pipeline.source_topics.values(), PARTITIONS)
    vorgaenge = sorted({e.vorgang_id for e in events})
    # transactions 0 and 2 committed, 1 aborted, given round the Vorgänge in partition order: a partition holding
    # three of the nine (there is one) gets all three, the aborted one between two committed ones
    by_partition = sorted(vorgaenge, key=lambda v: (vorgang_partition(v, PARTITIONS), v))
    plan = {v: n % 3 for n, v in enumerate(by_partition)}
    taken_back = {v for v, transaction in plan.items() if transaction == 1}

    with portal_sim(tmp_path / "portal.sqlite3") as portal, pipeline_worker(pipeline, portal) as worker:
        # one producer run per transaction, each waited for: the aborted one then ends its partitions, after a
        # committed one the worker has already committed past (its marker included)
        for transaction in (0, 1, 2):
            lines = [
                event_line(e, transaction=transaction, abort=e.vorgang_id in taken_back)
                for e in events
                if plan[e.vorgang_id] == transaction
            ]
            await asyncio.to_thread(produce_java, kafka_bootstrap, topic, "binary", lines, f"hundesteuer-{unique}")
            # committed up to the end of every partition, past every marker: the offsets the worker's lag gauge and
            # /healthz's stall check read (a marker left as lag kept ingest "waiting for work" that could not come)
            await all_caught_up(kafka_bootstrap, pipeline)
        stored = await portal.nachrichten(vorgaenge)
        assert worker.proc.poll() is None

    assert await read_all(kafka_bootstrap, pipeline.dlq) == []
    for vorgang_id in vorgaenge:
        got = [n["nachrichtenUUID"] for n in sorted(stored[vorgang_id], key=lambda n: n["firstReceivedAt"])]
        want = [] if vorgang_id in taken_back else [e.nachrichten_uuid for e in events if e.vorgang_id == vorgang_id]
        assert got == want, vorgang_id
