"""The portal settings refuse to send messages, tokens or client secrets in clear beyond this machine."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from rueckkanal.settings import PortalReceipt, PortalSettings, Settings


def oauth2(token_url: str) -> dict[str, Any]:
    return {"auth": "oauth2", "oauth2": {"token_url": token_url, "client_id": "rk", "client_secret": "geheim"}}


@pytest.mark.parametrize(
    "url",
    [
        "https://portal.example/in",
        "http://127.0.0.1:8090/in",
        "http://127.8.9.10/in",
        "http://localhost:8090/in",
        "http://LOCALHOST./in",
        "http://[::1]:8090/in",
    ],
)
def test_https_or_a_loopback_host_is_accepted(url: str) -> None:
    assert str(PortalSettings.model_validate({"url": url}).url).startswith(url.split(":")[0])


@pytest.mark.parametrize(
    "url",
    [
        "http://portal.example/in",
        "http://10.0.0.5/in",
        "http://0.0.0.0/in",
        "http://[::2]/in",
        "http://localhost.evil/",
    ],
)
def test_plain_http_to_another_host_is_refused_with_the_setting_named(url: str) -> None:
    with pytest.raises(ValidationError, match=r"portal\.url must use https://.*allow_insecure_http"):
        PortalSettings.model_validate({"url": url})


def test_plain_http_token_url_is_refused_even_with_an_https_portal() -> None:
    settings = {"url": "https://portal.example/in"} | oauth2("http://idp.example/token")
    with pytest.raises(ValidationError, match=r"portal\.oauth2\.token_url must use https://"):
        PortalSettings.model_validate(settings)
    assert PortalSettings.model_validate({"url": "https://portal.example/in"} | oauth2("https://idp.example/token"))


def test_the_explicit_insecure_setting_allows_plain_http_for_development() -> None:
    settings = {"url": "http://portal-sim.dev.svc/in", "allow_insecure_http": True} | oauth2("http://sim/token")
    assert PortalSettings.model_validate(settings).allow_insecure_http is True


def test_the_error_names_no_secret() -> None:
    with pytest.raises(ValidationError) as caught:
        PortalSettings.model_validate({"url": "http://portal.example/in"} | oauth2("http://idp.example/token"))
    assert "geheim" not in str(caught.value)


def test_https_rule_applies_at_start_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RK_PORTAL__URL", "http://portal.example/in")
    with pytest.raises(ValidationError, match="https"):
        Settings()
    monkeypatch.setenv("RK_PORTAL__ALLOW_INSECURE_HTTP", "true")
    assert Settings().portal.allow_insecure_http


def test_receipt_rule_defaults_to_the_quittung() -> None:
    assert PortalSettings().receipt is PortalReceipt.QUITTUNG
    assert PortalSettings.model_validate({"receipt": "http_2xx"}).receipt is PortalReceipt.HTTP_2XX


def test_stall_time_must_exceed_every_expected_quiet_time() -> None:
    with pytest.raises(ValidationError, match="stall_after_s"):
        Settings(web={"stall_after_s": 300})
    with pytest.raises(ValidationError, match="stall_after_s"):
        Settings(web={"stall_after_s": 900}, delivery={"retry_after_cap_s": 900})
    assert Settings(web={"stall_after_s": 400}, delivery={"retry_after_cap_s": 60}).web.stall_after_s == 400


def test_the_error_at_start_names_no_secret(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RK_PORTAL__URL", "http://portal.example/in")
    monkeypatch.setenv("RK_PORTAL__AUTH", "oauth2")
    monkeypatch.setenv("RK_PORTAL__OAUTH2__TOKEN_URL", "https://idp.example/token")
    monkeypatch.setenv("RK_PORTAL__OAUTH2__CLIENT_ID", "rk")
    monkeypatch.setenv("RK_PORTAL__OAUTH2__CLIENT_SECRET", "geheim")
    with pytest.raises(ValidationError) as caught:
        Settings()
    assert "portal.url must use https://" in str(caught.value)
    assert "geheim" not in str(caught.value)
