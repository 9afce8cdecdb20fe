"""A Statusberichtigung (0102) end to end: real broker, a real ``rueckkanal worker`` (ingest and delivery) and a
real ``rueckkanal portal-sim``.

The example Vorgang HST-2024-000205 (100, 300, then a 0102 that corrects the amount of the 300) goes in at the
Fachverfahren's topic; the portal stores all three messages and its status page shows two steps, the payment
request replaced by its correction and marked "(berichtigt)". A correction of an event that was never sent is
dead-lettered with ``correction_unknown``. Completion is read from the broker's committed offsets.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import aiohttp

from adapters.inbound.samples import read_sample
from tests.support.kafka_io import Record, create_topics, produce, read_all, wait_until_caught_up
from tests.support.pipeline import PipelineEnv, pipeline_env
from tests.support.portal import portal_sim
from tests.support.processes import CliProcess, free_port

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "config" / "examples" / "hundesteuer"
VORGANG = "HST-2024-000205"
PARTITIONS = 2


def _record(path: Path, topic: str, *, ce_id: str | None = None, **data: str) -> Record:
    """An example file as the Kafka record its Fachverfahren publishes; ``ce_id`` and ``data`` change it."""
    inbound = read_sample(path).record(topic)
    value = inbound.value
    if data and value is not None:
        value = json.dumps({**json.loads(value), **data}).encode()
    headers = [(name, ce_id.encode() if name == "ce_id" and ce_id else v) for name, v in inbound.headers]
    return inbound.key, value, headers


@contextmanager
def worker(env: dict[str, str], log_file: Path) -> Iterator[CliProcess]:
    process = CliProcess(["worker", "--role", "all"], env=env, log_file=log_file)
    try:
        process.wait_for_event("worker ready", timeout=120)
        yield process
    finally:
        process.terminate()


async def _settled(bootstrap: str, pipeline: PipelineEnv) -> None:
    ingest = [*pipeline.source_topics.values(), pipeline.events]
    await wait_until_caught_up(bootstrap, pipeline.app_id, ingest, within_s=180)
    await wait_until_caught_up(bootstrap, f"{pipeline.app_id}.delivery", [pipeline.outbox], within_s=180)


async def test_a_correction_is_delivered_and_the_portal_shows_the_corrected_timeline(
    kafka_bootstrap: str, unique: str, tmp_path: Path
) -> None:
    pipeline = pipeline_env(kafka_bootstrap, unique, tmp_path, partitions=PARTITIONS, web_port=free_port())
    await create_topics(kafka_bootstrap, pipeline.source_topics.values(), PARTITIONS)
    topic = pipeline.source_topics["hundesteuer"]
    files = sorted(EXAMPLES.glob("hst-000205-*.json"))
    assert [path.name.split("-")[-1] for path in files] == ["100.json", "300.json", "0102.json"]
    records = [_record(path, topic) for path in files]
    never_sent = _record(files[-1], topic, ce_id="hst-evt-000205-99", berichtigtEventId="hst-evt-000205-77")

    with portal_sim(tmp_path / "portal.sqlite3") as portal:
        env = {**pipeline.env, "RK_PORTAL__URL": portal.url, "RK_DELIVERY__RETRY_BASE_DELAY_S": "0.05"}
        with worker(env, tmp_path / "worker.log"):
            await produce(kafka_bootstrap, topic, [*records, never_sent])
            await _settled(kafka_bootstrap, pipeline)
        stored = (await portal.nachrichten([VORGANG]))[VORGANG]
        async with aiohttp.ClientSession() as session, session.get(f"{portal.base}/status/{VORGANG}") as response:
            assert response.status == 200
            page = await response.text()

    assert [n["sequence"] for n in stored] == [1, 2, 3]  # the correction is a message of its own
    steps = page.split("<ol>", 1)[1].split("</ol>", 1)[0].split("<li>")[1:]
    assert len(steps) == 2  # the correction stands in the place of the payment request
    assert "(berichtigt)" in steps[1] and "(berichtigt)" not in steps[0]
    assert "Bitte zahlen Sie die Hundesteuer" in steps[1]

    [letter] = await read_all(kafka_bootstrap, pipeline.dlq)
    assert dict(letter.headers)["rk.error.reason"] == b"correction_unknown"
    receipts = await read_all(kafka_bootstrap, pipeline.receipts)
    assert len([r for r in receipts if r.key is not None and VORGANG.encode() in r.key]) == 3
