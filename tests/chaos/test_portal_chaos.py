"""Portal chaos: a real delivery worker against a reference portal that misbehaves in every way we know of.

A seeded random mix of 5xx, 429, 3xx, 404, HTML pages with status 200, dropped connections, answers that never
come after the portal stored the message, slow bodies and a flapping OAuth2 token endpoint, changed in phases as
delivery progresses, and at the end a portal that works again. Invariants:

- the worker never exits, and its circuit breaker ends CLOSED (``rueckkanal_circuit_state`` on /metrics);
- nothing counts as delivered without a Quittung: every receipt names a message the portal stored, with the
  portal's own receipt id;
- every outbox offset ends committed by the delivery group, and each message is delivered or dead-lettered;
- the portal received each Vorgang's messages in increasing sequence.
"""

from __future__ import annotations

import asyncio
import json
import random
import time
from pathlib import Path
from typing import Any

import aiohttp

from tests.support.chaos import ChaosReport, metric_value, wait_for_records
from tests.support.events import hundesteuer_events
from tests.support.kafka_io import create_topics, produce, read_all, wait_until_caught_up
from tests.support.outbox import outbox_records
from tests.support.pipeline import pipeline_env
from tests.support.portal import PortalSim, portal_sim
from tests.support.processes import CliProcess, free_port

PARTITIONS = 4
VORGAENGE, STEPS = 120, 5  # 600 messages: a few minutes of faults would not find more, only take longer
PHASES = 4
CLIENT_ID, CLIENT_SECRET = "rk-chaos", "chaos-geheim"  # the simulator's throwaway test client
FAULT_COUNTERS = (
    "dropped",
    "outage",
    "throttled",
    "error",
    "redirect",
    "not_found",
    "html",
    "store_then_hang",
    "slow_body",
    "token_error",
    "unauthorised",
)


def chaos_mix(rng: random.Random) -> dict[str, Any]:
    """One phase's faults: every kind present, each at a random rate; the dice of the portal seeded too."""
    return {
        "error_rate": round(rng.uniform(0.03, 0.12), 3),
        "error_status": rng.choice([500, 502, 503, 504]),
        "throttle_rate": round(rng.uniform(0.0, 0.05), 3),
        "retry_after_s": 1,
        "drop_rate": round(rng.uniform(0.02, 0.06), 3),
        "redirect_rate": round(rng.uniform(0.02, 0.06), 3),
        "redirect_status": rng.choice([301, 302, 303, 307, 308]),
        "not_found_rate": round(rng.uniform(0.02, 0.06), 3),
        "html_rate": round(rng.uniform(0.02, 0.06), 3),
        "store_then_hang_rate": round(rng.uniform(0.02, 0.06), 3),
        "hang_s": 30,
        "slow_body_rate": round(rng.uniform(0.05, 0.15), 3),
        "slow_body_chunk_bytes": rng.choice([16, 64, 256]),
        "slow_body_delay_ms": rng.choice([5, 20, 50]),
        "token_error_rate": round(rng.uniform(0.4, 0.8), 3),
        "latency_min_ms": 0,
        "latency_max_ms": rng.choice([20, 100, 300]),
        "seed": rng.randrange(2**31),
    }


async def _stats(portal: PortalSim) -> dict[str, int]:
    async with aiohttp.ClientSession() as session, session.get(f"{portal.base}/admin/stats") as r:
        stats: dict[str, int] = await r.json()
        return stats


async def _until_token_refused(portal: PortalSim, within_s: float = 60.0) -> None:
    """Until the portal has refused a token request (its counter), bounded."""
    deadline = time.monotonic() + within_s
    while (await _stats(portal)).get("token_error", 0) == 0:
        assert time.monotonic() < deadline, "the worker asked for no token"
        await asyncio.sleep(0.05)  # polling the portal's counter for a condition, bounded


async def _revoke_tokens(portal: PortalSim) -> None:
    async with aiohttp.ClientSession() as session, session.post(f"{portal.base}/admin/tokens/revoke") as r:
        assert r.status == 200, await r.text()


async def test_portal_chaos_delivers_everything_once_in_order_and_the_breaker_recovers(
    kafka_bootstrap: str, unique: str, tmp_path: Path, chaos_rng: random.Random, chaos_report: ChaosReport
) -> None:
    events = hundesteuer_events(unique, vorgaenge=VORGAENGE, steps=STEPS)
    web_port = free_port()
    pipeline = pipeline_env(kafka_bootstrap, unique, tmp_path, partitions=PARTITIONS, web_port=web_port)
    await create_topics(kafka_bootstrap, [pipeline.outbox, pipeline.dlq, pipeline.receipts], PARTITIONS)
    outbox = outbox_records(events)
    await produce(kafka_bootstrap, pipeline.outbox, outbox)
    mixes = [chaos_mix(chaos_rng) for _ in range(PHASES)]
    print(f"\nportal chaos phases: {json.dumps(mixes)}")

    oauth = ("--oauth2-client-id", CLIENT_ID, "--oauth2-client-secret", CLIENT_SECRET, "--oauth2-token-ttl", "2")
    with portal_sim(tmp_path / "portal.sqlite3", *oauth) as portal:
        env = {
            **pipeline.env,
            "RK_PORTAL__URL": portal.url,
            "RK_PORTAL__AUTH": "oauth2",
            "RK_PORTAL__OAUTH2__TOKEN_URL": f"{portal.base}/oauth2/token",
            "RK_PORTAL__OAUTH2__CLIENT_ID": CLIENT_ID,
            "RK_PORTAL__OAUTH2__CLIENT_SECRET": CLIENT_SECRET,
            "RK_PORTAL__OAUTH2__REFRESH_MARGIN_S": "0.5",
            "RK_PORTAL__TIMEOUTS__TOTAL_S": "2",
            "RK_DELIVERY__RETRY_BASE_DELAY_S": "0.05",
            "RK_DELIVERY__RETRY_MAX_DELAY_S": "1",
            "RK_DELIVERY__BREAKER_OPEN_S": "0.5",
            "RK_DELIVERY__BREAKER_MAX_OPEN_S": "2",
        }
        log_file = tmp_path / "delivery.log"
        worker = CliProcess(["worker", "--role", "delivery"], env=env, log_file=log_file)
        try:
            # The token endpoint fails the worker's first token request for certain: with every message waiting
            # the worker asks for one at once, and so few are asked for in a whole run that a rate alone could
            # leave the fault untried. Then the first phase's mix.
            await portal.set_faults(**{**mixes[0], "token_error_rate": 1.0})
            worker.wait_for_event("worker ready", timeout=120)
            await _until_token_refused(portal)
            await portal.set_faults(**mixes[0])
            for phase in range(1, PHASES):  # the next mix once a share of the messages has receipts
                await wait_for_records(kafka_bootstrap, pipeline.receipts, len(events) * phase // (PHASES + 1))
                await portal.set_faults(**mixes[phase])
                await _revoke_tokens(portal)  # a portal restart forgets its tokens
            await wait_for_records(kafka_bootstrap, pipeline.receipts, len(events) * PHASES // (PHASES + 1))
            await portal.clear_faults()  # the portal works again: everything must drain and the circuit close
            await wait_until_caught_up(kafka_bootstrap, f"{pipeline.app_id}.delivery", [pipeline.outbox], within_s=180)
            circuit = await asyncio.to_thread(
                metric_value, web_port, "rueckkanal_circuit_state", target="default", portal="portal"
            )
            exited = worker.proc.poll()
            stats = await _stats(portal)
            stored = await portal.nachrichten(sorted({e.vorgang_id for e in events}))
        finally:
            code = worker.terminate()

    receipts = [json.loads(r.value or b"") for r in await read_all(kafka_bootstrap, pipeline.receipts)]
    dead = await read_all(kafka_bootstrap, pipeline.dlq)
    stored_by_uuid = {n["nachrichtenUUID"]: n for rows in stored.values() for n in rows}
    receipt_by_uuid = {r["nachrichtenUUID"]: r for r in receipts}
    dead_uuids = {dict(d.headers)["nachrichtenUUID"].decode() for d in dead}
    outbox_uuids = [dict(headers)["nachrichtenUUID"].decode() for _, _, headers in outbox]

    without_quittung = [u for u, r in receipt_by_uuid.items() if stored_by_uuid.get(u, {}).get("receiptId") is None]
    wrong_receipt = [
        u
        for u, r in receipt_by_uuid.items()
        if u in stored_by_uuid and r["portal_receipt_id"] != stored_by_uuid[u]["receiptId"]
    ]
    lost = [u for u in outbox_uuids if u not in receipt_by_uuid and u not in dead_uuids]
    misordered = []
    for vorgang, rows in stored.items():
        sequence = [n["sequence"] for n in sorted(rows, key=lambda n: n["firstReceivedAt"])]
        if sequence != sorted(set(sequence)):
            misordered.append(vorgang)
    faults = sum(stats.get(name, 0) for name in FAULT_COUNTERS)
    chaos_report.add(
        "portal_chaos",
        records_tried=len(outbox),
        faults_injected=faults,
        fault_kinds={name: stats.get(name, 0) for name in FAULT_COUNTERS},
        lost=len(lost),
        misordered=len(misordered),
        worker_exits=0 if exited is None else 1,
        delivered=len(receipt_by_uuid),
        dead_lettered=len(dead_uuids),
        breaker_final_state=circuit,
    )
    print(f"portal chaos: {len(outbox)} messages, portal counters {stats}")

    assert exited is None, f"the delivery worker exited ({exited}); see {log_file}"
    assert code == 0, f"unclean shutdown ({code}); see {log_file}"
    assert circuit == 0, f"circuit breaker ends in state {circuit} (0 closed, 1 half-open, 2 open)"
    assert not without_quittung, f"{len(without_quittung)} receipts for messages the portal never stored"
    assert not wrong_receipt, f"{len(wrong_receipt)} receipts with another receipt id than the portal's"
    assert not lost, f"{len(lost)} outbox messages neither delivered nor dead-lettered"
    assert not misordered, f"Vorgänge received out of sequence: {misordered[:5]}"
    # no fault of the mix is permanent, so nothing may be dead-lettered: every message reaches the portal
    assert not dead_uuids, f"{len(dead_uuids)} dead-lettered: {[dict(d.headers).get('rk.error.reason') for d in dead]}"
    assert set(stored_by_uuid) == set(outbox_uuids)
    # the chaos really happened: every kind of fault of the mix fired
    assert all(stats.get(name, 0) > 0 for name in FAULT_COUNTERS if name not in ("outage", "unauthorised")), stats
