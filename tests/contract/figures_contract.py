"""The transparency figures computed in SQL equal a reference computed here, in Python, from the raw timelines.

One base class, subclassed per backend (SQLite, PostgreSQL): hypothesis generates Vorgänge whose statuses arrive
in several batches out of order (late statuses), are redelivered (same nachrichtenUUID), repeat a milestone with a
higher sequence number and another time (corrected statuses), are reopened by a Widerspruch, and whose times
cross month boundaries and the window's edges; plus receipts of two delivery targets (some redelivered, some at
exactly 60 s and 3600 s) and dead letters. The reference below is written from the rules in
``rueckkanal/transparency.py`` without using its code.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from adapters.statusstore.base import StatusStore
from rueckkanal.tracking import StoredStatus
from rueckkanal.transparency import (
    DeadLetterFigure,
    DeadLetterRecord,
    DeliveryFigure,
    DeliveryRecord,
    StepFigure,
    StepQuery,
    TimelinePoint,
    step_durations,
)

BASE = datetime(2025, 1, 28, tzinfo=UTC)
CODES = ["100", "120", "200", "220", "400", "410", "430"]
# the reference's own reading of the table: step → (start codes, end codes)
REF_STEPS = {
    "eingang_vollstaendig": ({"100"}, {"220"}),
    "vollstaendig_entschieden": ({"220"}, {"400"}),
    "eingang_entschieden": ({"100"}, {"400"}),
    "eingang_bescheid": ({"100"}, {"410"}),
}


@dataclass(frozen=True)
class Gen:
    statuses: list[StoredStatus]
    batches: list[list[int]]  # indexes into statuses, applied in this order, each batch at its own time
    deliveries: list[DeliveryRecord]
    dead_letters: list[DeadLetterRecord]
    from_s: int
    to_s: int


@st.composite
def generated(draw: st.DrawFn) -> Gen:
    statuses: list[StoredStatus] = []
    n_vorgaenge = draw(st.integers(1, 14))
    for v in range(n_vorgaenge):
        fv = draw(st.sampled_from(["hundesteuer", "gewerbe"]))
        leistung = draw(st.sampled_from(["L1", "L2"]))
        for seq in range(1, draw(st.integers(1, 7)) + 1):
            code = draw(st.sampled_from(CODES))
            offset = draw(st.integers(0, 90 * 86_400))
            ms = draw(st.sampled_from([0, 1, 999]))
            statuses.append(
                StoredStatus(
                    vorgang_key=f"urn:{fv}|V{v}",
                    nachrichten_uuid=f"00000000-0000-4000-8000-{len(statuses):012d}",
                    sequence=seq,
                    status=code,
                    status_text="x",
                    zeitpunkt=BASE + timedelta(seconds=offset, milliseconds=ms),
                    leistung=leistung,
                    fachverfahren=fv,
                )
            )
    order = draw(st.permutations(list(range(len(statuses)))))
    cut = sorted(draw(st.lists(st.integers(0, len(order)), max_size=3)))
    batches = [list(order[a:b]) for a, b in zip([0, *cut], [*cut, len(order)], strict=True)]
    batches += [draw(st.lists(st.sampled_from(range(len(statuses))), max_size=4))]  # redelivered
    deliveries = []
    for i in draw(st.lists(st.sampled_from(range(len(statuses))), max_size=12)):
        delay = draw(st.sampled_from([0, 59, 60, 61, 3599, 3600, 3601, 86_400]))
        target = draw(st.sampled_from(["default", "bundid"]))
        deliveries.append(
            DeliveryRecord(statuses[i].nachrichten_uuid, target, math.floor(statuses[i].zeitpunkt.timestamp()) + delay)
        )
    dead_letters = [
        DeadLetterRecord(
            0,
            k,
            draw(st.sampled_from(["ingest", "delivery"])),
            draw(st.sampled_from(["schema_invalid", "portal_rejected"])),
            draw(st.sampled_from(["", "default", "bundid"])),
            math.floor(BASE.timestamp()) + draw(st.integers(0, 90 * 86_400)),
        )
        for k in range(draw(st.integers(0, 6)))
    ]
    dead_letters += draw(st.lists(st.sampled_from(dead_letters), max_size=2)) if dead_letters else []
    base_s = math.floor(BASE.timestamp())
    a = base_s + draw(st.integers(0, 60 * 86_400))
    b = a + draw(st.integers(1, 90 * 86_400))
    return Gen(statuses, batches, deliveries, dead_letters, a, b)


# --- the reference ---------------------------------------------------------------------------------------------


def nearest_rank(values: list[int], p: int) -> int:
    ordered = sorted(values)
    k = max(1, math.ceil(p * len(ordered) / 100))
    return ordered[k - 1]


def month_of(t: int) -> str:
    return datetime.fromtimestamp(t, UTC).strftime("%Y-%m")


def ref_durations(timeline: list[StoredStatus]) -> dict[str, tuple[int, int]]:
    reopen = min((s.sequence for s in timeline if s.status == "430"), default=math.inf)
    kept = [s for s in timeline if s.sequence < reopen]
    out = {}
    for name, (starts, ends) in REF_STEPS.items():

        def newest(codes: set[str]) -> int | None:
            found = [s for s in kept if s.status in codes]
            if not found:
                return None
            best = max(found, key=lambda s: (s.sequence, s.nachrichten_uuid))
            return math.floor(best.zeitpunkt.timestamp())

        a, b = newest(starts), newest(ends)
        if a is not None and b is not None and b >= a:
            out[name] = (b, b - a)
    return out


def reference_steps(gen: Gen, by: str, monthly: bool) -> list[StepFigure]:
    stored = {s.nachrichten_uuid: s for s in gen.statuses}
    per_vorgang: dict[str, list[StoredStatus]] = defaultdict(list)
    for s in stored.values():
        per_vorgang[s.vorgang_key].append(s)
    groups: dict[tuple[str, str | None, str, str], list[int]] = defaultdict(list)
    for timeline in per_vorgang.values():
        fv, leistung = timeline[0].fachverfahren, timeline[0].leistung
        for step, (end, duration) in ref_durations(timeline).items():
            if gen.from_s <= end < gen.to_s:
                key = (fv, leistung if by == "leistung" else None, month_of(end) if monthly else "gesamt", step)
                groups[key].append(duration)
    return sorted(
        (
            StepFigure(*key, len(values), nearest_rank(values, 50), nearest_rank(values, 80))
            for key, values in groups.items()
        ),
        key=lambda f: (f.fachverfahren, f.leistung or "", f.period, f.step),
    )


def reference_deliveries(gen: Gen, received: dict[str, int]) -> list[DeliveryFigure]:
    window = {
        s.nachrichten_uuid: math.floor(s.zeitpunkt.timestamp())
        for s in gen.statuses
        if gen.from_s <= math.floor(s.zeitpunkt.timestamp()) < gen.to_s
    }
    arrivals: dict[str, dict[str, int]] = defaultdict(dict)
    for uuid in window:
        arrivals["status-web"][uuid] = received[uuid]
    for d in gen.deliveries:
        if d.nachrichten_uuid in window:
            seen = arrivals[d.target].get(d.nachrichten_uuid)
            arrivals[d.target][d.nachrichten_uuid] = d.delivered_s if seen is None else min(seen, d.delivered_s)
    out = []
    for target in sorted(arrivals):
        delays = [at - window[uuid] for uuid, at in arrivals[target].items()]
        within = tuple(sum(1 for d in delays if d <= limit) for limit in (60, 3600))
        out.append(DeliveryFigure(target, len(window), len(delays), within))
    return out


def reference_dead_letters(gen: Gen) -> list[DeadLetterFigure]:
    unique = {(d.partition, d.offset): d for d in gen.dead_letters}
    counts: dict[tuple[str, str, str], int] = defaultdict(int)
    for d in unique.values():
        if gen.from_s <= d.failed_s < gen.to_s:
            counts[(d.target, d.stage, d.reason)] += 1
    return [DeadLetterFigure(*key, n) for key, n in sorted(counts.items())]


# --- the contract ----------------------------------------------------------------------------------------------

Run = Callable[[Coroutine[Any, Any, Any]], Any]


class FiguresContract:
    """A subclass provides ``runner`` (an asyncio.Runner), ``store`` (opened in it) and ``clear`` (empties it)."""

    def check(self, run: Run, store: StatusStore, clear: Callable[[], Coroutine[Any, Any, None]], gen: Gen) -> None:
        run(clear())
        received: dict[str, int] = {}
        for i, batch in enumerate(gen.batches):
            at = BASE + timedelta(days=120, seconds=i * 7, milliseconds=500)
            for index in batch:
                received.setdefault(gen.statuses[index].nachrichten_uuid, math.floor(at.timestamp()))
            run(store.apply([gen.statuses[index] for index in batch], at))
        for uuid in {s.nachrichten_uuid for s in gen.statuses} - received.keys():
            received[uuid] = 0  # never applied (cannot happen: every status is in a batch)
        run(store.record_deliveries(gen.deliveries, gen.dead_letters))
        for by in ("leistung", "fachverfahren"):
            for monthly in (True, False):
                got = run(store.step_figures(StepQuery(gen.from_s, gen.to_s, by=by, monthly=monthly)))
                assert got == reference_steps(gen, by, monthly), (by, monthly)
        assert run(store.delivery_figures(gen.from_s, gen.to_s)) == reference_deliveries(gen, received)
        assert run(store.dead_letter_figures(gen.from_s, gen.to_s)) == reference_dead_letters(gen)
        # one Leistung and one step, as the status page asks
        for fv, leistung in {(s.fachverfahren, s.leistung) for s in gen.statuses}:
            query = StepQuery(
                gen.from_s, gen.to_s, monthly=False, fachverfahren=fv, leistung=leistung, step="eingang_entschieden"
            )
            expected = [
                f
                for f in reference_steps(gen, "leistung", False)
                if (f.fachverfahren, f.leistung, f.step) == (fv, leistung, "eingang_entschieden")
            ]
            assert run(store.step_figures(query)) == expected

    @settings(
        max_examples=40,
        deadline=None,
        suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.differing_executors],
    )
    @given(gen=generated())
    def test_figures_equal_the_reference(self, figures_env: Any, gen: Gen) -> None:
        run, store, clear = figures_env
        self.check(run, store, clear, gen)

    @settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.differing_executors])
    @given(gen=generated())
    def test_the_core_step_rule_equals_the_reference(self, gen: Gen) -> None:
        per_vorgang: dict[str, list[StoredStatus]] = defaultdict(list)
        for s in {s.nachrichten_uuid: s for s in gen.statuses}.values():
            per_vorgang[s.vorgang_key].append(s)
        for timeline in per_vorgang.values():
            points = [
                TimelinePoint(s.sequence, s.status, math.floor(s.zeitpunkt.timestamp()), s.nachrichten_uuid)
                for s in timeline
            ]
            assert step_durations(points) == ref_durations(timeline)
