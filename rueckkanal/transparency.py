"""Transparency figures: which steps of a Vorgang are measured, and how a distribution is summarised. Pure.

**Milestones and steps.** The lifecycle's status codes are named here and nowhere else (:data:`MILESTONES`): a
revision of the lifecycle changes this table only. A *step* is the time from one milestone to a later one
(:data:`STEPS`). Per Vorgang, a milestone's time is the ``zeitpunkt`` (the Fachverfahren's time of the status, not
when it arrived here) of the status with one of the milestone's codes that has the **highest sequence number**,
ties broken by the higher nachrichtenUUID: a corrected status is sent later with a higher number and replaces the
first one, and a status that arrives late takes its place by number, not by arrival. Statuses from the first
reopening (:data:`REOPENED`, a Widerspruch) on are not counted: the figures describe the first decision. A step is
counted when both milestones exist and the end is not before the start. Times are whole seconds since the epoch
(floored), so SQL and Python compute the same integers.

**Window and month.** A step belongs to the month (UTC, ``YYYY-MM``) in which it *ended*; a window ``[from, to)``
selects the steps that ended in it ("Vorgänge completed in the window").

**Percentiles.** Nearest rank: of ``n`` durations sorted ascending ``x[1] ≤ … ≤ x[n]``, the ``p``-th percentile is
``x[ceil(p·n/100)]``. The median is the 50th percentile, i.e. the lower median ``x[ceil(n/2)]`` (for an even ``n``
the smaller of the two middle values, never their mean): every figure is a duration that really occurred. In
integer arithmetic ``ceil(n/2) = (n+1) div 2`` and ``ceil(4n/5) = (4n+4) div 5``, which is how the SQL writes it.

**Delivery.** Per delivery target, the share of statuses that reached it within :data:`DELIVERY_LIMITS` of their
``zeitpunkt``; status-web itself is the target :data:`STATUS_WEB_TARGET` (reached when the status arrived in its
database). The denominator is every status of the window in status-web's database.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime

# --- the one table of status codes (issue 18 revises the lifecycle: change the codes here only) ------------------

RECEIVED, COMPLETE, DECIDED, BESCHEID = "eingegangen", "vollstaendig", "entschieden", "bescheid"

#: milestone → the status codes that mark it
MILESTONES: dict[str, tuple[str, ...]] = {
    RECEIVED: ("100",),  # Antrag eingegangen
    COMPLETE: ("220",),  # Unterlagen vollständig
    DECIDED: ("400",),  # Antrag entschieden
    BESCHEID: ("410",),  # Bescheid erlassen / bekanntgegeben
}
#: statuses that reopen a Vorgang (Widerspruch eingegangen): the figures stop before the first of them
REOPENED: tuple[str, ...] = ("430",)


@dataclass(frozen=True)
class Step:
    name: str
    start: str  # milestone
    end: str  # milestone
    label_de: str
    label_en: str


STEPS: tuple[Step, ...] = (
    Step("eingang_vollstaendig", RECEIVED, COMPLETE, "Eingang → Unterlagen vollständig", "received → complete"),
    Step("vollstaendig_entschieden", COMPLETE, DECIDED, "Unterlagen vollständig → Entscheidung", "complete → decided"),
    Step("eingang_entschieden", RECEIVED, DECIDED, "Eingang → Entscheidung", "received → decided"),
    Step("eingang_bescheid", RECEIVED, BESCHEID, "Eingang → Bescheid", "received → Bescheid"),
)
STEP_BY_NAME = {step.name: step for step in STEPS}

#: the step a citizen's page estimates "from here until the decision", by the current status's code
ESTIMATE_FROM: dict[str, str] = {
    **dict.fromkeys(MILESTONES[RECEIVED], "eingang_entschieden"),
    **dict.fromkeys(MILESTONES[COMPLETE], "vollstaendig_entschieden"),
}

STATUS_WEB_TARGET = "status-web"
DELIVERY_LIMITS = (60, 3600)  # seconds: within 1 minute, within 1 hour
ESTIMATE_WINDOW_DAYS = 365
DEFAULT_MIN_COUNT = 20


def milestone_of(code: str) -> str | None:
    for milestone, codes in MILESTONES.items():
        if code in codes:
            return milestone
    return None


def epoch_seconds(moment: datetime) -> int:
    """Whole seconds since the epoch, floored (an aware time)."""
    return math.floor(moment.timestamp())


# --- percentiles ---------------------------------------------------------------------------------------------


def rank(p: int, n: int) -> int:
    """The 1-based nearest rank of the ``p``-th percentile among ``n`` values: ``ceil(p·n/100)``, at least 1."""
    return max(1, -(-p * n // 100))


def percentile(values: Sequence[int], p: int) -> int:
    """The nearest-rank ``p``-th percentile of ``values`` (not empty)."""
    ordered = sorted(values)
    return ordered[rank(p, len(ordered)) - 1]


@dataclass(frozen=True)
class Summary:
    count: int
    median: int  # seconds
    p80: int  # seconds


def summarise(values: Sequence[int]) -> Summary:
    return Summary(len(values), percentile(values, 50), percentile(values, 80))


# --- per Vorgang ----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class TimelinePoint:
    """What the figures read of one status."""

    sequence: int
    status: str
    zeitpunkt_s: int
    nachrichten_uuid: str


def step_durations(points: Iterable[TimelinePoint]) -> dict[str, tuple[int, int]]:
    """The steps one Vorgang completed: step name → (end time, duration), both in seconds (rules above)."""
    ordered = sorted(points, key=lambda p: (p.sequence, p.nachrichten_uuid))
    reopened = min((p.sequence for p in ordered if p.status in REOPENED), default=None)
    times: dict[str, int] = {}
    for point in ordered:
        if reopened is not None and point.sequence >= reopened:
            break
        milestone = milestone_of(point.status)
        if milestone is not None:
            times[milestone] = point.zeitpunkt_s  # the highest (sequence, uuid) wins
    found = {}
    for step in STEPS:
        if step.start in times and step.end in times and times[step.end] >= times[step.start]:
            found[step.name] = (times[step.end], times[step.end] - times[step.start])
    return found


# --- the page's estimate ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Estimate:
    """ "Usually about ``days`` days from here to the decision (median of the last 12 months, ``count`` Anträge)"."""

    days: int  # the median in whole days, rounded half up; 0 means "less than a day"
    count: int


def estimate(summary: Summary | None, min_count: int) -> Estimate | None:
    """The estimate for the page, or None when fewer than ``min_count`` Vorgänge stand behind it."""
    if summary is None or summary.count < max(1, min_count):
        return None
    return Estimate(days=(summary.median + 43_200) // 86_400, count=summary.count)


def days(seconds: int) -> float:
    """Seconds as days with one decimal (rounded half up), as the report prints them."""
    return math.floor(seconds / 8640 + 0.5) / 10


# --- what the store answers ------------------------------------------------------------------------------------

TOTAL_PERIOD = "gesamt"  # the period of a figure over the whole window (instead of a month)


@dataclass(frozen=True)
class StepQuery:
    """Which step figures to compute: steps ending in ``[from_s, to_s)``, grouped by ``by`` (``leistung``: per
    Fachverfahren and Leistung; ``fachverfahren``: per Fachverfahren), per month or over the whole window."""

    from_s: int
    to_s: int
    by: str = "leistung"  # or "fachverfahren"
    monthly: bool = True
    fachverfahren: str | None = None  # only this Fachverfahren and …
    leistung: str | None = None  # … this Leistung
    step: str | None = None  # only this step


@dataclass(frozen=True)
class StepFigure:
    fachverfahren: str
    leistung: str | None  # None when grouped by Fachverfahren
    period: str  # YYYY-MM or TOTAL_PERIOD
    step: str
    count: int
    median: int  # seconds
    p80: int  # seconds


@dataclass(frozen=True)
class DeliveryFigure:
    target: str
    statuses: int  # every status of the window
    reached: int  # of them, those the target has a time of arrival for
    within: tuple[int, ...]  # of them, those that reached it within each of DELIVERY_LIMITS


@dataclass(frozen=True)
class DeadLetterFigure:
    target: str  # the delivery target, or "" for the ingest stages
    stage: str
    reason: str
    count: int


@dataclass(frozen=True)
class DeliveryRecord:
    """A receipt of a delivery target: when one status reached it."""

    nachrichten_uuid: str
    target: str
    delivered_s: int


@dataclass(frozen=True)
class DeadLetterRecord:
    """What the figures keep of a dead letter (its headers; never its payload): where it is, why, where it failed."""

    partition: int
    offset: int
    stage: str
    reason: str
    target: str
    failed_s: int


def points_of(statuses: Iterable[object]) -> list[TimelinePoint]:
    """The figures' view of stored statuses (anything with sequence, status, zeitpunkt and nachrichten_uuid)."""
    return [
        TimelinePoint(s.sequence, s.status, epoch_seconds(s.zeitpunkt), s.nachrichten_uuid)  # type: ignore[attr-defined]
        for s in statuses
    ]


def completed_now(before: Iterable[TimelinePoint], after: Iterable[TimelinePoint]) -> dict[str, int]:
    """Steps a Vorgang has completed in ``after`` but had not in ``before``: step name → duration in seconds.
    A correction of a step already counted is not counted again (the histogram observes each step once)."""
    earlier = step_durations(before)
    return {name: duration for name, (_, duration) in step_durations(after).items() if name not in earlier}
