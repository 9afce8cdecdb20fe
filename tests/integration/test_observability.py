"""A running worker seen from outside: scraped by a real Prometheus, its /readyz following the consumer group, and
its JSON log free of Vorgang ids, payloads and secrets."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

from tests.integration.test_status_web import status_web_env
from tests.ops.logcheck import leaks, unstructured
from tests.ops.prometheus import poll, prometheus
from tests.ops.tooling import alert_rules, catalogue_samples, dashboard_exprs, referenced_metrics
from tests.support.processes import CliProcess, free_port
from tests.support.zbp_ca import SigningPair

WORKER_START_TIMEOUT = 120


def _worker_env(kafka_bootstrap: str, unique: str, tmp_path: Path, **extra: str) -> dict[str, str]:
    """A worker with its own consumer group and its own pipeline topics, so no other test's records reach it."""
    return {
        "RK_KAFKA__BOOTSTRAP": kafka_bootstrap,
        "RK_APP_ID": f"rk-obs-{unique}",
        "RK_TOPICS__EVENTS": f"rk-obs-{unique}.events",
        "RK_TOPICS__OUTBOX": f"rk-obs-{unique}.outbox",
        "RK_TOPICS__DLQ": f"rk-obs-{unique}.dlq",
        "RK_TOPICS__RECEIPTS": f"rk-obs-{unique}.receipts",
        "RK_TOPICS__PARTITIONS": "2",
        "RK_WEB__PORT": str(free_port()),
        "RK_DATA_DIR": str(tmp_path / "data"),
        **extra,
    }


@contextmanager
def running_worker(env: dict[str, str]) -> Iterator[CliProcess]:
    worker = CliProcess(["worker"], env=env)
    try:
        yield worker
    finally:
        code = worker.terminate()
        assert code == 0, f"worker exited with {code}: {worker.lines[-10:]}"


def _get(url: str) -> tuple[int, Any] | None:
    """(status, JSON body) of a GET, or None while nothing listens yet."""
    try:
        with urllib.request.urlopen(url, timeout=3) as response:  # noqa: S310
            return response.status, json.load(response)
    except urllib.error.HTTPError as exc:
        return exc.code, json.load(exc)
    except OSError:
        return None


def _status(url: str) -> int:
    try:
        with urllib.request.urlopen(url, timeout=3) as response:  # noqa: S310
            return int(response.status)
    except urllib.error.HTTPError as exc:
        return exc.code


def _text(url: str) -> str:
    with urllib.request.urlopen(url, timeout=3) as response:  # noqa: S310
        return str(response.read().decode())


def _log_time(line: dict[str, Any]) -> datetime:
    return datetime.fromisoformat(str(line["timestamp"]).replace("Z", "+00:00"))


def test_readyz_is_503_until_the_worker_owns_partitions_then_200(
    kafka_bootstrap: str, unique: str, tmp_path: Path
) -> None:
    env = _worker_env(kafka_bootstrap, unique, tmp_path)
    url = f"http://127.0.0.1:{env['RK_WEB__PORT']}/readyz"
    answers: list[tuple[datetime, int, Any]] = []

    def ready() -> bool:
        got = _get(url)
        if got is not None:
            answers.append((datetime.now(UTC), *got))
        return got is not None and got[0] == 200

    with running_worker(env) as worker:
        poll(ready, timeout=WORKER_START_TIMEOUT, interval=0.05, what="/readyz 200")
        assigned = worker.wait_for_event("partitions assigned", timeout=30)
        health = _get(f"http://127.0.0.1:{env['RK_WEB__PORT']}/healthz")
        # The sampler reports what this lone worker owns: both partitions of its events topic.
        # faust's own views that would expose table contents and internals are off.
        base = f"http://127.0.0.1:{env['RK_WEB__PORT']}"
        hidden = {path: _status(base + path) for path in ("/table/", "/router/", "/graph/", "/assignment/")}
        index = _get(base + "/")
        owned = 'rueckkanal_assigned_partitions{stage="lifecycle",target=""} 2.0'
        poll(lambda: owned in _text(f"http://127.0.0.1:{env['RK_WEB__PORT']}/metrics"), timeout=45, what=owned)

    _, first_status, first_body = answers[0]
    assert first_status == 503, answers[:3]
    assert first_body["status"] == "not ready"
    assert any(name.endswith("partitions") for name in first_body["reasons"]), first_body
    ready_at, _, ready_body = answers[-1]
    assert ready_body["status"] == "ready" and ready_body["reasons"] == {}
    assert ready_body["conditions"]["faust.partitions"] is True
    assert all(ready_body["conditions"].values())
    assert assigned["active_partitions"] > 0
    # Ready only once the consumer owned partitions: the first 200 came after faust's assignment was logged.
    assert ready_at >= _log_time(assigned), (ready_at, assigned)
    assert all(status == 503 for at, status, _ in answers if at < _log_time(assigned))
    assert health is not None and health[0] == 200 and health[1]["status"] == "ok"
    assert hidden == dict.fromkeys(hidden, 404)
    assert index == (200, {"status": "OK"})


def test_prometheus_scrapes_every_metric_of_the_catalogue_the_dashboard_and_the_alerts(
    kafka_bootstrap: str, unique: str, tmp_path: Path, zbp_signing: SigningPair
) -> None:
    # Both kinds of delivery target, so that the ZBP's own series are there too (its endpoint need not answer).
    env = _worker_env(
        kafka_bootstrap,
        unique,
        tmp_path,
        RK_TARGETS__ZBP__ADAPTER="zbp",
        RK_TARGETS__ZBP__STATUS_URL="http://127.0.0.1:9/zbp/v6/status",
        RK_TARGETS__ZBP__MESSAGE_URL="http://127.0.0.1:9/zbp/v6/message",
        RK_TARGETS__ZBP__SIGNING_KEY=str(zbp_signing.key_path),
        RK_TARGETS__ZBP__SIGNING_CERT=str(zbp_signing.cert_path),
    )
    target = f"127.0.0.1:{env['RK_WEB__PORT']}"
    # status-web exports its own series (the step durations of the dashboard among them) on its internal port.
    site_env = status_web_env(
        {k: env[k] for k in ("RK_KAFKA__BOOTSTRAP", "RK_APP_ID", "RK_TOPICS__OUTBOX")},
        tmp_path,
        unique,
        f"sqlite:///{tmp_path / 'status-web.sqlite3'}",
        RK_STATUS_WEB__PUBLISH_TRACKING="false",
    )
    site_target = f"127.0.0.1:{site_env['RK_STATUS_WEB__INTERNAL_PORT']}"
    expected = set(catalogue_samples()) | referenced_metrics()
    jobs = {"rueckkanal": [target], "rueckkanal-status-web": [site_target]}
    with running_worker(env) as worker, prometheus(tmp_path, jobs) as prom:
        worker.wait_for_event("worker ready", timeout=WORKER_START_TIMEOUT)  # the worker creates the outbox
        site = CliProcess(["status-web"], env=site_env, log_file=tmp_path / "status-web.log")
        try:
            site.wait_for_event("status-web ready", timeout=WORKER_START_TIMEOUT)
            _scraped_everything(prom, [target, site_target], expected)
        finally:
            site.terminate()


def _scraped_everything(prom: Any, targets: list[str], expected: set[str]) -> None:
    """Every expected series is in Prometheus, and every dashboard query and alert expression evaluates on it."""

    def scraped_up() -> bool:
        up = {t["labels"]["instance"] for t in prom.targets() if t["health"] == "up"}
        return set(targets) <= up

    poll(scraped_up, timeout=60, what=f"prometheus scraping {targets}")
    try:
        poll(lambda: expected <= prom.names(), timeout=60, what="every expected metric in prometheus")
    except TimeoutError:
        missing = sorted(expected - prom.names())
        pytest.fail(f"not scraped from the running worker and status-web: {missing}")
    # Every query of the dashboard and every alert expression evaluates against the scraped data.
    queries = [
        expr.replace("$__rate_interval", "1m").replace("$job", "rueckkanal").replace("$instance", ".*")
        for expr in dashboard_exprs()
    ] + [rule["expr"] for rule in alert_rules()]
    for query in queries:
        answer = prom.api("query", query=query)
        assert answer["status"] == "success", (query, answer)
    up = prom.api("query", query='up{job="rueckkanal"}')["data"]["result"]
    assert [sample["value"][1] for sample in up] == ["1"]


# Markers that must never reach a log line: extend with the Vorgang ids and payload fragments of any traffic a test
# sends through the worker.
SASL_PASSWORD_MARKER = "sasl-geheim-7f3a9c"  # noqa: S105  # a marker to search for, not a credential


async def _send(bootstrap: str, topic: str, records: list[tuple[bytes, bytes, list[tuple[str, bytes]]]]) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all")
    await producer.start()
    try:
        for key, value, headers in records:
            await producer.send_and_wait(topic, value, key=key, headers=headers)
    finally:
        await producer.stop()


async def _keys_on(bootstrap: str, topic: str, wanted: set[bytes], timeout_s: float) -> set[bytes]:
    """Read topic from the start until every wanted key was seen or the time is up; return the keys seen."""
    consumer = AIOKafkaConsumer(
        topic, bootstrap_servers=bootstrap, auto_offset_reset="earliest", enable_auto_commit=False
    )
    await consumer.start()
    seen: set[bytes] = set()
    try:
        loop_deadline = datetime.now(UTC).timestamp() + timeout_s
        while not wanted <= seen and datetime.now(UTC).timestamp() < loop_deadline:
            batch = await consumer.getmany(timeout_ms=1000)
            seen |= {record.key for records in batch.values() for record in records if record.key}
    finally:
        await consumer.stop()
    return seen


async def test_worker_log_holds_no_vorgang_ids_payloads_or_secrets(
    kafka_bootstrap: str, unique: str, tmp_path: Path
) -> None:
    vorgang_ids = [f"VG-LEAK-{unique}-1", f"VG-LEAK-{unique}-2"]
    payload_markers = [f"Mustermann-{unique}", f"DE02120300000000{unique[:6]}"]
    env = _worker_env(
        kafka_bootstrap,
        unique,
        tmp_path,
        RK_KAFKA__SASL_PASSWORD=SASL_PASSWORD_MARKER,  # unused with PLAINTEXT, but loaded and must stay masked
    )
    # Records that are not canonical events, on the events topic: the lifecycle stage must dead-letter them,
    # and in doing so log about them, without their key or value.
    records = [
        (
            f"hundesteuer/{vorgang_id}".encode(),
            json.dumps({"vorgangId": vorgang_id, "name": payload_markers[0], "iban": payload_markers[1]}).encode(),
            [("traceparent", b"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01")],
        )
        for vorgang_id in vorgang_ids
    ]
    with running_worker(env) as worker:
        worker.wait_for_event("worker ready", timeout=WORKER_START_TIMEOUT)
        await _send(kafka_bootstrap, env["RK_TOPICS__EVENTS"], records)
        wanted = {key for key, _, _ in records}
        dead_lettered = await _keys_on(kafka_bootstrap, env["RK_TOPICS__DLQ"], wanted, timeout_s=60)
        assert wanted <= dead_lettered, "the worker did not process the test records"
    lines = worker.lines
    assert lines, "the worker logged nothing"
    assert not unstructured(lines), unstructured(lines)[:5]
    found = leaks(lines, [*vorgang_ids, *payload_markers, SASL_PASSWORD_MARKER])
    assert not found, found[:5]
