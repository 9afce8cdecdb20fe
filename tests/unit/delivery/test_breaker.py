from streams.delivery.breaker import CircuitBreaker, CircuitState
from tests.support.clock import ManualClock


def test_opens_after_consecutive_failures_and_probes_once_after_the_open_time() -> None:
    clock = ManualClock()
    changes: list[CircuitState] = []
    breaker = CircuitBreaker(failure_threshold=3, open_s=5, max_open_s=20, clock=clock, on_change=changes.append)
    breaker.record_failure()
    breaker.record_failure()
    breaker.record_success()  # a success in between resets the count
    for _ in range(3):
        breaker.record_failure()
    assert breaker.state is CircuitState.OPEN
    assert not breaker.try_acquire()
    clock.now += 5
    assert breaker.try_acquire()  # the probe
    assert breaker.state is CircuitState.HALF_OPEN
    assert not breaker.try_acquire()  # only one probe at a time
    breaker.record_success()
    assert breaker.state is CircuitState.CLOSED
    assert changes == [CircuitState.OPEN, CircuitState.HALF_OPEN, CircuitState.CLOSED]


def test_failed_probe_reopens_with_a_longer_wait() -> None:
    clock = ManualClock()
    breaker = CircuitBreaker(failure_threshold=1, open_s=2, max_open_s=5, clock=clock)
    breaker.record_failure()
    clock.now += 2
    assert breaker.try_acquire()
    breaker.record_failure()
    assert breaker.state is CircuitState.OPEN
    clock.now += 2
    assert not breaker.try_acquire()  # the open time doubled to 4
    clock.now += 2
    assert breaker.try_acquire()


def test_open_time_is_accounted_so_retry_budgets_can_exclude_it() -> None:
    clock = ManualClock()
    breaker = CircuitBreaker(failure_threshold=1, open_s=10, clock=clock)
    mark = breaker.current_open_total()
    clock.now += 3  # closed: does not count
    breaker.record_failure()
    clock.now += 10
    assert breaker.try_acquire()
    clock.now += 1
    breaker.record_success()
    clock.now += 50  # closed again: does not count
    assert breaker.open_time_since(mark) == 11
