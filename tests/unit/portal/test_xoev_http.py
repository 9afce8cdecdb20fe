"""The HTTP adapter on the wire: headers, failure classes, caps and redirects, against small aiohttp servers
and the in-process reference portal."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from pathlib import Path

import pytest
from aiohttp import web

from adapters.portal.sim.answers import Answers
from adapters.portal.sim.config import SimConfig
from adapters.portal.sim.faults import FaultSpec
from adapters.portal.sim.server import RunningPortal, started
from adapters.portal.xoev_http import XoevHttpPortal
from adapters.portal.xoev_http_config import PortalHttpConfig, PortalTimeouts, PortalTls
from rueckkanal.errors import ConfigError, PermanentDeliveryError, Reason, TransientDeliveryError
from tests.contract.portal_contract import statusmeldung
from tests.support.processes import free_port

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@asynccontextmanager
async def server(handler: Handler) -> AsyncIterator[str]:
    """A one-route HTTP server on 127.0.0.1; yields its URL."""
    app = web.Application()
    app.router.add_post("/in", handler)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    try:
        yield f"http://127.0.0.1:{runner.addresses[0][1]}/in"
    finally:
        await runner.cleanup()


@asynccontextmanager
async def adapter(url: str, **config: object) -> AsyncIterator[XoevHttpPortal]:
    portal = XoevHttpPortal(PortalHttpConfig.model_validate({"url": url, **config}))
    try:
        yield portal
    finally:
        await portal.aclose()


@pytest.fixture
async def sim() -> AsyncIterator[RunningPortal]:
    async with started(SimConfig(port=0)) as running:
        yield running


async def test_request_carries_content_type_idempotency_key_and_traceparent() -> None:
    seen: list[web.Request] = []
    bodies: list[bytes] = []

    async def capture(request: web.Request) -> web.Response:
        seen.append(request)
        bodies.append(await request.read())
        return web.Response(status=204)

    message = statusmeldung(traceparent="00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01")
    async with server(capture) as url, adapter(url, receipt="http_2xx") as portal:
        receipt = await portal.send(message)
    headers = seen[0].headers
    assert headers["Content-Type"] == "application/xml"
    assert headers["Idempotency-Key"] == message.nachrichten_uuid
    assert headers["traceparent"] == message.traceparent
    assert "Authorization" not in headers
    assert bodies == [message.xml]
    assert (receipt.status_code, receipt.duplicate, receipt.portal_receipt_id) == (204, False, None)


async def test_no_traceparent_header_without_trace_context() -> None:
    seen: list[web.Request] = []

    async def capture(request: web.Request) -> web.Response:
        seen.append(request)
        return web.Response(status=200)

    async with server(capture) as url, adapter(url, receipt="http_2xx") as portal:
        await portal.send(statusmeldung())
    assert "traceparent" not in seen[0].headers


@pytest.mark.parametrize(
    "traceparent",
    [
        "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01\r\nX-Injected: 1",
        "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01\n",
        "00-" + "a" * 100_000,
        "00-0AF7651916CD43DD8448EB211C80319C-B7AD6B7169203331-01",
        "not a traceparent",
    ],
)
async def test_an_invalid_traceparent_never_reaches_the_request(traceparent: str) -> None:
    """The adapter's own last line: whatever the caller passes, no CR/LF or oversized header is sent."""
    seen: list[web.Request] = []

    async def capture(request: web.Request) -> web.Response:
        seen.append(request)
        return web.Response(status=200)

    async with server(capture) as url, adapter(url, receipt="http_2xx") as portal:
        receipt = await portal.send(statusmeldung(traceparent=traceparent))
    assert receipt.status_code == 200
    assert "traceparent" not in seen[0].headers
    assert "X-Injected" not in seen[0].headers


async def test_a_nachrichten_uuid_that_is_no_header_value_is_permanent_and_never_sent() -> None:
    seen: list[web.Request] = []

    async def capture(request: web.Request) -> web.Response:
        seen.append(request)
        return web.Response(status=200)

    message = statusmeldung()
    broken = type(message)("uuid\r\nX-Injected: 1", message.vorgang_key, message.xml)
    async with server(capture) as url, adapter(url) as portal:
        with pytest.raises(PermanentDeliveryError) as caught:
            await portal.send(broken)
    assert caught.value.reason is Reason.PORTAL_CLIENT_ERROR
    assert seen == []


async def test_quittung_gives_receipt_id_and_the_portals_eingang(sim: RunningPortal) -> None:
    message = statusmeldung()
    async with adapter(sim.nachrichten_url) as portal:
        receipt = await portal.send(message)
    row = await sim.portal.store.nachricht(message.nachrichten_uuid)
    assert row is not None
    assert receipt.portal_receipt_id == row.receipt_id
    assert receipt.received_at.isoformat(timespec="milliseconds") == row.first_received_at


@pytest.mark.parametrize(
    ("faults", "reason", "retry_after"),
    [
        (FaultSpec(outage_until_cleared=True, retry_after_s=12), Reason.PORTAL_UNAVAILABLE, 12.0),
        (FaultSpec(error_rate=1.0, error_status=500), Reason.PORTAL_UNAVAILABLE, None),
        (FaultSpec(throttle_rate=1.0, retry_after_s=3), Reason.PORTAL_THROTTLED, 3.0),
        (FaultSpec(throttle_rate=1.0, retry_after_s=9999), Reason.PORTAL_THROTTLED, 300.0),
        (FaultSpec(drop_rate=1.0), Reason.PORTAL_CONNECTION, None),
    ],
)
async def test_portal_faults_are_transient(
    sim: RunningPortal, faults: FaultSpec, reason: Reason, retry_after: float | None
) -> None:
    sim.portal.faults.update(faults.model_dump())
    message = statusmeldung()
    async with adapter(sim.nachrichten_url) as portal:
        with pytest.raises(TransientDeliveryError) as caught:
            await portal.send(message)
    assert caught.value.reason is reason
    assert caught.value.retry_after == retry_after
    assert await sim.portal.store.nachricht(message.nachrichten_uuid) is None


async def test_retry_after_as_http_date_becomes_seconds(sim: RunningPortal) -> None:
    sim.portal.faults.update({"throttle_rate": 1.0, "retry_after_s": 120, "retry_after_format": "http-date"})
    async with adapter(sim.nachrichten_url) as portal:
        with pytest.raises(TransientDeliveryError) as caught:
            await portal.send(statusmeldung())
    assert caught.value.retry_after is not None
    assert 117 <= caught.value.retry_after <= 120  # whole seconds in the date, plus the time the call took


async def test_slow_portal_is_a_timeout(sim: RunningPortal) -> None:
    sim.portal.faults.update({"latency_min_ms": 1000, "latency_max_ms": 1000})
    async with adapter(sim.nachrichten_url, timeouts=PortalTimeouts(total_s=0.2)) as portal:
        with pytest.raises(TransientDeliveryError) as caught:
            await portal.send(statusmeldung())
    assert caught.value.reason is Reason.PORTAL_TIMEOUT


async def test_nobody_listening_is_a_connection_error() -> None:
    async with adapter(f"http://127.0.0.1:{free_port()}/in") as portal:
        with pytest.raises(TransientDeliveryError) as caught:
            await portal.send(statusmeldung())
    assert caught.value.reason is Reason.PORTAL_CONNECTION


@pytest.mark.parametrize(
    ("mutate", "code"),
    [
        (lambda xml: xml.replace(b"<leistung>", b"<leistung>x"), "X001"),  # breaks the Leistungsschlüssel pattern
        (lambda xml: xml.replace(b"<code>200</code>", b"<code>999</code>"), "S011"),  # valid shape, not in the list
        (lambda xml: b'<!DOCTYPE x [<!ENTITY a "b">]>' + xml.split(b"?>", 1)[1], "X000"),
        (lambda xml: xml[:-20], "X000"),  # not well-formed
        (lambda xml: xml.replace(b"</nachrichtenkopf.g2g>", b"</nachrichtenkopf.g2g>" + b" " * 300_000), "AS105"),
    ],
)
async def test_messages_the_portal_cannot_take_are_permanent_with_its_code(
    sim: RunningPortal, mutate: Callable[[bytes], bytes], code: str
) -> None:
    message = statusmeldung(status="200")
    broken = type(message)(message.nachrichten_uuid, message.vorgang_key, mutate(message.xml))
    async with adapter(sim.nachrichten_url) as portal:
        with pytest.raises(PermanentDeliveryError) as caught:
            await portal.send(broken)
    assert caught.value.reason is Reason.PORTAL_REJECTED
    assert caught.value.portal_code == code
    assert sim.portal.counters["stored"] == 0


@pytest.mark.parametrize("status", [301, 302, 303, 307, 308])
async def test_redirects_are_not_followed_and_open_the_circuit(status: int) -> None:
    followed: list[web.Request] = []

    async def redirect(request: web.Request) -> web.Response:
        return web.Response(status=status, headers={"Location": str(request.url.with_path("/elsewhere"))})

    async def elsewhere(request: web.Request) -> web.Response:
        followed.append(request)
        return web.Response(status=200)

    app = web.Application()
    app.router.add_post("/in", redirect)
    app.router.add_route("*", "/elsewhere", elsewhere)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    try:
        async with adapter(f"http://127.0.0.1:{runner.addresses[0][1]}/in") as portal:
            with pytest.raises(TransientDeliveryError) as caught:
                await portal.send(statusmeldung())
    finally:
        await runner.cleanup()
    assert caught.value.reason is Reason.PORTAL_MISCONFIGURED
    assert followed == []


@pytest.mark.parametrize(
    ("status", "body", "content_type"),
    [
        (200, "<html><body>Bitte melden Sie sich an</body></html>", "text/html"),
        (200, "", "application/xml"),
        (204, "", "application/xml"),
        (202, "<ok/>", "application/xml"),
        (409, "<html>already there</html>", "text/html"),
        (404, "<html>Not Found</html>", "text/html"),
        (405, "", "text/plain"),
    ],
)
async def test_answers_that_prove_nothing_are_a_misconfiguration(status: int, body: str, content_type: str) -> None:
    async def answer(request: web.Request) -> web.Response:
        return web.Response(status=status, text=body, content_type=content_type)

    async with server(answer) as url, adapter(url) as portal:
        with pytest.raises(TransientDeliveryError) as caught:
            await portal.send(statusmeldung())
    assert caught.value.reason is Reason.PORTAL_MISCONFIGURED


@pytest.mark.parametrize("status", [200, 409])
async def test_a_quittung_about_another_message_is_a_misconfiguration(status: int) -> None:
    other = statusmeldung()

    async def answer(request: web.Request) -> web.Response:
        return Answers().quittung(other.nachrichten_uuid, "Q-other", datetime.now(UTC), status=status)

    async with server(answer) as url, adapter(url) as portal:
        with pytest.raises(TransientDeliveryError) as caught:
            await portal.send(statusmeldung())
    assert caught.value.reason is Reason.PORTAL_MISCONFIGURED


async def test_a_quittung_about_this_message_is_delivered_with_its_id() -> None:
    async def answer(request: web.Request) -> web.Response:
        uuid = request.headers["Idempotency-Key"]
        return Answers().quittung(uuid, "Q-mine", datetime(2026, 3, 1, 12, tzinfo=UTC))

    async with server(answer) as url, adapter(url) as portal:
        receipt = await portal.send(statusmeldung())
    assert (receipt.portal_receipt_id, receipt.duplicate) == ("Q-mine", False)


@pytest.mark.parametrize(("status", "reason"), [(200, Reason.PORTAL_MISCONFIGURED), (400, None)])
async def test_oversized_answers_are_not_parsed_and_prove_nothing(status: int, reason: Reason | None) -> None:
    async def huge(request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse(status=status)
        await response.prepare(request)
        for _ in range(64):
            await response.write(b"<" + b"x" * 16 * 1024)
        await response.write_eof()
        return response

    async with server(huge) as url, adapter(url, max_response_bytes=64 * 1024) as portal:
        if reason is not None:
            with pytest.raises(TransientDeliveryError) as transient:
                await portal.send(statusmeldung())
            assert transient.value.reason is reason
        else:
            with pytest.raises(PermanentDeliveryError) as caught:
                await portal.send(statusmeldung())
            assert caught.value.reason is Reason.PORTAL_CLIENT_ERROR


async def test_pool_limit_and_timeouts_reach_the_session() -> None:
    timeouts = PortalTimeouts(connect_s=1.5, total_s=4.0)
    async with adapter("http://127.0.0.1:9/in", max_connections=3, timeouts=timeouts) as portal:
        session = portal._http()
        assert session.connector is not None
        assert session.connector.limit == 3
        assert (session.timeout.sock_connect, session.timeout.total) == (1.5, 4.0)


def test_unreadable_tls_files_stop_the_adapter_at_construction(tmp_path: Path) -> None:
    config = PortalHttpConfig.model_validate(
        {"url": "https://portal.example/in", "tls": PortalTls(ca_bundle=tmp_path / "missing.pem")}
    )
    with pytest.raises(ConfigError):
        XoevHttpPortal(config)


async def test_a_second_401_after_the_refresh_is_final() -> None:
    """The request is repeated once with a fresh token, never more: a portal that refuses every token is an
    authorisation problem for the circuit breaker, not a loop."""
    calls = {"token": 0, "post": 0}

    async def token(request: web.Request) -> web.Response:
        calls["token"] += 1
        return web.json_response({"access_token": f"t{calls['token']}", "token_type": "Bearer", "expires_in": 300})

    async def refuse(request: web.Request) -> web.Response:
        calls["post"] += 1
        return web.Response(status=401)

    app = web.Application()
    app.router.add_post("/token", token)
    app.router.add_post("/in", refuse)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    base = f"http://127.0.0.1:{runner.addresses[0][1]}"
    oauth2 = {"token_url": f"{base}/token", "client_id": "rk", "client_secret": "x"}
    try:
        async with adapter(f"{base}/in", auth="oauth2", oauth2=oauth2) as portal:
            with pytest.raises(TransientDeliveryError) as caught:
                await portal.send(statusmeldung())
    finally:
        await runner.cleanup()
    assert caught.value.reason is Reason.PORTAL_UNAUTHORIZED
    assert calls == {"token": 2, "post": 2}


async def test_receipt_rule_http_2xx_takes_a_bare_2xx_as_delivered() -> None:
    async def bare(request: web.Request) -> web.Response:
        return web.Response(status=200)

    async with server(bare) as url, adapter(url, receipt="http_2xx") as portal:
        receipt = await portal.send(statusmeldung())
    assert (receipt.duplicate, receipt.portal_receipt_id, receipt.status_code) == (False, None, 200)


async def test_a_token_with_a_line_break_never_becomes_a_header() -> None:
    posts: list[web.Request] = []

    async def token(request: web.Request) -> web.Response:
        return web.json_response({"access_token": "abc\r\nX-Injected: 1", "token_type": "Bearer", "expires_in": 300})

    async def capture(request: web.Request) -> web.Response:
        posts.append(request)
        return web.Response(status=200)

    app = web.Application()
    app.router.add_post("/token", token)
    app.router.add_post("/in", capture)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    base = f"http://127.0.0.1:{runner.addresses[0][1]}"
    oauth2 = {"token_url": f"{base}/token", "client_id": "rk", "client_secret": "x"}
    try:
        async with adapter(f"{base}/in", auth="oauth2", oauth2=oauth2) as portal:
            with pytest.raises(TransientDeliveryError):
                await portal.send(statusmeldung())
    finally:
        await runner.cleanup()
    assert posts == []
