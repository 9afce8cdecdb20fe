"""The simulator's view of what it received: ``GET /status/{vorgang}``, the timeline of one Vorgang.

Only the simulated portal's own view, for developers and tests. The citizens' page is ``rueckkanal status-web``
(tracking links instead of Vorgang ids, accessible, with payment and Widerspruch). Steps are ordered by
sequenznummer (the Fachverfahren's order), not by arrival, so a late
message lands in its place, and a Statusberichtigung (0102) stands in the place of the message it corrects,
marked "(berichtigt)". Everything from the messages is HTML-escaped.
"""

from __future__ import annotations

from datetime import datetime
from html import escape

from aiohttp import web

from adapters.portal.sim.app import PORTAL_KEY
from adapters.portal.sim.store import NachrichtRow, corrected_timeline


def add_routes(app: web.Application) -> None:
    app.router.add_get("/status/{vorgang:.+}", status_page)


async def status_page(request: web.Request) -> web.Response:
    vorgang_id = request.match_info["vorgang"]
    rows = await request.app[PORTAL_KEY].store.nachrichten(vorgang_id)
    if not rows:
        return web.Response(
            status=404, text=_page("Vorgang nicht gefunden", "<p>Zu dieser Nummer liegt nichts vor.</p>")
        )
    sections = []
    for fachverfahren in sorted({row.fachverfahren for row in rows}):
        steps = corrected_timeline([row for row in rows if row.fachverfahren == fachverfahren])
        sections.append(_timeline(fachverfahren, steps))
    return web.Response(
        text=_page(f"Stand Ihres Antrags {escape(vorgang_id)}", "".join(sections)), content_type="text/html"
    )


def _timeline(fachverfahren: str, steps: list[NachrichtRow]) -> str:
    path = " → ".join(escape(step.status_text) for step in steps)
    items = "".join(
        f"<li><time datetime='{escape(step.status_time)}'>{_german_time(step.status_time)}</time> "
        f"{escape(step.status_text)}{_CORRECTED if step.corrected else ''}</li>"
        for step in steps
    )
    current = escape(steps[-1].status_text)
    return (
        f"<section><h2>{escape(fachverfahren)}</h2>"
        f"<p>Aktueller Stand: <strong>{current}</strong></p>"
        f"<p class='verlauf'>{path}</p><ol>{items}</ol></section>"
    )


_CORRECTED = " <em class='berichtigt'>(berichtigt)</em>"


def _german_time(iso: str) -> str:
    """01.03.2026, 12:00 Uhr, in the time zone the Fachverfahren reported."""
    try:
        return datetime.fromisoformat(iso).strftime("%d.%m.%Y, %H:%M Uhr")
    except ValueError:
        return escape(iso)


def _page(title: str, body: str) -> str:
    return (
        "<!DOCTYPE html><html lang='de'><head><meta charset='utf-8'>"
        f"<title>{title}</title></head><body><h1>{title}</h1>"
        "<p><strong>Portal-Simulator:</strong> nur die Sicht des Simulators für Tests und Entwicklung, keine Seite "
        "für Bürgerinnen und Bürger (die ist <code>rueckkanal status-web</code>).</p>"
        f"{body}</body></html>"
    )
