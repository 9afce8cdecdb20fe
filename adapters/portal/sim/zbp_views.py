"""The ZBP simulator's views: JSON for tests and the demo, and the page a citizen would see in BundID.

==========================================  ==================================================================
``GET /zbp/antraege``                       every application: its status history and the mailbox messages
``GET /zbp/antraege/{applicationId}``       one application; 404 if unknown
``GET /zbp/postfach/{mailboxUuid}``         the messages in one BundID mailbox
``GET /zbp/ansicht/{applicationId}``        HTML: status monitor and mailbox of one application, in German
==========================================  ==================================================================
"""

from __future__ import annotations

from aiohttp import web

from adapters.portal.sim.app import PORTAL_KEY
from adapters.portal.sim.zbp import application_json, view_page


def add_routes(app: web.Application) -> None:
    app.router.add_get("/zbp/antraege", applications)
    app.router.add_get("/zbp/antraege/{application_id}", application)
    app.router.add_get("/zbp/postfach/{mailbox}", mailbox)
    app.router.add_get("/zbp/ansicht/{application_id}", view)


async def applications(request: web.Request) -> web.Response:
    store = request.app[PORTAL_KEY].zbp_store
    ids = list(dict.fromkeys(str(s.payload.get("applicationId")) for s in store.statuses()))
    return web.json_response({"antraege": [application_json(store, i) for i in ids]})


async def application(request: web.Request) -> web.Response:
    store = request.app[PORTAL_KEY].zbp_store
    found = application_json(store, request.match_info["application_id"])
    if not found["statuses"] and not found["messages"]:
        return web.json_response({"errors": ["unknown applicationId"]}, status=404)
    return web.json_response(found)


async def mailbox(request: web.Request) -> web.Response:
    store = request.app[PORTAL_KEY].zbp_store
    messages = store.messages(mailbox=request.match_info["mailbox"])
    return web.json_response({"nachrichten": [{**m.payload, "receiptId": m.receipt_id} for m in messages]})


async def view(request: web.Request) -> web.Response:
    page = view_page(request.app[PORTAL_KEY].zbp_store, request.match_info["application_id"])
    if page is None:
        return web.Response(status=404, text="Antrag nicht gefunden")
    return web.Response(text=page, content_type="text/html")
