"""The status lifecycle: duplicates, stale events, the transition table, the warn policy, the stored state."""

from __future__ import annotations

import json
from datetime import datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rueckkanal.codelists import codelists
from rueckkanal.errors import LifecycleRejected, Reason, RueckkanalError
from rueckkanal.lifecycle import (
    ENTRY_STATUSES,
    RECENT_EVENT_IDS,
    TRANSITIONS,
    Advanced,
    Policy,
    Rejection,
    VorgangState,
    advance,
)
from rueckkanal.model import StatusEvent
from tests.unit.factories import event

START = datetime.fromisoformat("2024-03-04T08:00:00+01:00")
DETAILS = {
    "210": {"frist": "2024-04-01"},
    "420": {"frist": "2024-04-01"},
    "300": {"zahlung": {"betrag": "10.00", "verwendungszweck": "Gebuehr"}},
    "400": {"entscheidung": "01"},
}
STATUSES = sorted(codelists().antragsstatus.rows)
TERMINAL = codelists().terminal_statuses


def status_event(status: str, n: int, *, minutes: int | None = None) -> StatusEvent:
    moment = START + timedelta(minutes=n if minutes is None else minutes)
    return event(status=status, eventId=f"evt-{n}", statusZeit=moment.isoformat(), **DETAILS.get(status, {}))


def run(*statuses: str) -> VorgangState:
    state = None
    for n, status in enumerate(statuses):
        result = advance(state, status_event(status, n))
        assert isinstance(result, Advanced), result
        state = result.state
    assert state is not None
    return state


def test_a_full_lifecycle_numbers_its_messages_from_one() -> None:
    state = run("100", "120", "220", "300", "310", "400", "410")
    assert (state.status, state.sequence) == ("410", 7)


@pytest.mark.parametrize("status", sorted(ENTRY_STATUSES))
def test_a_vorgang_may_start_with_an_entry_status(status: str) -> None:
    result = advance(None, status_event(status, 0))
    assert isinstance(result, Advanced)
    assert result.state.sequence == 1


@pytest.mark.parametrize("status", sorted(set(STATUSES) - ENTRY_STATUSES))
def test_a_vorgang_cannot_start_in_the_middle(status: str) -> None:
    result = advance(None, status_event(status, 0))
    assert isinstance(result, Rejection)
    assert result.reason is Reason.ILLEGAL_TRANSITION


def test_a_redelivered_event_is_a_duplicate_even_under_warn() -> None:
    state = run("100", "120")
    for policy in Policy:
        result = advance(state, status_event("120", 1), policy=policy)
        assert isinstance(result, Rejection)
        assert result.reason is Reason.DUPLICATE_EVENT


def test_an_older_event_is_stale() -> None:
    state = run("100", "200")
    result = advance(state, status_event("220", 5, minutes=0))
    assert isinstance(result, Rejection)
    assert result.reason is Reason.STALE_EVENT


def test_illegal_transition_is_rejected_and_converts_to_the_error() -> None:
    result = advance(run("100"), status_event("310", 1))
    assert isinstance(result, Rejection)
    error = result.to_error()
    assert isinstance(error, LifecycleRejected)
    assert error.reason is Reason.ILLEGAL_TRANSITION


def test_warn_policy_delivers_anyway_and_keeps_the_clock() -> None:
    state = run("100", "200")
    result = advance(state, status_event("220", 5, minutes=-30), policy=Policy.WARN)
    assert isinstance(result, Advanced)
    assert result.warning is Reason.STALE_EVENT
    assert result.state.sequence == 3
    assert result.state.last_event_time == state.last_event_time


def test_widerspruch_reopens_a_closed_vorgang() -> None:
    assert run("100", "400", "410", "430", "400", "410").sequence == 6


def test_recent_event_ids_stay_bounded() -> None:
    state = run("100", *["200"] * (RECENT_EVENT_IDS + 10))
    assert len(state.recent_event_ids) == RECENT_EVENT_IDS
    assert state.recent_event_ids[-1] == f"evt-{RECENT_EVENT_IDS + 10}"


def test_state_survives_the_table_as_json() -> None:
    state = run("100", "120", "210")
    assert VorgangState.from_dict(json.loads(json.dumps(state.to_dict()))) == state


@pytest.mark.parametrize(
    "stored",
    [
        {},
        {"status": "100", "sequence": "x", "last_event_time": "2024-03-04T08:00:00+01:00", "recent_event_ids": []},
        {"status": "100", "sequence": 1, "last_event_time": "2024-03-04T08:00:00", "recent_event_ids": []},
        {"status": "100", "sequence": 0, "last_event_time": "2024-03-04T08:00:00+01:00", "recent_event_ids": []},
    ],
)
def test_unreadable_state_is_state_corrupt(stored: dict[str, object]) -> None:
    with pytest.raises(RueckkanalError) as caught:
        VorgangState.from_dict(stored)
    assert caught.value.reason is Reason.STATE_CORRUPT


def test_the_table_covers_exactly_the_code_list() -> None:
    assert set(TRANSITIONS) == set(STATUSES)
    for status in TERMINAL:
        assert TRANSITIONS[status] == {"430"}


@settings(max_examples=200, deadline=None)
@given(statuses=st.lists(st.sampled_from(STATUSES), min_size=1, max_size=25), policy=st.sampled_from(list(Policy)))
def test_nothing_leaves_a_terminal_status_except_430(statuses: list[str], policy: Policy) -> None:
    state: VorgangState | None = None
    for n, status in enumerate(statuses):
        result = advance(state, status_event(status, n), policy=policy)
        if isinstance(result, Advanced):
            if state is not None and state.status in TERMINAL and result.warning is None:
                assert result.state.status == "430"
            assert result.state.sequence == (state.sequence + 1 if state else 1)
            state = result.state
