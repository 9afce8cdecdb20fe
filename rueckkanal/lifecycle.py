"""The status lifecycle of one Vorgang, as a pure function over a small state.

:func:`advance` decides whether an event may follow what the portal has already been told about its Vorgang.
It is pure (no clock, no I/O) so the faust Table keeps only :class:`VorgangState` and replays are deterministic.

Checks, in this order:

1. **Duplicate** (``duplicate_event``): the event id is among the last :data:`RECENT_EVENT_IDS` ids of the Vorgang.
   A redelivered source record must not produce a second message. Never forced, whatever the policy.
2. **Stale** (``stale_event``): the status time is older than the newest one already accepted. Out-of-order
   reports would make the portal show an old status as the current one.
3. **Illegal transition** (``illegal_transition``): the transition table below does not allow it.

With :attr:`Policy.WARN`, a stale event or an illegal transition is accepted anyway and the result carries the
reason as a ``warning``: for Fachverfahren being onboarded whose history is incomplete, the citizen should still
see the newest status. The sequence number advances either way, so the portal sees an unbroken sequence.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any

from rueckkanal.codelists import codelists
from rueckkanal.errors import LifecycleRejected, Reason, RueckkanalError
from rueckkanal.model import StatusEvent

RECENT_EVENT_IDS = 32

#: Where a Vorgang may start. A Fachverfahren that does not report receipt (100) starts with its own first step:
#: a technical rejection (110), the Aktenzeichen (120) or "In Bearbeitung" (200). Anything later needs a history.
ENTRY_STATUSES = frozenset({"100", "110", "120", "200"})

#: The legal next statuses of every non-terminal status, written once, read as "from → to".
#:
#: Why these and not "any forward move": the portal shows the citizen a story, and a few steps only make sense
#: after others (a payment is received only after it was requested; a Rechtsbehelfsfrist runs only after a
#: decision; a Widerspruch is only possible against a decision). Backward moves exist where the real procedure
#: goes back: more documents requested after "vollständig" (230 → 210), back into processing after a payment or
#: a Widerspruch. Three rules are added to the table below, not written into it:
#:
#: * every non-terminal status may repeat (a new Frist for 210, a changed amount for 300, a new text);
#: * every non-terminal status may end in 500 (withdrawn by the citizen) or 510 (discontinued by the authority);
#: * terminal statuses (``terminal`` in the code list: 410, 500, 510) accept only 430, the Widerspruch that
#:   reopens the Vorgang.
_NEXT: Mapping[str, frozenset[str]] = {
    "100": frozenset({"110", "120", "200", "210", "220", "230", "300", "400"}),
    "110": frozenset({"100"}),  # resubmitted after the technical rejection
    "120": frozenset({"200", "210", "220", "230", "300", "400"}),
    "200": frozenset({"210", "220", "230", "300", "400"}),
    "210": frozenset({"200", "220", "230", "400"}),  # 400: e.g. abgelehnt, documents never came
    "220": frozenset({"200", "230", "300", "400"}),
    "230": frozenset({"200", "210", "220", "300", "400"}),
    "300": frozenset({"310", "400"}),  # 400 without 310: e.g. abgelehnt for non-payment
    "310": frozenset({"200", "230", "400", "410"}),  # 410: the payment was the last step (an Auszug is sent)
    "400": frozenset({"300", "410", "420"}),  # 300: the fee is set with the decision
    "420": frozenset({"410", "430"}),  # the Frist ends (410) or a Widerspruch arrives (430)
    "430": frozenset({"200", "230", "400"}),  # Abhilfe or Widerspruchsbescheid
}
_ALWAYS_REACHABLE = frozenset({"500", "510"})
_REOPEN = "430"


def _build_table() -> Mapping[str, frozenset[str]]:
    """The full table: :data:`_NEXT` plus the three rules, checked against the code list at import."""
    statuses = codelists().antragsstatus
    terminal = codelists().terminal_statuses
    table: dict[str, frozenset[str]] = {}
    for code in statuses.rows:
        if code in terminal:
            table[code] = frozenset({_REOPEN})
        elif code in _NEXT:
            table[code] = _NEXT[code] | _ALWAYS_REACHABLE | {code}
    named = set().union(*_NEXT.values(), _NEXT, ENTRY_STATUSES, _ALWAYS_REACHABLE, {_REOPEN})
    if set(table) != set(statuses.rows) or not named <= set(statuses.rows) or terminal & set(_NEXT):
        raise RuntimeError("the lifecycle table and the Antragsstatus code list disagree")
    return table


TRANSITIONS: Mapping[str, frozenset[str]] = _build_table()


class Policy(StrEnum):
    """What to do with a stale event or an illegal transition."""

    STRICT = "strict"
    WARN = "warn"


@dataclass(frozen=True)
class VorgangState:
    """What the portal has been told about one Vorgang; the faust Table value (via :meth:`to_dict`)."""

    status: str
    sequence: int
    last_event_time: datetime
    recent_event_ids: tuple[str, ...]

    def to_dict(self) -> dict[str, Any]:
        return {
            "status": self.status,
            "sequence": self.sequence,
            "last_event_time": self.last_event_time.isoformat(),
            "recent_event_ids": list(self.recent_event_ids),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> VorgangState:
        """The inverse of :meth:`to_dict`; a value that is not one raises ``RueckkanalError(state_corrupt)``."""
        try:
            state = cls(
                status=str(data["status"]),
                sequence=int(data["sequence"]),
                last_event_time=datetime.fromisoformat(data["last_event_time"]),
                recent_event_ids=tuple(str(event_id) for event_id in data["recent_event_ids"]),
            )
        except (KeyError, TypeError, ValueError):
            raise RueckkanalError("stored Vorgang state is unreadable", reason=Reason.STATE_CORRUPT) from None
        if state.sequence < 1 or state.last_event_time.tzinfo is None:
            raise RueckkanalError("stored Vorgang state is inconsistent", reason=Reason.STATE_CORRUPT)
        return state


@dataclass(frozen=True)
class Advanced:
    """The event is accepted; ``state.sequence`` is the sequence number of its message."""

    state: VorgangState
    warning: Reason | None = None


@dataclass(frozen=True)
class Rejection:
    """The event is refused; nothing is sent and the state stays as it was."""

    reason: Reason
    message: str

    def to_error(self) -> LifecycleRejected:
        return LifecycleRejected(self.message, reason=self.reason)


def advance(state: VorgangState | None, event: StatusEvent, policy: Policy = Policy.STRICT) -> Advanced | Rejection:
    """Apply ``event`` to ``state`` (None: the Vorgang's first event)."""
    if state is None:
        if event.status in ENTRY_STATUSES:
            return Advanced(_first_state(event))
        return _violation(policy, None, event, Reason.ILLEGAL_TRANSITION, f"a Vorgang cannot start with {event.status}")
    if event.event_id in state.recent_event_ids:
        return Rejection(Reason.DUPLICATE_EVENT, "event id already processed for this Vorgang")
    if event.status_time < state.last_event_time:
        return _violation(policy, state, event, Reason.STALE_EVENT, "status time older than the last accepted event")
    if event.status not in TRANSITIONS[state.status]:
        message = f"transition {state.status} → {event.status} is not allowed"
        return _violation(policy, state, event, Reason.ILLEGAL_TRANSITION, message)
    return Advanced(_next_state(state, event))


def _violation(
    policy: Policy, state: VorgangState | None, event: StatusEvent, reason: Reason, message: str
) -> Advanced | Rejection:
    if policy is Policy.WARN:
        new_state = _first_state(event) if state is None else _next_state(state, event)
        return Advanced(new_state, warning=reason)
    return Rejection(reason, message)


def _first_state(event: StatusEvent) -> VorgangState:
    return VorgangState(
        status=event.status, sequence=1, last_event_time=event.status_time, recent_event_ids=(event.event_id,)
    )


def _next_state(state: VorgangState, event: StatusEvent) -> VorgangState:
    return VorgangState(
        status=event.status,
        sequence=state.sequence + 1,
        # max(): a stale event forced through must not move the clock back and let older events in after it.
        last_event_time=max(state.last_event_time, event.status_time),
        recent_event_ids=(*state.recent_event_ids, event.event_id)[-RECENT_EVENT_IDS:],
    )
