import asyncio

import pytest

from adapters.portal.oauth2 import AccessToken, TokenCache
from rueckkanal.errors import TransientDeliveryError
from tests.support.clock import ManualClock


class FakeTokenEndpoint:
    """Counts fetches; each fetch may wait on ``gate`` so that tests can hold it open while others ask."""

    def __init__(self, expires_in_s: float = 300.0) -> None:
        self.fetches = 0
        self.expires_in_s = expires_in_s
        self.gate: asyncio.Event | None = None
        self.fail_with: Exception | None = None

    async def __call__(self) -> AccessToken:
        self.fetches += 1
        if self.gate is not None:
            await self.gate.wait()
        if self.fail_with is not None:
            raise self.fail_with
        return AccessToken(value=f"token-{self.fetches}", expires_in_s=self.expires_in_s)


async def test_token_is_cached_until_the_refresh_margin() -> None:
    clock, endpoint = ManualClock(), FakeTokenEndpoint(expires_in_s=300)
    cache = TokenCache(endpoint, margin_s=30, clock=clock)
    assert await cache.token() == "token-1"
    clock.now += 269
    assert await cache.token() == "token-1"
    clock.now += 1  # 270 s after the fetch: 30 s before expiry
    assert await cache.token() == "token-2"
    assert endpoint.fetches == 2


async def test_short_lived_token_is_refreshed_at_half_its_lifetime() -> None:
    clock, endpoint = ManualClock(), FakeTokenEndpoint(expires_in_s=20)
    cache = TokenCache(endpoint, margin_s=30, clock=clock)
    await cache.token()
    clock.now += 9.9
    assert await cache.token() == "token-1"
    clock.now += 0.1
    assert await cache.token() == "token-2"


async def test_concurrent_callers_share_one_fetch() -> None:
    endpoint = FakeTokenEndpoint()
    endpoint.gate = asyncio.Event()
    cache = TokenCache(endpoint, clock=ManualClock())
    waiters = [asyncio.create_task(cache.token()) for _ in range(50)]
    await asyncio.sleep(0)  # let every task reach the shared fetch
    endpoint.gate.set()
    assert set(await asyncio.gather(*waiters)) == {"token-1"}
    assert endpoint.fetches == 1


async def test_concurrent_callers_share_one_failure_and_the_next_call_fetches_again() -> None:
    endpoint = FakeTokenEndpoint()
    endpoint.gate = asyncio.Event()
    endpoint.fail_with = TransientDeliveryError("token endpoint down")
    cache = TokenCache(endpoint, clock=ManualClock())
    waiters = [asyncio.create_task(cache.token()) for _ in range(10)]
    await asyncio.sleep(0)
    endpoint.gate.set()
    results = await asyncio.gather(*waiters, return_exceptions=True)
    assert all(isinstance(result, TransientDeliveryError) for result in results)
    assert endpoint.fetches == 1
    endpoint.fail_with = None
    assert await cache.token() == "token-2"


async def test_a_cancelled_caller_does_not_cancel_the_fetch_for_others() -> None:
    endpoint = FakeTokenEndpoint()
    endpoint.gate = asyncio.Event()
    cache = TokenCache(endpoint, clock=ManualClock())
    first = asyncio.create_task(cache.token())
    second = asyncio.create_task(cache.token())
    await asyncio.sleep(0)
    first.cancel()
    endpoint.gate.set()
    assert await second == "token-1"
    with pytest.raises(asyncio.CancelledError):
        await first


async def test_invalidate_drops_only_the_token_that_was_refused() -> None:
    endpoint = FakeTokenEndpoint()
    cache = TokenCache(endpoint, clock=ManualClock())
    stale = await cache.token()
    cache.invalidate(stale)
    fresh = await cache.token()
    assert fresh == "token-2"
    cache.invalidate(stale)  # a second 401 for the old token, arriving late, must not throw away the new one
    assert await cache.token() == "token-2"
    assert endpoint.fetches == 2
