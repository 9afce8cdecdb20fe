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
#: after others (a payment is received only after it was requested; a Bescheid is bekanntgegeben only after the
#: decision; a Widerspruch is only possible against a bekanntgegebenen Bescheid). The Rechtsbehelf part follows the
#: administrative procedure (VwVfG § 41 Bekanntgabe, VwGO §§ 68–73 Widerspruchsverfahren): 400 entschieden →
#: 410 Bescheid bekanntgegeben (its Frist is the end of the Rechtsbehelfsfrist) → 420 bestandskräftig when the Frist
#: passes, or 430 Widerspruch → 440 abgeholfen (the authority itself changes its decision: a new Bescheid follows,
#: 410 again, or the case goes back into processing) or 450 Widerspruchsbescheid (the Widerspruchsbehörde decides;
#: 420 once it can no longer be challenged, 510 when a court takes over). Backward moves exist where the real
#: procedure goes back: more documents requested after "vollständig" (230 → 210), back into processing after a
#: payment or an Abhilfe. Three rules are added to the table below, not written into it:
#:
#: * every non-terminal status may repeat (a new Frist for 210, a changed amount for 300, a new text);
#: * every non-terminal status may end in 500 (withdrawn by the citizen) or 510 (discontinued by the authority);
#: * of the terminal statuses (``terminal`` in the code list: 420, 500, 510), 500 and 510 accept only 430 (a
#:   Widerspruch against the Einstellung reopens the Vorgang); 420 accepts nothing: the Bescheid is bestandskräftig.
_NEXT: Mapping[str, frozenset[str]] = {
    "100": frozenset({"110", "120", "200", "210", "220", "230", "300", "400"}),
    "110": frozenset({"100"}),  # resubmitted after the technical rejection
    "120": frozenset({"200", "210", "220", "230", "300", "400"}),
    "200": frozenset({"210", "220", "230", "300", "400"}),
    "210": frozenset({"200", "220", "230", "400"}),  # 400: e.g. abgelehnt, documents never came
    "220": frozenset({"200", "230", "300", "400"}),
    "230": frozenset({"200", "210", "220", "300", "400"}),
    "300": frozenset({"310", "400"}),  # 400 without 310: e.g. abgelehnt for non-payment
    "310": frozenset({"200", "230", "400", "410"}),  # 410: the payment was the last step before the Bescheid
    "400": frozenset({"300", "410"}),  # 300: the fee is set with the decision
    "410": frozenset({"420", "430"}),  # the Rechtsbehelfsfrist passes (420) or a Widerspruch arrives (430)
    "430": frozenset({"200", "230", "440", "450"}),  # Abhilfeprüfung, Beteiligung, Abhilfe, Widerspruchsbescheid
    "440": frozenset({"200", "300", "400", "410"}),  # after the Abhilfe: the changed Bescheid (410) or more work
    "450": frozenset({"420"}),  # no Klage within the Klagefrist; a Klage ends the administrative procedure (510)
}
_ALWAYS_REACHABLE = frozenset({"500", "510"})
_REOPEN = "430"
_REOPENABLE = frozenset({"500", "510"})

#: Statuses whose meaning changed with Antragsstatus list version 2 (XAntragsstatus 2.0.0), for the hint in a
#: refusal and for reading a Vorgang state written under version 1: v1 "420 Rechtsbehelfsfrist läuft" is v2 "410".
V1_TO_V2_STATUS: Mapping[str, str] = {"420": "410"}
LIFECYCLE_VERSION = 2
_CHANGED_MEANING = frozenset({"410", "420"})
_CHANGED_MEANING_HINT = "since list version 2: 410 Bescheid bekanntgegeben with its Frist, 420 bestandskräftig"


def _build_table() -> Mapping[str, frozenset[str]]:
    """The full table: :data:`_NEXT` plus the three rules, checked against the code list at import."""
    statuses = codelists().antragsstatus
    terminal = codelists().terminal_statuses
    table: dict[str, frozenset[str]] = {}
    for code in statuses.rows:
        if code in terminal:
            table[code] = frozenset({_REOPEN}) if code in _REOPENABLE else frozenset()
        elif code in _NEXT:
            table[code] = _NEXT[code] | _ALWAYS_REACHABLE | {code}
    named = set().union(*_NEXT.values(), _NEXT, ENTRY_STATUSES, _ALWAYS_REACHABLE, {_REOPEN}, _REOPENABLE)
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
    """What the portal has been told about one Vorgang; the faust Table value (via :meth:`to_dict`).

    ``recent_statuses`` holds the status code of each of ``recent_event_ids`` ("" where unknown: a state written
    before corrections existed); ``current_event_id`` is the event whose status is ``status`` (a correction of it
    takes its place) and ``previous_status`` the status before that one ("" at the start or unknown).
    """

    status: str
    sequence: int
    last_event_time: datetime
    recent_event_ids: tuple[str, ...]
    recent_statuses: tuple[str, ...] = ()
    current_event_id: str = ""
    previous_status: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {
            "status": self.status,
            "sequence": self.sequence,
            "last_event_time": self.last_event_time.isoformat(),
            "recent_event_ids": list(self.recent_event_ids),
            "recent_statuses": list(self.recent_statuses),
            "current_event_id": self.current_event_id,
            "previous_status": self.previous_status,
            "lifecycle": LIFECYCLE_VERSION,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> VorgangState:
        """The inverse of :meth:`to_dict`; a value that is not one raises ``RueckkanalError(state_corrupt)``.

        A state written under lifecycle version 1 (no ``lifecycle`` key) is read in version 2 terms: its status
        is translated by :data:`V1_TO_V2_STATUS` (a Vorgang in "Rechtsbehelfsfrist läuft" is in 410 now), the
        statuses of its recent events are unknown and its last event is taken as the current one.
        """
        try:
            recent_ids = tuple(str(event_id) for event_id in data["recent_event_ids"])
            version = int(data.get("lifecycle", 1))
            status = str(data["status"])
            if version == 1:
                status = V1_TO_V2_STATUS.get(status, status)
                recent_statuses = tuple("" for _ in recent_ids[:-1]) + ((status,) if recent_ids else ())
                current = recent_ids[-1] if recent_ids else ""
                previous = ""
            else:
                recent_statuses = tuple(str(code) for code in data["recent_statuses"])
                current = str(data["current_event_id"])
                previous = str(data["previous_status"])
            state = cls(
                status=status,
                sequence=int(data["sequence"]),
                last_event_time=datetime.fromisoformat(data["last_event_time"]),
                recent_event_ids=recent_ids,
                recent_statuses=recent_statuses,
                current_event_id=current,
                previous_status=previous,
            )
        except (KeyError, TypeError, ValueError):
            raise RueckkanalError("stored Vorgang state is unreadable", reason=Reason.STATE_CORRUPT) from None
        consistent = len(state.recent_statuses) == len(state.recent_event_ids)
        if state.sequence < 1 or state.last_event_time.tzinfo is None or not consistent:
            raise RueckkanalError("stored Vorgang state is inconsistent", reason=Reason.STATE_CORRUPT)
        return state

    def status_of(self, event_id: str) -> str | None:
        """The recorded status of a recent event ("" unknown), or None if the event is not among the recent ones."""
        for known, status in zip(reversed(self.recent_event_ids), reversed(self.recent_statuses), strict=True):
            if known == event_id:
                return status
        return None


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
    """Apply ``event`` to ``state`` (None: the Vorgang's first event); a correction (``event.berichtigt``) goes
    through :func:`correct`."""
    if event.berichtigt is not None:
        return correct(state, event, policy)
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
        if event.status in _CHANGED_MEANING:
            message += f" ({_CHANGED_MEANING_HINT})"
        return _violation(policy, state, event, Reason.ILLEGAL_TRANSITION, message)
    return Advanced(_next_state(state, event))


def correct(state: VorgangState | None, event: StatusEvent, policy: Policy = Policy.STRICT) -> Advanced | Rejection:
    """A Statusberichtigung: ``event`` replaces the earlier event ``event.berichtigt`` of the same Vorgang.

    * The earlier event must be one of the Vorgang's last :data:`RECENT_EVENT_IDS` events
      (``correction_unknown`` otherwise, never forced: a correction of a status that was never sent has nothing
      to replace).
    * Correcting the current status (the event that set it) may change the status code to any status that was
      allowed where the corrected one stood (after ``previous_status``, or an entry status), or keep it.
    * Correcting an earlier event may change its details but not its status code: later statuses were built on
      it (``illegal_correction``; with :attr:`Policy.WARN` accepted with a warning).
    * The correction is a new message: its own event id (duplicates refused), the next sequence number. Its
      status time is not checked against the newest one: it describes the past.
    """
    target = event.berichtigt
    if state is None or target is None:
        return Rejection(Reason.CORRECTION_UNKNOWN, "a correction needs an earlier event of this Vorgang")
    if event.event_id in state.recent_event_ids:
        return Rejection(Reason.DUPLICATE_EVENT, "event id already processed for this Vorgang")
    recorded = state.status_of(target)
    if recorded is None:
        message = "the corrected event was never accepted for this Vorgang (or is older than its last events)"
        return Rejection(Reason.CORRECTION_UNKNOWN, message)
    if target == state.current_event_id:
        allowed = {state.status}
        if state.previous_status:
            allowed |= TRANSITIONS[state.previous_status]
        elif state.sequence == 1:
            allowed |= ENTRY_STATUSES
        if event.status not in allowed:
            message = f"the current status cannot be corrected to {event.status}"
            return _correction_violation(policy, state, event, message, current=True)
        return Advanced(_corrected_state(state, event, current=True))
    if event.status != recorded:
        message = "a correction of an earlier event may change its details, not its status code"
        return _correction_violation(policy, state, event, message, current=False)
    return Advanced(_corrected_state(state, event, current=False))


def _correction_violation(
    policy: Policy, state: VorgangState, event: StatusEvent, message: str, *, current: bool
) -> Advanced | Rejection:
    if policy is Policy.WARN:
        return Advanced(_corrected_state(state, event, current=current), warning=Reason.ILLEGAL_CORRECTION)
    return Rejection(Reason.ILLEGAL_CORRECTION, message)


def _violation(
    policy: Policy, state: VorgangState | None, event: StatusEvent, reason: Reason, message: str
) -> Advanced | Rejection:
    if policy is Policy.WARN:
        new_state = _first_state(event) if state is None else _next_state(state, event)
        return Advanced(new_state, warning=reason)
    return Rejection(reason, message)


def _first_state(event: StatusEvent) -> VorgangState:
    return VorgangState(
        status=event.status,
        sequence=1,
        last_event_time=event.status_time,
        recent_event_ids=(event.event_id,),
        recent_statuses=(event.status,),
        current_event_id=event.event_id,
        previous_status="",
    )


def _next_state(state: VorgangState, event: StatusEvent) -> VorgangState:
    return VorgangState(
        status=event.status,
        sequence=state.sequence + 1,
        # max(): a stale event forced through must not move the clock back and let older events in after it.
        last_event_time=max(state.last_event_time, event.status_time),
        recent_event_ids=(*state.recent_event_ids, event.event_id)[-RECENT_EVENT_IDS:],
        recent_statuses=(*state.recent_statuses, event.status)[-RECENT_EVENT_IDS:],
        current_event_id=event.event_id,
        previous_status=state.status,
    )


def _corrected_state(state: VorgangState, event: StatusEvent, *, current: bool) -> VorgangState:
    """The state after a correction: the next sequence number; the status (and the current event) only change
    when the current status was corrected."""
    return VorgangState(
        status=event.status if current else state.status,
        sequence=state.sequence + 1,
        last_event_time=max(state.last_event_time, event.status_time),
        recent_event_ids=(*state.recent_event_ids, event.event_id)[-RECENT_EVENT_IDS:],
        recent_statuses=(*state.recent_statuses, event.status)[-RECENT_EVENT_IDS:],
        current_event_id=event.event_id if current else state.current_event_id,
        previous_status=state.previous_status,
    )


def corrects_current(state: VorgangState, event: StatusEvent) -> bool:
    """For a correction already applied (``state`` is the state after it): whether it replaced the current
    status (XAntragsstatus ``aktuellerStatus``)."""
    return event.berichtigt is not None and state.current_event_id == event.event_id
