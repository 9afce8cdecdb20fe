"""Fuzzed source records through both ingest paths and through ``dlq replay``, against a real ingest worker.

Hypothesis draws the records up front from the run's seed (see fuzz_records.py); one worker per path then takes
them all. Paths: in place (the source topic has the pipeline's partition count and is keyed by Vorgang id, written
with librdkafka's ``murmur2_random`` as the Java client would) and rerouted (a source with another partition
count). Invariants: the worker never exits; every record ends in the outbox or in the DLQ; a dead letter's
provenance is where the record was really read (``rk.original.topic/partition/offset``) and the configured
Fachverfahren (``rk.source``), each pipeline header once; replay writes only to the source topic, never to a topic a
forged header names, and never puts a raw record in the outbox.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest
from aiokafka.structs import ConsumerRecord

from rueckkanal.xoev import nachrichten_uuid
from tests.chaos.fuzz_records import FuzzCase, draw_cases
from tests.support.chaos import ChaosReport
from tests.support.events import SOURCE
from tests.support.flow import ingest_caught_up
from tests.support.foreign import produce_librdkafka
from tests.support.kafka_io import create_topics, end_offsets, read_all
from tests.support.pipeline import pipeline_env
from tests.support.processes import CliProcess, free_port

PARTITIONS = 4
CASES = 30  # per path: every fifth close to 1 MB, so about 6 MB through each worker
SOURCE_PARTITIONS = {"in_place": PARTITIONS, "rerouted": 3}
FACHVERFAHREN = "hundesteuer"


def _one(record: ConsumerRecord[bytes, bytes], name: str) -> bytes:
    values = [v for k, v in record.headers if k == name]
    assert len(values) == 1, f"{name} appears {len(values)} times on a dead letter"
    return values[0]


def _check_letter(letter: ConsumerRecord[bytes, bytes], source_topic: str) -> tuple[int, int]:
    """The dead letter's provenance is the consumer's own view; returns (partition, offset) it names."""
    assert _one(letter, "rk.original.topic") == source_topic.encode()
    assert _one(letter, "rk.source") == FACHVERFAHREN.encode()
    assert _one(letter, "rk.error.stage") == b"ingest"
    _one(letter, "rk.error.reason")
    return int(_one(letter, "rk.original.partition")), int(_one(letter, "rk.original.offset"))


@pytest.mark.parametrize("path", ["in_place", "rerouted"])
async def test_fuzzed_records_end_in_outbox_or_dlq_with_true_provenance_and_replay_stays_on_allowed_topics(
    path: str, kafka_bootstrap: str, unique: str, tmp_path: Path, chaos_report: ChaosReport
) -> None:
    bootstrap = kafka_bootstrap
    pipeline = pipeline_env(bootstrap, unique, tmp_path, partitions=PARTITIONS, web_port=free_port())
    source = pipeline.source_topics[FACHVERFAHREN]
    decoy = f"rk.{unique}.decoy"
    others = [t for name, t in pipeline.source_topics.items() if name != FACHVERFAHREN]
    await create_topics(bootstrap, [*others, decoy], PARTITIONS)
    await create_topics(bootstrap, [source], SOURCE_PARTITIONS[path])
    decoys = [decoy, pipeline.outbox, pipeline.events, pipeline.dlq, pipeline.receipts, *others]
    cases = draw_cases(chaos_report.seed + SOURCE_PARTITIONS[path], unique, decoys, CASES)
    print(f"\nfuzz {path}: {Counter(c.kind for c in cases)}, seed {chaos_report.seed + SOURCE_PARTITIONS[path]}")

    log_file = tmp_path / "worker.log"
    worker = CliProcess(["worker", "--role", "ingest"], env=pipeline.env, log_file=log_file)
    try:
        worker.wait_for_event("worker ready", timeout=120)
        landed = await asyncio.to_thread(
            produce_librdkafka,
            bootstrap,
            source,
            [c.record for c in cases],
            "murmur2_random",
            **{"message.max.bytes": 2 * 1024 * 1024},
        )
        await ingest_caught_up(bootstrap, pipeline)
        first_outbox = await read_all(bootstrap, pipeline.outbox)
        first_dlq = await read_all(bootstrap, pipeline.dlq)
        exited_after_ingest = worker.proc.poll()

        before = await end_offsets(bootstrap, [decoy, pipeline.receipts, *others])
        replay = await asyncio.to_thread(
            subprocess.run,
            [sys.executable, "-m", "streams", "dlq", "replay"],
            env={**os.environ, **pipeline.env},
            capture_output=True,
            text=True,
            timeout=180,
        )
        await ingest_caught_up(bootstrap, pipeline)
        after = await end_offsets(bootstrap, [decoy, pipeline.receipts, *others])
        outbox = await read_all(bootstrap, pipeline.outbox)
        dlq = await read_all(bootstrap, pipeline.dlq)
        exited = worker.proc.poll()
    finally:
        code = worker.terminate()

    where = {pos: case for pos, case in zip(landed, cases, strict=True)}
    letters = {_check_letter(letter, source) for letter in first_dlq}
    outbox_uuids = {dict(r.headers).get("nachrichtenUUID", b"").decode() for r in first_outbox}

    lost: list[FuzzCase] = []
    for pos, case in where.items():
        delivered = case.event_id is not None and nachrichten_uuid(SOURCE, case.event_id) in outbox_uuids
        if not delivered and pos not in letters:
            lost.append(case)
        if case.kind != "valid":
            assert pos in letters, f"a {case.kind} record at {pos} is not in the DLQ"
    for record in outbox:
        assert (record.value or b"").lstrip().startswith(b"<"), "a raw record reached the outbox"
        assert dict(record.headers).get("rk.source") == FACHVERFAHREN.encode()
        assert all(n <= 1 for n in Counter(k for k, _ in record.headers if k.startswith("rk.")).values())
    replayed_letters = dlq[len(first_dlq) :]
    for letter in replayed_letters:
        _check_letter(letter, source)
    hostile_headers = sum(
        1
        for c in cases
        for k, _ in c.record[2]
        if not (isinstance(k, str) and (k.startswith("ce_") or k == "content-type"))
    )
    chaos_report.add(
        f"fuzz_ingest_{path}",
        records_tried=len(cases) + len(first_dlq),
        faults_injected=hostile_headers + sum(1 for c in cases if c.kind != "valid"),
        kinds=dict(Counter(c.kind for c in cases)),
        lost=len(lost),
        misordered=0,
        worker_exits=int(exited is not None),
        dead_lettered=len(first_dlq),
        replayed=len(first_dlq),
    )

    assert exited_after_ingest is None and exited is None, f"the ingest worker exited; see {log_file}"
    assert code == 0, f"unclean shutdown ({code}); see {log_file}"
    assert not lost, f"{len(lost)} records neither in the outbox nor in the DLQ: {[c.vorgang_id for c in lost]}"
    assert replay.returncode == 0, replay.stderr[-2000:]
    assert f"replayed {len(first_dlq)} record(s)" in replay.stdout
    assert after == before, "replay wrote to a topic other than the source (a forged header named it)"
    # every replayed record was read again from the source topic and refused again (nothing in it became valid)
    assert len(replayed_letters) == len(first_dlq)
    assert len(outbox) == len(first_outbox)
