"""The retention rule: which stored Vorgang states may be forgotten, as a pure function of (state, now)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from rueckkanal.codelists import codelists
from rueckkanal.lifecycle import VorgangState
from rueckkanal.retention import DEFAULT_RETENTION_DAYS, expired, expired_keys
from rueckkanal.settings import StateSettings

CLOSED_AT = datetime(2024, 3, 4, 8, 0, tzinfo=UTC)
RETENTION = timedelta(days=DEFAULT_RETENTION_DAYS)


def _state(status: str, when: datetime = CLOSED_AT) -> VorgangState:
    return VorgangState(status, 7, when, ("e7",), (status,), "e7", "410")


@pytest.mark.parametrize("status", sorted(codelists().terminal_statuses))
def test_a_terminal_vorgang_expires_exactly_the_retention_after_its_last_status(status: str) -> None:
    state = _state(status)
    assert not expired(state, CLOSED_AT + RETENTION - timedelta(seconds=1), RETENTION)
    assert expired(state, CLOSED_AT + RETENTION, RETENTION)


@pytest.mark.parametrize("status", ["100", "200", "410", "430", "450"])
def test_an_open_vorgang_never_expires(status: str) -> None:
    assert not expired(_state(status), CLOSED_AT + 100 * RETENTION, RETENTION)


def test_the_terminal_statuses_are_those_of_the_code_list() -> None:
    assert codelists().terminal_statuses == {"420", "500", "510"}


def test_the_default_covers_a_year_without_rechtsbehelfsbelehrung_plus_bekanntgabe_and_a_month() -> None:
    assert StateSettings().retention_days == DEFAULT_RETENTION_DAYS
    assert timedelta(days=DEFAULT_RETENTION_DAYS) >= timedelta(days=365 + 4 + 31)


def test_expired_keys_picks_the_expired_and_passes_over_unreadable_states() -> None:
    now = CLOSED_AT + RETENTION
    recent = _state("500", now - timedelta(days=1))
    entries = [
        ("closed", _state("420").to_dict()),
        ("open", _state("200").to_dict()),
        ("recent", recent.to_dict()),
        ("withdrawn", _state("500").to_dict()),
        ("corrupt", {"status": "420"}),
        ("gone", None),
    ]
    assert expired_keys(entries, now, RETENTION) == ["closed", "withdrawn"]
