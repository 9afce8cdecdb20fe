"""One record costs only itself, against the real broker: forged pipeline headers and a record of about 1 MB.

A real ``rueckkanal worker --role ingest`` process reads a Fachverfahren topic on which a record carries headers
named like the pipeline's own, and one whose dead-letter copy cannot be written (over the producer's record limit).
The worker must never exit; both records end in the DLQ with the provenance the consumer saw, the large one as a
stub; later events of the same partition still reach the outbox.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from pathlib import Path

from aiokafka.partitioner import DefaultPartitioner
from aiokafka.structs import ConsumerRecord

from tests.integration.test_ingest import PARTITIONS, _caught_up, _setup, _with_status, ingest_worker
from tests.support.events import hundesteuer_events
from tests.support.kafka_io import produce, read_all
from tests.support.processes import CliProcess, LogLine

BIG = 1_040_000  # under the broker's default max.message.bytes (1,048,588), over the producer limit set below
PRODUCER_LIMIT = 1_000_000


def _headers(record: ConsumerRecord[bytes, bytes], name: str) -> list[bytes]:
    return [v for k, v in record.headers if k.lower() == name.lower()]


def _partition_of(key: bytes) -> int:
    partitions = list(range(PARTITIONS))
    return int(DefaultPartitioner()(key, partitions, partitions))


def _to(partition: int) -> Callable[[bytes | None, list[int], list[int]], int]:
    return lambda key, all_partitions, available: partition


def _seen(worker: CliProcess, predicate: Callable[[LogLine], bool], timeout: float = 120) -> LogLine:
    for line in worker.lines:
        if predicate(line):
            return line
    return worker.wait_for(predicate, timeout)  # raises at once if the worker exits


def _dead_lettered_at(partition: int, offset: int) -> Callable[[LogLine], bool]:
    return lambda line: (
        line.get("event") == "message outcome"
        and line.get("outcome") == "dead_lettered"
        and (line.get("partition"), line.get("offset")) == (partition, offset)
    )


async def test_forged_headers_and_a_1_mb_record_cost_only_themselves(
    kafka_bootstrap: str, unique: str, tmp_path: Path
) -> None:
    pipeline = await _setup(kafka_bootstrap, unique, tmp_path)
    pipeline.env["RK_KAFKA__MAX_REQUEST_SIZE"] = str(PRODUCER_LIMIT)
    topic = pipeline.source_topics["hundesteuer"]
    closed, later = hundesteuer_events(unique, vorgaenge=1), hundesteuer_events(unique + "b", vorgaenge=1)
    upto_410 = closed[: next(i for i, e in enumerate(closed) if e.status == "410") + 1]
    key, value, headers = _with_status(upto_410[-1], "200", "-late")  # after the terminal 410: refused
    assert key is not None and value is not None
    forged = [("rk.original.partition", b"x"), ("rk.original.topic", pipeline.outbox.encode())]
    forged.append(("RK.Source", f"r4nd0m-{unique}".encode()))
    late = (key, value, headers + forged)
    off_partition = (_partition_of(key) + 1) % PARTITIONS  # not the Vorgang's partition: the hop, read back
    later_key = later[0].record[0]
    assert later_key is not None
    big_partition = _partition_of(later_key)
    big = (b"big-" + unique.encode(), b"{" + b" " * (BIG - 2) + b"}", [("ce_id", b"big"), *forged])

    with ingest_worker(pipeline) as worker:
        await produce(kafka_bootstrap, topic, [e.record for e in upto_410])
        await _caught_up(kafka_bootstrap, pipeline)
        [late_meta] = await produce(kafka_bootstrap, topic, [late], partitioner=_to(off_partition))
        [big_meta] = await produce(kafka_bootstrap, topic, [big], partitioner=_to(big_partition))
        await produce(kafka_bootstrap, topic, [e.record for e in later])
        _seen(worker, _dead_lettered_at(late_meta.partition, late_meta.offset))
        _seen(worker, _dead_lettered_at(big_meta.partition, big_meta.offset))
        await _caught_up(kafka_bootstrap, pipeline)
        assert worker.proc.poll() is None  # never exited

        dlq = await read_all(kafka_bootstrap, pipeline.dlq)
        outbox = await read_all(kafka_bootstrap, pipeline.outbox)
    assert worker.proc.returncode == 0  # a clean stop at the end, not a crash before it

    by_offset = {int(_headers(r, "rk.original.offset")[0]): r for r in dlq}
    assert len(dlq) == 2 and set(by_offset) == {late_meta.offset, big_meta.offset}
    refused, stub = by_offset[late_meta.offset], by_offset[big_meta.offset]
    for letter, meta in ((refused, late_meta), (stub, big_meta)):
        assert _headers(letter, "rk.original.topic") == [topic.encode()]
        assert _headers(letter, "rk.original.partition") == [str(meta.partition).encode()]
        assert _headers(letter, "rk.original.offset") == [str(meta.offset).encode()]
        assert _headers(letter, "rk.source") == [b"hundesteuer"]
        assert not any(f"r4nd0m-{unique}".encode() in v for _, v in letter.headers)
    assert _headers(refused, "rk.error.reason") == [b"illegal_transition"]
    assert refused.value == late[1]
    assert _headers(stub, "rk.error.reason") == [b"payload_too_large"]
    assert stub.value == b""
    assert _headers(stub, "rk.original.size") == [str(BIG).encode()]
    assert _headers(stub, "rk.original.sha256") == [hashlib.sha256(big[1]).hexdigest().encode()]
    assert _headers(stub, "ce_id") == [b"big"]

    later_in_outbox = [r for r in outbox if r.key is not None and later_key in r.key]
    assert [int(_headers(r, "rk.sequence")[0]) for r in later_in_outbox] == list(range(1, len(later) + 1))
    assert len(outbox) == len(upto_410) + len(later)
    stripped = [json.dumps(line) for line in worker.lines if "r4nd0m" in json.dumps(line)]
    assert not stripped
