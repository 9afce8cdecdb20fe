"""The reference portal's XÖV answers: Quittung 0190 and Rückweisung 0191, rendered by the core as the portal.

The portal is the ``leser`` of our messages, so it writes its answers with the roles swapped; the core's renderer
does that for answers. A fehlertext that breaks the schema (it never should) is dropped rather than failing the
answer: the code is what the sender routes by.
"""

from __future__ import annotations

from datetime import datetime

from aiohttp import web

from rueckkanal.errors import RenderError
from rueckkanal.settings import XoevSettings
from rueckkanal.xoev import MessageRenderer, QuittungTemplate, Rueckweisungsgrund

XML = "application/xml"


class Answers:
    def __init__(self, settings: XoevSettings | None = None) -> None:
        self._renderer = MessageRenderer(settings or XoevSettings())
        self._quittungen = QuittungTemplate(self._renderer)  # most answers are Quittungen: the fast path

    def quittung(self, bezug_uuid: str, receipt_id: str, eingang: datetime, *, status: int = 200) -> web.Response:
        answer = self._quittungen.render(bezug_uuid, receipt_id, eingang)
        return web.Response(status=status, body=answer.xml, content_type=XML)

    def rueckweisung(self, bezug_uuid: str, code: str, text: str | None = None, *, status: int) -> web.Response:
        try:
            answer = self._renderer.render_rueckweisung(bezug_uuid, [Rueckweisungsgrund(code, text)])
        except RenderError:
            answer = self._renderer.render_rueckweisung(bezug_uuid, [Rueckweisungsgrund(code)])
        return web.Response(status=status, body=answer.xml, content_type=XML)
