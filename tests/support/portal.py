"""The reference portal as a real child process, and what tests ask it over HTTP."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import aiohttp

from tests.support.processes import CliProcess, free_port


class PortalSim:
    def __init__(self, process: CliProcess, port: int) -> None:
        self.process = process
        self.base = f"http://127.0.0.1:{port}"
        self.url = f"{self.base}/rueckkanal/v1/nachrichten"

    async def set_faults(self, **faults: Any) -> None:
        async with aiohttp.ClientSession() as session, session.post(f"{self.base}/admin/faults", json=faults) as r:
            assert r.status == 200, await r.text()

    async def clear_faults(self) -> None:
        async with aiohttp.ClientSession() as session, session.delete(f"{self.base}/admin/faults") as r:
            assert r.status in (200, 204), await r.text()

    async def nachrichten(self, vorgang_ids: list[str]) -> dict[str, list[dict[str, Any]]]:
        """The messages the portal stored per Vorgang, in the order they first arrived."""
        limit = asyncio.Semaphore(32)
        async with aiohttp.ClientSession() as session:

            async def one(vorgang: str) -> tuple[str, list[dict[str, Any]]]:
                async with limit, session.get(f"{self.base}/nachrichten", params={"vorgang": vorgang}) as r:
                    assert r.status == 200, await r.text()
                    body = await r.json()
                    return vorgang, body["nachrichten"]

            return dict(await asyncio.gather(*(one(v) for v in vorgang_ids)))


@contextmanager
def portal_sim(db: Path, *flags: str) -> Iterator[PortalSim]:
    port = free_port()
    process = CliProcess(["portal-sim", "--port", str(port), "--db", str(db), *flags], env={})
    try:
        process.wait_for_event("portal-sim ready", timeout=60)
        yield PortalSim(process, port)
    finally:
        process.terminate()
