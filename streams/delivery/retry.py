"""When to try a transient failure again, and when to give up.

Exponential backoff with full jitter (AWS Architecture Blog, "Exponential Backoff and Jitter"): many keys
failing at once must not retry in lock-step. The portal's Retry-After wins when it asks for more time, but is
capped so a broken header cannot park a message for days. The budget is an age, not a count: a message that
failed five times in two seconds is not hopeless, one that has failed for an hour is.
"""

from __future__ import annotations

import random
from dataclasses import dataclass


@dataclass(frozen=True)
class RetryPolicy:
    base_delay_s: float = 0.2
    max_delay_s: float = 30.0
    retry_after_cap_s: float = 300.0
    budget_s: float = 3600.0

    def delay(self, attempt: int, retry_after: float | None = None, rng: random.Random | None = None) -> float:
        """Seconds to wait before attempt number ``attempt + 1`` (``attempt`` counts from 1)."""
        ceiling = min(self.max_delay_s, self.base_delay_s * 2 ** min(attempt - 1, 32))
        jittered = (rng or random).uniform(0, ceiling)
        if retry_after is not None:
            return max(jittered, min(retry_after, self.retry_after_cap_s))
        return jittered

    def exhausted(self, failing_for_s: float) -> bool:
        """True once a message has been failing for longer than the budget (open-circuit time excluded)."""
        return failing_for_s >= self.budget_s
