"""Render + validate throughput of the XÖV renderer on one core, with baselines from the same run.

    .venv/bin/python bench/render.py [--messages 50000]

The events are the shipped example records (every status, payments, Fristen, long texts), decoded once; the timed
loop is what the ingest stage does per event after the lifecycle check: write the message, parse it and check it
against the XSD. Baselines: the text without the check, the same message built as a tree and serialised by lxml
(the reference the text equals), and serialising one fixed tree (lxml's floor). Results go
into docs/benchmarks.md by hand, with the date and the machine.
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

from lxml import etree

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from rueckkanal.lifecycle import VorgangState
from rueckkanal.settings import XoevSettings
from rueckkanal.xoev import MessageRenderer, nachrichten_uuid
from tests.unit.factories import example_events
from tests.unit.xoev_reference import reference_statusmeldung


def rate(name: str, count: int, work: Callable[[int], object]) -> float:
    """Messages per second of ``work`` over ``count`` calls, best of three runs (the least disturbed one)."""
    best = 0.0
    for _ in range(3):
        started = time.perf_counter()
        for i in range(count):
            work(i)
        best = max(best, count / (time.perf_counter() - started))
    print(f"{name:<40} {best:>10,.0f} msgs/s")
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=50_000)
    count = parser.parse_args().messages
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})  # one core, as one worker process uses

    events = [event for _, event in example_events()]
    states = [VorgangState(e.status, n + 1, e.status_time, (e.event_id,)) for n, e in enumerate(events)]
    renderer = MessageRenderer(XoevSettings())
    created_at = datetime.now(UTC)
    fixed_tree = etree.fromstring(
        renderer.statusmeldung_xml(events[3], states[3], "00000000-0000-5000-8000-000000000000", created_at)
    )
    size = len(events)

    def render(i: int) -> object:
        return renderer.render(events[i % size], states[i % size])

    def write(i: int) -> object:
        event = events[i % size]
        uuid = nachrichten_uuid(event.source, event.event_id)
        return renderer.statusmeldung_xml(event, states[i % size], uuid, created_at)

    def build_and_serialise(i: int) -> object:
        event = events[i % size]
        uuid = nachrichten_uuid(event.source, event.event_id)
        return reference_statusmeldung(renderer, event, states[i % size], uuid, created_at)

    print(f"python {platform.python_version()}, lxml {etree.__version__}, {platform.machine()}, {count:,} messages")
    print(f"{len(events)} distinct example events, cpu: {platform.processor() or 'unknown'}")
    full = rate("render + validate (MessageRenderer.render)", count, render)
    written = rate("baseline: the text, unchecked", count, write)
    built = rate("baseline: a tree built + tostring, unchecked", count, build_and_serialise)
    floor = rate("baseline: tostring of one fixed tree", count, lambda _: etree.tostring(fixed_tree))
    print(f"parse + check cost {1 - full / written:.0%} of the render time; render is {full / floor:.2f}× the floor")
    print(f"writing the text is {written / built:.2f}× as fast as building and serialising the tree")
    print("target 10,000 msgs/s:", "met" if full >= 10_000 else "MISSED")


if __name__ == "__main__":
    main()
