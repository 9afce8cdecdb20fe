"""The in-memory twin of the ZBP for fast tests: the simulator's checks and store behind the adapter's transport seam.

``ZbpPortal(config, fachverfahren, sender_name=..., transport=InMemoryZbp(ca_pem))`` signs, sends and classifies
exactly as over HTTP, but the request goes to :meth:`InMemoryZbp.__call__`, which runs the same envelope and content
checks as ``rueckkanal portal-sim --mode zbp`` (adapters/portal/sim/zbp.py) and keeps what it took in ``store``.
``faults`` answers the next requests with a status first (e.g. 429 with Retry-After); ``reject`` refuses an
applicationId with a code; ``paths`` are the URL paths that exist (any other answers 404).
"""

from __future__ import annotations

import json
import time
from collections import deque
from urllib.parse import urlsplit

from adapters.portal.sim.zbp import (
    MESSAGE_PATH,
    STATUS_PATH,
    Refusal,
    ZbpRules,
    ZbpStore,
    check_message,
    check_status,
    content_key,
    verify_envelope,
)
from adapters.portal.zbp import ZbpAnswer


class InMemoryZbp:
    def __init__(self, ca_pem: bytes, *, required_role: str = "THIRD_PARTY") -> None:
        self.rules = ZbpRules(ca_pem, required_role)
        self.store = ZbpStore()
        self.faults: deque[tuple[int, str | None]] = deque()
        self.reject: dict[str, str] = {}
        self.paths = {STATUS_PATH: "status", MESSAGE_PATH: "message"}
        self.requests = 0

    async def __call__(self, url: str, body: bytes, headers: dict[str, str]) -> ZbpAnswer:
        self.requests += 1
        if self.faults:
            status, retry_after = self.faults.popleft()
            return ZbpAnswer(status, retry_after, b"")
        kind = self.paths.get(urlsplit(url).path)
        if kind is None:
            return ZbpAnswer(404, None, b"not found")
        try:
            payload, signer = verify_envelope(body, self.rules, now=time.time())
            if kind == "status":
                subject = check_status(payload, self.rules)
            else:
                check_message(payload, self.rules)
                subject = str(payload.get("applicationId", ""))
        except Refusal as refusal:
            return _json(refusal.status, {"error": {"code": refusal.code, "message": refusal.message}})
        code = self.reject.get(subject)
        if code is not None:
            return _json(422, {"error": {"code": code, "message": "Testregel"}})
        stored, duplicate = self.store.record(
            headers.get("Idempotency-Key") or content_key(body), kind, payload, signer
        )
        return _json(409 if duplicate else 201, {"id": stored.receipt_id})


def _json(status: int, document: object) -> ZbpAnswer:
    return ZbpAnswer(status, None, json.dumps(document).encode())
