"""A per-client rate limit: a token bucket per client, pure (the clock is an argument).

Each client may make ``per_minute`` requests in a burst and then one more every ``60 / per_minute`` seconds. A
refused request learns how long to wait (``Retry-After``, whole seconds, at least 1). The table of clients is
bounded: past ``max_clients`` the longest-idle client is forgotten (it starts again with a full bucket), so a flood
of forged addresses costs memory only up to the bound. The limit is per process; with N replicas a client may
reach N times the limit, which the ingress's own limit should cover.
"""

from __future__ import annotations

import math
from collections import OrderedDict
from dataclasses import dataclass


@dataclass
class _Bucket:
    tokens: float
    updated: float


class RateLimiter:
    def __init__(self, per_minute: int, *, max_clients: int = 100_000) -> None:
        self.capacity = float(per_minute)
        self.rate = per_minute / 60.0
        self.max_clients = max_clients
        self._buckets: OrderedDict[str, _Bucket] = OrderedDict()

    def check(self, client: str, now: float) -> float | None:
        """None if ``client`` may go ahead (one token taken), else the seconds until it may."""
        bucket = self._buckets.pop(client, None)
        if bucket is None:
            bucket = _Bucket(self.capacity, now)
        else:
            bucket.tokens = min(self.capacity, bucket.tokens + (now - bucket.updated) * self.rate)
            bucket.updated = now
        self._buckets[client] = bucket  # most recently used last
        while len(self._buckets) > self.max_clients:
            self._buckets.popitem(last=False)
        if bucket.tokens >= 1.0:
            bucket.tokens -= 1.0
            return None
        return (1.0 - bucket.tokens) / self.rate


def retry_after_header(wait_s: float) -> str:
    return str(max(1, math.ceil(wait_s)))
