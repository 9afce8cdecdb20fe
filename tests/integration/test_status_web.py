"""status-web against the real broker: its own consumer group keeps the page current without the portal, two
replicas on PostgreSQL lose and duplicate nothing when one of them is killed while events arrive, and a database
that refuses connections or holds its table locked is waited out without a restart and without a hanging page."""

from __future__ import annotations

import asyncio
import json
import threading
import time
from pathlib import Path
from typing import Any

import aiohttp
import asyncpg
import pytest

from tests.support.events import hundesteuer_events
from tests.support.kafka_io import crc32_partitioner, create_topics, produce, read_all
from tests.support.outbox import outbox_records
from tests.support.pipeline import pipeline_env
from tests.support.postgres import admin_dsn, drop_database, fresh_database
from tests.support.processes import CliProcess, free_port

PEPPER = "integration-test-pepper-0123456789"


def status_web_env(
    base: dict[str, str], tmp_path: Path, unique: str, database_url: str, **extra: str
) -> dict[str, str]:
    port = free_port()
    return {
        # status-web also reads receipts and dead letters (the figures): this test's own, never another's
        "RK_TOPICS__RECEIPTS": f"rk.{unique}.receipts",
        "RK_TOPICS__DLQ": f"rk.{unique}.dlq",
        **base,
        "RK_STATUS_WEB__PORT": str(port),
        "RK_STATUS_WEB__INTERNAL_PORT": str(free_port()),
        "RK_STATUS_WEB__BASE_URL": f"http://127.0.0.1:{port}",
        "RK_STATUS_WEB__DATABASE_URL": database_url,
        "RK_STATUS_WEB__TOKEN_PEPPER": PEPPER,
        "RK_STATUS_WEB__TRACKING_TOPIC": f"rk.{unique}.tracking",
        "RK_STATUS_WEB__RATE_LIMIT_PER_MINUTE": "100000",
        **extra,
    }


async def _page(http: aiohttp.ClientSession, url: str) -> str | None:
    async with http.get(url) as response:
        return await response.text() if response.status == 200 else None


async def test_a_new_status_appears_within_5_s_while_the_portal_is_down(
    kafka_bootstrap: str, unique: str, tmp_path: Path
) -> None:
    pipeline = pipeline_env(kafka_bootstrap, unique, tmp_path)
    # the portal is stopped: nothing listens where delivery sends
    worker_env = {**pipeline.env, "RK_PORTAL__URL": f"http://127.0.0.1:{free_port()}/rueckkanal/v1/nachrichten"}
    web_env = status_web_env(pipeline.env, tmp_path, unique, f"sqlite:///{tmp_path}/status-web.sqlite3")
    worker = CliProcess(["worker"], env=worker_env, log_file=tmp_path / "worker.log")
    web = None
    try:
        worker.wait_for_event("worker ready", timeout=120)
        web = CliProcess(["status-web"], env=web_env, log_file=tmp_path / "status-web.log")
        web.wait_for_event("status-web ready", timeout=60)
        events = hundesteuer_events(unique, vorgaenge=1, steps=3)
        source = pipeline.source_topics["hundesteuer"]
        await produce(kafka_bootstrap, source, [events[0].record])
        # the Fachverfahren learns the link from the tracking topic
        deadline = time.monotonic() + 60
        links: list[Any] = []
        while not links and time.monotonic() < deadline:
            links = [r for r in await read_all(kafka_bootstrap, web_env["RK_STATUS_WEB__TRACKING_TOPIC"])]
        assert links, "no link on the tracking topic"
        link = json.loads(links[0].value)
        assert links[0].key == events[0].vorgang_key.encode() and link["url"].startswith(
            web_env["RK_STATUS_WEB__BASE_URL"]
        )
        async with aiohttp.ClientSession() as http:
            page = await _page(http, link["url"])
            while page is None or "Antrag eingegangen" not in page:
                assert time.monotonic() < deadline, "the first status never appeared"
                page = await _page(http, link["url"])
            for event, title in ((events[1], "Antrag angelegt"), (events[2], "In Bearbeitung")):
                sent = time.monotonic()
                await produce(kafka_bootstrap, source, [event.record])
                page = await _page(http, link["url"])
                while page is None or f'<p class="status">{title}</p>' not in page:
                    assert time.monotonic() - sent < 5.0, f"{title!r} not on the page within 5 s"
                    page = await _page(http, link["url"])
        assert not any(line.get("event") == "message delivered" for line in worker.lines)
    finally:
        if web is not None:
            assert web.terminate() == 0
        worker.terminate()


async def test_two_replicas_on_postgres_one_killed_while_events_arrive_lose_and_duplicate_nothing(
    kafka_bootstrap: str, unique: str, tmp_path: Path
) -> None:
    outbox = f"rk.{unique}.outbox"
    await create_topics(kafka_bootstrap, [outbox], partitions=6)
    vorgaenge, steps = 40, 20
    records = outbox_records(hundesteuer_events(unique, vorgaenge=vorgaenge, steps=steps))
    database = await fresh_database(admin_dsn())
    base = {"RK_KAFKA__BOOTSTRAP": kafka_bootstrap, "RK_APP_ID": f"rk-test-{unique}", "RK_TOPICS__OUTBOX": outbox}
    extra = {"RK_STATUS_WEB__PUBLISH_TRACKING": "false", "RK_STATUS_WEB__CONSUMER_SESSION_TIMEOUT_MS": "6000"}
    env_a = status_web_env(base, tmp_path, unique, database, **extra)
    env_b = status_web_env(base, tmp_path, unique, database, **extra)
    replica_a = CliProcess(["status-web"], env=env_a, log_file=tmp_path / "a.log")
    replica_b = CliProcess(["status-web"], env=env_b, log_file=tmp_path / "b.log")
    try:
        replica_a.wait_for_event("status-web ready", timeout=60)
        replica_b.wait_for_event("status-web ready", timeout=60)
        # events arrive in a steady stream from another thread while replica A is killed in the middle of it: the
        # second half of the stream waits until A has stored part of the first and has been killed
        done, killed = threading.Event(), threading.Event()

        def stream() -> None:
            for start in range(0, len(records), 40):
                if start >= len(records) // 2 and not killed.wait(timeout=120):
                    return
                asyncio.run(produce(kafka_bootstrap, outbox, records[start : start + 40], crc32_partitioner))
            done.set()

        producer = threading.Thread(target=stream, daemon=True)
        producer.start()
        metrics_a = f"http://127.0.0.1:{env_a['RK_STATUS_WEB__INTERNAL_PORT']}/metrics"
        async with aiohttp.ClientSession() as http:
            stored_by_a = 0.0
            deadline = time.monotonic() + 60
            while stored_by_a < 40:  # A has stored part of the stream
                assert time.monotonic() < deadline, "replica A stored nothing"
                async with http.get(metrics_a) as response:
                    text = await response.text()
                stored_by_a = sum(
                    float(line.rsplit(" ", 1)[1])
                    for line in text.splitlines()
                    if line.startswith('rueckkanal_status_web_statuses_total{outcome="stored"}')
                )
        assert not done.is_set()
        replica_a.kill()
        killed.set()
        producer.join(timeout=120)
        assert done.is_set()
        conn = await asyncpg.connect(database)
        try:
            deadline = time.monotonic() + 90
            while await conn.fetchval("SELECT count(*) FROM status") < len(records):
                assert time.monotonic() < deadline, "statuses lost after the kill"
                await asyncio.sleep(0.2)  # polling the database for a condition, not a synchronisation sleep
            rows = await conn.fetch("SELECT vorgang_key, sequence FROM status ORDER BY vorgang_key, sequence")
        finally:
            await conn.close()
        timelines: dict[str, list[int]] = {}
        for row in rows:
            timelines.setdefault(row["vorgang_key"], []).append(row["sequence"])
        assert len(timelines) == vorgaenge
        assert all(sequence == list(range(1, steps + 1)) for sequence in timelines.values())
        # The survivor holds every partition now: nothing behind, and healthy.
        internal_b = f"http://127.0.0.1:{env_b['RK_STATUS_WEB__INTERNAL_PORT']}"
        async with aiohttp.ClientSession() as http:
            deadline = time.monotonic() + 30
            while True:
                async with http.get(f"{internal_b}/metrics") as response:
                    text = await response.text()
                lag = [
                    float(line.rsplit(" ", 1)[1])
                    for line in text.splitlines()
                    if line.startswith("rueckkanal_status_web_outbox_lag_messages ")
                ]
                if lag == [0.0]:
                    break
                assert time.monotonic() < deadline, f"outbox lag of the survivor: {lag}"
                await asyncio.sleep(0.2)  # polling a metric for a condition, bounded
            async with http.get(f"{internal_b}/healthz") as response:
                assert response.status == 200
    finally:
        replica_a.kill()
        replica_b.terminate()
        await drop_database(database)


async def test_receipts_and_dead_letters_reach_the_figures_but_no_payload_does(
    kafka_bootstrap: str, unique: str, tmp_path: Path
) -> None:
    import sqlite3

    receipts, dlq = f"rk.{unique}.receipts", f"rk.{unique}.dlq"
    await create_topics(kafka_bootstrap, [receipts, dlq], partitions=2)
    uuid = "6f1c1e8e-3b8e-5a0e-9c1d-2f4a8b7c6d5e"
    receipt = {"nachrichtenUUID": uuid, "target": "bundid", "delivered_at": "2025-03-01T10:00:01.500+00:00"}
    await produce(kafka_bootstrap, receipts, [(b"urn:x|1", json.dumps(receipt).encode(), [])] * 2)  # redelivered
    secret = b"Max Mustermann, Musterweg 1"
    headers = [
        ("rk.error.stage", b"delivery"),
        ("rk.error.reason", b"portal_rejected"),
        ("rk.error.target", b"bundid"),
        ("rk.failed_at", b"2025-03-01T10:00:00.000+00:00"),
        ("x-fachverfahren", secret),
    ]
    await produce(kafka_bootstrap, dlq, [(b"urn:x|2", secret, headers), (b"urn:x|3", b"?", [("junk", b"1")])])
    path = tmp_path / "figures.sqlite3"
    base = {
        "RK_KAFKA__BOOTSTRAP": kafka_bootstrap,
        "RK_APP_ID": f"rk-test-{unique}",
        "RK_TOPICS__OUTBOX": f"rk.{unique}.outbox",
    }
    await create_topics(kafka_bootstrap, [base["RK_TOPICS__OUTBOX"]], partitions=1)
    env = status_web_env(base, tmp_path, unique, f"sqlite:///{path}", RK_STATUS_WEB__PUBLISH_TRACKING="false")
    process = CliProcess(["status-web"], env=env, log_file=tmp_path / "sw.log")
    try:
        process.wait_for_event("status-web ready", timeout=60)
        process.wait_for_event("status-web skipped a delivery log record", timeout=60)
        metrics = f"http://127.0.0.1:{env['RK_STATUS_WEB__INTERNAL_PORT']}/metrics"
        async with aiohttp.ClientSession() as http:
            deadline = time.monotonic() + 30
            while True:
                async with http.get(metrics) as response:
                    text = await response.text()
                if 'rueckkanal_status_web_delivery_log_total{kind="receipt"} 2.0' in text and (
                    'rueckkanal_status_web_delivery_log_total{kind="dead_letter"} 1.0' in text
                ):
                    break
                assert time.monotonic() < deadline, text
                await asyncio.sleep(0.2)
    finally:
        process.terminate()
    db = sqlite3.connect(path)
    assert db.execute("SELECT nachrichten_uuid, target, delivered_s FROM delivery").fetchall() == [
        (uuid, "bundid", 1740823201)
    ]
    assert db.execute("SELECT stage, reason, target, failed_s FROM dead_letter").fetchall() == [
        ("delivery", "portal_rejected", "bundid", 1740823200)
    ]
    assert secret not in path.read_bytes() and b"Mustermann" not in (tmp_path / "sw.log").read_bytes()
    db.close()


async def test_status_web_waits_for_the_topics_it_reads_and_says_so_once(
    kafka_bootstrap: str, unique: str, tmp_path: Path
) -> None:
    """Started before the worker created the topics: pages served, not ready, one warning; ready once the outbox
    exists; the figures' topics (receipts, dead letters) waited for apart, without holding the pages back."""
    pipeline = pipeline_env(kafka_bootstrap, unique, tmp_path)
    env = status_web_env(pipeline.env, tmp_path, unique, f"sqlite:///{tmp_path}/status-web.sqlite3")
    waiting = "topics status-web reads do not exist yet; waiting (the worker or the chart's topics job creates them)"
    web = CliProcess(["status-web"], env=env, log_file=tmp_path / "status-web.log")
    try:
        warning = web.wait_for_event(waiting, timeout=60)
        assert warning["missing"] == [pipeline.outbox]
        ready_url = f"http://127.0.0.1:{env['RK_STATUS_WEB__INTERNAL_PORT']}/readyz"
        async with aiohttp.ClientSession() as http:
            async with http.get(ready_url) as response:
                assert response.status == 503
            async with http.get(f"{env['RK_STATUS_WEB__BASE_URL']}/barrierefreiheit") as response:
                assert response.status == 200  # the pages do not wait for Kafka
        await create_topics(kafka_bootstrap, [pipeline.outbox], 3)
        web.wait_for_event("status-web ready", timeout=60)
        figures = web.wait_for_event(waiting, timeout=30)
        assert sorted(figures["missing"]) == sorted([env["RK_TOPICS__RECEIPTS"], env["RK_TOPICS__DLQ"]])
        async with aiohttp.ClientSession() as http, http.get(ready_url) as response:
            assert response.status == 200
        await create_topics(kafka_bootstrap, [env["RK_TOPICS__RECEIPTS"], env["RK_TOPICS__DLQ"]], 3)
        web.wait_for_event("the topics status-web reads exist now", timeout=30)
        assert web.terminate() == 0
    finally:
        if web.proc.poll() is None:
            web.proc.kill()
    repeated = [line for line in web.lines if "not found in cluster metadata" in str(line.get("event"))]
    assert not repeated, f"{len(repeated)} client error lines while waiting"


class _DatabaseTrouble:
    """PostgreSQL refusing every connection to one database, or a session holding its status table locked."""

    def __init__(self, kind: str, database: str) -> None:
        self.kind, self.database, self.name = kind, database, database.rsplit("/", 1)[1]
        self._locker: asyncpg.Connection | None = None
        self._lock: Any = None

    async def begin(self, admin: asyncpg.Connection) -> None:
        if self.kind == "refusing":
            await admin.execute(f'ALTER DATABASE "{self.name}" ALLOW_CONNECTIONS false')
            await admin.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1", self.name)
        else:  # as a long migration or VACUUM FULL would: reads and writes of the table wait
            self._locker = await asyncpg.connect(self.database)
            self._lock = self._locker.transaction()
            await self._lock.start()
            await self._locker.execute("LOCK TABLE status, delivery IN ACCESS EXCLUSIVE MODE")

    async def end(self, admin: asyncpg.Connection) -> None:
        await admin.execute(f'ALTER DATABASE "{self.name}" ALLOW_CONNECTIONS true')
        if self._locker is not None:
            await self._lock.rollback()
            await self._locker.close()
            self._locker = None


@pytest.mark.parametrize("trouble", ["refusing", "locked"])
async def test_database_trouble_is_waited_out_without_a_restart_and_the_pages_say_so(
    kafka_bootstrap: str, unique: str, tmp_path: Path, trouble: str
) -> None:
    """PostgreSQL refuses every connection to status-web's database, or a session holds its table locked, for longer
    than ``web.stall_after_s`` while a status and a receipt wait: the page answers 503 with Retry-After instead of
    hanging, ``/healthz`` stays 200 (a restart would not cure it), the refusals of both readers are counted; once the
    database answers the status is stored and shown, and the receipt reaches the figures."""
    outbox = f"rk.{unique}.outbox"
    await create_topics(kafka_bootstrap, [outbox], partitions=3)
    first, second = outbox_records(hundesteuer_events("outage", vorgaenge=1, steps=2))  # topic and database are new
    vorgang_id = first[0].decode().split("|", 1)[1]  # the outbox key is the Vorgang key: source|id
    receipts = f"rk.{unique}.receipts"
    await create_topics(kafka_bootstrap, [receipts, f"rk.{unique}.dlq"], partitions=1)
    receipt_uuid = "0d5c3e0a-8b6f-5c1e-9a7d-3e2f1b0c4d5a"
    receipt = {"nachrichtenUUID": receipt_uuid, "target": "bundid", "delivered_at": "2025-03-01T10:00:01.500+00:00"}
    database = await fresh_database(admin_dsn())
    base = {"RK_KAFKA__BOOTSTRAP": kafka_bootstrap, "RK_APP_ID": f"rk-test-{unique}", "RK_TOPICS__OUTBOX": outbox}
    stall_after_s = 3
    api_token = "integration-test-api-token"  # noqa: S105  # the throwaway token of this test's link API
    env = status_web_env(
        base,
        tmp_path,
        unique,
        database,
        RK_STATUS_WEB__PUBLISH_TRACKING="false",
        RK_STATUS_WEB__API_TOKEN=api_token,
        RK_STATUS_WEB__PAGE_DEADLINE_S="1",
        RK_WEB__STALL_AFTER_S=str(stall_after_s),
        # web.stall_after_s must exceed the delivery's longest quiet time and status-web's store deadline (settings
        # checks): shortened with it
        RK_STATUS_WEB__STORE_DEADLINE_S="1",
        RK_DELIVERY__RETRY_MAX_DELAY_S="1",
        RK_DELIVERY__RETRY_AFTER_CAP_S="1",
        RK_DELIVERY__BREAKER_MAX_OPEN_S="1",
        RK_PORTAL__TIMEOUTS__TOTAL_S="1",
    )
    internal = f"http://127.0.0.1:{env['RK_STATUS_WEB__INTERNAL_PORT']}"
    web = CliProcess(["status-web"], env=env, log_file=tmp_path / "status-web.log")
    admin = await asyncpg.connect(admin_dsn())
    problem = _DatabaseTrouble(trouble, database)
    try:
        web.wait_for_event("status-web ready", timeout=60)
        # without a page deadline a request would wait for the lock until this client gives up: the test fails
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=20)) as http:
            async with http.post(
                f"{internal}/api/v1/links",
                json={"fachverfahren": "hundesteuer", "vorgangId": vorgang_id},
                headers={"Authorization": f"Bearer {api_token}"},
            ) as response:
                assert response.status == 201, await response.text()
                url = (await response.json())["url"]
            await produce(kafka_bootstrap, outbox, [first], crc32_partitioner)
            deadline = time.monotonic() + 30
            page = await _page(http, url)
            while page is None or "Antrag eingegangen" not in page:
                assert time.monotonic() < deadline, "the first status never appeared"
                page = await _page(http, url)

            await problem.begin(admin)
            await produce(kafka_bootstrap, outbox, [second], crc32_partitioner)
            await produce(kafka_bootstrap, receipts, [(b"urn:x|1", json.dumps(receipt).encode(), [])])
            refused = "status-web could not store a batch, reading it again"
            web.wait_for_event(refused, timeout=30)
            web.wait_for_event("status-web could not store a delivery log batch, reading it again", timeout=30)
            started = time.monotonic()
            # the liveness probe looks while the status waits (the stall clock starts at a look), and again later
            async with http.get(f"{internal}/healthz") as response:
                assert response.status == 200, await response.text()
            while time.monotonic() - started < 2 * stall_after_s:  # refusals for longer than the stall time
                web.wait_for_event(refused, timeout=30)
            async with http.get(f"{internal}/healthz") as response:
                assert response.status == 200, await response.text()
            async with http.get(url) as response:
                body = await response.text()
                assert response.status == 503 and response.headers["Retry-After"] == "60"
                assert "Vorübergehend nicht verfügbar" in body and "Antrag eingegangen" not in body
            async with http.get(f"{internal}/metrics") as response:
                metrics = await response.text()
            errors = {
                reader: float(line.rsplit(" ", 1)[1])
                for reader in ("outbox", "delivery_log")
                for line in metrics.splitlines()
                if line.startswith(f'rueckkanal_status_web_store_errors_total{{reader="{reader}"}} ')
            }
            assert errors["outbox"] >= 3 and errors["delivery_log"] >= 1, errors

            await problem.end(admin)
            deadline = time.monotonic() + 30
            page = await _page(http, url)
            while page is None or '<p class="status">Antrag angelegt</p>' not in page:
                assert time.monotonic() < deadline, "the status waiting through the trouble never appeared"
                page = await _page(http, url)
            async with http.get(f"{internal}/healthz") as response:
                assert response.status == 200
            figures = await asyncpg.connect(database)
            try:
                deadline = time.monotonic() + 30
                query = "SELECT target FROM delivery WHERE nachrichten_uuid = $1"
                while await figures.fetchval(query, receipt_uuid) != "bundid":
                    assert time.monotonic() < deadline, "the receipt that waited never reached the figures"
                    await asyncio.sleep(0.2)
            finally:
                await figures.close()
        assert web.terminate() == 0
        assert not [line for line in web.lines if line.get("event") == "Traceback" or "exception" in line]
    finally:
        if web.proc.poll() is None:
            web.proc.kill()
        await problem.end(admin)
        await admin.close()
        await drop_database(database)
