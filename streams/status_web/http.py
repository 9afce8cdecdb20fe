"""The two HTTP servers of status-web (aiohttp).

**Public** (``status_web.port``, behind the ingress): the pages of a tracking link (``/s/<token>``, ``…/zahlung``,
``…/widerspruch``, ``…/girocode.svg``, ``…/zahlung.ics``), the accessibility statement, the stylesheet. Every answer
carries ``Cache-Control: no-store`` (static files excepted), ``Referrer-Policy: no-referrer``,
``X-Robots-Tag: noindex, nofollow``, ``X-Content-Type-Options: nosniff`` and a Content-Security-Policy that allows
nothing but this origin's stylesheet and images: no script, no frame, no form, no third party. An unknown, expired
or revoked token and an unknown path get the same 404 answer, byte for byte (:data:`NOT_FOUND` is built once).
Every client (its address, or the address ``trusted_proxies`` hops back in X-Forwarded-For) is rate-limited: 429
with Retry-After. A page that cannot be built (the database fails, or does not answer within
``status_web.page_deadline_s``) is a 503 page with Retry-After, the same for every link, never a stack trace.

**Internal** (``status_web.internal_port``, cluster only): ``/metrics``, ``/healthz``, ``/readyz``, and the link
API for Fachverfahren (bearer token ``status_web.api_token``, compared in constant time): ``POST /api/v1/links``
mints a link for a Vorgang and answers its URL with the QR code as SVG and PNG; ``POST /api/v1/links/revoke``
revokes one link or every link of a Vorgang.
"""

from __future__ import annotations

import asyncio
import base64
import hmac
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import replace
from datetime import UTC, datetime
from importlib.resources import files

import segno.helpers
import structlog
from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from rueckkanal.epc import Transfer
from rueckkanal.errors import ConfigError
from rueckkanal.tracking import StoredStatus, timeline
from streams.logs import vorgang_ref, where
from streams.status_web import html
from streams.status_web.estimate import Estimates, estimate_text
from streams.status_web.links import Links
from streams.status_web.metrics import StatusWebMetrics
from streams.status_web.page import StatusPage, WiderspruchConfig, build_page
from streams.status_web.ratelimit import RateLimiter, retry_after_header
from streams.status_web.texts import Lang

log = structlog.get_logger("rueckkanal.status_web")

STATIC_DIR = files("streams.status_web") / "static"  # package data
CSP = (
    "default-src 'none'; style-src 'self'; img-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
)
PRIVATE_HEADERS = {
    "Cache-Control": "no-store",
    "Referrer-Policy": "no-referrer",
    "X-Robots-Tag": "noindex, nofollow",
    "X-Content-Type-Options": "nosniff",
    "Content-Security-Policy": CSP,
    "Cross-Origin-Opener-Policy": "same-origin",
    "Cross-Origin-Resource-Policy": "same-origin",
    "Permissions-Policy": "camera=(), microphone=(), geolocation=(), interest-cohort=()",
}
HTML = "text/html; charset=utf-8"
UNAVAILABLE_RETRY_AFTER_S = 60  # a page that could not be built: when to ask again

LeistungNames = Callable[[str, str, Lang], str | None]


class StatusSite:
    """Everything the public pages need; built once per process."""

    def __init__(
        self,
        *,
        links: Links,
        metrics: StatusWebMetrics,
        limiter: RateLimiter,
        leistung_name: LeistungNames,
        widerspruch: Mapping[str, WiderspruchConfig],
        default_widerspruch: WiderspruchConfig,
        city: str,
        accessibility: Mapping[str, object],
        trusted_proxies: int = 0,
        clock: Callable[[], float] = time.monotonic,
        estimates: Estimates | None = None,
        page_deadline_s: float,
    ) -> None:
        self.estimates = estimates
        self.page_deadline_s = page_deadline_s
        self.links = links
        self.metrics = metrics
        self.limiter = limiter
        self.leistung_name = leistung_name
        self.widerspruch = dict(widerspruch)
        self.default_widerspruch = default_widerspruch
        self.layout = html.Layout(city, "/static/status.css")
        self.accessibility = dict(accessibility)
        self.trusted_proxies = trusted_proxies
        self.clock = clock
        self.not_found_body = html.not_found_page(self.layout).encode()
        self.too_many_body = html.too_many_page(self.layout).encode()
        self.unavailable_body = html.unavailable_page(self.layout).encode()
        self.static = {
            "status.css": ((STATIC_DIR / "status.css").read_bytes(), "text/css; charset=utf-8"),
            "favicon.svg": ((STATIC_DIR / "favicon.svg").read_bytes(), "image/svg+xml"),
        }

    # -- answers ---------------------------------------------------------------------------------------------

    def not_found(self) -> web.Response:
        self.metrics.not_found.inc()
        return web.Response(status=404, body=self.not_found_body, content_type="text/html", charset="utf-8")

    def unavailable(self, error: Exception) -> web.Response:
        """503 with a page that asks to come back later; logged with the error's class and place, never its text
        (a database error can quote the values of the query)."""
        self.metrics.unavailable.inc()
        log.warning("status page not answered", error=type(error).__name__, where=where(error))
        return web.Response(
            status=503,
            body=self.unavailable_body,
            content_type="text/html",
            charset="utf-8",
            headers={"Retry-After": str(UNAVAILABLE_RETRY_AFTER_S)},
        )

    def client_of(self, request: web.Request) -> str:
        if self.trusted_proxies:
            forwarded = [part.strip() for part in request.headers.get("X-Forwarded-For", "").split(",") if part.strip()]
            if len(forwarded) >= self.trusted_proxies:
                return forwarded[-self.trusted_proxies]
        return request.remote or "unknown"

    async def page_for(self, request: web.Request) -> tuple[StatusPage, str, list[StoredStatus]] | None:
        token = request.match_info["token"]
        vorgang_key = await self.links.resolve(token)
        if vorgang_key is None:
            return None
        statuses = await self.links.store.statuses(vorgang_key)
        lang = Lang.EN if request.query.get("lang") == "en" else Lang.DE
        page = build_page(statuses, lang, self.leistung_name, self.widerspruch, self.default_widerspruch)
        if self.estimates is not None:
            found = await self.estimates.for_timeline(timeline(statuses))
            if found is not None:
                page = replace(page, estimate=estimate_text(found, lang))
        return page, f"/s/{token}", statuses

    # -- handlers --------------------------------------------------------------------------------------------

    async def status(self, request: web.Request) -> web.StreamResponse:
        found = await self.page_for(request)
        if found is None:
            return self.not_found()
        page, base, _ = found
        self.metrics.views.labels("status").inc()
        return web.Response(text=html.status_page(self.layout, page, base), content_type="text/html")

    async def zahlung(self, request: web.Request) -> web.StreamResponse:
        found = await self.page_for(request)
        if found is None or found[0].payment is None:
            return self.not_found()
        page, base, _ = found
        if page.payment is None:
            return self.not_found()
        self.metrics.views.labels("zahlung").inc()
        body = html.payment_page(self.layout, page, page.payment, page.transfer, base)
        return web.Response(text=body, content_type="text/html")

    async def widerspruch_view(self, request: web.Request) -> web.StreamResponse:
        found = await self.page_for(request)
        if found is None or found[0].widerspruch is None:
            return self.not_found()
        page, base, _ = found
        self.metrics.views.labels("widerspruch").inc()
        return web.Response(text=html.widerspruch_page(self.layout, page, base), content_type="text/html")

    async def girocode(self, request: web.Request) -> web.StreamResponse:
        found = await self.page_for(request)
        if found is None or found[0].transfer is None:
            return self.not_found()
        self.metrics.views.labels("girocode").inc()
        return web.Response(body=girocode_svg(found[0].transfer), content_type="image/svg+xml")

    async def ics(self, request: web.Request) -> web.StreamResponse:
        found = await self.page_for(request)
        if found is None or found[0].payment is None or found[0].payment.faelligkeit is None:
            return self.not_found()
        page, base, statuses = found
        if page.payment is None or page.payment.faelligkeit is None:
            return self.not_found()
        self.metrics.views.labels("ics").inc()
        title = page.leistung or "Antrag"
        url = f"{self.links.base_url}{base}/zahlung"
        uid = f"{vorgang_ref(statuses[-1].vorgang_key)}-{page.payment.faelligkeit.isoformat()}@status-web"
        body = html.ics_for(page.payment, title, url, uid, datetime.now(UTC))
        return web.Response(
            body=body,
            content_type="text/calendar",
            charset="utf-8",
            headers={"Content-Disposition": 'attachment; filename="zahlung-faellig.ics"'},
        )

    async def barrierefreiheit(self, request: web.Request) -> web.StreamResponse:
        lang = Lang.EN if request.query.get("lang") == "en" else Lang.DE
        self.metrics.views.labels("barrierefreiheit").inc()
        a = self.accessibility
        body = html.accessibility_page(
            self.layout,
            lang,
            contact_email=str(a["contact_email"]),
            contact_phone=a.get("contact_phone"),  # type: ignore[arg-type]
            statement_date=a["statement_date"],  # type: ignore[arg-type]
            enforcement_url=str(a["enforcement_url"]),
            enforcement_name=str(a["enforcement_name"]),
        )
        return web.Response(text=body, content_type="text/html")

    async def static_file(self, request: web.Request) -> web.StreamResponse:
        found = self.static.get(request.match_info["name"])
        if found is None:
            return self.not_found()
        body, content_type = found
        return web.Response(body=body, headers={"Content-Type": content_type, "Cache-Control": "public, max-age=3600"})

    async def unknown(self, request: web.Request) -> web.StreamResponse:
        return self.not_found()

    # -- middleware ------------------------------------------------------------------------------------------

    @web.middleware
    async def guard(
        self, request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
    ) -> web.StreamResponse:
        started = time.perf_counter()
        if request.method not in ("GET", "HEAD"):
            response: web.StreamResponse = web.Response(status=405, headers={"Allow": "GET, HEAD"})
        elif request.path.startswith("/static/"):
            response = await handler(request)
        else:
            wait = self.limiter.check(self.client_of(request), self.clock())
            if wait is not None:
                self.metrics.rate_limited.inc()
                response = web.Response(
                    status=429,
                    body=self.too_many_body,
                    content_type="text/html",
                    charset="utf-8",
                    headers={"Retry-After": retry_after_header(wait)},
                )
            else:
                try:
                    async with asyncio.timeout(self.page_deadline_s):  # a slow or locked database: 503, not a hang
                        response = await handler(request)
                except web.HTTPNotFound:
                    response = self.not_found()
                except web.HTTPException:
                    raise
                except Exception as error:  # the database did not answer (or a bug): never a stack trace page
                    response = self.unavailable(error)
        for name, value in PRIVATE_HEADERS.items():
            response.headers.setdefault(name, value)
        self.metrics.request_seconds.observe(time.perf_counter() - started)
        return response


def girocode(transfer: Transfer) -> segno.QRCode:
    """The EPC QR code of a transfer (segno; error correction M, version ≤ 13 as the standard requires)."""
    return segno.helpers.make_epc_qr(
        name=transfer.name,
        iban=transfer.iban,
        amount=transfer.amount,
        text=transfer.remittance,
        bic=transfer.bic,
        encoding="utf-8",  # character set 1, as Transfer.payload says
    )


def girocode_svg(transfer: Transfer) -> bytes:
    import io

    out = io.BytesIO()
    girocode(transfer).save(out, kind="svg", scale=4, border=4, xmldecl=False, title="GiroCode")
    return out.getvalue()


def public_app(site: StatusSite) -> web.Application:
    app = web.Application(middlewares=[site.guard], client_max_size=1024)
    app.router.add_get("/s/{token}", site.status)
    app.router.add_get("/s/{token}/zahlung", site.zahlung)
    app.router.add_get("/s/{token}/zahlung.ics", site.ics)
    app.router.add_get("/s/{token}/girocode.svg", site.girocode)
    app.router.add_get("/s/{token}/widerspruch", site.widerspruch_view)
    app.router.add_get("/barrierefreiheit", site.barrierefreiheit)
    app.router.add_get("/static/{name}", site.static_file)
    app.router.add_route("*", "/{tail:.*}", site.unknown)
    return app


# ---------------------------------------------------------------------------------------------- internal API


VorgangKeyOf = Callable[[str, str], str | None]  # (Fachverfahren name, Vorgang id) → Vorgang key


class InternalApi:
    def __init__(
        self,
        *,
        links: Links,
        metrics: StatusWebMetrics,
        api_token: str | None,
        vorgang_key_of: VorgangKeyOf,
        ready: Callable[[], bool],
        health: Callable[[], str | None] = lambda: None,
    ) -> None:
        self.links = links
        self.health = health
        self.metrics = metrics
        self._api_token = api_token.encode() if api_token else None
        self.vorgang_key_of = vorgang_key_of
        self.ready = ready

    def _authorised(self, request: web.Request) -> bool:
        if self._api_token is None:
            return False
        given = request.headers.get("Authorization", "")
        if not given.startswith("Bearer "):
            return False
        return hmac.compare_digest(given.removeprefix("Bearer ").encode(), self._api_token)

    async def _vorgang(self, request: web.Request) -> str | web.Response:
        if not self._authorised(request):
            return web.json_response({"error": "unauthorised"}, status=401, headers={"WWW-Authenticate": "Bearer"})
        try:
            body = await request.json()
            name, vorgang_id = body["fachverfahren"], body["vorgangId"]
        except (ValueError, KeyError, TypeError):
            return web.json_response({"error": "expected JSON with fachverfahren and vorgangId"}, status=400)
        if not isinstance(name, str) or not isinstance(vorgang_id, str):
            return web.json_response({"error": "fachverfahren and vorgangId must be strings"}, status=400)
        key = self.vorgang_key_of(name, vorgang_id)
        if key is None:
            return web.json_response({"error": "unknown fachverfahren or invalid vorgangId"}, status=422)
        return key

    async def mint(self, request: web.Request) -> web.Response:
        key = await self._vorgang(request)
        if isinstance(key, web.Response):
            return key
        link = await self.links.mint(key)
        self.metrics.tokens_minted.labels("api").inc()
        log.info("status-web link minted", channel="api", vorgang=vorgang_ref(key))
        return web.json_response(
            {
                "url": link.url,
                "qrSvg": link.qr_svg().decode(),
                "qrPng": base64.b64encode(link.qr_png()).decode(),
            },
            status=201,
            headers={"Cache-Control": "no-store"},
        )

    async def revoke(self, request: web.Request) -> web.Response:
        if not self._authorised(request):
            return web.json_response({"error": "unauthorised"}, status=401, headers={"WWW-Authenticate": "Bearer"})
        try:
            body = await request.json()
        except ValueError:
            return web.json_response({"error": "expected JSON"}, status=400)
        if isinstance(body, dict) and isinstance(body.get("url"), str):
            token = self.links.token_of(body["url"])
            revoked = token is not None and await self.links.revoke(token)
            return web.json_response({"revoked": 1 if revoked else 0})
        key = await self._vorgang(request)
        if isinstance(key, web.Response):
            return key
        count = await self.links.store.revoke_vorgang(key, datetime.now(UTC))
        return web.json_response({"revoked": count})

    async def metrics_view(self, request: web.Request) -> web.Response:
        return web.Response(body=generate_latest(self.metrics.registry), headers={"Content-Type": CONTENT_TYPE_LATEST})

    async def healthz(self, request: web.Request) -> web.Response:
        """503 when the process cannot go on by itself (its outbox reader stopped or stalled): a restart is the cure."""
        problem = self.health()
        if problem is not None:
            return web.json_response({"status": "failing", "problem": problem}, status=503)
        return web.json_response({"status": "ok"})

    async def readyz(self, request: web.Request) -> web.Response:
        ok = self.ready()
        return web.json_response({"ready": ok}, status=200 if ok else 503)


def internal_app(api: InternalApi) -> web.Application:
    app = web.Application(client_max_size=16 * 1024)
    app.router.add_post("/api/v1/links", api.mint)
    app.router.add_post("/api/v1/links/revoke", api.revoke)
    app.router.add_get("/metrics", api.metrics_view)
    app.router.add_get("/healthz", api.healthz)
    app.router.add_get("/readyz", api.readyz)
    return app


def pepper_bytes(secret: str | None) -> bytes:
    if not secret or len(secret) < 16:
        raise ConfigError(
            "status_web.token_pepper must be set, at least 16 characters, the same on every replica "
            "(file rk_status_web__token_pepper in RK_SECRETS_DIR)"
        )
    return secret.encode()
