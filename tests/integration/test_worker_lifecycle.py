"""`rueckkanal worker` joins its consumer group on the real broker and leaves cleanly on SIGTERM."""

from __future__ import annotations

from pathlib import Path

from aiokafka.admin import AIOKafkaAdminClient

from tests.support.pipeline import pipeline_env
from tests.support.processes import CliProcess, free_port


async def _group_members(bootstrap: str, group: str) -> int:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        described = await admin.describe_consumer_groups([group])
    finally:
        await admin.close()
    # DescribeGroups v0+: (error_code, group_id, state, protocol_type, protocol, members, ...)
    return sum(len(group[5]) for group in described[0].groups)


async def test_worker_joins_group_and_exits_cleanly_on_sigterm(
    kafka_bootstrap: str, unique: str, tmp_path: Path
) -> None:
    pipeline = pipeline_env(kafka_bootstrap, unique, tmp_path, partitions=2, web_port=free_port())
    app_id = pipeline.app_id
    worker = CliProcess(["worker"], env=pipeline.env)
    try:
        ready = worker.wait_for_event("worker ready", timeout=90)
        assert ready["app_id"] == app_id
        assert await _group_members(kafka_bootstrap, app_id) == 1
    finally:
        code = worker.terminate()
    assert code == 0, worker.lines[-10:]
    assert any("Signal received: 15" in str(line.get("event")) for line in worker.lines)
    assert await _group_members(kafka_bootstrap, app_id) == 0
