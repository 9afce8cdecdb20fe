from datetime import UTC, datetime

import pytest
from pydantic import ValidationError

from adapters.portal.retry_after import parse_retry_after
from adapters.portal.sim.faults import Faults, FaultSpec, Verdict
from tests.support.clock import ManualClock


def test_no_faults_means_pass_without_delay() -> None:
    faults = Faults()
    assert all(faults.decide() == Verdict(0.0) for _ in range(100))


def test_rates_are_roughly_honoured_and_reproducible_with_a_seed() -> None:
    spec = FaultSpec(error_rate=0.3, error_status=500, seed=7)
    one, other = Faults(spec), Faults(spec)
    assert [one.decide() for _ in range(50)] == [other.decide() for _ in range(50)]
    faults = Faults(spec)
    statuses = [faults.decide().status for _ in range(2000)]
    assert 450 < statuses.count(500) < 750
    assert set(statuses) == {500, None}


def test_latency_is_uniform_within_bounds_or_fixed() -> None:
    faults = Faults(FaultSpec(latency_min_ms=20, latency_max_ms=40, seed=1))
    delays = [faults.decide().delay_s for _ in range(500)]
    assert 0.02 <= min(delays) < 0.022
    assert 0.038 < max(delays) <= 0.04
    assert {Faults(FaultSpec(latency_min_ms=15, latency_max_ms=15)).decide().delay_s} == {0.015}
    with pytest.raises(ValidationError):
        FaultSpec(latency_min_ms=50, latency_max_ms=10)


def test_timed_outage_ends_by_itself_and_reports_time_left() -> None:
    clock = ManualClock(50.0)
    faults = Faults(clock=clock)
    faults.update({"outage_seconds": 10, "retry_after_s": 4})
    assert faults.decide() == Verdict(0.0, status=503, retry_after="4", fault="outage")
    clock.now += 6
    assert faults.view()["outage_seconds"] == 4.0
    faults.update({"error_rate": 0.0})  # changing another key keeps the running window
    assert faults.decide().status == 503
    clock.now += 4
    assert faults.decide().status is None
    assert faults.view()["outage_seconds"] is None


def test_outage_until_cleared_and_clear_all() -> None:
    faults = Faults(FaultSpec(outage_until_cleared=True, throttle_rate=1.0))
    assert faults.decide().status == 503
    faults.update({"outage_until_cleared": False})
    assert faults.decide().status == 429
    faults.clear()
    assert faults.decide().status is None


def test_throttle_sends_retry_after_as_http_date_when_asked() -> None:
    wall = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
    faults = Faults(
        FaultSpec(throttle_rate=1.0, retry_after_s=30, retry_after_format="http-date"), wall_clock=lambda: wall
    )
    verdict = faults.decide()
    assert verdict.status == 429
    assert verdict.retry_after == "Sun, 01 Mar 2026 12:00:30 GMT"
    assert parse_retry_after(verdict.retry_after, now=wall) == 30


def test_drop_comes_before_any_status() -> None:
    faults = Faults(FaultSpec(drop_rate=1.0, outage_until_cleared=True))
    assert faults.decide().drop is True


def test_reject_rule_matches_whole_vorgang_ids_and_can_be_cleared() -> None:
    faults = Faults(FaultSpec(reject_vorgang_pattern=r"4711|kaputt-.*"))
    assert faults.rejection("4711") == "S011"
    assert faults.rejection("14711") is None
    assert faults.rejection("kaputt-1") == "S011"
    faults.update({"reject_vorgang_pattern": None})
    assert faults.rejection("4711") is None


@pytest.mark.parametrize(
    "changes",
    [
        {"error_rate": 1.5},
        {"error_status": 404},
        {"reject_code": "Z999"},
        {"reject_vorgang_pattern": "("},
        {"no_such_fault": 1},
    ],
)
def test_bad_updates_are_refused_and_keep_the_old_spec(changes: dict[str, object]) -> None:
    faults = Faults(FaultSpec(error_rate=0.5))
    with pytest.raises(ValidationError):
        faults.update(changes)
    assert faults.spec.error_rate == 0.5
