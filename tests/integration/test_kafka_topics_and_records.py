"""Against the real broker: topics are created with their durability configs and checked at start, faust's
producer is idempotent, and a record whose header key is not UTF-8 (as librdkafka writes it) costs only itself."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import aiokafka.consumer.fetcher
import pytest
from aiokafka import AIOKafkaConsumer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.record import memory_records

from rueckkanal.settings import KafkaSettings, Settings, TopicSettings
from streams import kafka_records
from streams.app import create_pipeline
from streams.topics import (
    check_limits,
    check_topic_configs,
    ensure_topics,
    max_message_bytes,
    pipeline_topics,
    topic_configs,
)
from tests.support.pipeline import ROOT, pipeline_env
from tests.support.processes import CliProcess, free_port

DAY_MS = 24 * 60 * 60 * 1000
NOT_UTF8 = b"\xffrk\xfe"


async def test_topics_are_created_with_min_insync_replicas_and_retention_and_pass_the_check(
    kafka_bootstrap: str, unique: str
) -> None:
    topics = TopicSettings(
        events=f"rk.{unique}.events",
        outbox=f"rk.{unique}.outbox",
        dlq=f"rk.{unique}.dlq",
        receipts=f"rk.{unique}.receipts",
        partitions=2,
        dlq_retention_ms=400 * DAY_MS,
        receipts_retention_ms=30 * DAY_MS,
    )
    admin = AIOKafkaAdminClient(bootstrap_servers=kafka_bootstrap)
    await admin.start()
    try:
        await ensure_topics(admin, pipeline_topics(Settings(topics=topics), []))
        configs = await topic_configs(admin, [topics.events, topics.outbox, topics.dlq, topics.receipts])
    finally:
        await admin.close()
    assert configs[topics.dlq]["retention.ms"] == str(400 * DAY_MS)
    assert configs[topics.receipts]["retention.ms"] == str(30 * DAY_MS)
    assert {configs[t]["min.insync.replicas"] for t in configs} == {"1"}  # the test broker has one replica
    assert check_topic_configs(topics, configs) == []
    dlq_limit = max_message_bytes(configs, topics.dlq)  # the broker's default: the topic sets none
    assert dlq_limit == int(configs[topics.dlq]["max.message.bytes"])
    limits = {
        f"{name}_max_message_bytes": max_message_bytes(configs, getattr(topics, name))
        for name in ("events", "outbox", "dlq")
    }
    assert check_limits({"hundesteuer": 256 * 1024}, 1024 * 1024, **limits) <= dlq_limit


async def test_the_worker_refuses_to_start_on_a_dlq_that_expires_dead_letters_early(
    kafka_bootstrap: str, unique: str, tmp_path: Path
) -> None:
    pipeline = pipeline_env(kafka_bootstrap, unique, tmp_path, partitions=2, web_port=free_port())
    admin = AIOKafkaAdminClient(bootstrap_servers=kafka_bootstrap)
    await admin.start()
    try:
        await admin.create_topics([NewTopic(pipeline.dlq, 2, 1, topic_configs={"retention.ms": str(7 * DAY_MS)})])
    finally:
        await admin.close()
    worker = CliProcess(["worker"], env=pipeline.env)
    try:
        refusal = worker.wait_for_event("refusing to start", timeout=90)
    finally:
        code = worker.terminate()
    assert refusal["reason"] == "config_invalid"
    assert pipeline.dlq in refusal["error"] and "retention.ms" in refusal["error"]
    assert code != 0
    assert not any(line.get("event") == "worker ready" for line in worker.lines)


async def test_faust_s_producer_gets_a_producer_id_from_the_broker(kafka_bootstrap: str, tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path, kafka=KafkaSettings(bootstrap=kafka_bootstrap))
    client = create_pipeline(settings).app.producer._new_producer()
    await client.start()
    try:
        assert client._txn_manager is not None
        assert client._txn_manager.producer_id >= 0  # InitProducerId answered: writes carry sequence numbers
    finally:
        await client.stop()


def _kcat() -> str:
    """kcat, a librdkafka producer (Debian package, installed by ``bash scripts/tools.sh ensure``)."""
    env = subprocess.run(["bash", str(ROOT / "scripts" / "tools.sh"), "env"], capture_output=True, text=True)
    tools_bin = dict(line.split("=", 1) for line in env.stdout.splitlines() if "=" in line).get("RK_TOOLS_BIN", "")
    found = shutil.which("kcat") or shutil.which("kcat", path=tools_bin)
    assert found, "kcat is missing: run `bash scripts/tools.sh ensure`"
    return found


def _produce_with_kcat(bootstrap: str, topic: str, compression: str) -> list[bytes]:
    """Good records around two whose header key is not UTF-8, all on partition 0, as a Fachverfahren might write
    them: each line one record, one batch per kcat run."""
    runs: list[tuple[list[bytes], list[bytes]]] = [
        ([b"good-1"], [b"-H", b"ce_id=1"]),
        ([b"poison-1", b"poison-2"], [b"-H", NOT_UTF8 + b"=x", b"-H", b"ce_id=2"]),
        ([b"good-2", b"good-3"], [b"-H", b"ce_id=3"]),
    ]
    kcat = _kcat().encode()
    for values, headers in runs:
        args = [kcat, b"-P", b"-b", bootstrap.encode(), b"-t", topic.encode(), b"-p", b"0", b"-K", b":"]
        args += [b"-z", compression.encode(), *headers]
        lines = b"".join(b"4711:" + value + b"\n" for value in values)
        subprocess.run(args, input=lines, check=True, capture_output=True, timeout=60)
    return [value for values, _ in runs for value in values]


async def _read(bootstrap: str, topic: str, expected: int) -> list[aiokafka.structs.ConsumerRecord[bytes, bytes]]:
    consumer = AIOKafkaConsumer(topic, bootstrap_servers=bootstrap, auto_offset_reset="earliest")
    await consumer.start()
    records: list[aiokafka.structs.ConsumerRecord[bytes, bytes]] = []
    try:
        while len(records) < expected:
            batch = await consumer.getmany(timeout_ms=10_000)
            assert batch, f"read {len(records)} of {expected} records, then nothing"
            for part in batch.values():
                records.extend(part)
    finally:
        await consumer.stop()
    return records


@pytest.mark.parametrize("compression", ["none", "gzip"])
async def test_a_header_key_that_is_not_utf8_costs_only_its_record(
    kafka_bootstrap: str, unique: str, compression: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    topic = f"fv.poison-header.{unique}"
    admin = AIOKafkaAdminClient(bootstrap_servers=kafka_bootstrap)
    await admin.start()
    try:
        await admin.create_topics([NewTopic(topic, 1, 1)])
    finally:
        await admin.close()
    values = _produce_with_kcat(kafka_bootstrap, topic, compression)

    with monkeypatch.context() as plain:  # aiokafka as it comes: the partition cannot get past the record
        plain.setattr(aiokafka.consumer.fetcher, "MemoryRecords", memory_records.MemoryRecords)
        with pytest.raises(UnicodeDecodeError):
            await _read(kafka_bootstrap, topic, len(values))

    kafka_records.install_record_reader()
    records = await _read(kafka_bootstrap, topic, len(values))
    assert [r.value for r in sorted(records, key=lambda r: r.offset)] == values
    for poison in (r for r in records if r.value.startswith(b"poison")):
        (key, value), rest = poison.headers[0], poison.headers[1:]
        with pytest.raises(UnicodeEncodeError):
            key.encode("utf-8")  # what the ingest refuses as invalid_encoding
        assert (key.encode("utf-8", "surrogateescape"), value, rest) == (NOT_UTF8, b"x", (("ce_id", b"2"),))
    assert [r.headers for r in records if r.value.startswith(b"good")] == [
        (("ce_id", b"1"),),
        (("ce_id", b"3"),),
        (("ce_id", b"3"),),
    ]
