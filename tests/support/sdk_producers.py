"""The Fachverfahren producers of other languages (tests/java, tests/go, tests/js; built by scripts/tools.sh), each
the language's common Kafka client with the official CloudEvents SDK of that language. They read one event per
line and print where each record went."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Sequence

from tests.support.events import ValidEvent
from tests.support.flow import all_caught_up
from tests.support.kafka_io import read_all
from tests.support.pipeline import PipelineEnv
from tests.support.portal import PortalSim


def event_line(event: ValidEvent, **plan: object) -> str:
    """One event as the producers read it: the CloudEvent's attributes and its JSON data; ``plan`` adds what a
    producer may read beside them (the Java producer: ``transaction`` and ``abort``)."""
    _, value, headers = event.record
    have = {name: raw.decode() for name, raw in headers}
    return json.dumps(
        {
            "id": have["ce_id"],
            "source": have["ce_source"],
            "type": have["ce_type"],
            "time": have["ce_time"],
            "vorgangId": event.vorgang_id,
            "data": json.loads(value or b"{}"),
            **plan,
        }
    )


def produce(argv: list[str], lines: list[str]) -> list[tuple[int, int]]:
    """Run a producer on the lines, in order, until it has written all of them; (partition, offset) of each."""
    done = subprocess.run(argv, input="\n".join(lines) + "\n", capture_output=True, text=True, timeout=180, check=False)
    assert done.returncode == 0, done.stderr[-2000:]
    written = [(int(partition), int(offset)) for partition, offset in map(str.split, done.stdout.splitlines())]
    assert len(written) == len(lines), done.stderr[-2000:]
    return written


def by_style(events: list[ValidEvent], styles: Sequence[str]) -> dict[str, list[ValidEvent]]:
    """Each Vorgang written in one style throughout (one producer setting: one partition, a defined order)."""
    split = {
        s: [e for e in events if int(e.vorgang_id.rsplit("-", 1)[-1]) % len(styles) == n] for n, s in enumerate(styles)
    }
    assert all(split.values())
    return split


async def delivered_in_order(
    bootstrap: str, pipeline: PipelineEnv, portal: PortalSim, events: list[ValidEvent]
) -> None:
    """Every event at the portal, in its Vorgang's order, and none dead-lettered."""
    await all_caught_up(bootstrap, pipeline)
    vorgaenge = sorted({e.vorgang_id for e in events})
    stored = await portal.nachrichten(vorgaenge)
    assert await read_all(bootstrap, pipeline.dlq) == []
    for vorgang_id in vorgaenge:
        got = [n["nachrichtenUUID"] for n in sorted(stored[vorgang_id], key=lambda n: n["firstReceivedAt"])]
        assert got == [e.nachrichten_uuid for e in events if e.vorgang_id == vorgang_id], vorgang_id
