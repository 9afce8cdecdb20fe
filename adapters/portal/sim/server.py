"""Running the reference portal: in-process for tests (:func:`started`), or as ``rueckkanal portal-sim`` (:func:`run`).

It says ``{"event": "portal-sim ready", "port": ...}`` in one log line once it accepts connections, so that a
test or a script waits for that line instead of sleeping; ``--port 0`` picks a free port and the line tells which.
"""

from __future__ import annotations

import asyncio
import signal
import ssl
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass

import structlog
from aiohttp import web

from adapters.portal.sim import admin, status_page, zbp, zbp_views
from adapters.portal.sim.app import PORTAL_KEY, Portal
from adapters.portal.sim.config import NACHRICHTEN_PATH, TOKEN_PATH, SimConfig, SimMode, TlsServer
from adapters.portal.sim.store import SimStore

log = structlog.get_logger("rueckkanal.portal_sim")


@dataclass(frozen=True)
class RunningPortal:
    portal: Portal
    port: int
    base_url: str

    @property
    def nachrichten_url(self) -> str:
        return self.base_url + NACHRICHTEN_PATH

    @property
    def zbp_status_url(self) -> str:
        return self.base_url + zbp.STATUS_PATH

    @property
    def zbp_message_url(self) -> str:
        return self.base_url + zbp.MESSAGE_PATH

    @property
    def token_url(self) -> str:
        return self.base_url + TOKEN_PATH


def create_app(portal: Portal) -> web.Application:
    """The aiohttp application of one portal: receiving, token endpoint, admin, queries and status page."""
    app = web.Application(client_max_size=portal.config.max_body_bytes)
    app[PORTAL_KEY] = portal
    if portal.config.mode is SimMode.ZBP:
        app.router.add_post(zbp.STATUS_PATH, portal.receive_zbp_status)
        app.router.add_post(zbp.MESSAGE_PATH, portal.receive_zbp_message)
        zbp_views.add_routes(app)
    else:
        app.router.add_post(NACHRICHTEN_PATH, portal.receive)
    if portal.tokens is not None:
        app.router.add_post(TOKEN_PATH, portal.token)
    admin.add_routes(app)
    status_page.add_routes(app)
    return app


def server_ssl_context(tls: TlsServer | None) -> ssl.SSLContext | None:
    if tls is None:
        return None
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(str(tls.cert), str(tls.key) if tls.key else None)
    if tls.client_ca is not None:
        context.verify_mode = ssl.CERT_REQUIRED
        context.load_verify_locations(cafile=str(tls.client_ca))
    return context


@asynccontextmanager
async def started(config: SimConfig) -> AsyncIterator[RunningPortal]:
    """The portal listening on ``config.host:config.port`` until the block ends; the store is closed after."""
    store = SimStore(config.db if config.db is not None else ":memory:")
    portal = Portal(config, store)
    runner = web.AppRunner(create_app(portal), access_log=None, handle_signals=False)  # paths carry Vorgang ids
    try:
        await runner.setup()
        site = web.TCPSite(runner, config.host, config.port, ssl_context=server_ssl_context(config.tls))
        await site.start()
        port = int(runner.addresses[0][1])
        scheme = "https" if config.tls is not None else "http"
        host = f"[{config.host}]" if ":" in config.host else config.host
        yield RunningPortal(portal, port, f"{scheme}://{host}:{port}")
    finally:
        await runner.cleanup()
        await store.close()


async def serve(config: SimConfig, stop: asyncio.Event) -> None:
    async with started(config) as running:
        log.info(
            "portal-sim ready",
            host=config.host,
            port=running.port,
            url=running.zbp_status_url if config.mode is SimMode.ZBP else running.nachrichten_url,
            mode=config.mode.value,
            persistent=config.db is not None,
            duplicates=config.duplicates.value,
            oauth2=config.oauth2 is not None,
            tls=config.tls is not None,
            mtls=config.tls is not None and config.tls.client_ca is not None,
            faults=running.portal.faults.view(),
        )
        await stop.wait()
        log.info("portal-sim stopping", counters=dict(running.portal.counters))
    log.info("portal-sim stopped")


def run(config: SimConfig) -> None:
    """Serve until SIGTERM or SIGINT, then close connections and the database cleanly (exit code 0)."""

    async def main() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        await serve(config, stop)

    asyncio.run(main())
