"""Kafka faults: the broker SIGKILLed and restarted mid-batch (ingest and delivery), the DLQ topic deleted while
the worker runs. On a broker of the test's own (never the shared one).

A worker that cannot reach Kafka stops without acknowledging (exit 75), and is started again here as an
orchestrator would. Invariants: nothing is acknowledged without its durable outcome, both stages resume, and
nothing is lost: every event reaches the portal in order per Vorgang, every bad record the DLQ.
"""

from __future__ import annotations

import asyncio
import signal
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from aiokafka import TopicPartition
from aiokafka.admin import AIOKafkaAdminClient

from streams.worker import STOP_MARGIN_S
from tests.support.chaos import ChaosReport
from tests.support.events import ValidEvent, bad_corpus, hundesteuer_events
from tests.support.flow import all_caught_up, ingest_caught_up
from tests.support.kafka_io import committed_offsets, create_topics, end_offsets, produce, read_all
from tests.support.own_broker import OwnBroker
from tests.support.pipeline import pipeline_env
from tests.support.portal import PortalSim, portal_sim
from tests.support.processes import CliProcess, Supervised, free_port

PARTITIONS = 4
EX_KAFKA_UNAVAILABLE = 75


@pytest.fixture(scope="module")
def own_broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[OwnBroker]:
    broker = OwnBroker(tmp_path_factory.mktemp("own-kafka"))
    broker.start()
    try:
        yield broker
    finally:
        broker.stop()


async def _until(condition: Callable[[], object], supervised: Supervised, what: str, within_s: float = 180) -> None:
    """Keep the worker supervised while waiting for a condition (a broker answer), with a deadline."""
    deadline = time.monotonic() + within_s
    while True:
        supervised.check()
        result = condition()
        if asyncio.iscoroutine(result):
            result = await result
        if result:
            return
        if time.monotonic() > deadline:
            raise TimeoutError(f"{what} not within {within_s}s; exits so far {supervised.exits}")
        await asyncio.sleep(0.2)  # polling broker answers, bounded


async def _count(bootstrap: str, topic: str) -> int:
    try:
        return sum((await end_offsets(bootstrap, [topic])).values())
    except Exception:  # the broker may be down right now: count as nothing yet
        return 0


async def _supervised_while(supervised: Supervised, work: asyncio.Future[None]) -> None:
    while not work.done():
        supervised.check()
        await asyncio.sleep(0.2)  # supervising: restart a worker that exited, as an orchestrator would
    await work


async def _portal_in_order(portal: PortalSim, events: list[ValidEvent]) -> tuple[int, int]:
    """(lost, misordered): events the portal never stored, Vorgänge received out of sequence."""
    stored = await portal.nachrichten(sorted({e.vorgang_id for e in events}))
    have = {n["nachrichtenUUID"] for rows in stored.values() for n in rows}
    lost = sum(1 for e in events if e.nachrichten_uuid not in have)
    misordered = 0
    for rows in stored.values():
        sequence = [n["sequence"] for n in sorted(rows, key=lambda n: n["firstReceivedAt"])]
        misordered += sequence != sorted(set(sequence))
    return lost, misordered


async def test_broker_sigkilled_mid_ingest_and_mid_delivery_loses_nothing(
    own_broker: OwnBroker, unique: str, tmp_path: Path, chaos_report: ChaosReport
) -> None:
    bootstrap = own_broker.bootstrap
    events = hundesteuer_events(unique, vorgaenge=60, steps=10)  # 600 events, 600 portal messages
    pipeline = pipeline_env(bootstrap, unique, tmp_path, partitions=PARTITIONS, web_port=free_port())
    await create_topics(bootstrap, pipeline.source_topics.values(), PARTITIONS)
    with portal_sim(tmp_path / "portal.sqlite3", "--latency-min-ms", "5", "--latency-max-ms", "30") as portal:
        env = {**pipeline.env, "RK_PORTAL__URL": portal.url, "RK_DELIVERY__RETRY_BASE_DELAY_S": "0.05"}
        worker = Supervised(["worker", "--role", "all"], env, log_file=tmp_path / "worker.log")
        try:
            worker.current.wait_for_event("worker ready", timeout=120)
            await produce(bootstrap, pipeline.source_topics["hundesteuer"], [e.record for e in events])
            # 1: ingest mid-batch (part of the outbox written), delivery just started
            await _until(lambda: _count(bootstrap, pipeline.outbox), worker, "outbox started")
            own_broker.kill()
            await asyncio.to_thread(own_broker.start)
            # 2: delivery mid-batch (part of the receipts written)
            await _until(lambda: _at_least(bootstrap, pipeline.receipts, len(events) // 3), worker, "a third delivered")
            own_broker.kill()
            await asyncio.to_thread(own_broker.start)
            await _supervised_while(worker, asyncio.ensure_future(all_caught_up(bootstrap, pipeline, within_s=240)))
            lost, misordered = await _portal_in_order(portal, events)
            exits = list(worker.exits)
        finally:
            worker.terminate()
    dlq = await read_all(bootstrap, pipeline.dlq)
    chaos_report.add(
        "broker_sigkill",
        records_tried=len(events),
        faults_injected=own_broker.kills,
        lost=lost,
        misordered=misordered,
        worker_exits=sum(1 for code in exits if code != EX_KAFKA_UNAVAILABLE),
        exits_while_kafka_unreachable=sum(1 for code in exits if code == EX_KAFKA_UNAVAILABLE),
        dead_lettered=len(dlq),
    )
    assert lost == 0 and misordered == 0, (lost, misordered)
    assert not dlq, [dict(d.headers).get("rk.error.reason") for d in dlq]
    assert all(code == EX_KAFKA_UNAVAILABLE for code in exits), f"exits other than 'Kafka unavailable': {exits}"


async def _at_least(bootstrap: str, topic: str, n: int) -> bool:
    return await _count(bootstrap, topic) >= n


async def test_dlq_topic_deleted_while_running_acknowledges_nothing_without_its_dead_letter(
    own_broker: OwnBroker, unique: str, tmp_path: Path, chaos_report: ChaosReport
) -> None:
    bootstrap = own_broker.bootstrap
    valid = hundesteuer_events(unique, vorgaenge=20, steps=5)
    bad = [case for case in bad_corpus() if case.fachverfahren == "hundesteuer"]
    pipeline = pipeline_env(bootstrap, unique, tmp_path, partitions=PARTITIONS, web_port=free_port())
    source = pipeline.source_topics["hundesteuer"]
    await create_topics(bootstrap, pipeline.source_topics.values(), PARTITIONS)
    worker = Supervised(["worker", "--role", "ingest"], pipeline.env, log_file=tmp_path / "worker.log")
    try:
        worker.current.wait_for_event("worker ready", timeout=120)
        await produce(bootstrap, source, [e.record for e in valid[:50]])
        await _supervised_while(worker, asyncio.ensure_future(ingest_caught_up(bootstrap, pipeline)))
        await _delete_topic(bootstrap, pipeline.dlq)
        landed = await produce(bootstrap, source, [case.record for case in bad])
        await produce(bootstrap, source, [e.record for e in valid[50:]])
        # Until the worker has given up on the bad records (it exits) or a bounded while has passed: meanwhile no
        # bad record's offset may be committed, since its dead letter cannot be written.
        first_bad = {TopicPartition(source, p): o for p, o in sorted({(m.partition, m.offset) for m in landed})[::-1]}
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and not worker.exits:
            committed = await committed_offsets(bootstrap, pipeline.app_id)
            early = {tp: committed[tp] for tp, offset in first_bad.items() if committed.get(tp, 0) > offset}
            assert not early, f"committed past a bad record whose dead letter could not be written: {early}"
            worker.check()
            await asyncio.sleep(0.2)  # observing the committed offsets while the DLQ is missing, bounded
        await create_topics(bootstrap, [pipeline.dlq], PARTITIONS)  # the operator restores the topic
        await _supervised_while(worker, asyncio.ensure_future(ingest_caught_up(bootstrap, pipeline)))
        exits = list(worker.exits)
    finally:
        worker.terminate()
    outbox = await read_all(bootstrap, pipeline.outbox)
    dlq = await read_all(bootstrap, pipeline.dlq)
    got_letters = {
        (int(dict(d.headers)["rk.original.partition"]), int(dict(d.headers)["rk.original.offset"])) for d in dlq
    }
    lost_bad = [(m.partition, m.offset) for m in landed if (m.partition, m.offset) not in got_letters]
    outbox_uuids = {dict(r.headers)["nachrichtenUUID"].decode() for r in outbox}
    lost_valid = [e for e in valid if e.nachrichten_uuid not in outbox_uuids]
    chaos_report.add(
        "dlq_deleted",
        records_tried=len(valid) + len(bad),
        faults_injected=1,
        lost=len(lost_bad) + len(lost_valid),
        misordered=0,
        worker_exits=sum(1 for code in exits if code != EX_KAFKA_UNAVAILABLE),
        exits_while_dlq_missing=sum(1 for code in exits if code == EX_KAFKA_UNAVAILABLE),
    )
    assert not lost_bad, f"bad records without a dead letter: {lost_bad}"
    assert not lost_valid, f"valid events missing from the outbox: {len(lost_valid)}"
    assert all(code == EX_KAFKA_UNAVAILABLE for code in exits), exits


async def _delete_topic(bootstrap: str, topic: str) -> None:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        await admin.delete_topics([topic])
    finally:
        await admin.close()


async def test_a_worker_whose_broker_is_gone_stops_within_its_deadline_after_sigterm(
    unique: str, tmp_path: Path, tmp_path_factory: pytest.TempPathFactory
) -> None:
    """SIGTERM while the broker is gone: the stop cannot leave the group or commit, and must not hang for that."""
    broker = OwnBroker(tmp_path_factory.mktemp("gone-kafka"))  # this test's alone: it stays down at the end
    broker.start()
    try:
        drain_s = 2.0
        pipeline = pipeline_env(broker.bootstrap, unique, tmp_path, partitions=PARTITIONS, web_port=free_port())
        await create_topics(broker.bootstrap, pipeline.source_topics.values(), PARTITIONS)
        env = {**pipeline.env, "RK_DELIVERY__DRAIN_DEADLINE_S": str(drain_s)}
        worker = CliProcess(["worker", "--role", "all"], env, log_file=tmp_path / "worker.log")
        try:
            worker.wait_for_event("worker ready", timeout=120)
            broker.kill()
            worker.proc.send_signal(signal.SIGTERM)
            signalled = time.monotonic()
            code = await asyncio.to_thread(worker.proc.wait, drain_s + STOP_MARGIN_S + 20)
            took = time.monotonic() - signalled
        finally:
            if worker.proc.poll() is None:
                worker.proc.kill()
    finally:
        broker.stop()
    assert took <= drain_s + STOP_MARGIN_S + 5, took
    assert code in (0, EX_KAFKA_UNAVAILABLE), code
