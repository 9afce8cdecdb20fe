"""Two delivery targets in two workers (``worker --role delivery --target …``), each its own consumer group: a
message the ZBP refuses is a dead letter of the ZBP target only, and its replay (``dlq replay --target zbp``)
reaches the ZBP while the XÖV portal, which had it already, is not sent it a second time."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import aiohttp

from adapters.portal.sim.devca import issue, make_ca
from rueckkanal.settings import DEFAULT_TARGET
from streams.headers import H_TARGET
from streams.worker import delivery_group
from tests.support.events import hundesteuer_events
from tests.support.kafka_io import committed_offsets, create_topics, end_offsets, produce, read_all
from tests.support.outbox import antrags_id_of, outbox_records
from tests.support.pipeline import pipeline_env
from tests.support.portal import portal_sim
from tests.support.processes import CliProcess, free_port

VORGAENGE, STEPS = 3, 3


async def _zbp_statuses(http: aiohttp.ClientSession, base_url: str) -> dict[str, int]:
    async with http.get(f"{base_url}/zbp/antraege") as response:
        return {a["applicationId"]: len(a["statuses"]) for a in (await response.json())["antraege"]}


async def _until(what: str, check: object, within_s: float = 90) -> None:
    deadline = time.monotonic() + within_s
    while not await check():  # type: ignore[operator]
        assert time.monotonic() < deadline, f"{what} not within {within_s} s"
        await asyncio.sleep(0.2)  # polling the simulators' views, bounded


async def test_a_replayed_zbp_dead_letter_reaches_the_zbp_and_not_the_portal_again(
    kafka_bootstrap: str, unique: str, tmp_path: Path
) -> None:
    pipeline = pipeline_env(kafka_bootstrap, unique, tmp_path)
    await create_topics(kafka_bootstrap, [pipeline.outbox, pipeline.dlq, pipeline.receipts], 4)
    events = hundesteuer_events(unique, VORGAENGE, STEPS)
    records = outbox_records(events, with_antrags_id=True)
    application_ids = {e.vorgang_id: antrags_id_of(e.vorgang_key) for e in events}
    refused_vorgang = sorted(application_ids)[0]
    ca = make_ca("Test-CA")
    pair = issue(ca, tmp_path / "zbp", "rueckkanal-test")
    ca.write(tmp_path / "ca.pem")
    zbp_port = free_port()
    zbp = CliProcess(
        ["portal-sim", "--mode", "zbp", "--zbp-ca", str(tmp_path / "ca.pem"), "--port", str(zbp_port),
         "--reject-vorgang-pattern", application_ids[refused_vorgang]],
        {},
        log_file=tmp_path / "zbp.log",
    )  # fmt: skip
    zbp_url = f"http://127.0.0.1:{zbp_port}"
    workers: list[CliProcess] = []
    with portal_sim(tmp_path / "portal.sqlite3") as portal:
        env = {
            **pipeline.env,
            "RK_PORTAL__URL": portal.url,
            "RK_TARGETS__ZBP__ADAPTER": "zbp",
            "RK_TARGETS__ZBP__STATUS_URL": f"{zbp_url}/zbp/v6/status",
            "RK_TARGETS__ZBP__MESSAGE_URL": f"{zbp_url}/zbp/v6/message",
            "RK_TARGETS__ZBP__SIGNING_KEY": str(pair.key_path),
            "RK_TARGETS__ZBP__SIGNING_CERT": str(pair.cert_path),
        }
        try:
            zbp.wait_for_event("portal-sim ready", timeout=60)
            for target in ("default", "zbp"):
                worker = CliProcess(
                    ["worker", "--role", "delivery", "--target", target],
                    {**env, "RK_WEB__PORT": str(free_port())},
                    log_file=tmp_path / f"worker-{target}.log",
                )
                workers.append(worker)
            for worker in workers:
                worker.wait_for_event("worker ready", timeout=120)
            await produce(kafka_bootstrap, pipeline.outbox, records)
            vorgaenge = sorted(application_ids)

            async def portal_has_all() -> bool:
                stored = await portal.nachrichten(vorgaenge)
                return sum(len(rows) for rows in stored.values()) == len(records)

            async def dead_letters() -> bool:
                return len(await read_all(kafka_bootstrap, pipeline.dlq)) >= STEPS

            await _until("every message at the XÖV portal", portal_has_all)
            await _until("the refused Vorgang's messages dead-lettered", dead_letters)
            dlq = await read_all(kafka_bootstrap, pipeline.dlq)
            assert len(dlq) == STEPS
            assert {dict(r.headers)[H_TARGET] for r in dlq} == {b"zbp"}
            async with aiohttp.ClientSession() as http:
                before = await _zbp_statuses(http, zbp_url)
                assert application_ids[refused_vorgang] not in before
                assert sum(before.values()) == len(records) - STEPS
                async with http.delete(f"{zbp_url}/admin/faults") as response:  # the ZBP takes it now
                    response.raise_for_status()
                # Replays come later: the XÖV target's worker has restarted since, and remembers no delivery.
                assert workers[0].terminate() == 0
                workers[0] = CliProcess(
                    ["worker", "--role", "delivery", "--target", "default"],
                    {**env, "RK_WEB__PORT": str(free_port())},
                    log_file=tmp_path / "worker-default-2.log",
                )
                workers[0].wait_for_event("worker ready", timeout=120)
                replay = CliProcess(["dlq", "replay", "--target", "zbp"], env, log_file=tmp_path / "replay.log")
                assert await asyncio.to_thread(replay.proc.wait, 60) == 0

                async def zbp_has_all() -> bool:
                    return sum((await _zbp_statuses(http, zbp_url)).values()) == len(records)

                await _until("the replayed statuses at the ZBP", zbp_has_all)
                after = await _zbp_statuses(http, zbp_url)
            assert after[application_ids[refused_vorgang]] == STEPS
            # The default target's worker read the replayed records too (its group committed past them) and skipped
            # them: nothing was sent to the XÖV portal twice.
            ends = await end_offsets(kafka_bootstrap, [pipeline.outbox])

            async def default_target_past_the_replay() -> bool:
                committed = await committed_offsets(kafka_bootstrap, delivery_group(pipeline.app_id, DEFAULT_TARGET))
                return all(committed.get(tp, -1) >= end for tp, end in ends.items() if end > 0)

            await _until("the XÖV target's group past the replayed records", default_target_past_the_replay)
            stored = await portal.nachrichten(vorgaenge)
            assert all(row["receivedCount"] == 1 for rows in stored.values() for row in rows), stored
        finally:
            for worker in workers:
                worker.terminate()
            zbp.terminate()
