"""The reference portal's receiving side: ``POST /rueckkanal/v1/nachrichten``, one Statusmeldung 0100 per request.

In order, each step able to end the request (nothing is stored unless every step passes):

==========================================  ===========================================================
step                                        answer when it ends the request
==========================================  ===========================================================
fault injection (see faults.py)             dropped connection, 503 (Retry-After), 429 (Retry-After), 5xx
OAuth2 bearer check, if configured          401 ``{"error": "invalid_token"}``
Content-Type application/xml or text/xml    415
body size limit                             413 + Rückweisung X005
safe parse, 0100 root, XSD, code lists      400 + Rückweisung X004 (unreadable), X001 (schema), X002 (code)
reject rule on the vorgangsID               422 + Rückweisung ``reject_code`` (default X002)
store: new nachrichtenUUID                  200 + Quittung 0190 (quittungsID = portal receipt id)
store: known nachrichtenUUID                409 + the original Quittung, or 200 + Rückweisung S100
==========================================  ===========================================================
"""

from __future__ import annotations

import asyncio
from collections import Counter
from datetime import datetime

import structlog
from aiohttp import web

from adapters.portal.sim.answers import Answers
from adapters.portal.sim.config import DuplicateAnswer, SimConfig
from adapters.portal.sim.faults import Faults
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

    async def receive(self, request: web.Request) -> web.StreamResponse:
        self.counters["requests"] += 1
        verdict = self.faults.decide()
        if verdict.delay_s > 0:
            await asyncio.sleep(verdict.delay_s)  # the simulated latency itself
        if verdict.fault is not None:
            self.counters[verdict.fault] += 1
        if verdict.drop:
            _drop_connection(request)
            return web.Response(status=500)  # never reaches the client: the transport is gone
        if verdict.status is not None:
            headers = {"Retry-After": verdict.retry_after} if verdict.retry_after else None
            return web.Response(status=verdict.status, text=f"portal-sim: {verdict.fault}", headers=headers)
        if self.tokens is not None and not self.tokens.authorised(request):
            return self._count("unauthorised", unauthorised())
        return await self._message(request)

    async def _message(self, request: web.Request) -> web.StreamResponse:
        idempotency_key = request.headers.get("Idempotency-Key")
        if request.content_type not in _XML_TYPES:
            return self._count("unsupported_media_type", web.Response(status=415, text="application/xml expected"))
        try:
            body = await request.read()
        except web.HTTPRequestEntityTooLarge:
            bezug = bezug_for(None, idempotency_key, b"")
            answer = self.answers.rueckweisung(bezug, "X005", "Nachricht zu groß", status=413)
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


PORTAL_KEY = web.AppKey("portal", Portal)
