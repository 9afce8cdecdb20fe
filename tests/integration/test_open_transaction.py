"""A Fachverfahren's transaction left open, written by librdkafka's transactional producer (confluent-kafka): the
worker reads committed records only, so the events wait; its metrics show, for that Fachverfahren, how many records
are held back and for how long (consumer lag does not: they are not readable yet). Once the transaction commits,
they reach the portal in order and the hold is gone.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path

import confluent_kafka

from streams.partitioner import vorgang_partition
from tests.integration.test_foreign_clients import pipeline_worker
from tests.support.chaos import metric_value
from tests.support.events import hundesteuer_events
from tests.support.flow import all_caught_up, until_async
from tests.support.kafka_io import create_topics, read_all
from tests.support.pipeline import pipeline_env
from tests.support.portal import portal_sim
from tests.support.processes import free_port

PARTITIONS = 4
HELD = "rueckkanal_source_transaction_held_messages"
OPEN = "rueckkanal_source_transaction_open_seconds"
LAG = "rueckkanal_consumer_lag_messages"


async def until(condition: Callable[[], bool]) -> None:
    """Until a scrape of the worker's /metrics shows ``condition``: the worker samples its consumer every 10 s."""
    await until_async(lambda: asyncio.to_thread(condition), within_s=90.0, every_s=0.5)


async def test_an_open_transaction_is_shown_until_it_commits_then_its_events_are_delivered_in_order(
    kafka_bootstrap: str, unique: str, tmp_path: Path
) -> None:
    events = hundesteuer_events(unique, vorgaenge=1, steps=3)
    vorgang = events[0].vorgang_id
    pipeline = pipeline_env(kafka_bootstrap, unique, tmp_path, partitions=PARTITIONS, web_port=free_port())
    topic = pipeline.source_topics["hundesteuer"]
    port = int(pipeline.env["RK_WEB__PORT"])
    await create_topics(kafka_bootstrap, pipeline.source_topics.values(), PARTITIONS)
    producer = confluent_kafka.Producer(
        {
            "bootstrap.servers": kafka_bootstrap,
            "transactional.id": f"hundesteuer-{unique}",
            "transaction.timeout.ms": 600_000,  # longer than the test: only the commit ends it
        }
    )

    def held(records: int, open_at_least: float) -> Callable[[], bool]:
        def check() -> bool:
            count = metric_value(port, HELD, source="hundesteuer")
            seconds = metric_value(port, OPEN, source="hundesteuer")
            return count == records and seconds is not None and seconds >= open_at_least

        return check

    with portal_sim(tmp_path / "portal.sqlite3") as portal, pipeline_worker(pipeline, portal) as worker:
        await asyncio.to_thread(producer.init_transactions, 30)
        producer.begin_transaction()
        for event in events:
            key, value, headers = event.record
            producer.produce(topic, value, key, partition=vorgang_partition(vorgang, PARTITIONS), headers=headers)
        assert await asyncio.to_thread(producer.flush, 30) == 0  # written to the partition, not committed

        await until(held(3, open_at_least=0.001))  # three records held by an open transaction
        first = metric_value(port, OPEN, source="hundesteuer")
        assert first is not None
        await until(held(3, open_at_least=first + 5))  # the hold ageing
        assert metric_value(port, LAG, stage="ingest", target="") == 0  # not readable yet, so no lag
        assert await portal.nachrichten([vorgang]) == {vorgang: []}  # nothing uncommitted was processed
        others = [name for name in pipeline.source_topics if name != "hundesteuer"]
        assert others and all(metric_value(port, HELD, source=name) == 0 for name in others)

        await asyncio.to_thread(producer.commit_transaction, 30)
        await all_caught_up(kafka_bootstrap, pipeline)
        stored = await portal.nachrichten([vorgang])
        await until(held(0, open_at_least=0))  # the hold gone
        assert metric_value(port, OPEN, source="hundesteuer") == 0
        assert worker.proc.poll() is None

    got = [n["nachrichtenUUID"] for n in sorted(stored[vorgang], key=lambda n: n["firstReceivedAt"])]
    assert got == [e.nachrichten_uuid for e in events]
    assert await read_all(kafka_bootstrap, pipeline.dlq) == []
