"""The status page's estimate: "Üblicherweise dauert es von hier bis zur Entscheidung etwa N Tage (Median der
letzten 12 Monate, M Anträge)".

Shown only when the current status is a milestone the figures start from (:data:`~rueckkanal.transparency.
ESTIMATE_FROM`: eingegangen, vollständig) and at least ``min_count`` Vorgänge of the same Fachverfahren and Leistung
completed that step in the last 365 days (:func:`rueckkanal.transparency.estimate`): no figure ever describes a
handful of people, and no figure is shown when the data is thin. The median comes from the store's SQL
(:meth:`~adapters.statusstore.base.StatusStore.step_figures`) and is kept for ``ttl`` per Leistung and step, so a
page view costs no aggregation.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from adapters.statusstore.base import StatusStore
from rueckkanal.tracking import StoredStatus
from rueckkanal.transparency import (
    DEFAULT_MIN_COUNT,
    ESTIMATE_FROM,
    ESTIMATE_WINDOW_DAYS,
    Estimate,
    StepQuery,
    Summary,
    epoch_seconds,
    estimate,
)
from streams.status_web.texts import Lang


def estimate_text(found: Estimate, lang: Lang) -> str:
    """The sentence for the page, in plain German or English."""
    if lang is Lang.EN:
        span = (
            "less than a day" if found.days == 0 else "about 1 day" if found.days == 1 else f"about {found.days} days"
        )
        return (
            f"It usually takes {span} from here to the decision (median of the last 12 months, "
            f"{found.count} applications). This is what past applications took, not a promise."
        )
    span = (
        "weniger als einen Tag" if found.days == 0 else "etwa 1 Tag" if found.days == 1 else f"etwa {found.days} Tage"
    )
    return (
        f"Üblicherweise dauert es von hier bis zur Entscheidung {span} (Median der letzten 12 Monate, "
        f"{found.count} Anträge). Das ist ein Erfahrungswert, keine Zusage."
    )


class Estimates:
    def __init__(
        self,
        store: StatusStore,
        min_count: int = DEFAULT_MIN_COUNT,
        ttl: float = 900.0,
        now: Callable[[], datetime] = lambda: datetime.now(UTC),
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.store = store
        self.min_count = min_count
        self.ttl = ttl
        self.now = now
        self.clock = clock
        self._cache: dict[tuple[str, str, str], tuple[float, Summary | None]] = {}

    async def for_timeline(self, timeline: list[StoredStatus]) -> Estimate | None:
        """The estimate for a Vorgang whose statuses (in sequence order) are ``timeline``, or None."""
        if not timeline:
            return None
        latest = timeline[-1]
        step = ESTIMATE_FROM.get(latest.status)
        if step is None:
            return None
        return estimate(await self._summary(latest.fachverfahren, latest.leistung, step), self.min_count)

    async def _summary(self, fachverfahren: str, leistung: str, step: str) -> Summary | None:
        key = (fachverfahren, leistung, step)
        cached = self._cache.get(key)
        if cached is not None and self.clock() - cached[0] < self.ttl:
            return cached[1]
        to = self.now()
        query = StepQuery(
            epoch_seconds(to - timedelta(days=ESTIMATE_WINDOW_DAYS)),
            epoch_seconds(to),
            monthly=False,
            fachverfahren=fachverfahren,
            leistung=leistung,
            step=step,
        )
        figures = await self.store.step_figures(query)
        summary = Summary(figures[0].count, figures[0].median, figures[0].p80) if figures else None
        self._cache[key] = (self.clock(), summary)
        return summary
