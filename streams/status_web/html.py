"""HTML of the status pages, from the page model. Pure string building; every value is HTML-escaped.

Accessibility (WCAG 2.1 AA, BITV 2.0) is a property of this markup and ``static/status.css``: one ``h1`` per page and
headings in order; landmarks (header, main, footer, nav); a skip link; the language on ``<html>`` and on every
phrase in the other language; the timeline as an ordered list with the current step marked ``aria-current``;
dates in ``<time>`` with a machine-readable value; the GiroCode image with a text alternative that says what it
does and the same data written out beside it; links that say where they lead; no JavaScript, no third-party
resources, no fonts from elsewhere. Layout is a single column that reflows down to 320 CSS px (WCAG 1.4.10).
"""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from html import escape

from rueckkanal.epc import Transfer
from rueckkanal.tracking import Payment
from streams.status_web.page import StatusPage
from streams.status_web.texts import Lang, ui

_MONTHS = {
    Lang.DE: ("Januar", "Februar", "März", "April", "Mai", "Juni", "Juli", "August", "September", "Oktober",
              "November", "Dezember"),
    Lang.EN: ("January", "February", "March", "April", "May", "June", "July", "August", "September", "October",
              "November", "December"),
}  # fmt: skip


def month_name(month: int, lang: Lang) -> str:
    """März / March (``month`` 1–12)."""
    return _MONTHS[lang][month - 1]


def long_date(day: date, lang: Lang) -> str:
    """6. März 2024 / 6 March 2024."""
    month = month_name(day.month, lang)
    return f"{day.day}. {month} {day.year}" if lang is Lang.DE else f"{day.day} {month} {day.year}"


def long_time(moment: datetime, lang: Lang) -> str:
    """6. März 2024, 09:31 Uhr / 6 March 2024, 09:31 (in the zone the Fachverfahren reported)."""
    clock = moment.strftime("%H:%M")
    return (
        f"{long_date(moment.date(), lang)}, {clock} Uhr" if lang is Lang.DE else f"{long_date(moment, lang)}, {clock}"
    )


def money(amount: Decimal, currency: str, lang: Lang) -> str:
    """96,00 € / €96.00 (other currencies by their code)."""
    text = f"{amount:,.2f}"
    if lang is Lang.DE:
        text = text.replace(",", " ").replace(".", ",").replace(" ", ".")
        return f"{text} €" if currency == "EUR" else f"{text} {currency}"
    return f"€{text}" if currency == "EUR" else f"{currency} {text}"


def grouped_iban(iban: str) -> str:
    return " ".join(iban[i : i + 4] for i in range(0, len(iban), 4))


def _time(moment: datetime | date, text: str) -> str:
    return f'<time datetime="{escape(moment.isoformat())}">{escape(text)}</time>'


class Layout:
    """The frame shared by every page: head, skip link, header, footer with the language switch."""

    def __init__(self, city: str, css_href: str) -> None:
        self.city = city
        self.css_href = css_href

    def page(self, lang: Lang, title: str, body: str, *, switch_href: str | None) -> str:
        other = Lang.EN if lang is Lang.DE else Lang.DE
        skip = "Zum Inhalt springen" if lang is Lang.DE else "Skip to content"
        switch = ""
        if switch_href is not None:
            switch = (
                f'<a href="{escape(switch_href)}" hreflang="{other.value}" lang="{other.value}">'
                f"{escape(ui('language_label', lang))}</a>"
            )
        nav_label = "Weitere Seiten" if lang is Lang.DE else "More pages"
        return (
            f'<!DOCTYPE html><html lang="{lang.value}"><head><meta charset="utf-8">'
            '<meta name="viewport" content="width=device-width, initial-scale=1">'
            '<meta name="robots" content="noindex, nofollow">'
            f"<title>{escape(title)} – {escape(self.city)}</title>"
            f'<link rel="stylesheet" href="{escape(self.css_href)}">'
            '<link rel="icon" href="/static/favicon.svg" type="image/svg+xml">'
            "</head><body>"
            f'<a class="skip" href="#inhalt">{skip}</a>'
            f'<header class="site"><p class="city">{escape(self.city)}</p>'
            f'<p class="service">{escape(ui("site", lang))}</p></header>'
            f'<main id="inhalt" tabindex="-1">{body}</main>'
            f'<footer class="site"><nav aria-label="{nav_label}"><ul>'
            f'<li><a href="/barrierefreiheit?lang={lang.value}">{escape(ui("accessibility", lang))}</a></li>'
            + (f"<li>{switch}</li>" if switch else "")
            + "</ul></nav>"
            f'<p class="privacy">{escape(ui("privacy_note", lang))}</p></footer>'
            "</body></html>"
        )


def status_page(layout: Layout, page: StatusPage, base: str) -> str:
    """The main page of one tracking link; ``base`` is its path (``/s/<token>``)."""
    lang = page.lang
    heading = page.leistung or ui("your_application", lang)
    parts = [f"<h1>{escape(heading)}</h1>"]
    latest = page.latest
    if latest is None or page.current is None:
        parts.append(f"<p>{escape(ui('no_status', lang))}</p>")
    else:
        current = page.current
        parts.append(
            '<section class="current" aria-labelledby="stand">'
            f'<h2 id="stand">{escape(ui("current", lang))}</h2>'
            f'<p class="status">{escape(current.title)}</p>'
            f'<p class="since">{escape(ui("since", lang))} {_time(latest.when, long_time(latest.when, lang))}</p>'
            f"<p>{escape(current.meaning)}</p>"
        )
        if page.decision:
            parts.append(f"<p>{escape(page.decision)}</p>")
        if latest.detail:
            parts.append(f'<p class="detail">{escape(latest.detail)}</p>')
        parts.extend(f'<p class="detail">{escape(text)}</p>' for text in page.zusatz)
        if page.frist is not None:
            parts.append(
                f'<p class="frist"><strong>{escape(ui("frist", lang))}:</strong> {escape(ui("frist_until", lang))} '
                f"{_time(page.frist, long_date(page.frist, lang))}</p>"
            )
        parts.append("</section>")
        parts.append(
            '<section aria-labelledby="weiter">'
            f'<h2 id="weiter">{escape(ui("next", lang))}</h2><p>{escape(current.next)}</p>'
        )
        if page.estimate:
            parts.append(f'<p class="estimate">{escape(page.estimate)}</p>')
        if page.payment is not None:
            due = page.payment.faelligkeit
            amount = money(page.payment.betrag, page.payment.waehrung, lang)
            parts.append(
                f'<p class="frist"><strong>{escape(ui("pay_amount", lang))}: {escape(amount)}</strong>'
                + (f", {escape(ui('pay_due', lang)).lower()} {_time(due, long_date(due, lang))}" if due else "")
                + "</p>"
            )
            parts.append(
                f'<p><a class="action" href="{base}/zahlung?lang={lang.value}">{escape(ui("pay_link", lang))}</a></p>'
            )
        if page.widerspruch is not None:
            parts.append(
                f'<p><a class="action" href="{base}/widerspruch?lang={lang.value}">'
                f"{escape(ui('widerspruch_link', lang))}</a></p>"
            )
        parts.append("</section>")
        items = []
        for index, entry in enumerate(page.entries):
            is_current = index == len(page.entries) - 1
            marker = ' aria-current="step" class="now"' if is_current else ""
            items.append(
                f"<li{marker}>"
                f'<span class="when">{_time(entry.when, long_date(entry.when.date(), lang))}</span> '
                f'<span class="what">{escape(entry.title)}</span>'
                + (_frist_note(entry.frist, lang) if entry.frist is not None else "")
                + (f' <span class="corrected">({escape(ui("corrected", lang))})</span>' if entry.corrected else "")
                + "</li>"
            )
        parts.append(
            f'<section aria-labelledby="verlauf"><h2 id="verlauf">{escape(ui("history", lang))}</h2>'
            f'<ol class="timeline">{"".join(items)}</ol></section>'
        )
    title = f"{ui('site', lang)}: {heading}"
    return layout.page(lang, title, "".join(parts), switch_href=f"{base}?lang={_other(lang)}")


def payment_page(layout: Layout, page: StatusPage, payment: Payment, transfer: Transfer | None, base: str) -> str:
    lang = page.lang
    heading = ui("pay_heading", lang)
    amount = money(payment.betrag, payment.waehrung, lang)
    parts = [f"<h1>{escape(heading)}</h1>"]
    if page.leistung:
        parts.append(f'<p class="lead">{escape(page.leistung)}</p>')
    parts.append('<dl class="facts">')
    parts.append(f"<dt>{escape(ui('pay_amount', lang))}</dt><dd><strong>{escape(amount)}</strong></dd>")
    if payment.faelligkeit is not None:
        due = payment.faelligkeit
        parts.append(f"<dt>{escape(ui('pay_due', lang))}</dt><dd>{_time(due, long_date(due, lang))}</dd>")
    parts.append("</dl>")
    parts.append(f'<section aria-labelledby="jetzt"><h2 id="jetzt">{escape(ui("pay_now", lang))}</h2>')
    if payment.zahlungs_url is not None:
        parts.append(
            f'<p><a class="action" href="{escape(payment.zahlungs_url)}" rel="noreferrer">'
            f'{escape(ui("pay_online", lang))}</a></p><p class="hint">{escape(ui("pay_online_note", lang))}</p>'
        )
    if payment.iban is not None:
        parts.append(f"<h3>{escape(ui('pay_transfer', lang))}</h3>")
        if transfer is not None:
            alt = ui("pay_girocode_alt", lang).format(amount=amount, name=transfer.name, remittance=transfer.remittance)
            parts.append(
                f"<p>{escape(ui('pay_girocode', lang))}</p>"
                f'<p class="qr"><img src="{base}/girocode.svg" alt="{escape(alt)}" width="232" height="232"></p>'
            )
        remittance = payment.kassenzeichen or payment.verwendungszweck
        parts.append('<dl class="facts">')
        if payment.empfaenger:
            parts.append(f"<dt>{escape(ui('payee', lang))}</dt><dd>{escape(payment.empfaenger)}</dd>")
        parts.append(f'<dt>{escape(ui("iban", lang))}</dt><dd class="mono">{escape(grouped_iban(payment.iban))}</dd>')
        if payment.bic:
            parts.append(f'<dt>{escape(ui("bic", lang))}</dt><dd class="mono">{escape(payment.bic)}</dd>')
        label = ui("remittance_kz" if payment.kassenzeichen else "remittance", lang)
        parts.append(f'<dt>{escape(label)}</dt><dd class="mono">{escape(remittance)}</dd>')
        parts.append(f"<dt>{escape(ui('pay_amount', lang))}</dt><dd>{escape(amount)}</dd></dl>")
    parts.append("</section>")
    if payment.faelligkeit is not None:
        parts.append(
            f'<section aria-labelledby="spaeter"><h2 id="spaeter">{escape(ui("pay_later", lang))}</h2>'
            f'<p><a href="{base}/zahlung.ics?lang={lang.value}" type="text/calendar" download>'
            f"{escape(ui('pay_ics', lang))}</a></p></section>"
        )
    parts.append(f"<p>{escape(ui('pay_done', lang))}</p>")
    parts.append(f'<p><a href="{base}?lang={lang.value}">{escape(ui("back", lang))}</a></p>')
    return layout.page(lang, heading, "".join(parts), switch_href=f"{base}/zahlung?lang={_other(lang)}")


def widerspruch_page(layout: Layout, page: StatusPage, base: str) -> str:
    lang = page.lang
    widerspruch = page.widerspruch
    if widerspruch is None:
        raise ValueError("a Widerspruch page needs a decision")
    heading = ui("widerspruch_heading", lang)
    parts = [f"<h1>{escape(heading)}</h1>"]
    if page.leistung:
        parts.append(f'<p class="lead">{escape(page.leistung)}</p>')
    if page.decision:
        parts.append(f"<p>{escape(page.decision)}</p>")
    if widerspruch.deadline is not None:
        parts.append(
            f'<p class="frist"><strong>{escape(ui("widerspruch_deadline", lang))}:</strong> '
            f"{_time(widerspruch.deadline, long_date(widerspruch.deadline, lang))}</p>"
        )
    else:
        parts.append(f"<p>{escape(ui('widerspruch_deadline_default', lang))}</p>")
    parts.append(
        f'<p><a class="action" href="{escape(widerspruch.form_url)}" rel="noreferrer">'
        f'{escape(ui("widerspruch_form", lang))}</a></p><p class="hint">{escape(ui("widerspruch_form_note", lang))}</p>'
    )
    note = ui("rechtsbehelf_lang_note", lang)
    parts.append(
        f'<section aria-labelledby="rbb"><h2 id="rbb">{escape(ui("rechtsbehelf", lang))}</h2>'
        + (f"<p>{escape(note)}</p>" if note else "")
        + '<div class="legal" lang="de">'
        + "".join(f"<p>{escape(paragraph)}</p>" for paragraph in widerspruch.rechtsbehelfsbelehrung.split("\n\n"))
        + "</div></section>"
    )
    parts.append(f'<p><a href="{base}?lang={lang.value}">{escape(ui("back", lang))}</a></p>')
    return layout.page(lang, heading, "".join(parts), switch_href=f"{base}/widerspruch?lang={_other(lang)}")


def not_found_page(layout: Layout) -> str:
    """One page for every unknown, expired or revoked link, in both languages: it must not depend on the link."""
    de = f"<h1>{escape(ui('not_found_title', Lang.DE))}</h1><p>{escape(ui('not_found', Lang.DE))}</p>"
    en = (
        f'<section lang="en" aria-labelledby="en-title"><h2 id="en-title">{escape(ui("not_found_title", Lang.EN))}</h2>'
        f"<p>{escape(ui('not_found', Lang.EN))}</p></section>"
    )
    return layout.page(Lang.DE, ui("not_found_title", Lang.DE), de + en, switch_href=None)


def too_many_page(layout: Layout) -> str:
    return _notice_page(layout, "too_many")


def unavailable_page(layout: Layout) -> str:
    """The page of a request that cannot be answered now (the database did not answer): the same for every link."""
    return _notice_page(layout, "unavailable")


def _notice_page(layout: Layout, key: str) -> str:
    """A page of one notice (``key`` and ``key_title`` in the texts), German with the English below it."""
    de = f"<h1>{escape(ui(key + '_title', Lang.DE))}</h1><p>{escape(ui(key, Lang.DE))}</p>"
    en = f'<p lang="en">{escape(ui(key, Lang.EN))}</p>'
    return layout.page(Lang.DE, ui(key + "_title", Lang.DE), de + en, switch_href=None)


def _frist_note(frist: date, lang: Lang) -> str:
    return f' <span class="frist">({escape(ui("frist", lang))}: {_time(frist, long_date(frist, lang))})</span>'


def _other(lang: Lang) -> str:
    return (Lang.EN if lang is Lang.DE else Lang.DE).value


def ics_for(payment: Payment, title: str, url: str, uid: str, stamp: datetime) -> bytes:
    """An iCalendar file (RFC 5545) with one all-day event on the due date and a reminder two days before.

    ``uid`` must not reveal the token; lines are folded at 75 octets and end in CRLF as the RFC requires.
    """
    due = payment.faelligkeit
    if due is None:
        raise ValueError("a calendar entry needs a due date")
    end = date.fromordinal(due.toordinal() + 1)
    amount = money(payment.betrag, payment.waehrung, Lang.DE)
    summary = f"{title}: {amount} bezahlen"
    remittance = payment.kassenzeichen or payment.verwendungszweck
    description = f"Betrag: {amount}\nVerwendungszweck: {remittance}\nStand und Bezahlung: {url}"
    lines = [
        "BEGIN:VCALENDAR",
        "VERSION:2.0",
        "PRODID:-//Rueckkanal//status-web//DE",
        "CALSCALE:GREGORIAN",
        "METHOD:PUBLISH",
        "BEGIN:VEVENT",
        f"UID:{uid}",
        f"DTSTAMP:{stamp.strftime('%Y%m%dT%H%M%SZ')}",
        f"DTSTART;VALUE=DATE:{due.strftime('%Y%m%d')}",
        f"DTEND;VALUE=DATE:{end.strftime('%Y%m%d')}",
        f"SUMMARY:{_ics_text(summary)}",
        f"DESCRIPTION:{_ics_text(description)}",
        f"URL:{url}",
        "TRANSP:TRANSPARENT",
        "BEGIN:VALARM",
        "ACTION:DISPLAY",
        f"DESCRIPTION:{_ics_text(summary)}",
        "TRIGGER:-P2D",
        "END:VALARM",
        "END:VEVENT",
        "END:VCALENDAR",
    ]
    return b"".join(_fold(line) + b"\r\n" for line in lines)


def _ics_text(text: str) -> str:
    return text.replace("\\", "\\\\").replace(";", "\\;").replace(",", "\\,").replace("\n", "\\n")


def _fold(line: str) -> bytes:
    """RFC 5545 §3.1: at most 75 octets per line, continued with CRLF + space, never inside a UTF-8 sequence."""
    out: list[bytes] = []
    current = b""
    for char in line:
        encoded = char.encode("utf-8")
        limit = 75 if not out else 74
        if len(current) + len(encoded) > limit:
            out.append(current)
            current = b""
        current += encoded
    out.append(current)
    return b"\r\n ".join(out)


def accessibility_page(
    layout: Layout,
    lang: Lang,
    *,
    contact_email: str,
    contact_phone: str | None,
    statement_date: date,
    enforcement_url: str,
    enforcement_name: str,
) -> str:
    """The Erklärung zur Barrierefreiheit (BITV 2.0 § 12b; the EU model statement, Implementing Decision
    2018/1523): state of compliance, what is not accessible, how it was assessed, feedback contact, enforcement."""
    mail = f'<a href="mailto:{escape(contact_email)}">{escape(contact_email)}</a>'
    phone = (
        f", Telefon {escape(contact_phone)}"
        if contact_phone and lang is Lang.DE
        else (f", phone {escape(contact_phone)}" if contact_phone else "")
    )
    enforcement = f'<a href="{escape(enforcement_url)}" rel="noreferrer">{escape(enforcement_name)}</a>'
    when = _time(statement_date, long_date(statement_date, lang))
    if lang is Lang.DE:
        title = "Erklärung zur Barrierefreiheit"
        body = (
            f"<h1>{title}</h1>"
            f"<p>{escape(layout.city)} ist bemüht, diese Statusseite im Einklang mit dem "
            "Behindertengleichstellungsrecht des Bundes und der Länder barrierefrei zugänglich zu machen "
            "(Barrierefreie-Informationstechnik-Verordnung, "
            "BITV 2.0, mit der harmonisierten Norm EN 301 549 und den WCAG 2.1, Stufe AA).</p>"
            "<h2>Stand der Vereinbarkeit</h2>"
            "<p>Diese Seiten sind mit den Anforderungen vollständig vereinbar. Geprüft werden sie bei jeder Änderung "
            "automatisch in einem echten Browser (axe-core, WCAG 2.1 A und AA, Bildschirmbreiten 320 und 1280 Pixel, "
            "Bedienung nur mit der Tastatur) und zusätzlich durch Sichtprüfung.</p>"
            "<h2>Nicht barrierefreie Inhalte</h2>"
            "<p>Der GiroCode (QR-Code) für die Überweisung ist ein Bild. Alle Angaben darin stehen als Text daneben. "
            "Der Bezahldienst und das Formular für den Widerspruch sind eigene Angebote mit eigener Erklärung.</p>"
            f"<p>Diese Erklärung wurde am {when} erstellt.</p>"
            "<h2>Feedback und Kontakt</h2>"
            f"<p>Sind Ihnen Mängel aufgefallen, oder brauchen Sie Inhalte in einer anderen Form? Schreiben Sie uns: "
            f"{mail}{phone}.</p>"
            "<h2>Durchsetzungsverfahren</h2>"
            "<p>Wenn Sie auf Ihre Rückmeldung binnen eines Monats keine oder keine zufriedenstellende Antwort "
            f"bekommen, können Sie sich an die Durchsetzungsstelle wenden: {enforcement}. Das Verfahren ist für Sie "
            "kostenlos.</p>"
        )
    else:
        title = "Accessibility statement"
        body = (
            f"<h1>{title}</h1>"
            f"<p>{escape(layout.city)} aims to make this status page accessible in line with German federal and state "
            "disability equality law (BITV 2.0, with the harmonised standard EN 301 549 and WCAG 2.1 level AA).</p>"
            "<h2>Compliance status</h2>"
            "<p>These pages fully comply. Every change is checked automatically in a real browser (axe-core, WCAG 2.1 "
            "A and AA, screen widths 320 and 1280 pixels, keyboard-only use) and also by eye.</p>"
            "<h2>Content that is not accessible</h2>"
            "<p>The GiroCode (QR code) for the bank transfer is an image. All its details are written out beside it. "
            "The payment service and the objection form are separate services with their own statements.</p>"
            f"<p>This statement was prepared on {when}.</p>"
            "<h2>Feedback and contact</h2>"
            f"<p>Have you found a barrier, or do you need content in another form? Write to us: {mail}{phone}.</p>"
            "<h2>Enforcement procedure</h2>"
            "<p>If you get no answer within a month, or one that does not satisfy you, you can turn to the "
            f"enforcement body: {enforcement}. The procedure is free of charge for you.</p>"
        )
    return layout.page(lang, title, body, switch_href=f"/barrierefreiheit?lang={_other(lang)}")
