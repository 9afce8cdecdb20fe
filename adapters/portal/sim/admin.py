"""The reference portal's admin and query endpoints (JSON), for tests, the demo and operators.

=====================================  ==================================================================
``GET /healthz``                       ``{"status": "ok"}``
``GET /admin/faults``                  the faults in force (FaultSpec keys; ``outage_seconds`` = time left)
``POST /admin/faults``                 change the named keys only; 400 ``{"errors": [...]}`` on bad input
``DELETE /admin/faults``               clear every fault
``POST /admin/tokens/revoke``          forget every issued OAuth2 token: ``{"revoked": n}``
``GET /admin/stats``                   counters: requests, stored, duplicate, refused, rejected,
                                       unauthorised, dropped, outage, throttled, error, redirect,
                                       not_found, html, store_then_hang, slow_body, token_error,
                                       tokens_issued
``GET /nachrichten?vorgang=ID``        the Vorgang's messages in arrival order (``&fachverfahren=URI``)
``GET /nachrichten/{uuid}``            one message, 404 if unknown
``GET /vorgaenge/{id}``                the current status; 404 unknown, 409 if the id exists in several
                                       Fachverfahren and ``?fachverfahren=`` does not say which
=====================================  ==================================================================

The admin endpoints have no authentication: the simulator binds to 127.0.0.1 unless told otherwise.
"""

from __future__ import annotations

import json
from typing import Any

from aiohttp import web
from pydantic import ValidationError

from adapters.portal.sim.app import PORTAL_KEY, Portal
from adapters.portal.sim.store import NachrichtRow, VorgangRow


def add_routes(app: web.Application) -> None:
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/admin/faults", get_faults)
    app.router.add_post("/admin/faults", post_faults)
    app.router.add_delete("/admin/faults", delete_faults)
    app.router.add_post("/admin/tokens/revoke", revoke_tokens)
    app.router.add_get("/admin/stats", stats)
    app.router.add_get("/nachrichten", nachrichten)
    app.router.add_get("/nachrichten/{uuid}", nachricht)
    app.router.add_get("/vorgaenge/{vorgang:.+}", vorgang)


def _portal(request: web.Request) -> Portal:
    return request.app[PORTAL_KEY]


async def healthz(request: web.Request) -> web.Response:
    return web.json_response({"status": "ok"})


async def get_faults(request: web.Request) -> web.Response:
    return web.json_response(_portal(request).faults.view())


async def post_faults(request: web.Request) -> web.Response:
    faults = _portal(request).faults
    try:
        changes = json.loads(await request.read())
    except (ValueError, UnicodeDecodeError):
        return web.json_response({"errors": ["body is not JSON"]}, status=400)
    if not isinstance(changes, dict):
        return web.json_response({"errors": ["body must be a JSON object"]}, status=400)
    try:
        faults.update(changes)
    except ValidationError as exc:
        errors = [f"{'.'.join(str(p) for p in e['loc']) or '(spec)'}: {e['msg']}" for e in exc.errors()]
        return web.json_response({"errors": errors}, status=400)
    return web.json_response(faults.view())


async def delete_faults(request: web.Request) -> web.Response:
    faults = _portal(request).faults
    faults.clear()
    return web.json_response(faults.view())


async def revoke_tokens(request: web.Request) -> web.Response:
    tokens = _portal(request).tokens
    if tokens is None:
        return web.json_response({"errors": ["OAuth2 is not enabled"]}, status=404)
    return web.json_response({"revoked": tokens.revoke_all()})


async def stats(request: web.Request) -> web.Response:
    portal = _portal(request)
    counters: dict[str, int] = dict(portal.counters)
    counters["tokens_issued"] = portal.tokens.issued if portal.tokens is not None else 0
    return web.json_response(counters)


async def nachrichten(request: web.Request) -> web.Response:
    vorgang_id = request.query.get("vorgang")
    if not vorgang_id:
        return web.json_response({"errors": ["query parameter vorgang is required"]}, status=400)
    rows = await _portal(request).store.nachrichten(vorgang_id, request.query.get("fachverfahren"))
    return web.json_response({"vorgang": vorgang_id, "nachrichten": [nachricht_json(row) for row in rows]})


async def nachricht(request: web.Request) -> web.Response:
    row = await _portal(request).store.nachricht(request.match_info["uuid"])
    if row is None:
        return web.json_response({"errors": ["unknown nachrichtenUUID"]}, status=404)
    return web.json_response(nachricht_json(row))


async def vorgang(request: web.Request) -> web.Response:
    rows = await _portal(request).store.vorgaenge(request.match_info["vorgang"])
    fachverfahren = request.query.get("fachverfahren")
    if fachverfahren is not None:
        rows = [row for row in rows if row.fachverfahren == fachverfahren]
    if not rows:
        return web.json_response({"errors": ["unknown Vorgang"]}, status=404)
    if len(rows) > 1:
        choices = [row.fachverfahren for row in rows]
        return web.json_response(
            {"errors": ["Vorgang id in several Fachverfahren"], "fachverfahren": choices}, status=409
        )
    return web.json_response(vorgang_json(rows[0]))


def nachricht_json(row: NachrichtRow) -> dict[str, Any]:
    return {
        "nachrichtenUUID": row.nachrichten_uuid,
        "fachverfahren": row.fachverfahren,
        "vorgangsID": row.vorgangs_id,
        "sequence": row.sequence,
        "status": row.status,
        "statusText": row.status_text,
        "statusZeit": row.status_time,
        "receiptId": row.receipt_id,
        "firstReceivedAt": row.first_received_at,
        "lastReceivedAt": row.last_received_at,
        "receivedCount": row.received_count,
    }


def vorgang_json(row: VorgangRow) -> dict[str, Any]:
    return {
        "fachverfahren": row.fachverfahren,
        "vorgangsID": row.vorgangs_id,
        "status": row.status,
        "statusText": row.status_text,
        "sequence": row.sequence,
        "nachrichtenUUID": row.nachrichten_uuid,
        "updatedAt": row.updated_at,
    }
