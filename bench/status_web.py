"""status-web benchmarks, short runs (each well under a minute):

1. **Page views** on one status-web process (SQLite, the example Vorgänge): tracking-link pages per second with
   32 requests in flight, and the p50/p99 answer time, against a baseline in the same invocation: the same server's
   static stylesheet (no token lookup, no database, no HTML built). The server runs in its own process.
2. **Status lag at 500 events/s**: outbox records written to a fresh topic at a steady 500/s for 10 s, one
   status-web process (SQLite) storing them; the lag is the time from a record's timestamp to the commit of its
   batch, read from status-web's histogram ``rueckkanal_status_web_store_delay_seconds`` (upper bounds of buckets).

    RK_KAFKA__BOOTSTRAP=127.0.0.1:19092 .venv/bin/python bench/status_web.py
"""

from __future__ import annotations

import asyncio
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path
from tempfile import mkdtemp

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import aiohttp  # noqa: E402

SERVER = """
import asyncio, sys
from pathlib import Path
from tests.support.status_web import start_site
async def main():
    site = await start_site(Path(sys.argv[1]))
    print(site.base_url, *site.urls.values(), flush=True)
    await asyncio.Event().wait()
asyncio.run(main())
"""


async def load(urls: list[str], seconds: float, in_flight: int = 32) -> tuple[float, list[float]]:
    latencies: list[float] = []
    stop = time.monotonic() + seconds

    async def client(http: aiohttp.ClientSession, n: int) -> None:
        i = n
        while time.monotonic() < stop:
            started = time.perf_counter()
            async with http.get(urls[i % len(urls)]) as response:
                await response.read()
                assert response.status == 200, response.status
            latencies.append(time.perf_counter() - started)
            i += 1

    begun = time.monotonic()
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=in_flight)) as http:
        await asyncio.gather(*(client(http, n) for n in range(in_flight)))
    return len(latencies) / (time.monotonic() - begun), latencies


def pct(values: list[float], q: float) -> float:
    return statistics.quantiles(values, n=100)[int(q) - 1] * 1000


def page_views() -> None:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    server = subprocess.Popen(
        [sys.executable, "-c", SERVER, mkdtemp()], env=env, stdout=subprocess.PIPE, text=True, cwd=ROOT
    )
    try:
        assert server.stdout is not None
        base, *links = server.stdout.readline().split()
        for name, urls in (("baseline: /static/status.css", [f"{base}/static/status.css"]), ("status page", links)):
            asyncio.run(load(urls, 2))  # warm-up
            rate, latencies = asyncio.run(load(urls, 10))
            print(f"{name:<32} {rate:8.0f} req/s  p50 {pct(latencies, 50):6.1f} ms  p99 {pct(latencies, 99):6.1f} ms")
    finally:
        server.terminate()
        server.wait()


async def lag(bootstrap: str) -> None:
    from aiokafka import AIOKafkaProducer

    from tests.support.events import hundesteuer_events
    from tests.support.kafka_io import create_topics
    from tests.support.outbox import outbox_records
    from tests.support.processes import CliProcess, free_port

    run = f"bench{int(time.time())}"
    outbox = f"rk.{run}.outbox"
    await create_topics(bootstrap, [outbox], partitions=6)
    records = outbox_records(hundesteuer_events(run, vorgaenge=250, steps=20))  # 5,000 records
    internal = free_port()
    tmp = mkdtemp()
    env = {
        "PYTHONPATH": str(ROOT),
        "RK_KAFKA__BOOTSTRAP": bootstrap,
        "RK_APP_ID": f"rk-{run}",
        "RK_TOPICS__OUTBOX": outbox,
        "RK_STATUS_WEB__PORT": str(free_port()),
        "RK_STATUS_WEB__INTERNAL_PORT": str(internal),
        "RK_STATUS_WEB__DATABASE_URL": f"sqlite:///{tmp}/status.sqlite3",
        "RK_STATUS_WEB__TOKEN_PEPPER": "bench-pepper-0123456789abcdef",
        "RK_STATUS_WEB__PUBLISH_TRACKING": "false",
    }
    web = CliProcess(["status-web"], env=env, cwd=ROOT)
    try:
        web.wait_for_event("status-web ready", timeout=60)
        producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", linger_ms=5)
        await producer.start()
        try:
            begun = time.monotonic()
            for i, (key, value, headers) in enumerate(records):  # a steady 500/s: 5 records every 10 ms
                await producer.send(outbox, value, key=key, headers=headers)
                if i % 5 == 4:
                    await asyncio.sleep(max(0.0, begun + (i + 1) / 500 - time.monotonic()))
            await producer.flush()
            sent_s = time.monotonic() - begun
        finally:
            await producer.stop()
        async with aiohttp.ClientSession() as http:
            deadline = time.monotonic() + 60
            while True:
                async with http.get(f"http://127.0.0.1:{internal}/metrics") as response:
                    text = await response.text()
                buckets = {
                    line.split('le="')[1].split('"')[0]: float(line.rsplit(" ", 1)[1])
                    for line in text.splitlines()
                    if line.startswith("rueckkanal_status_web_store_delay_seconds_bucket")
                }
                stored = sum(
                    float(line.rsplit(" ", 1)[1])
                    for line in text.splitlines()
                    if line.startswith('rueckkanal_status_web_statuses_total{outcome="stored"}')
                )
                if stored >= len(records) or time.monotonic() > deadline:
                    break
                await asyncio.sleep(0.5)
        batches = buckets["+Inf"]
        for q in (0.5, 0.99):
            bound = next(le for le, count in buckets.items() if count >= q * batches)
            print(f"lag at 500 events/s: p{int(q * 100)} of batches ≤ {bound} s")
        print(f"{stored:.0f} of {len(records)} stored, sent in {sent_s:.1f} s ({len(records) / sent_s:.0f}/s)")
    finally:
        web.terminate()


if __name__ == "__main__":
    page_views()
    asyncio.run(lag(os.environ.get("RK_KAFKA__BOOTSTRAP", "127.0.0.1:19092")))
