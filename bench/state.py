"""The lifecycle state at scale: start-up, memory and recovery with many Vorgänge, memory store against RocksDB.

    .venv/bin/python bench/state.py [--vorgaenge 1000000] [--tail 10000] [--partitions 12] [--backlog 0]

One invocation, one changelog, the baseline alongside:

* the Table's changelog is filled directly with ``--vorgaenge`` Vorgang states (one record each, written by
  librdkafka, not through the pipeline: the pipeline would take hours), each as ``VorgangState.to_dict`` writes
  a Vorgang in progress;
* **memory**: a real ``rueckkanal worker --role ingest`` with ``RK_STATE__STORE=memory`` starts on it;
* **rocksdb, empty store**: the same with RocksDB and an empty data directory (a new pod, a lost volume);
* **rocksdb, store intact**: ``--tail`` more states are written to the changelog (as another worker would while
  this one was away), and the RocksDB worker starts again on its own data directory.

Measured per start: seconds from spawning the process until it has logged both ``worker ready`` and ``lifecycle
state recovered``; the changelog records its recovery read (that line's ``records_read``); the process's peak
resident set (``VmHWM`` in ``/proc/<pid>/status``, read just before it is stopped).

``--backlog N`` adds a drain: N source events (N/4 new Vorgänge, four statuses each) are produced into a fresh
source topic before a RocksDB worker starts; it is sampled every second (``VmRSS``) until its group has committed
every record, and the peak and the samples at each quarter are reported.

Results go into docs/benchmarks.md by hand, with the date, the machine and what else was running.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import shutil
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from confluent_kafka import Producer

from bench.common import (
    Child,
    bootstrap_address,
    cli_child,
    load_average,
    machine_description,
    markdown_table,
    unique,
)
from streams.partitioner import vorgang_partition
from tests.support.events import SOURCE, hundesteuer_events
from tests.support.kafka_io import (
    create_topics,
    delete_topics_containing,
    end_offsets,
    produce,
    wait_until_caught_up,
)
from tests.support.pipeline import PipelineEnv, pipeline_env

RECOVERED = "lifecycle state recovered"
READY = "worker ready"


@dataclass(frozen=True)
class Start:
    name: str
    seconds: float
    records_read: int
    peak_rss_mb: float


def state_value(i: int) -> bytes:
    """A Vorgang in progress (200 after 100 and 120), as ``VorgangState.to_dict`` writes it."""
    ids = [f"BENCH-{i:07d}-e{step:03d}" for step in (1, 2, 3)]
    return json.dumps(
        {
            "status": "200",
            "sequence": 3,
            "last_event_time": "2026-03-04T08:02:00+01:00",
            "recent_event_ids": ids,
            "recent_statuses": ["100", "120", "200"],
            "current_event_id": ids[-1],
            "previous_status": "120",
            "lifecycle": 2,
        }
    ).encode()


def fill_changelog(bootstrap: str, topic: str, partitions: int, first: int, count: int) -> float:
    """Write ``count`` Vorgang states from number ``first`` on, each on its Vorgang's partition; seconds taken."""
    producer = Producer(
        {
            "bootstrap.servers": bootstrap,
            "linger.ms": 50,
            "batch.num.messages": 10_000,
            "queue.buffering.max.messages": 500_000,
            "compression.type": "none",  # aiokafka reads lz4 only with an extra package the worker does not have
            "acks": "all",
        }
    )
    started = time.monotonic()
    for i in range(first, first + count):
        vorgang = f"BENCH-{i:07d}"
        key = json.dumps(f"{SOURCE}|{vorgang}").encode()
        while True:
            try:
                producer.produce(topic, state_value(i), key, partition=vorgang_partition(vorgang, partitions))
                break
            except BufferError:
                producer.poll(0.1)  # the local queue is full: let librdkafka send
        if i % 10_000 == 0:
            producer.poll(0)
    left = producer.flush(300)
    if left:
        raise RuntimeError(f"{left} changelog records not acknowledged")
    return time.monotonic() - started


def rss_kb(pid: int, field: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    return 0


def worker(env: dict[str, str], name: str) -> Child:
    return cli_child(["worker", "--role", "ingest"], env, name)


def start(env: dict[str, str], name: str, timeout: float = 600.0) -> Start:
    """Spawn a worker, wait until it is ready and its state recovered, read its peak RSS, stop it."""
    spawned = time.monotonic()
    child = worker(env, name)
    seen: dict[str, dict[str, object]] = {}
    try:

        def both(line: dict[str, object]) -> bool:  # a read may return both lines at once: note each
            if line.get("event") in (RECOVERED, READY):
                seen[str(line["event"])] = line
            return len(seen) == 2

        child.wait_for(both, timeout)
        seconds = time.monotonic() - spawned
        peak = rss_kb(child.proc.pid, "VmHWM") / 1024
    finally:
        child.stop()
    return Start(name, seconds, int(str(seen[RECOVERED]["records_read"])), peak)


def env_for(pipeline: PipelineEnv, data_dir: Path, store: str) -> dict[str, str]:
    return {
        **pipeline.env,
        "RK_DATA_DIR": str(data_dir),
        "RK_STATE__STORE": store,
        "RK_STATE__STANDBY_REPLICAS": "0",
        "RK_LOG__LEVEL": "INFO",
    }


async def backlog(bootstrap: str, workdir: Path, partitions: int, events: int) -> list[list[str]]:
    marker = unique("bench-backlog")
    pipeline = pipeline_env(bootstrap, marker, workdir / "backlog", partitions=partitions)
    await create_topics(bootstrap, pipeline.source_topics.values(), partitions)
    source = pipeline.source_topics["hundesteuer"]
    records = [e.record for e in hundesteuer_events(marker, vorgaenge=max(1, events // 4), steps=4)][:events]
    started = time.monotonic()
    for i in range(0, len(records), 50_000):
        await produce(bootstrap, source, records[i : i + 50_000])
    print(f"  produced {len(records):,} source events in {time.monotonic() - started:.0f}s")
    del records
    env = env_for(pipeline, workdir / "backlog" / "data", "rocksdb")
    env["RK_LOG__LEVEL"] = "WARNING"  # one outcome line per event would be a million lines
    spawned = time.monotonic()
    child = worker(env, "backlog worker")
    samples: list[tuple[float, int]] = []  # (seconds since spawn, RSS kB), one a second
    topics = [source, pipeline.events]
    total = sum((await end_offsets(bootstrap, topics)).values())
    try:
        while True:
            child.check_alive()
            try:
                await wait_until_caught_up(bootstrap, pipeline.app_id, topics, within_s=1.0)
                done = True
            except TimeoutError:
                done = False
            samples.append((time.monotonic() - spawned, rss_kb(child.proc.pid, "VmRSS")))
            if done and sum((await end_offsets(bootstrap, topics)).values()) == total:
                break
            if time.monotonic() - spawned > 1800:
                raise TimeoutError("backlog not drained within 30 minutes")
        peak = rss_kb(child.proc.pid, "VmHWM") / 1024
    finally:
        child.stop()
    seconds = samples[-1][0]
    outbox = sum((await end_offsets(bootstrap, [pipeline.outbox])).values())
    rows = [
        ["drained", f"{events:,} events, {outbox:,} outbox records", f"{seconds:.0f} s", f"{events / seconds:,.0f}/s"]
    ]
    for q in (0.25, 0.5, 0.75, 1.0):
        at = samples[min(len(samples) - 1, int(q * (len(samples) - 1)))]
        rows.append([f"RSS at {int(q * 100)} % of the time", "", f"{at[0]:.0f} s", f"{at[1] / 1024:.0f} MB"])
    rows.append(["peak RSS (VmHWM)", "", "", f"{peak:.0f} MB"])
    await delete_topics_containing(bootstrap, marker)
    return rows


async def main_async(args: argparse.Namespace) -> None:
    bootstrap = bootstrap_address()
    print(machine_description())
    print(f"load before: {load_average()}")
    marker = unique("bench-state")
    workdir = Path(tempfile.mkdtemp(prefix="bench-state-"))
    try:
        if args.vorgaenge == 0:  # the backlog alone
            rows = await backlog(bootstrap, workdir, args.partitions, args.backlog)
            print(markdown_table(["backlog", "", "time", "figure"], rows))
            return
        pipeline = pipeline_env(bootstrap, marker, workdir, partitions=args.partitions)
        await create_topics(bootstrap, pipeline.source_topics.values(), args.partitions)
        changelog = f"{pipeline.app_id}-vorgaenge-changelog"
        # created by a first worker start, as in production (compacted, checked)
        start(env_for(pipeline, workdir / "init", "memory"), "init")
        seconds = fill_changelog(bootstrap, changelog, args.partitions, 0, args.vorgaenge)
        print(f"  changelog filled with {args.vorgaenge:,} Vorgänge in {seconds:.0f}s ({marker})")

        results = [start(env_for(pipeline, workdir / "memory", "memory"), "memory store")]
        print(f"  {results[-1]}")
        rocks = workdir / "rocksdb"
        results.append(start(env_for(pipeline, rocks, "rocksdb"), "rocksdb, empty store"))
        print(f"  {results[-1]}")
        fill_changelog(bootstrap, changelog, args.partitions, args.vorgaenge, args.tail)
        results.append(start(env_for(pipeline, rocks, "rocksdb"), f"rocksdb, store intact, +{args.tail:,} tail"))
        print(f"  {results[-1]}")
        size = sum(f.stat().st_size for f in rocks.rglob("*") if f.is_file()) / 1024**2
        base = results[0]
        rows = [
            [
                r.name,
                f"{r.seconds:.1f} s",
                f"{r.seconds / base.seconds:.2f}×",
                f"{r.records_read:,}",
                f"{r.peak_rss_mb:.0f} MB",
                f"{r.peak_rss_mb / base.peak_rss_mb:.2f}×",
            ]
            for r in results
        ]
        print()
        print(
            f"{args.vorgaenge:,} Vorgänge in the changelog, {args.partitions} partitions; RocksDB on disk {size:.0f} MB"
        )
        print(markdown_table(["start", "to ready", "vs memory", "records read", "peak RSS", "vs memory"], rows))
        if args.backlog:
            print()
            print(
                markdown_table(
                    ["backlog", "", "time", "figure"], await backlog(bootstrap, workdir, args.partitions, args.backlog)
                )
            )
        print(f"load after: {load_average()}")
        await delete_topics_containing(bootstrap, marker)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--vorgaenge", type=int, default=1_000_000, help="0: only the backlog drain")
    parser.add_argument("--tail", type=int, default=10_000)
    parser.add_argument("--partitions", type=int, default=12)
    parser.add_argument("--backlog", type=int, default=0, help="source events to drain afterwards (0: none)")
    asyncio.run(main_async(parser.parse_args()))


if __name__ == "__main__":
    main()
