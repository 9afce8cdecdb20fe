"""The ingest step in process, without Kafka or faust: what one record costs before any I/O, and its parts.

    .venv/bin/python bench/step.py [--vorgaenge 1000] [--noop-rate 9000]

The input is the one ``bench/ingest.py`` produces (Hundesteuer CloudEvents, 20-step lifecycles, interleaved), as
records on their Vorgang's partition of a co-partitioned source, so every record is processed in place and
outboxed. Timed on one core, best of three passes over all records:

* **step**: ``IngestStep.step`` per record, each seeing the state the records before it left (the shell's overlay
  of a batch), as the ingest stage calls it;
* **decode**: the source record read (pipeline headers dropped) and decoded by its adapter into a ``StatusEvent``;
* **render + check**: ``MessageRenderer.render`` for the decoded event and the state after it: the text, parsed
  and checked against the XSD;
* what is left of the step: the lifecycle guard, the outbox headers and the record's size check.

``--noop-rate`` (faust's no-op through the producer, events/s from a ``bench/ingest.py`` run on the same machine)
adds the budget: what a record may cost on top of that no-op for the ingest to reach 0.6× of it, against the step
alone. Results go into docs/benchmarks.md by hand, with the date and the machine.
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from adapters.inbound.base import InboundRecord
from adapters.inbound.config import load_fachverfahren
from rueckkanal.lifecycle import VorgangState
from rueckkanal.model import StatusEvent
from rueckkanal.settings import Settings
from rueckkanal.xoev import MessageRenderer
from streams.ingest_step import IngestStep, Outboxed, source_record
from streams.partitioner import vorgang_partition
from tests.support.events import hundesteuer_events
from tests.unit.factories import FACHVERFAHREN_DIR

PARTITIONS = 12
TARGET_RATIO = 0.6


def per_record(name: str, count: int, work: Callable[[], object]) -> float:
    """Microseconds per record of one pass of ``work`` over ``count`` records, best of three passes."""
    best = float("inf")
    for _ in range(3):
        started = time.perf_counter()
        work()
        best = min(best, time.perf_counter() - started)
    micros = best / count * 1e6
    print(f"{name:<44} {micros:8.1f} µs/record  ({count / best:>9,.0f} records/s)")
    return micros


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--vorgaenge", type=int, default=1000, help="Vorgänge of 20 events each")
    parser.add_argument("--noop-rate", type=float, default=None, help="faust's no-op through the producer, events/s")
    args = parser.parse_args()
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})  # one core, as one worker process uses

    renderer = MessageRenderer(Settings().xoev)
    step = IngestStep(
        load_fachverfahren(FACHVERFAHREN_DIR),
        renderer,
        events_topic="bench.events",
        outbox_topic="bench.outbox",
        dlq_topic="bench.dlq",
        partitions=PARTITIONS,
        record_limit=1_000_000,
    )
    topic = next(t for t, fv in step.sources.items() if fv.name == "hundesteuer")
    step.co_partition({topic: PARTITIONS})
    step.held = frozenset(range(PARTITIONS))
    records = [
        InboundRecord(topic, vorgang_partition(e.vorgang_id, PARTITIONS), offset, 1, *e.record[:2], tuple(e.record[2]))
        for offset, e in enumerate(hundesteuer_events("bench-step", vorgaenge=args.vorgaenge))
    ]
    count = len(records)
    adapter = step.adapters[topic]

    def steps() -> list[VorgangState]:
        """Every record's step; the state after each (the outcomes themselves are not kept, as in the stage)."""
        state: dict[str, VorgangState] = {}
        after = []
        for record in records:
            outcome = step.step(record, state.get)
            if not isinstance(outcome, Outboxed):
                raise SystemExit(f"record {record.offset} was not outboxed: {type(outcome).__name__}")
            state[outcome.key] = outcome.state
            after.append(outcome.state)
        return after

    states = steps()
    events: Sequence[StatusEvent] = [adapter.decode(source_record(r)[0]) for r in records]

    def decode() -> None:
        for record in records:
            adapter.decode(source_record(record)[0])

    def render() -> None:
        for event, state in zip(events, states, strict=True):
            renderer.render(event, state)

    print(f"python {platform.python_version()}, {platform.machine()}, {count:,} records of {args.vorgaenge:,} Vorgänge")
    total = per_record("step (IngestStep.step)", count, steps)
    decoded = per_record("  decode (headers, adapter, model)", count, decode)
    rendered = per_record("  render + check (text, parse, XSD)", count, render)
    print(f"{'  the rest, by difference (lifecycle, headers)':<44} {total - decoded - rendered:8.1f} µs/record")
    if args.noop_rate:
        noop = 1e6 / args.noop_rate
        budget = noop / TARGET_RATIO - noop
        print(
            f"no-op at {args.noop_rate:,.0f} events/s: {noop:.0f} µs/record; {TARGET_RATIO}× of it leaves "
            f"{budget:.0f} µs/record for all the ingest adds; the step alone takes {total / budget:.1f}× that"
        )


if __name__ == "__main__":
    main()
