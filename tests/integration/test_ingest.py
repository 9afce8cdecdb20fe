"""The ingest stage against the real broker: a mixed batch, re-sends, a restart and a crash.

Each test runs a real ``rueckkanal worker --role ingest`` process with its own topics and consumer group, and
waits on the broker (committed offsets), never on the clock.
"""

from __future__ import annotations

import asyncio
import json
import random
import time
import urllib.request
from collections import Counter, defaultdict
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from aiokafka.partitioner import DefaultPartitioner
from aiokafka.structs import ConsumerRecord

from tests.support.events import BadCase, ValidEvent, bad_corpus, hundesteuer_events
from tests.support.kafka_io import (
    crc32_partitioner,
    create_topics,
    end_offsets,
    produce,
    read_all,
    wait_until_caught_up,
)
from tests.support.pipeline import PipelineEnv, pipeline_env
from tests.support.processes import CliProcess, free_port

PARTITIONS = 4


@contextmanager
def ingest_worker(pipeline: PipelineEnv) -> Iterator[CliProcess]:
    log_file = pipeline.fachverfahren_dir.parent / "worker.log"
    worker = CliProcess(["worker", "--role", "ingest"], env=pipeline.env, log_file=log_file)
    try:
        worker.wait_for_event("worker ready", timeout=120)
        yield worker
    finally:
        worker.terminate()


async def _setup(bootstrap: str, unique: str, tmp_path: Path) -> PipelineEnv:
    pipeline = pipeline_env(bootstrap, unique, tmp_path, partitions=PARTITIONS, web_port=free_port())
    await create_topics(bootstrap, pipeline.source_topics.values(), PARTITIONS)
    return pipeline


async def _caught_up(bootstrap: str, pipeline: PipelineEnv) -> None:
    """Until the group has committed everything, including what the decode stage wrote while we waited."""
    topics = [*pipeline.source_topics.values(), pipeline.events]
    while True:
        before = await end_offsets(bootstrap, topics)
        await wait_until_caught_up(bootstrap, pipeline.app_id, topics, within_s=300)
        if await end_offsets(bootstrap, topics) == before:
            return


async def _produce_mixed(bootstrap: str, topic: str, events: list[ValidEvent]) -> dict[str, int]:
    """Every other Vorgang as a librdkafka client would partition it, the rest with Kafka's default partitioner.

    Only a record on its Vorgang's own partition number is processed in place; the others take the extra hop
    through rueckkanal.events (streams/ingest.py). Returns the source partition of each Vorgang id: one each, so
    the order of a Vorgang's events is defined.
    """
    landed: dict[str, set[int]] = defaultdict(set)
    for start in range(0, len(events), 100):  # in order, so Vorgänge of both kinds interleave
        chunk = events[start : start + 100]
        for by_librdkafka, partitioner in ((False, None), (True, crc32_partitioner)):
            part = [e for e in chunk if _by_librdkafka(e) == by_librdkafka]
            metas = await produce(bootstrap, topic, [e.record for e in part], partitioner=partitioner)
            for event, meta in zip(part, metas, strict=True):
                landed[event.vorgang_id].add(meta.partition)
    assert all(len(partitions) == 1 for partitions in landed.values())
    return {vorgang_id: partitions.pop() for vorgang_id, partitions in landed.items()}


def _by_librdkafka(event: ValidEvent) -> bool:
    return int(event.vorgang_id.rsplit("-", 1)[-1]) % 2 == 1


def _vorgang_partition(event: ValidEvent) -> int:
    """Kafka's default partitioner on the Vorgang id: where the pipeline keeps the Vorgang."""
    partitions = list(range(PARTITIONS))
    return int(DefaultPartitioner()(event.vorgang_id.encode(), partitions, partitions))


def _header(record: ConsumerRecord[bytes, bytes], name: str) -> str:
    return dict(record.headers)[name].decode()


def _by_vorgang(outbox: list[ConsumerRecord[bytes, bytes]]) -> dict[bytes, list[ConsumerRecord[bytes, bytes]]]:
    grouped: dict[bytes, list[ConsumerRecord[bytes, bytes]]] = defaultdict(list)
    for record in outbox:  # read_all sorts by partition and offset: the order delivery will see
        assert record.key is not None
        grouped[record.key].append(record)
    return grouped


async def test_mixed_batch_outbox_holds_the_valid_dlq_the_bad_and_resends_add_nothing(
    kafka_bootstrap: str, unique: str, tmp_path: Path
) -> None:
    pipeline = await _setup(kafka_bootstrap, unique, tmp_path)
    valid = hundesteuer_events(unique, vorgaenge=50)
    assert len(valid) == 1000
    bad = bad_corpus()
    hundesteuer = pipeline.source_topics["hundesteuer"]

    with ingest_worker(pipeline) as worker:
        landed: dict[str, tuple[BadCase, int, int]] = {}
        source_partition: dict[str, int] = {}
        chunk = len(valid) // len(bad) + 1
        for i, case in enumerate(bad):  # interleave: some valid events, one bad one, some valid events, ...
            source_partition |= await _produce_mixed(kafka_bootstrap, hundesteuer, valid[i * chunk : (i + 1) * chunk])
            [meta] = await produce(kafka_bootstrap, pipeline.source_topics[case.fachverfahren], [case.record])
            landed[f"{meta.topic}/{meta.partition}/{meta.offset}"] = (case, meta.partition, meta.offset)
        source_partition |= await _produce_mixed(kafka_bootstrap, hundesteuer, valid[len(bad) * chunk :])
        await _caught_up(kafka_bootstrap, pipeline)

        outbox = await read_all(kafka_bootstrap, pipeline.outbox)
        dlq = await read_all(kafka_bootstrap, pipeline.dlq)

        _assert_outbox_is_exactly_the_valid_events_in_order(outbox, valid)
        await _assert_each_vorgang_stays_on_its_partition(kafka_bootstrap, pipeline, valid, source_partition, outbox)
        assert len(dlq) == len(bad)
        for letter in dlq:
            where = f"{_header(letter, 'rk.original.topic')}/{_header(letter, 'rk.original.partition')}/"
            where += _header(letter, "rk.original.offset")
            case, _, _ = landed.pop(where)
            assert _header(letter, "rk.error.reason") == case.reason, case.id
            assert _header(letter, "rk.error.stage") == "ingest"
            assert letter.key == case.record[0] and letter.value == case.record[1], case.id
            original = [(k, v) for k, v in letter.headers if not k.startswith("rk.")]
            assert original == case.record[2], case.id
            assert not any(case.record[1][:40] in v for _, v in letter.headers if len(case.record[1]) >= 40)
        assert not landed, f"no dead letter for {sorted(c.id for c, _, _ in landed.values())}"

        resent = random.Random(unique).sample(valid, 100)
        await _produce_mixed(kafka_bootstrap, hundesteuer, resent)
        await _caught_up(kafka_bootstrap, pipeline)
        assert len(await read_all(kafka_bootstrap, pipeline.outbox)) == len(valid)
        assert len(await read_all(kafka_bootstrap, pipeline.dlq)) == len(bad)
    _assert_log_has_outcomes_but_no_vorgang_ids_or_payloads(worker, valid, bad)
    paths = {line["topic"]: line["path"] for line in worker.lines if line.get("event") == "source path"}
    assert paths == {topic: "in place" for topic in pipeline.source_topics.values()}  # decided once, at start-up


async def _assert_each_vorgang_stays_on_its_partition(
    bootstrap: str,
    pipeline: PipelineEnv,
    valid: list[ValidEvent],
    source_partition: dict[str, int],
    outbox: list[ConsumerRecord[bytes, bytes]],
) -> None:
    """faust restores changelog partition p on the worker that owns partition p of events and of every source topic
    with the same count: each Vorgang's state must be on the Vorgang's partition, or another worker would decide
    its next event without it. Only events that were not already on that partition take the extra hop."""
    wanted = {e.vorgang_key: _vorgang_partition(e) for e in valid}
    changelog = await read_all(bootstrap, f"{pipeline.app_id}-vorgaenge-changelog")
    assert {json.loads(r.key): r.partition for r in changelog} == wanted
    assert len(set(wanted.values())) > 1  # 50 Vorgänge over 4 partitions: the check above compared something
    assert {r.key.decode(): r.partition for r in outbox if r.key is not None} == wanted

    events = await read_all(bootstrap, pipeline.events)
    off_partition = [e for e in valid if source_partition[e.vorgang_id] != wanted[e.vorgang_key]]
    assert Counter(r.key for r in events) == Counter(e.vorgang_key.encode() for e in off_partition)
    assert all(r.key is not None and r.partition == wanted[r.key.decode()] for r in events)
    assert 0 < len(off_partition) < len(valid) / 2  # both paths ran: all default-keyed ones in place, most others not


def _assert_log_has_outcomes_but_no_vorgang_ids_or_payloads(
    worker: CliProcess, valid: list[ValidEvent], bad: list[BadCase]
) -> None:
    lines = [json.dumps(line, ensure_ascii=False) for line in worker.lines]
    outcomes = Counter(line.get("outcome") for line in worker.lines if line.get("event") == "message outcome")
    assert outcomes["outboxed"] == len(valid)
    assert outcomes["dead_lettered"] == len(bad)
    assert outcomes["duplicate"] == 100
    secrets = {e.vorgang_id for e in valid} | {"bundid:postfach:", "Kassenzeichen", "epayment.leipzig.de"}
    for line in lines:
        leaked = [s for s in secrets if s in line]
        assert not leaked, (leaked, line[:300])


def _assert_outbox_is_exactly_the_valid_events_in_order(
    outbox: list[ConsumerRecord[bytes, bytes]], valid: list[ValidEvent]
) -> None:
    expected: dict[bytes, list[ValidEvent]] = defaultdict(list)
    for event in valid:
        expected[event.vorgang_key.encode()].append(event)
    grouped = _by_vorgang(outbox)
    assert set(grouped) == set(expected)
    for key, records in grouped.items():
        want = expected[key]
        assert [_header(r, "nachrichtenUUID") for r in records] == [e.nachrichten_uuid for e in want]
        assert [int(_header(r, "rk.sequence")) for r in records] == list(range(1, len(want) + 1))
        assert [_header(r, "status") for r in records] == [e.status for e in want]
        assert len({r.partition for r in records}) == 1  # one Vorgang, one outbox partition


async def test_restart_recovers_the_lifecycle_table_from_its_changelog(
    kafka_bootstrap: str, unique: str, tmp_path: Path
) -> None:
    pipeline = await _setup(kafka_bootstrap, unique, tmp_path)
    hundesteuer = pipeline.source_topics["hundesteuer"]
    lifecycle = hundesteuer_events(unique, vorgaenge=1)
    through_410 = lifecycle[: lifecycle.index(next(e for e in lifecycle if e.status == "410")) + 1]

    with ingest_worker(pipeline):
        await produce(kafka_bootstrap, hundesteuer, [e.record for e in through_410])
        await _caught_up(kafka_bootstrap, pipeline)

    # A fresh process has only the changelog to know that this Vorgang is closed (410). Without it, 200 would be
    # accepted as the first event of a new Vorgang.
    illegal_after_410 = _with_status(through_410[-1], "200", "-late")
    reopen = _with_status(through_410[-1], "430", "-widerspruch")
    with ingest_worker(pipeline):
        await produce(kafka_bootstrap, hundesteuer, [illegal_after_410, reopen])
        await _caught_up(kafka_bootstrap, pipeline)

    dlq = await read_all(kafka_bootstrap, pipeline.dlq)
    assert [_header(r, "rk.error.reason") for r in dlq] == ["illegal_transition"]
    assert dlq[0].value == illegal_after_410[1]
    assert _header(dlq[0], "rk.original.topic") == hundesteuer
    outbox = await read_all(kafka_bootstrap, pipeline.outbox)
    assert [int(_header(r, "rk.sequence")) for r in outbox] == list(range(1, len(through_410) + 2))
    assert _header(outbox[-1], "status") == "430"


def _with_status(event: ValidEvent, status: str, suffix: str) -> tuple[bytes | None, bytes, list[tuple[str, bytes]]]:
    key, value, headers = event.record
    assert value is not None
    body = value.replace(f'"status": "{event.status}"'.encode(), f'"status": "{status}"'.encode())
    body = body.replace(b'"2024-03-04T08:', b'"2024-03-05T08:')  # later than every earlier event
    new_headers = [(k, (event.event_id + suffix).encode() if k == "ce_id" else v) for k, v in headers]
    return key, body, new_headers


async def test_sigkill_mid_run_loses_nothing_and_duplicates_are_counted(
    kafka_bootstrap: str, unique: str, tmp_path: Path
) -> None:
    pipeline = await _setup(kafka_bootstrap, unique, tmp_path)
    hundesteuer = pipeline.source_topics["hundesteuer"]
    valid = hundesteuer_events(unique, vorgaenge=500)  # 10,000 events
    assert len(valid) == 10_000

    first = CliProcess(["worker", "--role", "ingest"], env=pipeline.env, log_file=tmp_path / "killed-worker.log")
    try:
        first.wait_for_event("worker ready", timeout=120)
        await produce(kafka_bootstrap, hundesteuer, [e.record for e in valid])
        await _wait_for_outbox(kafka_bootstrap, pipeline.outbox, at_least=2_000)
    finally:
        first.kill()  # SIGKILL: no drain, no commit, no goodbye
    expected = {e.nachrichten_uuid for e in valid}
    with ingest_worker(pipeline):
        outbox = await _outbox_holding(kafka_bootstrap, pipeline.outbox, expected, within_s=300)
        # The work is done; the group's commits must follow, or every later restart repeats it (faust-streaming
        # #596, worked around in streams/faust_engine.py).
        await _caught_up(kafka_bootstrap, pipeline)

    uuids = Counter(_header(r, "nachrichtenUUID") for r in outbox)
    missing = expected - set(uuids)
    assert not missing, f"{len(missing)} nachrichtenUUIDs never reached the outbox"
    duplicates = sum(n - 1 for n in uuids.values())
    print(f"\ncrash test: {len(outbox)} outbox records for {len(valid)} events, {duplicates} duplicates")
    assert not await read_all(kafka_bootstrap, pipeline.dlq)
    _assert_first_copies_in_sequence_order(outbox)


async def test_a_worker_joining_and_the_first_leaving_lose_nothing_and_keep_order(
    kafka_bootstrap: str, unique: str, tmp_path: Path
) -> None:
    """Scaling out and back in moves partitions, and each Vorgang's Table state with them, between live workers."""
    pipeline = await _setup(kafka_bootstrap, unique, tmp_path)
    hundesteuer = pipeline.source_topics["hundesteuer"]
    valid = hundesteuer_events(unique, vorgaenge=500)  # 10,000 events, each Vorgang's in order
    first_log, second_log = tmp_path / "first-worker.log", tmp_path / "second-worker.log"
    second_env = {**pipeline.env, "RK_WEB__PORT": str(free_port()), "RK_DATA_DIR": str(tmp_path / "data-2")}
    first = CliProcess(["worker", "--role", "ingest"], env=pipeline.env, log_file=first_log)
    second: CliProcess | None = None
    try:
        first.wait_for_event("worker ready", timeout=120)
        await _produce_mixed(kafka_bootstrap, hundesteuer, valid[:4_000])  # both paths (in place, rerouted)
        await _wait_for_outbox(kafka_bootstrap, pipeline.outbox, at_least=1_000)
        second = CliProcess(["worker", "--role", "ingest"], env=second_env, log_file=second_log)
        await _produce_mixed(kafka_bootstrap, hundesteuer, valid[4_000:7_000])  # on hand while the group rebalances
        second.wait_for_event("worker ready", timeout=120)
        await _produce_mixed(kafka_bootstrap, hundesteuer, valid[7_000:])
        assert first.terminate() == 0  # leaves with events unread: its partitions and state move to the second
        outbox = await _outbox_holding(kafka_bootstrap, pipeline.outbox, {e.nachrichten_uuid for e in valid}, 300)
        await _caught_up(kafka_bootstrap, pipeline)
    finally:
        first.kill()
        if second is not None:
            second.terminate()
    assert not await read_all(kafka_bootstrap, pipeline.dlq)  # no illegal_transition from a state left behind
    _assert_first_copies_in_sequence_order(outbox)
    shares = [log.read_text(encoding="utf-8").count('"message outcome"') for log in (first_log, second_log)]
    assert all(shares), shares  # both workers processed events
    duplicates = len(outbox) - len(valid)
    print(f"\nscale out and in: outcome lines per worker {shares}, {duplicates} duplicates in the outbox")


def _assert_first_copies_in_sequence_order(outbox: list[ConsumerRecord[bytes, bytes]]) -> None:
    for key, records in _by_vorgang(outbox).items():
        first_seen: dict[str, int] = {}
        for r in records:
            first_seen.setdefault(_header(r, "nachrichtenUUID"), int(_header(r, "rk.sequence")))
        assert sorted(first_seen.values()) == list(first_seen.values()), key  # never out of order


async def _outbox_holding(
    bootstrap: str, topic: str, expected: set[str], within_s: float
) -> list[ConsumerRecord[bytes, bytes]]:
    """The outbox once it holds every expected nachrichtenUUID; polled from the broker with a deadline."""
    deadline = time.monotonic() + within_s
    while time.monotonic() < deadline:
        if sum((await end_offsets(bootstrap, [topic])).values()) >= len(expected):
            records = await read_all(bootstrap, topic)
            if expected <= {_header(r, "nachrichtenUUID") for r in records}:
                return records
        await asyncio.sleep(0.5)  # polling the broker, bounded by the deadline
    missing = expected - {_header(r, "nachrichtenUUID") for r in await read_all(bootstrap, topic)}
    raise TimeoutError(f"{len(missing)} of {len(expected)} nachrichtenUUIDs still not in {topic} after {within_s}s")


async def _wait_for_outbox(bootstrap: str, topic: str, at_least: int) -> None:
    for _ in range(3000):
        if sum((await end_offsets(bootstrap, [topic])).values()) >= at_least:
            return
        await asyncio.sleep(0.1)  # polling the broker's end offsets, bounded
    raise TimeoutError(f"{topic} never reached {at_least} records")


async def test_warn_policy_delivers_an_illegal_transition_and_counts_it(
    kafka_bootstrap: str, unique: str, tmp_path: Path
) -> None:
    pipeline = await _setup(kafka_bootstrap, unique, tmp_path)
    pipeline.env["RK_INGEST__LIFECYCLE_POLICY"] = "warn"
    hundesteuer = pipeline.source_topics["hundesteuer"]
    first, second = hundesteuer_events(unique, vorgaenge=1, steps=2)  # 100, 120
    jump_back = _with_status(second, "110", "-zurueck")  # 120 → 110 is not in the lifecycle table
    with ingest_worker(pipeline):
        await produce(kafka_bootstrap, hundesteuer, [first.record, second.record, jump_back])
        await _caught_up(kafka_bootstrap, pipeline)
        metrics = await asyncio.to_thread(_scrape, int(pipeline.env["RK_WEB__PORT"]))
    outbox = await read_all(kafka_bootstrap, pipeline.outbox)
    assert [(_header(r, "status"), _header(r, "rk.sequence")) for r in outbox] == [
        ("100", "1"),
        ("120", "2"),
        ("110", "3"),
    ]
    assert not await read_all(kafka_bootstrap, pipeline.dlq)
    assert 'rueckkanal_lifecycle_warnings_total{reason="illegal_transition",source="hundesteuer"} 1.0' in metrics


def _scrape(port: int) -> str:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as response:
        return str(response.read().decode())
