"""The Statusmeldung built element by element with lxml and serialised by it: the reference that
:meth:`rueckkanal.xoev.MessageRenderer.statusmeldung_xml` must equal byte for byte."""

from __future__ import annotations

from lxml import etree

from rueckkanal.lifecycle import VorgangState, corrects_current
from rueckkanal.model import StatusEvent
from rueckkanal.xoev import STATUSBERICHTIGUNG, STATUSMELDUNG, MessageRenderer, _code, _sub, _text, nachrichten_uuid


def reference_statusmeldung(
    renderer: MessageRenderer, event: StatusEvent, state: VorgangState, message_uuid: str, created_at: object
) -> bytes:
    settings, lists = renderer._settings, renderer._lists
    typ = STATUSMELDUNG if event.berichtigt is None else STATUSBERICHTIGUNG
    root = renderer._build_head(typ, message_uuid, created_at, settings.leser, settings.autor)  # type: ignore[arg-type]
    if event.berichtigt is not None:
        _text(_sub(root, "bezug"), "nachrichtenUUID", nachrichten_uuid(event.source, event.berichtigt))
        _text(root, "aktuellerStatus", "true" if corrects_current(state, event) else "false")
    vorgang = _sub(root, "vorgang")
    _text(vorgang, "fachverfahren", event.source)
    _text(vorgang, "vorgangsID", event.vorgang_id)
    if event.aktenzeichen is not None:
        _text(vorgang, "aktenzeichen", event.aktenzeichen)
    _text(vorgang, "leistung", event.leistung)
    if event.antrags_id is not None:
        _text(vorgang, "antragsID", event.antrags_id)
    if event.postfach_ref is not None:
        _text(vorgang, "postfachReferenz", event.postfach_ref)
    ereignis = _sub(root, "statusereignis")
    _text(ereignis, "ereignisID", event.event_id)
    _text(ereignis, "zeitpunkt", event.status_time.isoformat())
    _text(ereignis, "sequenznummer", str(state.sequence))
    _code(ereignis, "status", lists.antragsstatus, event.status)
    _text(ereignis, "statusText", event.effective_status_text)
    if event.zusatzinformation is not None:
        _text(ereignis, "zusatzinformation", event.zusatzinformation)
    if event.hinweistext is not None:
        _text(ereignis, "hinweis", event.hinweistext)
    if event.frist is not None:
        _text(ereignis, "frist", event.frist.isoformat())
    if event.entscheidung is not None:
        _code(ereignis, "entscheidung", lists.entscheidungsart, event.entscheidung)
    zahlung = event.zahlung
    if zahlung is not None:
        element = _sub(ereignis, "zahlung")
        _text(element, "betrag", f"{zahlung.betrag:.2f}").set("waehrung", zahlung.waehrung)
        _text(element, "verwendungszweck", zahlung.verwendungszweck)
        if zahlung.zahlungs_url is not None:
            _text(element, "zahlungsURL", zahlung.zahlungs_url)
        if zahlung.faelligkeit is not None:
            _text(element, "faelligkeit", zahlung.faelligkeit.isoformat())
        for tag, value in (
            ("empfaenger", zahlung.empfaenger),
            ("iban", zahlung.iban),
            ("bic", zahlung.bic),
            ("kassenzeichen", zahlung.kassenzeichen),
        ):
            if value is not None:
                _text(element, tag, value)
    return bytes(etree.tostring(root, xml_declaration=True, encoding="UTF-8"))
