"""A delivery target's own bounds: the keys its ``delivery`` sets, over the `delivery` section; the process-wide
drain deadline is not a target's; the /healthz stall time must exceed each target's longest expected wait."""

from __future__ import annotations

from typing import Any

import pytest
from prometheus_client import CollectorRegistry
from pydantic import ValidationError

from adapters.portal.sim.devca import SigningPair
from rueckkanal.metrics import Metrics
from rueckkanal.settings import DEFAULT_TARGET, DeliverySettings, Settings, ZbpSettings
from streams.obs import Readiness
from streams.worker import build_dispatcher


def _zbp(signing: SigningPair, **extra: Any) -> ZbpSettings:
    return ZbpSettings(signing_key=signing.key_path, signing_cert=signing.cert_path, **extra)


def test_a_target_s_delivery_keys_replace_only_those_of_the_delivery_section(zbp_signing: SigningPair) -> None:
    zbp = _zbp(zbp_signing, delivery={"retry_budget_s": 86_400, "breaker_failure_threshold": 5})
    settings = Settings(delivery=DeliverySettings(max_concurrent_requests=64), targets={"zbp": zbp})
    own = settings.delivery_for("zbp")
    assert (own.retry_budget_s, own.breaker_failure_threshold) == (86_400, 5)
    assert own.max_concurrent_requests == 64  # from `delivery`
    assert settings.delivery_for(DEFAULT_TARGET) == settings.delivery
    assert settings.delivery.retry_budget_s == DeliverySettings().retry_budget_s


@pytest.mark.parametrize(
    ("delivery", "named"),
    [
        ({"retry_budget": 10}, "retry_budget"),  # a misspelt key
        ({"breaker_failure_threshold": 0}, "breaker_failure_threshold"),  # out of its range
        ({"drain_deadline_s": 60}, "drain_deadline_s"),  # the process's, not a target's
    ],
)
def test_a_wrong_target_delivery_key_is_refused_naming_the_target(
    zbp_signing: SigningPair, delivery: dict[str, Any], named: str
) -> None:
    with pytest.raises(ValidationError) as caught:
        Settings(targets={"zbp": _zbp(zbp_signing, delivery=delivery)})
    assert "targets.zbp.delivery" in str(caught.value) and named in str(caught.value)


def test_the_stall_time_must_exceed_each_target_s_longest_wait(zbp_signing: SigningPair) -> None:
    patient = _zbp(zbp_signing, delivery={"breaker_max_open_s": 900})  # longer than web.stall_after_s (600)
    with pytest.raises(ValidationError, match=r"targets\.zbp\.timeouts"):
        Settings(targets={"zbp": patient})


def test_the_dispatcher_of_a_target_runs_on_its_own_bounds(zbp_signing: SigningPair) -> None:
    zbp = _zbp(zbp_signing, delivery={"breaker_failure_threshold": 3, "max_concurrent_requests": 8})
    settings = Settings(targets={"zbp": zbp})
    metrics = Metrics(CollectorRegistry())
    own = build_dispatcher(settings, Readiness(), metrics, target="zbp")
    default = build_dispatcher(settings, Readiness(), metrics, target=DEFAULT_TARGET)
    assert own.breaker.failure_threshold == 3 and own.config.max_concurrent_requests == 8
    assert default.breaker.failure_threshold == settings.delivery.breaker_failure_threshold
    assert default.config.max_concurrent_requests == settings.delivery.max_concurrent_requests
