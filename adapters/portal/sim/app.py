"""The reference portal's receiving side: ``POST /rueckkanal/v1/nachrichten``, one Statusmeldung 0100 per request.

In order, each step able to end the request (nothing is stored unless every step passes):

==========================================  ===========================================================
step                                        answer when it ends the request
==========================================  ===========================================================
fault injection (see faults.py)             dropped connection, 503 (Retry-After), 429 (Retry-After), 5xx,
                                            3xx with Location, 404, 200 with an HTML page
OAuth2 bearer check, if configured          401 ``{"error": "invalid_token"}``
Content-Type application/xml or text/xml    415
body size limit                             413 + Rückweisung X005
safe parse, 0100 root, XSD, code lists      400 + Rückweisung X004 (unreadable), X001 (schema), X002 (code)
reject rule on the vorgangsID               422 + Rückweisung ``reject_code`` (default S011)
store: new nachrichtenUUID                  200 + Quittung 0190 (quittungsID = portal receipt id)
store: known nachrichtenUUID                409 + the original Quittung, or 200 + Rückweisung S100
==========================================  ===========================================================

Store-then-hang and slow body change only how the answer above leaves: not at all (the connection is held until
the client gives up or ``hang_s`` passes, then closed), or in small delayed pieces.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from datetime import datetime

import structlog
from aiohttp import web

from adapters.portal.sim import zbp
from adapters.portal.sim.answers import Answers
from adapters.portal.sim.config import DuplicateAnswer, SimConfig
from adapters.portal.sim.faults import Faults, TokenFault, Verdict
from adapters.portal.sim.inbound import Refused, bezug_for, read_statusmeldung
from adapters.portal.sim.oauth import TokenIssuer, unauthorised
from adapters.portal.sim.store import Incoming, SimStore

log = structlog.get_logger("rueckkanal.portal_sim")

_XML_TYPES = {"application/xml", "text/xml"}


class Portal:
    """The portal's state (store, faults, tokens, counters) and its receiving handler."""

    def __init__(self, config: SimConfig, store: SimStore, faults: Faults | None = None) -> None:
        self.config = config
        self.store = store
        self.faults = faults or Faults(config.faults)
        self.tokens = (
            TokenIssuer(config.oauth2.client_id, config.oauth2.client_secret, ttl_s=config.oauth2.token_ttl_s)
            if config.oauth2 is not None
            else None
        )
        self.answers = Answers()
        self.counters: Counter[str] = Counter()
        self.zbp_store = zbp.ZbpStore()
        self.zbp_rules = (
            zbp.ZbpRules(config.zbp.ca.read_bytes(), config.zbp.required_role, config.zbp.leeway_s)
            if config.zbp is not None
            else None
        )

    async def receive(self, request: web.Request) -> web.StreamResponse:
        verdict, early = await self._before_reading(request)
        if early is not None:
            return early
        return await self._deliver_answer(request, verdict, await self._message(request))

    async def receive_zbp_status(self, request: web.Request) -> web.StreamResponse:
        verdict, early = await self._before_reading(request)
        if early is not None:
            return early
        return await self._deliver_answer(request, verdict, await self._zbp(request, "status"))

    async def receive_zbp_message(self, request: web.Request) -> web.StreamResponse:
        verdict, early = await self._before_reading(request)
        if early is not None:
            return early
        return await self._deliver_answer(request, verdict, await self._zbp(request, "message"))

    async def _zbp(self, request: web.Request, kind: str) -> web.StreamResponse:
        """A status_v6 or message_v6 envelope, checked as adapters/portal/sim/zbp.py describes."""
        if self.zbp_rules is None:
            return self._count("refused", web.Response(status=404))
        if request.content_type != "application/json":
            return self._count("unsupported_media_type", web.Response(status=415, text="application/json expected"))
        try:
            body = await request.read()
        except web.HTTPRequestEntityTooLarge:
            return self._count("refused", zbp.Refusal(413, "too_large", "envelope too large").response())
        try:
            payload, signer = zbp.verify_envelope(body, self.zbp_rules, now=time.time())
            if kind == "status":
                subject = zbp.check_status(payload, self.zbp_rules)
            else:
                zbp.check_message(payload, self.zbp_rules)
                subject = str(payload.get("applicationId", ""))
        except zbp.Refusal as refusal:
            log.info("zbp envelope refused", kind=kind, code=refusal.code, status=refusal.status)
            outcome = "unauthorised" if refusal.status in (401, 403) else "refused"
            self.counters[f"zbp_{refusal.code}"] += 1  # /admin/stats names each rule that refused
            return self._count(outcome, refusal.response())
        rule_code = self.faults.rejection(subject) if subject else None
        if rule_code is not None:
            return self._count("rejected", zbp.Refusal(422, rule_code, "Testregel").response())
        key = request.headers.get("Idempotency-Key") or zbp.content_key(body)
        stored, duplicate = self.zbp_store.record(key, kind, payload, signer)
        if duplicate:
            return self._count("duplicate", web.json_response({"id": stored.receipt_id, "duplicate": True}, status=409))
        return self._count("stored", web.json_response({"id": stored.receipt_id}, status=201))

    async def _before_reading(self, request: web.Request) -> tuple[Verdict, web.StreamResponse | None]:
        """The request's faults, and its answer if the faults or the OAuth2 check end it before the body is read."""
        self.counters["requests"] += 1
        verdict = self.faults.decide()
        if verdict.delay_s > 0:
            await asyncio.sleep(verdict.delay_s)  # the simulated latency itself
        if verdict.fault is not None:
            self.counters[verdict.fault] += 1
        if verdict.drop:
            _drop_connection(request)
            return verdict, web.Response(status=500)  # never reaches the client: the transport is gone
        if verdict.html:
            return verdict, web.Response(status=200, text=_PROXY_PAGE, content_type="text/html")
        if verdict.status is not None:
            headers = {"Retry-After": verdict.retry_after} if verdict.retry_after else {}
            if verdict.location is not None:
                headers["Location"] = verdict.location
            return verdict, web.Response(status=verdict.status, text=f"portal-sim: {verdict.fault}", headers=headers)
        if self.tokens is not None and not self.tokens.authorised(request):
            return verdict, self._count("unauthorised", unauthorised())
        return verdict, None

    async def token(self, request: web.Request) -> web.Response:
        """The OAuth2 token endpoint, flapping as the faults say (``token_error_rate``)."""
        if self.tokens is None:
            raise web.HTTPNotFound()
        fault = self.faults.token_fault()
        if fault is None:
            return await self.tokens.token_endpoint(request)
        self.counters["token_error"] += 1
        if fault is TokenFault.SERVER_ERROR:
            return web.Response(status=503 if self.counters["token_error"] % 2 else 500, text="portal-sim: token")
        if fault is TokenFault.HTML:
            return web.Response(status=200, text=_PROXY_PAGE, content_type="text/html")
        if fault is TokenFault.TRUNCATED:
            return web.Response(status=200, text='{"access_token": "tr', content_type="application/json")
        return web.json_response({"token_type": "Bearer", "expires_in": 300})

    async def _deliver_answer(
        self, request: web.Request, verdict: Verdict, answer: web.StreamResponse
    ) -> web.StreamResponse:
        if verdict.hang:
            await self._hang(request)
            return answer  # never reaches the client: the transport is gone
        if verdict.slow_body and isinstance(answer, web.Response) and isinstance(answer.body, bytes):
            return await self._slowly(request, answer, answer.body)
        return answer

    async def _hang(self, request: web.Request) -> None:
        """Hold the connection without a byte of answer until the client gives up or ``hang_s`` has passed."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.faults.spec.hang_s
        while loop.time() < deadline:
            transport = request.transport
            if transport is None or transport.is_closing():
                return
            await asyncio.sleep(0.05)  # the simulated hang itself, checking for the client's hang-up
        _drop_connection(request)

    async def _slowly(self, request: web.Request, answer: web.Response, body: bytes) -> web.StreamResponse:
        spec = self.faults.spec
        stream = web.StreamResponse(status=answer.status)
        stream.content_type = answer.content_type
        stream.content_length = len(body)
        await stream.prepare(request)
        for start in range(0, len(body), spec.slow_body_chunk_bytes):
            await asyncio.sleep(spec.slow_body_delay_ms / 1000)  # the simulated slow link
            await stream.write(body[start : start + spec.slow_body_chunk_bytes])
        await stream.write_eof()
        return stream

    async def _message(self, request: web.Request) -> web.StreamResponse:
        idempotency_key = request.headers.get("Idempotency-Key")
        if request.content_type not in _XML_TYPES:
            return self._count("unsupported_media_type", web.Response(status=415, text="application/xml expected"))
        try:
            body = await request.read()
        except web.HTTPRequestEntityTooLarge:
            bezug = bezug_for(None, idempotency_key, b"")
            answer = self.answers.rueckweisung(bezug, "AS105", "Nachricht zu groß", status=413)
            return self._count("refused", answer)
        incoming = read_statusmeldung(body, max_bytes=self.config.max_body_bytes, idempotency_key=idempotency_key)
        if isinstance(incoming, Refused):
            answer = self.answers.rueckweisung(incoming.bezug_uuid, incoming.code, incoming.text, status=400)
            return self._count("refused", answer)
        rule_code = self.faults.rejection(incoming.vorgangs_id)
        if rule_code is not None:
            answer = self.answers.rueckweisung(incoming.nachrichten_uuid, rule_code, "Testregel", status=422)
            return self._count("rejected", answer)
        return await self._store(incoming)

    async def _store(self, incoming: Incoming) -> web.StreamResponse:
        stored = await self.store.record(incoming)
        eingang = datetime.fromisoformat(stored.first_received_at)
        uuid = incoming.nachrichten_uuid
        if stored.unknown_target:
            answer = self.answers.rueckweisung(uuid, "AS104", "Berichtigte Nachricht unbekannt", status=422)
            return self._count("rejected", answer)
        if not stored.duplicate:
            return self._count("stored", self.answers.quittung(uuid, stored.receipt_id, eingang))
        if self.config.duplicates is DuplicateAnswer.S100:
            answer = self.answers.rueckweisung(uuid, "S100", "Nachricht bereits verarbeitet", status=200)
        else:
            answer = self.answers.quittung(uuid, stored.receipt_id, eingang, status=409)
        return self._count("duplicate", answer)

    def _count(self, outcome: str, response: web.StreamResponse) -> web.StreamResponse:
        self.counters[outcome] += 1
        log.debug("nachricht answered", outcome=outcome, status=response.status)
        return response


def _drop_connection(request: web.Request) -> None:
    transport = request.transport
    if transport is not None:
        transport.abort()


_PROXY_PAGE = (
    "<!DOCTYPE html><html><head><title>Anmeldung erforderlich</title></head>"
    "<body><h1>Bitte melden Sie sich an</h1><p>Dieser Dienst ist nur über das Behördennetz erreichbar.</p>"
    "</body></html>"
)

PORTAL_KEY = web.AppKey("portal", Portal)
