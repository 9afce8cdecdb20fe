import random

from streams.delivery.retry import RetryPolicy


def test_full_jitter_stays_within_the_exponential_ceiling() -> None:
    policy = RetryPolicy(base_delay_s=0.1, max_delay_s=5.0)
    rng = random.Random(4711)
    for attempt, ceiling in [(1, 0.1), (2, 0.2), (3, 0.4), (6, 3.2), (7, 5.0), (40, 5.0)]:
        delays = [policy.delay(attempt, rng=rng) for _ in range(200)]
        assert all(0 <= d <= ceiling for d in delays)
        assert max(delays) > ceiling * 0.8  # jitter spreads over the whole range, not a fixed value


def test_retry_after_wins_when_longer_but_is_capped() -> None:
    policy = RetryPolicy(base_delay_s=0.1, max_delay_s=1.0, retry_after_cap_s=60)
    rng = random.Random(1)
    assert policy.delay(1, retry_after=7, rng=rng) == 7
    assert policy.delay(1, retry_after=86_400, rng=rng) == 60


def test_budget_is_an_age_not_a_count() -> None:
    policy = RetryPolicy(budget_s=600)
    assert not policy.exhausted(599.9)
    assert policy.exhausted(600)
