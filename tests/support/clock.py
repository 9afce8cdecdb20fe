"""A clock a test moves by hand, for code that reads the time from a ``clock()`` callable."""

from __future__ import annotations


class ManualClock:
    """Returns ``now``, which only the test moves (``clock.now += 30``)."""

    def __init__(self, now: float = 1000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now
