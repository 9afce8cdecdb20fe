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
    "410": {"frist": "2024-04-01"},
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


def test_the_rechtsbehelf_path_from_decision_to_bestandskraft() -> None:
    assert run("100", "400", "410", "420").status == "420"
    assert run("100", "400", "410", "430", "440", "410", "420").sequence == 7  # Abhilfe: a new Bescheid
    assert run("100", "400", "410", "430", "450", "420").status == "420"  # Widerspruchsbescheid, no Klage
    assert run("100", "400", "410", "430", "450", "510").status == "510"  # a Klage ends the procedure here


@pytest.mark.parametrize(("before", "refused"), [(("100", "400"), "420"), (("100", "400", "410"), "400")])
def test_the_old_order_is_refused_with_the_reason(before: tuple[str, ...], refused: str) -> None:
    """Version 1 sent 400 → 420 (Frist läuft) → 410; 420 now means bestandskräftig and needs a Bekanntgabe first."""
    result = advance(run(*before), status_event(refused, len(before)))
    assert isinstance(result, Rejection)
    assert result.reason is Reason.ILLEGAL_TRANSITION
    assert f"{before[-1]} → {refused}" in result.message


def test_bestandskraft_is_final_and_a_widerspruch_reopens_only_an_einstellung() -> None:
    for late in ("430", "200", "410"):
        assert isinstance(advance(run("100", "400", "410", "420"), status_event(late, 9)), Rejection)
    assert run("100", "510", "430").status == "430"


def test_a_state_stored_under_lifecycle_version_1_is_read_in_version_2_terms() -> None:
    stored = {  # what the changelog holds for a Vorgang in "420 Rechtsbehelfsfrist läuft" (version 1)
        "status": "420",
        "sequence": 8,
        "last_event_time": "2024-03-04T09:00:00+01:00",
        "recent_event_ids": ["evt-6", "evt-7"],
    }
    state = VorgangState.from_dict(stored)
    assert (state.status, state.current_event_id, state.recent_statuses) == ("410", "evt-7", ("", "410"))
    after = advance(state, status_event("420", 60))  # the Frist passes: bestandskräftig
    assert isinstance(after, Advanced) and after.state.status == "420" and after.state.sequence == 9
    assert VorgangState.from_dict(after.state.to_dict()) == after.state


def correction(status: str, n: int, target: int, **details: object) -> StatusEvent:
    moment = START + timedelta(minutes=n)
    values = {**DETAILS.get(status, {}), **details}
    return event(
        status=status, eventId=f"evt-{n}", statusZeit=moment.isoformat(), berichtigtEventId=f"evt-{target}", **values
    )


def test_a_correction_of_the_current_status_may_change_its_code_within_the_table() -> None:
    state = run("100", "200", "500")  # 500 by mistake: the authority meant 510
    result = advance(state, correction("510", 3, target=2))
    assert isinstance(result, Advanced)
    assert (result.state.status, result.state.sequence, result.state.current_event_id) == ("510", 4, "evt-3")
    assert result.state.previous_status == "200"
    wrong = advance(state, correction("410", 3, target=2))  # 200 → 410 was never allowed
    assert isinstance(wrong, Rejection) and wrong.reason is Reason.ILLEGAL_CORRECTION


def test_a_correction_of_an_earlier_event_keeps_its_code_and_the_current_status() -> None:
    state = run("100", "300", "310")
    fixed = advance(state, correction("300", 3, target=1, zahlung={"betrag": "12.00", "verwendungszweck": "Gebuehr"}))
    assert isinstance(fixed, Advanced)
    assert (fixed.state.status, fixed.state.sequence, fixed.state.current_event_id) == ("310", 4, "evt-2")
    recoded = advance(state, correction("400", 3, target=1, entscheidung="01"))
    assert isinstance(recoded, Rejection) and recoded.reason is Reason.ILLEGAL_CORRECTION
    warned = advance(state, correction("400", 3, target=1, entscheidung="01"), policy=Policy.WARN)
    assert isinstance(warned, Advanced) and warned.warning is Reason.ILLEGAL_CORRECTION


def test_a_correction_of_an_event_never_sent_is_refused_whatever_the_policy() -> None:
    for policy in Policy:
        for state in (None, run("100", "200")):
            result = advance(state, correction("200", 5, target=99), policy=policy)
            assert isinstance(result, Rejection) and result.reason is Reason.CORRECTION_UNKNOWN


def test_a_correction_is_numbered_like_any_message_and_is_not_stale() -> None:
    state = run("100", "200", "220")
    result = advance(state, correction("200", 9, target=1, statusText="In Bearbeitung seit Montag"))
    assert isinstance(result, Advanced) and result.state.sequence == 4
    again = advance(result.state, correction("200", 9, target=1))
    assert isinstance(again, Rejection) and again.reason is Reason.DUPLICATE_EVENT


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
    assert {status: TRANSITIONS[status] for status in TERMINAL} == {"420": set(), "500": {"430"}, "510": {"430"}}


@settings(max_examples=200, deadline=None)
@given(statuses=st.lists(st.sampled_from(STATUSES), min_size=1, max_size=25), policy=st.sampled_from(list(Policy)))
def test_nothing_leaves_a_terminal_status_except_430(statuses: list[str], policy: Policy) -> None:
    state: VorgangState | None = None
    for n, status in enumerate(statuses):
        result = advance(state, status_event(status, n), policy=policy)
        if isinstance(result, Advanced):
            if state is not None and state.status in TERMINAL and result.warning is None:
                assert state.status != "420" and result.state.status == "430"
            assert result.state.sequence == (state.sequence + 1 if state else 1)
            state = result.state
