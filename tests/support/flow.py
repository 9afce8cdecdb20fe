"""Waiting for a whole pipeline (ingest and delivery groups) to finish what is on its topics, by broker answers; and
for any condition nothing signals, polled within a deadline."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

from tests.support.kafka_io import end_offsets, wait_until_caught_up
from tests.support.pipeline import PipelineEnv


async def ingest_caught_up(bootstrap: str, pipeline: PipelineEnv, within_s: float = 300) -> None:
    """Until the ingest group has committed everything, including what the decode hop wrote while we waited."""
    topics = [*pipeline.source_topics.values(), pipeline.events]
    while True:
        before = await end_offsets(bootstrap, topics)
        await wait_until_caught_up(bootstrap, pipeline.app_id, topics, within_s=within_s)
        if await end_offsets(bootstrap, topics) == before:
            return


async def all_caught_up(bootstrap: str, pipeline: PipelineEnv, within_s: float = 300) -> None:
    """Ingest finished, then delivery has committed the whole outbox as it stands after ingest."""
    await ingest_caught_up(bootstrap, pipeline, within_s)
    await wait_until_caught_up(bootstrap, f"{pipeline.app_id}.delivery", [pipeline.outbox], within_s=within_s)


async def until_async(condition: Callable[[], Awaitable[bool]], within_s: float = 30.0, every_s: float = 0.05) -> None:
    """Poll a condition nothing signals (committed offsets, a scrape of /metrics) every ``every_s``, bounded in time."""
    async with asyncio.timeout(within_s):
        while not await condition():  # noqa: ASYNC110
            await asyncio.sleep(every_s)
