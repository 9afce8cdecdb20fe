"""Ingest throughput on one worker, against a no-op faust pass-through over the same input in the same run.

    .venv/bin/python bench/ingest.py [--events 20000] [--partitions 12] [--rounds 1] [--profile]

Per round: fresh topics; N legal Hundesteuer CloudEvents (N/20 Vorgänge, 20-step lifecycles, interleaved) are
produced into the source topic before anything consumes it. Then, one after the other:

* **no-op**: a minimal faust app (this file, ``_noop-agent``; own group) reads that source topic in
  ``stream.take_events`` batches like the ingest agents and writes each record unchanged to a sink topic, the
  produces of a batch awaited before the next batch, each through faust's ``Topic.send``;
* **no-op-producer**: the same app handing each record to faust's producer directly, as the ingest stage does
  (``IngestStage._send``): the baseline with faust's consuming side only;
* **no-op, two hops**: the shape of a rerouted record's path doing nothing: the worker's own faust app
  (``RueckkanalApp``: its transport, flow control, partitioner) with two agents, source → a middle topic → sink,
  each copying records through the producer in ``take_events`` batches: what two faust hops cost on this machine
  before any work;
* **ingest**: a real ``rueckkanal worker --role ingest`` (own group) decodes, checks the lifecycle, renders and
  validates, and writes the outbox. The source topic has the pipeline's partition count and is keyed by Vorgang id
  with Kafka's default partitioner, as the event contract asks, so every event is processed in place (one hop).

Each rate is measured from the first record seen on the output topic until it holds all N (end offsets polled
every 100 ms), so process start, group join and table recovery are left out. ``--profile`` adds one more ingest
run under cProfile and prints where the time goes. Results go into docs/benchmarks.md by hand, with the date, the
machine and what else was running.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import pstats
import signal
import statistics
import sys
import tempfile
import time
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.common import (
    Child,
    Progress,
    TopicCounter,
    bootstrap_address,
    busy_processes,
    cli_child,
    follow,
    load_average,
    machine_description,
    markdown_table,
    per_s,
    unique,
    worker_env,
)
from tests.support.events import hundesteuer_events
from tests.support.kafka_io import create_topics, delete_topics_containing, produce
from tests.support.pipeline import PipelineEnv, pipeline_env

SELF = Path(__file__).resolve()
GOAL_RATE = 4_000.0
GOAL_RATIO = 0.5


@dataclass(frozen=True)
class Round:
    bootstrap: str
    marker: str
    events: int
    partitions: int
    log_level: str
    worker_root: Path | None
    overrides: dict[str, str]
    pipeline: PipelineEnv
    source: str
    workdir: Path


@dataclass(frozen=True)
class Result:
    name: str
    progress: Progress
    startup_s: float  # process start until the first output record

    @property
    def rate(self) -> float:
        return self.progress.rate


# -- one round -------------------------------------------------------------------------------------------------


async def prepare(args: argparse.Namespace, bootstrap: str, workdir: Path) -> Round:
    events, partitions = args.events, args.partitions
    marker = unique("bench-ingest")
    pipeline = pipeline_env(bootstrap, marker, workdir, partitions=partitions)
    p = pipeline
    await create_topics(
        bootstrap, [*p.source_topics.values(), p.events, p.outbox, p.dlq, p.receipts, _sink(marker)], partitions
    )
    source = p.source_topics["hundesteuer"]
    records = [e.record for e in hundesteuer_events(marker, vorgaenge=max(1, events // 20))][:events]
    started = time.monotonic()
    await produce(bootstrap, source, records)
    print(f"  produced {len(records):,} source events in {time.monotonic() - started:.1f}s ({marker})")
    return Round(
        bootstrap,
        marker,
        len(records),
        partitions,
        args.log_level,
        args.worker_root,
        dict(item.split("=", 1) for item in args.worker_env),
        pipeline,
        source,
        workdir,
    )


def _sink(marker: str) -> str:
    return f"bench.{marker}.noop-sink"


async def measure(r: Round, name: str, child: Child, output: str, limit_s: float) -> Result:
    launched = time.monotonic()
    try:
        async with TopicCounter(r.bootstrap, output, r.partitions) as counter:
            progress = await follow(counter, Progress(r.events), limit_s, [child])
    finally:
        child.stop()
    first = next((t for t, c in progress.samples if c > 0), launched)
    result = Result(name, progress, first - launched)
    state = "" if progress.done else f"  (TIMEOUT after {limit_s:.0f}s at {progress.count:,})"
    cpu = progress.cpu_share(child.name)
    print(f"  {name:<8} {per_s(result.rate):>8} events/s over {progress.seconds:.1f}s, CPU {cpu:.0%} of a core{state}")
    return result


async def run_aiokafka(r: Round, limit_s: float) -> Result:
    config = {
        "bootstrap": r.bootstrap,
        "app_id": f"{r.marker}-aiokafka",
        "source": r.source,
        "sink": _sink(r.marker) + "-aiokafka",
    }
    await create_topics(r.bootstrap, [str(config["sink"])], r.partitions)
    child = Child([sys.executable, str(SELF), "_aiokafka-agent", json.dumps(config)], r.overrides, "aiokafka")
    return await measure(r, "aiokafka", child, str(config["sink"]), limit_s)


async def run_noop(r: Round, limit_s: float, *, direct: bool = False, two_hops: bool = False) -> Result:
    """The no-op faust agent; ``direct`` sends through the producer as the ingest stage does, not Topic.send;
    ``two_hops`` is the ingest stage's shape on the worker's own faust app (always direct)."""
    name, suffix = ("no-op-producer", "-direct") if direct else ("no-op", "")
    if two_hops:
        name, suffix = "no-op-two-hops", "-two-hops"
    config = {
        "bootstrap": r.bootstrap,
        "app_id": f"{r.marker}-noop{suffix}",
        "source": r.source,
        "sink": _sink(r.marker) + suffix,
        "partitions": r.partitions,
        "datadir": str(r.workdir / f"noop-data{suffix}"),
        "direct": direct or two_hops,
        "two_hops": two_hops,
    }
    await create_topics(r.bootstrap, [str(config["sink"]), str(config["sink"]) + "-middle"], r.partitions)
    child = Child([sys.executable, str(SELF), "_noop-agent", json.dumps(config)], r.overrides, name)
    return await measure(r, name, child, str(config["sink"]), limit_s)


async def run_ingest(r: Round, limit_s: float, profile: tuple[str, Path] | None = None, suffix: str = "") -> Result:
    env = {
        **r.pipeline.env,
        **worker_env(r.bootstrap, r.pipeline.app_id + suffix, r.workdir / f"data{suffix}", r.partitions, r.log_level),
        **r.overrides,
    }
    outbox = r.pipeline.outbox
    if suffix:  # a second ingest run over the same source topic needs its own output topics
        for name in ("EVENTS", "OUTBOX", "DLQ", "RECEIPTS"):
            env[f"RK_TOPICS__{name}"] = env[f"RK_TOPICS__{name}"] + suffix
        outbox = env["RK_TOPICS__OUTBOX"]
        await create_topics(
            r.bootstrap, [env[f"RK_TOPICS__{n}"] for n in ("EVENTS", "OUTBOX", "DLQ", "RECEIPTS")], r.partitions
        )
    child = cli_child(["worker", "--role", "ingest"], env, "ingest worker", profile=profile, root=r.worker_root)
    return await measure(r, "ingest", child, outbox, limit_s)


async def dlq_count(r: Round) -> int:
    async with TopicCounter(r.bootstrap, r.pipeline.dlq, r.partitions) as counter:
        return await counter()


# -- the no-op faust app (child process) -----------------------------------------------------------------------


def noop_agent_main(config: dict[str, str | int]) -> None:
    """A faust app that copies the source topic to the sink, batched and awaited exactly like the ingest agents."""
    from typing import Any, cast

    import faust

    from streams.app import RueckkanalApp
    from streams.ingest import BATCH_SIZE, BATCH_WITHIN_SECONDS
    from streams.partitioner import partition_for

    two_hops = bool(config.get("two_hops"))
    options: dict[str, Any] = {
        "broker": f"kafka://{config['bootstrap']}",
        "autodiscover": False,
        "store": "memory://",
        "datadir": str(config["datadir"]),
        "topic_partitions": int(config["partitions"]),
        "producer_acks": -1,
        "producer_linger": 0.005,  # as the worker (streams/app.py)
        "web_enabled": False,
    }
    if two_hops:  # the worker's own app: transport, flow control, partitioner (streams/app.py)
        app: faust.App = RueckkanalApp(str(config["app_id"]), env={}, producer_partitioner=partition_for, **options)
    else:
        app = faust.App(str(config["app_id"]), **options)
    raw: dict[str, Any] = {"key_type": bytes, "value_type": bytes, "key_serializer": "raw", "value_serializer": "raw"}
    source = app.topic(str(config["source"]), **raw)
    sink_name = str(config["sink"])
    direct = bool(config.get("direct"))

    def passthrough(to: str) -> Any:
        sink = app.topic(to, **raw)

        async def agent(stream: faust.StreamT[bytes]) -> None:
            concrete = cast(faust.Stream[bytes], stream)
            async for batch in concrete.take_events(BATCH_SIZE, within=BATCH_WITHIN_SECONDS):
                writes = []
                for event in batch:
                    message = event.message
                    headers = cast(list[tuple[str, bytes]], list(message.headers or ()))  # as streams/ingest.py
                    if direct:  # as the ingest stage writes (IngestStage._send)
                        send = app.producer.send(to, message.key, message.value, None, None, headers)
                        writes.append(await send)
                    else:
                        writes.append(await sink.send(key=message.key, value=message.value, headers=headers))
                for write in writes:
                    await write

        return agent

    if two_hops:
        middle = sink_name + "-middle"
        app.agent(source, name="bench.noop.first")(passthrough(middle))
        app.agent(app.topic(middle, **raw), name="bench.noop.second")(passthrough(sink_name))
    else:
        app.agent(source, name="bench.noop")(passthrough(sink_name))
    faust.Worker(app, loglevel="WARNING", redirect_stdouts=False).execute_from_commandline()


def aiokafka_agent_main(config: dict[str, str | int]) -> None:
    """The same pass-through with plain aiokafka (getmany, sends awaited per batch, then commit): the floor
    without faust's per-event machinery (streams, acks, conductor)."""
    from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

    from streams.ingest import BATCH_SIZE, BATCH_WITHIN_SECONDS

    async def run() -> None:
        consumer = AIOKafkaConsumer(
            str(config["source"]),
            bootstrap_servers=str(config["bootstrap"]),
            group_id=str(config["app_id"]),
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            max_poll_records=BATCH_SIZE,
        )
        producer = AIOKafkaProducer(bootstrap_servers=str(config["bootstrap"]), acks="all")
        await consumer.start()
        await producer.start()
        try:
            while True:
                batch = await consumer.getmany(timeout_ms=int(BATCH_WITHIN_SECONDS * 1000), max_records=BATCH_SIZE)
                writes = []
                for records in batch.values():
                    for r in records:
                        writes.append(
                            await producer.send(str(config["sink"]), r.value, key=r.key, headers=list(r.headers))
                        )
                for write in writes:
                    await write
                if writes:
                    await consumer.commit()
        finally:
            await producer.stop()
            await consumer.stop()

    with contextlib.suppress(KeyboardInterrupt, asyncio.CancelledError):
        signal.signal(signal.SIGTERM, signal.default_int_handler)
        asyncio.run(run())


# -- profile ---------------------------------------------------------------------------------------------------

# Where a function's own time is counted: first matching marker in its file name or function name.
CATEGORIES = (
    ("idle: waiting in select/epoll", ("select' of 'select.epoll", "method 'poll' of 'select")),
    ("lxml: XSD validate", ("lxml.etree.XMLSchema",)),
    ("lxml: build tree + serialise", ("lxml", "rueckkanal/xoev.py")),
    ("pydantic (validate/dump, incl. decode)", ("pydantic",)),
    ("aiokafka (fetch, record batches, produce)", ("aiokafka", "kafka/")),
    ("faust + mode (streams, acks, tables)", ("/faust/", "/mode/", "venusian", "croniter")),
    ("asyncio event loop", ("asyncio", "_asyncio", "_contextvars")),
    ("prometheus metrics", ("prometheus_client",)),
    ("our code: rueckkanal/adapters/streams", ("/rueckkanal/", "/adapters/", "/streams/")),
    ("json/structlog/logging", ("json", "structlog", "logging")),
)


def categorise(stats: pstats.Stats) -> dict[str, float]:
    totals: dict[str, float] = defaultdict(float)
    for (filename, _line, function), (_cc, _nc, tottime, _ct, _callers) in stats.stats.items():  # type: ignore[attr-defined]
        where = f"{filename}:{function}"
        label = next((name for name, marks in CATEGORIES if any(m in where for m in marks)), "other (stdlib, C calls)")
        totals[label] += tottime
    return dict(totals)


KEY_FUNCTIONS = (
    "_decode_batch",
    "_decode_one",
    "_lifecycle_batch",
    "_lifecycle_one",
    "decode",
    "model_validate_json",
    "model_dump_json",
    "render",
    "advance",
    "_all_acknowledged",
    "__setitem__",
    "send",
    "_outbox_headers",
)


def report_profile(path: Path, events: int) -> None:
    stats = pstats.Stats(str(path))
    totals = categorise(stats)
    idle = totals.pop("idle: waiting in select/epoll", 0.0)
    busy = sum(totals.values())
    print(f"\ncProfile of the ingest worker ({path}): {busy:.1f}s busy, {idle:.1f}s idle in select")
    print(f"  busy time per event: {busy / events * 1e6:.0f} µs (cProfile inflates Python call overhead)")
    for label, seconds in sorted(totals.items(), key=lambda kv: -kv[1]):
        print(f"  {label:<45} {seconds:7.2f}s  {seconds / busy:6.1%}")
    print("  cumulative time of the stage's own steps:")
    for (filename, _line, function), (_cc, nc, _tt, cumtime, _c) in sorted(
        stats.stats.items(),  # type: ignore[attr-defined]
        key=lambda kv: -kv[1][3],
    ):
        ours = any(part in filename for part in ("/streams/ingest", "/rueckkanal/", "/adapters/inbound/"))
        if (ours or "pydantic" in filename) and function in KEY_FUNCTIONS and cumtime > 0.05 * busy / 10:
            short = "/".join(Path(filename).parts[-2:])
            print(f"    {short + ':' + function:<55} {cumtime:7.2f}s  {cumtime / busy:6.1%}  calls {nc:,}")
    print("  top 20 functions by own time:")
    stats.sort_stats("tottime").print_stats(20)


async def profile_ingest(r: Round, kind: str, limit_s: float) -> None:
    """One more ingest run over the same source topic (own group and output topics) under a profiler."""
    out = Path(tempfile.gettempdir()) / f"{r.marker}-ingest.{'prof' if kind == 'cprofile' else 'txt'}"
    profiled = await run_ingest(r, limit_s, profile=(kind, out), suffix=".prof")
    print(f"  (under {kind}: {per_s(profiled.rate)} events/s; profile in {out})")
    if kind == "cprofile":
        report_profile(out, r.events)


# -- main ------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class RoundResult:
    noop: Result
    noop_direct: Result
    noop_two_hops: Result
    ingest: Result
    dlq: int
    aiokafka: Result | None

    @property
    def ratio(self) -> float:
        return self.ingest.rate / self.noop.rate if self.noop.rate else 0.0

    @property
    def ratio_direct(self) -> float:
        return self.ingest.rate / self.noop_direct.rate if self.noop_direct.rate else 0.0

    @property
    def ratio_two_hops(self) -> float:
        return self.ingest.rate / self.noop_two_hops.rate if self.noop_two_hops.rate else 0.0


async def main_async(args: argparse.Namespace) -> None:
    bootstrap = bootstrap_address()
    print(machine_description())
    print(f"busy before the run: {', '.join(busy_processes()) or 'nothing'}")
    results: list[RoundResult] = []
    with tempfile.TemporaryDirectory(prefix="rk-bench-ingest-") as tmp:
        for n in range(args.rounds):
            print(f"round {n + 1}/{args.rounds}:")
            r = await prepare(args, bootstrap, Path(tmp) / f"round{n}")
            try:
                noop = await run_noop(r, args.timeout)
                noop_direct = await run_noop(r, args.timeout, direct=True)
                noop_two_hops = await run_noop(r, args.timeout, two_hops=True)
                ingest = await run_ingest(r, args.timeout)
                floor = await run_aiokafka(r, args.timeout) if args.aiokafka else None
                results.append(RoundResult(noop, noop_direct, noop_two_hops, ingest, await dlq_count(r), floor))
                if args.profile and n == args.rounds - 1:
                    await profile_ingest(r, args.profile, args.timeout)
            finally:
                if not args.keep_topics:
                    await delete_topics_containing(bootstrap, r.marker)
    print(f"load average after the run: {load_average()}")
    summarise(results, args)


def _cpu(result: Result | None) -> str:
    shares = [result.progress.cpu_share(name) for name in result.progress.cpu] if result else []
    return f"{shares[0]:.0%}" if shares else "-"


def summarise(results: list[RoundResult], args: argparse.Namespace) -> None:
    rows = [
        [
            str(i),
            per_s(x.noop.rate),
            per_s(x.noop_direct.rate),
            per_s(x.noop_two_hops.rate),
            per_s(x.ingest.rate),
            f"{x.ratio:.2f} / {x.ratio_direct:.2f} / {x.ratio_two_hops:.2f}",
            per_s(x.aiokafka.rate) if x.aiokafka and x.aiokafka.rate else "- (too few events to time)",
            f"{_cpu(x.noop)} / {_cpu(x.noop_direct)} / {_cpu(x.noop_two_hops)} / {_cpu(x.ingest)} / {_cpu(x.aiokafka)}",
            f"{x.ingest.startup_s:.1f}s",
            str(x.dlq),
        ]
        for i, x in enumerate(results, 1)
    ]
    header = [
        "round",
        "no-op faust pass-through (Topic.send), events/s",
        "no-op, producer sends, events/s",
        "no-op, two hops, events/s",
        "ingest, events/s",
        "ingest / no-op (Topic.send / producer / two hops)",
        "plain aiokafka pass-through, events/s",
        "CPU of a core: no-op / no-op producer / two hops / ingest / aiokafka",
        "ingest start",
        "DLQ",
    ]
    print()
    print(f"{args.events:,} events, {args.partitions} partitions, one worker process each")
    print(markdown_table(header, rows))
    noop_rate = statistics.median(x.noop.rate for x in results)
    ingest_rate = statistics.median(x.ingest.rate for x in results)
    ratio = statistics.median(x.ratio for x in results)
    direct = statistics.median(x.ratio_direct for x in results)
    print(f"median: ingest {per_s(ingest_rate)} events/s, no-op {per_s(noop_rate)} events/s, ratio {ratio:.2f}")
    print(f"median ratio against the no-op that sends through the producer like the ingest stage: {direct:.2f}")
    two_hops = statistics.median(x.noop_two_hops.rate for x in results)
    print(f"median no-op in the ingest stage's shape (two hops, the worker's faust app): {per_s(two_hops)} events/s")
    print(f"goal >= {GOAL_RATE:,.0f} events/s:", "met" if ingest_rate >= GOAL_RATE else "MISSED")
    print(f"goal ratio >= {GOAL_RATIO}:", "met" if ratio >= GOAL_RATIO else "MISSED")


def main() -> None:
    if len(sys.argv) == 3 and sys.argv[1] == "_noop-agent":
        noop_agent_main(json.loads(sys.argv[2]))
        return
    if len(sys.argv) == 3 and sys.argv[1] == "_aiokafka-agent":
        aiokafka_agent_main(json.loads(sys.argv[2]))
        return
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=20_000, help="source events per round (default 20,000)")
    parser.add_argument("--partitions", type=int, default=12, help="partitions of every topic (default 12)")
    parser.add_argument("--rounds", type=int, default=1, help="repeat no-op + ingest with fresh topics")
    parser.add_argument("--log-level", default="INFO", help="the worker's log level (INFO: one line per message)")
    parser.add_argument("--worker-root", type=Path, help="run the worker from a scratch copy (to try a change)")
    parser.add_argument(
        "--worker-env",
        action="append",
        default=[],
        metavar="K=V",
        help="extra environment of every child, e.g. RK_INGEST__LIFECYCLE_POLICY=warn (the worker and the two-hop "
        "no-op read RK_* only; the stock faust no-ops read faust's own variables) (repeatable)",
    )
    parser.add_argument("--timeout", type=float, default=300.0, help="seconds per measured run")
    parser.add_argument(
        "--aiokafka",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="also a plain aiokafka pass-through (the floor without faust's per-event machinery)",
    )
    parser.add_argument(
        "--profile",
        choices=["cprofile", "pyinstrument"],
        help="one more ingest run under a profiler (pyinstrument: install it ad hoc and put it on PYTHONPATH)",
    )
    parser.add_argument("--keep-topics", action="store_true", help="do not delete the run's topics")
    asyncio.run(main_async(parser.parse_args()))


if __name__ == "__main__":
    main()
