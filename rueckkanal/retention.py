"""Retention of closed Vorgänge: when a Vorgang's lifecycle state may be forgotten, as a pure rule.

A Vorgang is **expired** when its status is terminal (``terminal`` in the Antragsstatus code list: 420
bestandskräftig, 500 zurückgenommen, 510 eingestellt) and its last status time lies at least the retention before
``now``. The ingest then deletes its state (a tombstone in the Table's changelog, streams/ingest.py); nothing else
about a Vorgang is ever removed by time, so an open Vorgang keeps its state however long it takes.

The clock is the status time the Fachverfahren reported (``VorgangState.last_event_time``), not the time the
pipeline processed it: a replay or a recovery decides the same, and a Vorgang closed long ago and only now
reported is not kept longer than one closed now.

**The default** (:data:`DEFAULT_RETENTION_DAYS`, 400 days) follows the longest time in which a legal remedy can
still change a closed Vorgang. Of the terminal statuses, 500 and 510 may be reopened by a Widerspruch (430) against
the Einstellung; 420 accepts nothing, but is closed by the same Frist. The Widerspruch is due within one month of
the Bekanntgabe (VwGO § 70), but within a year if the Rechtsbehelfsbelehrung was missing or wrong (VwGO § 58
Abs. 2); a letter counts as bekanntgegeben on the fourth day after posting (VwVfG § 41 Abs. 2). A year, the
Bekanntgabe and a month for the Widerspruch to be registered and reported make 400 days. What a late event of a
forgotten Vorgang meets is the lifecycle's rule for an unknown Vorgang (docs/operations.md, "Lifecycle state").
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime, timedelta
from typing import Any, TypeVar

from rueckkanal.codelists import codelists
from rueckkanal.errors import RueckkanalError
from rueckkanal.lifecycle import VorgangState

DEFAULT_RETENTION_DAYS = 400

K = TypeVar("K")


def expired(state: VorgangState, now: datetime, retention: timedelta) -> bool:
    """Whether ``state`` may be forgotten at ``now``: terminal, and its last status at least ``retention`` ago."""
    return state.status in codelists().terminal_statuses and now - state.last_event_time >= retention


def expired_keys(entries: Iterable[tuple[K, Mapping[str, Any] | None]], now: datetime, retention: timedelta) -> list[K]:
    """The keys of the stored states (as :meth:`VorgangState.to_dict` wrote them) that have expired.

    An unreadable state is never expired: it is dead-lettered with the next event of its Vorgang
    (``state_corrupt``), where an operator sees it, instead of disappearing silently.
    """
    keys: list[K] = []
    for key, stored in entries:
        if stored is None:
            continue
        try:
            state = VorgangState.from_dict(stored)
        except RueckkanalError:
            continue
        if expired(state, now, retention):
            keys.append(key)
    return keys
