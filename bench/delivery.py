"""Delivery throughput against a real ``rueckkanal portal-sim``, with a naive baseline from the same run.

    .venv/bin/python bench/delivery.py [--messages 20000] [--vorgaenge 500] [--latencies 0,50]

Every run gets fresh topics, a fresh consumer group and a fresh portal (its own SQLite file), so de-duplication
never skews a figure. The outbox is filled before the consumer starts, with N messages rendered by
``MessageRenderer`` for ``--vorgaenge`` Vorgänge (keyed and with headers as the ingest stage writes them).

* **(a) naive**: a faust agent (this file, ``_naive-agent``) that POSTs one message at a time with the project's
  HTTP adapter and awaits the answer before the next; bounded by ``--naive-seconds``;
* **(b) dispatcher**: ``rueckkanal worker --role delivery`` with its default settings; afterwards every Vorgang is
  looked up at the portal (``GET /nachrichten?vorgang=``) and its sequence numbers must ascend in arrival order;
* **ceiling**: the bench process itself POSTs the same messages with the same adapter, 256 at once, no Kafka: what
  this portal-sim process can take on this machine (the most any consumer could reach);

each at every ``--latencies`` value (portal-sim ``--latency-min-ms = --latency-max-ms``). Then, at 0 ms:

* **end to end**: ``rueckkanal worker --role all`` from pre-produced source events until the portal has them all;
* **two targets** (``--runs targets``): one ``worker --role delivery`` with the default target (XÖV portal-sim)
  and a ``zbp`` target (``portal-sim --mode zbp``, signing pair from a CA made for the run). The outbox is fed at
  ``--targets-rate`` messages/s; after ``--targets-warmup`` s the ZBP answers 503 for ``--targets-outage`` s
  (default 60, the issue's figure). Measured in the same run: the XÖV target's delivery rate before and during the
  outage (the ratio is the figure: 1.0 = not held back), how long the ZBP takes to catch up after the outage, its
  order per application (createdDate ascending in arrival order) and the dead letters (must be 0). The whole run
  takes warm-up + outage + catch-up, about two minutes with the defaults.
* **steady latency**: a fresh worker of the same kind while source events are produced at a paced rate for
  ``--steady-seconds``, once per ``--steady-rate`` (default 500/s as asked, and 200/s, below what one worker takes
  here); latency = the portal's first receipt time − the time the event was handed to the producer (its
  statusZeit is set to that moment too), p50/p99 over all events after ``--steady-warmup`` seconds at the same rate
  (default 2): the warm-up's events, a fresh worker's first requests, are reported apart, not dropped.

Rates are measured from the first message the portal stored to the last (``/admin/stats`` polled every 100 ms),
so process start and group join are left out. Results go into docs/benchmarks.md by hand, with the date, the
machine and what else was running.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import aiohttp
from aiokafka import AIOKafkaProducer

from adapters.inbound.base import InboundRecord
from adapters.inbound.config import build_adapter, load_fachverfahren
from adapters.portal.base import OutboundMessage
from adapters.portal.sim.devca import issue, make_ca
from adapters.portal.xoev_http import XoevHttpPortal
from bench.common import (
    Child,
    PortalSim,
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
    quantile,
    unique,
    worker_env,
)
from rueckkanal.lifecycle import VorgangState
from rueckkanal.resources import data_path
from rueckkanal.settings import PortalSettings, XoevSettings
from rueckkanal.xoev import MessageRenderer, nachrichten_uuid
from tests.support.events import SOURCE, hundesteuer_events
from tests.support.kafka_io import Record, create_topics, delete_topics_containing, produce, read_all
from tests.support.outbox import antrags_id_of
from tests.support.pipeline import pipeline_env

SELF = Path(__file__).resolve()
GOAL_AT_50MS = 2_000.0
GOAL_END_TO_END = 3_000.0
CEILING_CONCURRENCY = 256
ALL_RUNS = "naive,dispatcher,ceiling,e2e,steady,targets"


@dataclass
class Context:
    args: argparse.Namespace
    bootstrap: str
    workdir: Path
    outbox: list[Record] = field(default_factory=list)
    expected: dict[str, int] = field(default_factory=dict)  # vorgangsID → messages


@dataclass(frozen=True)
class Row:
    run: str
    latency_ms: int
    progress: Progress
    order: str = "n/a"
    note: str = ""

    @property
    def rate(self) -> float:
        return self.progress.rate


# -- the outbox --------------------------------------------------------------------------------------------------


def render_outbox(
    run: str, messages: int, vorgaenge: int, *, with_antrags_id: bool = False
) -> tuple[list[Record], dict[str, int]]:
    """N rendered messages over the Vorgänge, interleaved; key, value and headers as the ingest stage writes them.
    ``with_antrags_id``: every message with an antragsId (the ZBP needs one)."""
    [config] = [c for c in load_fachverfahren(data_path("fachverfahren")) if c.name == "hundesteuer"]
    adapter = build_adapter(config)
    renderer = MessageRenderer(XoevSettings())
    records: list[Record] = []
    expected: dict[str, int] = {}
    for offset, source_event in enumerate(hundesteuer_events(run, vorgaenge, math.ceil(messages / vorgaenge))):
        if offset >= messages:
            break
        key, value, headers = source_event.record
        inbound = InboundRecord(config.topic, 0, offset, 0, key, value, tuple(headers))
        event = adapter.decode(inbound)
        if with_antrags_id:
            event = event.model_copy(update={"antrags_id": antrags_id_of(event.vorgang_key)})
        state = VorgangState(event.status, source_event.step, event.status_time, (event.event_id,))
        rendered = renderer.render(event, state)
        outbox_headers = [
            ("nachrichtenUUID", rendered.nachrichten_uuid.encode()),
            ("ce_source", event.source.encode()),
            ("ce_id", event.event_id.encode()),
            ("status", event.status.encode()),
            ("rk.sequence", str(rendered.sequence).encode()),
            ("rk.status_time", event.status_time.isoformat().encode()),
            ("rk.source", config.name.encode()),
        ]
        records.append((event.vorgang_key.encode(), rendered.xml, outbox_headers))
        expected[source_event.vorgang_id] = expected.get(source_event.vorgang_id, 0) + 1
    return records, expected


async def fresh_outbox(ctx: Context, marker: str) -> dict[str, str]:
    """The run's own topics, the outbox pre-filled; the worker settings naming them."""
    names = {kind: f"bench.{marker}.{kind}" for kind in ("events", "outbox", "dlq", "receipts")}
    await create_topics(ctx.bootstrap, list(names.values()), ctx.args.partitions)
    await produce(ctx.bootstrap, names["outbox"], ctx.outbox)
    return {f"RK_TOPICS__{kind.upper()}": name for kind, name in names.items()}


# -- (a) the naive agent ---------------------------------------------------------------------------------------


def naive_agent_main(config: dict[str, Any]) -> None:
    """A faust agent that POSTs one outbox message, awaits the answer, then takes the next."""
    from typing import cast

    import faust

    app = faust.App(
        str(config["app_id"]),
        broker=f"kafka://{config['bootstrap']}",
        autodiscover=False,
        store="memory://",
        datadir=str(config["datadir"]),
        topic_partitions=int(config["partitions"]),
        web_enabled=False,
    )
    raw: dict[str, Any] = {"key_type": bytes, "value_type": bytes, "key_serializer": "raw", "value_serializer": "raw"}
    outbox = app.topic(str(config["outbox"]), **raw)
    portal = XoevHttpPortal(PortalSettings(url=config["url"]))

    async def naive(stream: faust.StreamT[bytes]) -> None:
        async for event in cast(faust.Stream[bytes], stream).events():
            message = event.message
            headers = dict(message.headers or ())
            outbound = OutboundMessage(
                nachrichten_uuid=(headers.get("nachrichtenUUID") or b"").decode(),
                vorgang_key=(message.key or b"").decode(),
                xml=message.value or b"",
            )
            try:
                await portal.send(outbound)
            except Exception:  # noqa: S112  # a naive agent: no retry, no DLQ; the portal's count tells
                continue

    app.agent(outbox, name="bench.naive")(naive)
    faust.Worker(app, loglevel="WARNING", redirect_stdouts=False).execute_from_commandline()


async def run_naive(ctx: Context, latency_ms: int) -> Row:
    marker = unique("bench-dlv-naive")
    topics = await fresh_outbox(ctx, marker)
    portal = PortalSim(ctx.workdir / f"{marker}.db", latency_ms)
    config = {
        "bootstrap": ctx.bootstrap,
        "app_id": marker,
        "outbox": topics["RK_TOPICS__OUTBOX"],
        "url": portal.nachrichten_url,
        "partitions": ctx.args.partitions,
        "datadir": str(ctx.workdir / marker),
    }
    child = Child([sys.executable, str(SELF), "_naive-agent", json.dumps(config)], {}, "naive agent")
    try:
        progress = await follow(portal.stored, Progress(len(ctx.outbox)), ctx.args.naive_seconds, [child, portal.child])
    finally:
        child.stop()
        await portal.close()
        await delete_topics_containing(ctx.bootstrap, marker)
    note = "" if progress.done else f"time-bounded: {progress.count:,} in {progress.seconds:.0f}s"
    return _said(Row("(a) naive agent, one POST at a time", latency_ms, progress, note=note))


# -- (b) the dispatcher ------------------------------------------------------------------------------------------


def _worker_overrides(ctx: Context) -> dict[str, str]:
    return dict(item.split("=", 1) for item in ctx.args.worker_env)


def _profile(ctx: Context, marker: str, wanted: bool) -> tuple[str, Path] | None:
    kind = ctx.args.profile_worker
    if not (wanted and kind):
        return None
    return kind, Path(tempfile.gettempdir()) / f"{marker}-worker.{'prof' if kind == 'cprofile' else 'txt'}"


async def run_dispatcher(ctx: Context, latency_ms: int, profiled: bool = False) -> Row:
    marker = unique("bench-dlv-disp")
    profile = _profile(ctx, marker, profiled)
    topics = await fresh_outbox(ctx, marker)
    portal = PortalSim(ctx.workdir / f"{marker}.db", latency_ms)
    env = {
        **worker_env(ctx.bootstrap, marker, ctx.workdir / marker, ctx.args.partitions, ctx.args.log_level),
        **topics,
        "RK_PORTAL__URL": portal.nachrichten_url,
        **_worker_overrides(ctx),
    }
    child = cli_child(
        ["worker", "--role", "delivery"], env, "delivery worker", root=ctx.args.worker_root, profile=profile
    )
    try:
        progress = await follow(portal.stored, Progress(len(ctx.outbox)), ctx.args.timeout, [child, portal.child])
        order = await order_kept(portal, ctx.expected)
        dlq = await _count(ctx, topics["RK_TOPICS__DLQ"])
    finally:
        child.stop()
        await portal.close()
        await delete_topics_containing(ctx.bootstrap, marker)
    note = f"DLQ {dlq}" + ("" if progress.done else f"; TIMEOUT at {progress.count:,}")
    if profile:
        note += f"; under {profile[0]}: {profile[1]}"
    return _said(Row("(b) dispatcher (worker --role delivery)", latency_ms, progress, order, note))


async def order_kept(portal: PortalSim, expected: dict[str, int]) -> str:
    """Every Vorgang at the portal: sequence numbers ascending in arrival order, and all of its messages there."""
    limit = asyncio.Semaphore(16)
    problems: list[str] = []

    async def check(vorgang_id: str, count: int) -> None:
        async with limit:
            rows = await portal.nachrichten(vorgang_id)
        sequences = [int(row["sequence"]) for row in rows]
        if sequences != sorted(sequences) or len(set(sequences)) != len(sequences):
            problems.append(f"{vorgang_id}: out of order")
        elif len(sequences) != count:
            problems.append(f"{vorgang_id}: {len(sequences)} of {count}")

    await asyncio.gather(*(check(v, n) for v, n in expected.items()))
    if problems:
        return f"no ({len(problems)} of {len(expected)} Vorgänge: {problems[0]})"
    return f"yes ({len(expected)} of {len(expected)} Vorgänge checked)"


async def _count(ctx: Context, topic: str) -> int:
    async with TopicCounter(ctx.bootstrap, topic, ctx.args.partitions) as counter:
        return await counter()


# -- the portal's ceiling ----------------------------------------------------------------------------------------


async def run_ceiling(ctx: Context, latency_ms: int) -> Row:
    marker = unique("bench-dlv-ceiling")
    kind = ctx.args.profile_portal
    out = Path(tempfile.gettempdir()) / f"{marker}-portal.{'prof' if kind == 'cprofile' else 'txt'}"
    profile = (kind, out) if kind and latency_ms == 0 else None
    portal = PortalSim(ctx.workdir / f"{marker}.db", latency_ms, profile=profile)
    settings = PortalSettings(url=portal.nachrichten_url)
    adapter = XoevHttpPortal(settings)
    limit = asyncio.Semaphore(CEILING_CONCURRENCY)

    async def post(record: Record) -> None:
        key, value, headers = record
        uuid = dict(headers)["nachrichtenUUID"].decode()
        async with limit:
            await adapter.send(OutboundMessage(uuid, (key or b"").decode(), value or b""))

    sender = asyncio.gather(*(post(r) for r in ctx.outbox), return_exceptions=True)
    try:
        progress = await follow(portal.stored, Progress(len(ctx.outbox)), ctx.args.timeout, [portal.child])
    finally:
        sender.cancel()
        await asyncio.gather(sender, return_exceptions=True)
        await adapter.aclose()
        await portal.close()
    name = f"ceiling: bench POSTs directly, {CEILING_CONCURRENCY} in flight"
    note = f"adapter default: {settings.max_connections} connections"
    if profile:
        note += f"; portal-sim under {kind}: {out}"
    return _said(Row(name, latency_ms, progress, note=note))


# -- end to end --------------------------------------------------------------------------------------------------


async def start_all_worker(
    ctx: Context, marker: str, portal: PortalSim, partitions: int, profile: tuple[str, Path] | None = None
) -> tuple[Child, dict[str, str], str]:
    pipeline = pipeline_env(ctx.bootstrap, marker, ctx.workdir / marker, partitions=partitions)
    await create_topics(ctx.bootstrap, list(pipeline.source_topics.values()), partitions)
    env = {
        **pipeline.env,
        **worker_env(ctx.bootstrap, pipeline.app_id, ctx.workdir / marker / "data", partitions, ctx.args.log_level),
        "RK_PORTAL__URL": portal.nachrichten_url,
        **_worker_overrides(ctx),
    }
    child = cli_child(["worker", "--role", "all"], env, "worker all", root=ctx.args.worker_root, profile=profile)
    return child, env, pipeline.source_topics["hundesteuer"]


async def run_end_to_end(ctx: Context, profiled: bool = False) -> Row:
    marker = unique("bench-e2e")
    profile = _profile(ctx, marker, profiled)
    events = hundesteuer_events(marker, vorgaenge=max(1, ctx.args.e2e_events // 20))[: ctx.args.e2e_events]
    portal = PortalSim(ctx.workdir / f"{marker}.db", 0)
    child, _env, source = await start_all_worker(ctx, marker, portal, ctx.args.partitions, profile)
    try:
        await produce(ctx.bootstrap, source, [e.record for e in events])
        progress = await follow(portal.stored, Progress(len(events)), ctx.args.timeout, [child, portal.child])
        expected: dict[str, int] = {}
        for e in events:
            expected[e.vorgang_id] = expected.get(e.vorgang_id, 0) + 1
        order = await order_kept(portal, expected)
    finally:
        child.stop()
        await portal.close()
        await delete_topics_containing(ctx.bootstrap, marker)
    note = "source events pre-produced" + ("" if progress.done else f"; TIMEOUT at {progress.count:,}")
    if profile:
        note += f"; under {profile[0]}: {profile[1]}"
    return _said(Row("end to end (worker --role all)", 0, progress, order, note))


@dataclass(frozen=True)
class Latency:
    rate: float
    events: int
    produced_rate: float
    worker_cpu: float  # share of a core while the events were produced
    delivered: int
    p50_ms: float
    p99_ms: float
    max_ms: float
    warmup_s: float = 0.0
    first_p99_ms: float = 0.0  # the events of the warm-up seconds, not in the figures above
    first_max_ms: float = 0.0


async def run_steady(ctx: Context, rate: float) -> Latency:
    """Paced source events through a running ``--role all`` worker; latency per event at the portal."""
    marker = unique("bench-steady")
    seconds = ctx.args.steady_seconds
    warmup = ctx.args.steady_warmup
    total = int(rate * (seconds + warmup))
    events = hundesteuer_events(marker, vorgaenge=max(1, math.ceil(total / 20)))[:total]
    portal = PortalSim(ctx.workdir / f"{marker}.db", 0)
    child, env, source = await start_all_worker(ctx, marker, portal, ctx.args.partitions)
    try:
        child.wait_for_event("worker ready", timeout=120)
        await _until_ready(int(env["RK_WEB__PORT"]), child)
        cpu_before, started = child.cpu_seconds(), time.monotonic()
        sent_at, produced_rate = await produce_paced(ctx.bootstrap, source, [e.record for e in events], rate)
        worker_cpu = (child.cpu_seconds() - cpu_before) / (time.monotonic() - started)
        progress = await follow(portal.stored, Progress(total), ctx.args.timeout, [child, portal.child])
        received = await first_received(portal, sorted({e.vorgang_id for e in events}))
        hops = await _hops(ctx.bootstrap, env, sent_at, received, warmup)
    finally:
        child.stop()
        await portal.close()
        await delete_topics_containing(ctx.bootstrap, marker)
    first = min(sent_at.values()) if sent_at else 0.0
    timed = {uuid: at for uuid, at in sent_at.items() if at - first >= warmup}
    early = [(received[uuid] - at) * 1000 for uuid, at in sent_at.items() if uuid in received and uuid not in timed]
    latencies = [(received[uuid] - at) * 1000 for uuid, at in timed.items() if uuid in received]
    print(f"    p50 latency per quarter of the run (ms): {_by_quarter(timed, received)}")
    if early:
        print(
            f"    warm-up, the first {warmup:g} s after the worker was ready ({len(early):,} events, not in the "
            f"figures): p50 {quantile(early, 0.5):,.0f} ms, p99 {quantile(early, 0.99):,.0f} ms, max {max(early):,.0f}"
        )
    print(f"    per hop (ms): {hops}")
    result = Latency(
        rate,
        total,
        produced_rate,
        worker_cpu,
        progress.count,
        quantile(latencies, 0.5),
        quantile(latencies, 0.99),
        max(latencies),
        warmup,
        quantile(early, 0.99) if early else 0.0,
        max(early) if early else 0.0,
    )
    print(f"  {_latency_line(result)}")
    return result


async def _hops(
    bootstrap: str, env: dict[str, str], sent_at: dict[str, float], received: dict[str, float], warmup: float
) -> str:
    """Where the time goes per event, p50 and p99 per hop, for the warm-up and the timed part apart: the CreateTime
    of its records on the outbox (and on the events topic, for an event that took the extra hop) set by the worker's
    producer when it sends, splits the latency into ingest and delivery. The bench's source topic is
    co-partitioned, so normally no event is rerouted."""
    stamps: dict[str, dict[str, float]] = {"events": {}, "outbox": {}}
    for hop, topic in (("events", env["RK_TOPICS__EVENTS"]), ("outbox", env["RK_TOPICS__OUTBOX"])):
        for record in await read_all(bootstrap, topic):
            headers = dict(record.headers)
            if hop == "events":
                uuid = nachrichten_uuid(SOURCE, headers["ce_id"].decode())
            else:
                uuid = headers["nachrichtenUUID"].decode()
            stamps[hop].setdefault(uuid, record.timestamp / 1000)
    done = [u for u in sent_at if u in stamps["outbox"] and u in received]
    if not done:
        return "n/a"
    first = min(sent_at.values())
    rerouted = sum(1 for u in done if u in stamps["events"])
    parts = []
    for name, part in (
        ("warm-up", [u for u in done if sent_at[u] - first < warmup]),
        ("after", [u for u in done if sent_at[u] - first >= warmup]),
    ):
        if not part:
            continue
        ingest = [(stamps["outbox"][u] - sent_at[u]) * 1000 for u in part]
        delivery = [(received[u] - stamps["outbox"][u]) * 1000 for u in part]
        parts.append(
            f"{name}: source → outbox p50 {quantile(ingest, 0.5):,.0f} p99 {quantile(ingest, 0.99):,.0f}, "
            f"outbox → portal p50 {quantile(delivery, 0.5):,.0f} p99 {quantile(delivery, 0.99):,.0f}"
        )
    return "; ".join(parts) + f" ({rerouted:,} events rerouted)"


def _by_quarter(sent_at: dict[str, float], received: dict[str, float]) -> str:
    """Median latency of the events produced in each quarter of the run: rising means the worker falls behind."""
    ordered = sorted((at, (received[uuid] - at) * 1000) for uuid, at in sent_at.items() if uuid in received)
    size = max(1, len(ordered) // 4)
    quarters = [ordered[i : i + size] for i in range(0, len(ordered), size)][:4]
    return " / ".join(f"{quantile([ms for _, ms in q], 0.5):,.0f}" for q in quarters)


def _latency_line(x: Latency) -> str:
    return (
        f"steady {x.rate:,.0f}/s (produced at {x.produced_rate:,.0f}/s, worker CPU {x.worker_cpu:.0%} of a core): "
        f"{x.delivered:,} of {x.events:,} delivered; latency p50 {x.p50_ms:,.0f} ms, p99 {x.p99_ms:,.0f} ms, "
        f"max {x.max_ms:,.0f} ms"
        + (
            f"; in the {x.warmup_s:g} s of warm-up before: p99 {x.first_p99_ms:,.0f} ms, max {x.first_max_ms:,.0f}"
            if x.warmup_s
            else ""
        )
    )


async def _until_ready(port: int, child: Child, limit_s: float = 60.0) -> None:
    """Until the worker's /readyz answers 200 (partitions of both stages assigned)."""
    deadline = time.monotonic() + limit_s
    async with aiohttp.ClientSession() as session:
        while time.monotonic() < deadline:
            child.check_alive()
            try:
                async with session.get(f"http://127.0.0.1:{port}/readyz") as response:
                    if response.status == 200:
                        return
            except aiohttp.ClientError:
                pass
            await asyncio.sleep(0.2)  # polling the worker's readiness, bounded
    raise TimeoutError(f"worker not ready within {limit_s}s")


async def produce_paced(
    bootstrap: str, topic: str, records: Sequence[Record], rate: float
) -> tuple[dict[str, float], float]:
    """Produce at ``rate`` records/s in 10 ms ticks with statusZeit = now; the wall time each was handed over."""
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", enable_idempotence=True, linger_ms=5)
    await producer.start()
    sent_at: dict[str, float] = {}
    futures: list[asyncio.Future[Any]] = []
    tick = 0.01
    started = time.monotonic()
    try:
        for i, (key, value, headers) in enumerate(records):
            due = started + i / rate
            if due - time.monotonic() > tick / 2:
                await asyncio.sleep(due - time.monotonic())  # the pace itself
            now = datetime.now(UTC)
            value, headers, event_id = _now(value or b"", headers, now)
            sent_at[nachrichten_uuid(SOURCE, event_id)] = now.timestamp()
            futures.append(await producer.send(topic, value, key=key, headers=headers))
        await asyncio.gather(*futures)
    finally:
        await producer.stop()
    return sent_at, len(records) / (time.monotonic() - started)


def _now(value: bytes, headers: list[tuple[str, bytes]], now: datetime) -> tuple[bytes, list[tuple[str, bytes]], str]:
    data = json.loads(value)
    data["statusZeit"] = now.isoformat(timespec="milliseconds")
    stamped = [(k, now.isoformat(timespec="milliseconds").encode() if k == "ce_time" else v) for k, v in headers]
    event_id = dict(headers)["ce_id"].decode()
    return json.dumps(data).encode(), stamped, event_id


async def first_received(portal: PortalSim, vorgaenge: Sequence[str]) -> dict[str, float]:
    limit = asyncio.Semaphore(16)
    received: dict[str, float] = {}

    async def one(vorgang_id: str) -> None:
        async with limit:
            rows = await portal.nachrichten(vorgang_id)
        for row in rows:
            received[row["nachrichtenUUID"]] = datetime.fromisoformat(row["firstReceivedAt"]).timestamp()

    await asyncio.gather(*(one(v) for v in vorgaenge))
    return received


# -- two targets, one down ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class TargetsResult:
    messages: int
    rate: float
    xoev_before: float
    xoev_during: float
    zbp_before: float
    zbp_during: float
    catch_up_s: float
    zbp_order: str
    xoev_order: str
    dlq: int


class ZbpSim:
    """A ``portal-sim --mode zbp`` child trusting ``ca``."""

    def __init__(self, ca: Path) -> None:
        args = ["portal-sim", "--mode", "zbp", "--zbp-ca", str(ca), "--port", "0", "--log-level", "INFO"]
        self.child = cli_child(args, {}, "zbp-sim")
        ready = self.child.wait_for(lambda line: line.get("event") == "portal-sim ready", timeout=60)
        self.base_url = f"http://127.0.0.1:{ready['port']}"
        self.http = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30))

    async def stored(self) -> int:
        async with self.http.get(f"{self.base_url}/admin/stats") as response:
            return int((await response.json()).get("stored", 0))

    async def outage(self, seconds: float) -> None:
        async with self.http.post(f"{self.base_url}/admin/faults", json={"outage_seconds": seconds}) as response:
            response.raise_for_status()

    async def order(self) -> str:
        async with self.http.get(f"{self.base_url}/zbp/antraege") as response:
            applications = (await response.json())["antraege"]
        broken = [
            a["applicationId"]
            for a in applications
            if [s["createdDate"] for s in a["statuses"]] != sorted(s["createdDate"] for s in a["statuses"])
        ]
        return "yes" if not broken else f"NO ({len(broken)} applications out of order)"

    async def close(self) -> None:
        await self.http.close()
        self.child.stop()


async def run_targets(ctx: Context) -> TargetsResult:
    args = ctx.args
    marker = unique("bench-dlv-targets")
    total = int(args.targets_rate * (args.targets_warmup + args.targets_outage + args.targets_tail))
    records, expected = render_outbox(unique("tgt"), total, args.vorgaenge, with_antrags_id=True)
    ca = make_ca("Bench-CA")
    pair = issue(ca, ctx.workdir / marker / "zbp", "bench-rueckkanal")
    ca.write(ctx.workdir / marker / "ca.pem")
    names = {kind: f"bench.{marker}.{kind}" for kind in ("events", "outbox", "dlq", "receipts")}
    await create_topics(ctx.bootstrap, list(names.values()), args.partitions)
    topics = {f"RK_TOPICS__{kind.upper()}": name for kind, name in names.items()}
    portal = PortalSim(ctx.workdir / f"{marker}.db")
    zbp = ZbpSim(ctx.workdir / marker / "ca.pem")
    env = {
        **worker_env(ctx.bootstrap, marker, ctx.workdir / marker / "data", args.partitions, args.log_level),
        **topics,
        "RK_PORTAL__URL": portal.nachrichten_url,
        "RK_TARGETS__ZBP__ADAPTER": "zbp",
        "RK_TARGETS__ZBP__STATUS_URL": f"{zbp.base_url}/zbp/v6/status",
        "RK_TARGETS__ZBP__MESSAGE_URL": f"{zbp.base_url}/zbp/v6/message",
        "RK_TARGETS__ZBP__SIGNING_KEY": str(pair.key_path),
        "RK_TARGETS__ZBP__SIGNING_CERT": str(pair.cert_path),
        **_worker_overrides(ctx),
    }
    child = cli_child(["worker", "--role", "delivery"], env, "delivery worker (2 targets)")
    samples: list[tuple[float, int, int]] = []
    try:
        child.wait_for_event("worker ready", timeout=120)
        feeding = asyncio.create_task(produce_steady(ctx.bootstrap, names["outbox"], records, args.targets_rate))
        started = time.monotonic()
        outage_at = started + args.targets_warmup
        outage_end = outage_at + args.targets_outage
        outage_sent = False
        deadline = outage_end + args.targets_tail + args.timeout
        while time.monotonic() < deadline:
            if not outage_sent and time.monotonic() >= outage_at:
                await zbp.outage(args.targets_outage)
                outage_sent, outage_at = True, time.monotonic()
                outage_end = outage_at + args.targets_outage
            samples.append((time.monotonic(), await portal.stored(), await zbp.stored()))
            if samples[-1][1] >= total and samples[-1][2] >= total:
                break
            child.check_alive()
            await asyncio.sleep(0.5)  # sampling the two portals' counters, bounded by the deadline
        await feeding
        xoev_order = await order_kept(portal, expected)
        zbp_order = await zbp.order()
        dlq = await _count(ctx, names["dlq"])
    finally:
        child.stop()
        await portal.close()
        await zbp.close()
        await delete_topics_containing(ctx.bootstrap, marker)
    done_at = next((t for t, _, z in samples if z >= total), float("nan"))
    result = TargetsResult(
        messages=total,
        rate=args.targets_rate,
        xoev_before=_window_rate(samples, 1, started + 5, outage_at),
        xoev_during=_window_rate(samples, 1, outage_at, outage_end),
        zbp_before=_window_rate(samples, 2, started + 5, outage_at),
        zbp_during=_window_rate(samples, 2, outage_at, outage_end),
        catch_up_s=done_at - outage_end,
        zbp_order=zbp_order,
        xoev_order=xoev_order,
        dlq=dlq,
    )
    print(f"  two targets: {result}")
    return result


def _window_rate(samples: list[tuple[float, int, int]], column: int, start: float, end: float) -> float:
    inside = [s for s in samples if start <= s[0] <= end]
    if len(inside) < 2:
        return float("nan")
    return (inside[-1][column] - inside[0][column]) / (inside[-1][0] - inside[0][0])


async def produce_steady(bootstrap: str, topic: str, records: Sequence[Record], rate: float) -> None:
    """The records onto the outbox at ``rate`` per second (10 ms ticks), as the ingest stage would write them."""
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", enable_idempotence=True, linger_ms=5)
    await producer.start()
    futures: list[asyncio.Future[Any]] = []
    started = time.monotonic()
    try:
        for i, (key, value, headers) in enumerate(records):
            due = started + i / rate
            if due - time.monotonic() > 0.005:
                await asyncio.sleep(due - time.monotonic())  # the pace itself
            futures.append(await producer.send(topic, value, key=key, headers=headers))
        await asyncio.gather(*futures)
    finally:
        await producer.stop()


def targets_summary(x: TargetsResult) -> str:
    held = x.xoev_during / x.xoev_before if x.xoev_before else float("nan")
    return (
        f"two targets, {x.messages:,} messages fed at {x.rate:.0f}/s, ZBP down (503) for the outage:\n"
        f"  XÖV target: {x.xoev_before:,.0f} msgs/s before, {x.xoev_during:,.0f} msgs/s during the outage "
        f"(× {held:.2f}), order kept: {x.xoev_order}\n"
        f"  ZBP target: {x.zbp_before:,.0f} msgs/s before, {x.zbp_during:,.0f} during; caught up "
        f"{x.catch_up_s:.1f} s after the outage ended, order kept: {x.zbp_order}\n"
        f"  dead letters: {x.dlq}"
    )


# -- main --------------------------------------------------------------------------------------------------------


def _said(row: Row) -> Row:
    cpu = row.progress.cpu_note()
    if cpu:
        row = Row(row.run, row.latency_ms, row.progress, row.order, "; ".join(n for n in (f"CPU {cpu}", row.note) if n))
    state = f"  [{row.note}]" if row.note else ""
    print(f"  {row.run:<48} {row.latency_ms:>3} ms {per_s(row.rate):>7} msgs/s  order {row.order}{state}")
    return row


async def main_async(args: argparse.Namespace) -> None:
    bootstrap = bootstrap_address()
    print(machine_description())
    print(f"busy before the run: {', '.join(busy_processes()) or 'nothing'}")
    latencies = [int(x) for x in args.latencies.split(",") if x.strip()]
    rows: list[Row] = []
    steady: list[Latency] = []
    with tempfile.TemporaryDirectory(prefix="rk-bench-delivery-") as tmp:
        ctx = Context(args, bootstrap, Path(tmp))
        started = time.monotonic()
        ctx.outbox, ctx.expected = render_outbox(unique("dlv"), args.messages, args.vorgaenge)
        print(f"rendered {len(ctx.outbox):,} outbox messages for {len(ctx.expected)} Vorgänge ", end="")
        print(f"in {time.monotonic() - started:.1f}s")
        runs = set(args.runs.split(","))
        for latency_ms in latencies:
            if "naive" in runs:
                rows.append(await run_naive(ctx, latency_ms))
            if "dispatcher" in runs:
                rows.append(await run_dispatcher(ctx, latency_ms))
            if "ceiling" in runs:
                rows.append(await run_ceiling(ctx, latency_ms))
        if "e2e" in runs:
            rows.append(await run_end_to_end(ctx))
        if "steady" in runs:
            steady = [await run_steady(ctx, float(rate)) for rate in args.steady_rate.split(",")]
        targets = await run_targets(ctx) if "targets" in runs else None
        if args.profile_worker:  # extra runs, not in the table: a profiler slows the worker down
            print("profiled extra runs (not in the table):")
            await run_dispatcher(ctx, 0, profiled=True)
            await run_end_to_end(ctx, profiled=True)
    print(f"load average after the run: {load_average()}")
    summarise(rows, steady, args)
    if targets is not None:
        print(targets_summary(targets))


def summarise(rows: list[Row], steady: list[Latency], args: argparse.Namespace) -> None:
    baseline = {r.latency_ms: r.rate for r in rows if r.run.startswith("(a)")}
    table = []
    for r in rows:
        base = baseline.get(r.latency_ms) if not r.run.startswith("end to end") else None
        ratio = f"{r.rate / base:.1f}×" if base else ""
        table.append([r.run, f"{r.latency_ms} ms", per_s(r.rate), ratio, r.order, r.note])
    if not rows and not steady:
        return
    print()
    print(f"{args.messages:,} outbox messages over {args.vorgaenge} Vorgänge, {args.partitions} partitions")
    print(markdown_table(["run", "portal latency", "msgs/s", "× naive (a)", "order kept", "note"], table))
    for x in steady:
        print(_latency_line(x))
    for r in rows:
        if r.run.startswith("(b)") and r.latency_ms == 50:
            kept = r.order.startswith("yes")
            met = r.rate >= GOAL_AT_50MS and kept
            print(f"goal at 50 ms >= {GOAL_AT_50MS:,.0f} msgs/s with order kept:", "met" if met else "MISSED")
        if r.run.startswith("end to end"):
            print(
                f"goal end to end >= {GOAL_END_TO_END:,.0f} msgs/s:", "met" if r.rate >= GOAL_END_TO_END else "MISSED"
            )


def main() -> None:
    if len(sys.argv) == 3 and sys.argv[1] == "_naive-agent":
        naive_agent_main(json.loads(sys.argv[2]))
        return
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=20_000, help="outbox messages per run (default 20,000)")
    parser.add_argument("--vorgaenge", type=int, default=500, help="Vorgänge the messages belong to")
    parser.add_argument("--partitions", type=int, default=12, help="partitions of every topic (default 12)")
    parser.add_argument("--latencies", default="0,50", help="portal latencies in ms, comma-separated")
    parser.add_argument(
        "--naive-seconds", type=float, default=20.0, help="time bound of each naive run, from its first delivery"
    )
    parser.add_argument("--timeout", type=float, default=180.0, help="time bound of every other run")
    parser.add_argument("--runs", default=ALL_RUNS, help=f"which runs, comma-separated (default {ALL_RUNS})")
    parser.add_argument("--e2e-events", type=int, default=20_000, help="source events of the end-to-end run")
    parser.add_argument("--steady-rate", default="500,200", help="events/s of the latency runs, comma-separated")
    parser.add_argument("--steady-seconds", type=float, default=20.0, help="length of the latency run")
    parser.add_argument(
        "--steady-warmup",
        type=float,
        default=2.0,
        help="seconds at the same rate before the latency run, reported apart (a fresh worker's first requests)",
    )
    parser.add_argument(
        "--profile-portal",
        choices=["cprofile", "pyinstrument"],
        help="run portal-sim under a profiler in the 0 ms ceiling run (pyinstrument: ad hoc, on PYTHONPATH)",
    )
    parser.add_argument(
        "--profile-worker",
        choices=["cprofile", "pyinstrument"],
        help="extra (b) 0 ms and end-to-end runs with the worker under a profiler (not in the table)",
    )
    parser.add_argument("--targets-rate", type=float, default=300.0, help="two targets: outbox messages/s fed")
    parser.add_argument("--targets-warmup", type=float, default=20.0, help="two targets: seconds before the outage")
    parser.add_argument("--targets-outage", type=float, default=60.0, help="two targets: seconds the ZBP answers 503")
    parser.add_argument("--targets-tail", type=float, default=10.0, help="two targets: seconds fed after the outage")
    parser.add_argument("--log-level", default="INFO", help="the worker's log level (INFO: one line per message)")
    parser.add_argument("--worker-root", type=Path, help="run the worker from a scratch copy (to try a change)")
    parser.add_argument(
        "--worker-env", action="append", default=[], metavar="RK_X=V", help="extra worker setting (repeatable)"
    )
    asyncio.run(main_async(parser.parse_args()))


if __name__ == "__main__":
    main()
