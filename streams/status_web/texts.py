"""Every text of the status page, in German and English. Pure data.

Per status code: what it means in plain words and what happens next (:data:`STATUS_TEXTS`). A revised lifecycle
(new codes, a changed order after the Bescheid) needs new entries here, nothing else; a code without an entry falls
back to the code list's label and a neutral "we will tell you" (:func:`status_text`), and the unit tests fail until
every code of the list has its entry.

Plain language: short sentences, the citizen addressed as "Sie", no Behördendeutsch, no codes.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class Lang(StrEnum):
    DE = "de"
    EN = "en"


@dataclass(frozen=True)
class StatusText:
    """What a status means (``title``, ``meaning``) and what happens next (``next``), in one language."""

    title: str
    meaning: str
    next: str


_S = StatusText
#: code → language → text. Keep the German first; the English says the same, not more.
STATUS_TEXTS: dict[str, dict[Lang, StatusText]] = {
    "100": {
        Lang.DE: _S(
            "Antrag eingegangen", "Ihr Antrag ist bei uns angekommen.", "Wir prüfen, ob alles vollständig ist."
        ),
        Lang.EN: _S("Application received", "Your application has reached us.", "We check whether it is complete."),
    },
    "110": {
        Lang.DE: _S(
            "Antrag konnte nicht gelesen werden",
            "Ihr Antrag ist technisch nicht bei uns angekommen.",
            "Bitte stellen Sie den Antrag noch einmal. Bei Fragen hilft Ihnen die zuständige Stelle.",
        ),
        Lang.EN: _S(
            "Application could not be read",
            "Your application did not reach us in a readable form.",
            "Please submit it again. The responsible office can help you with questions.",
        ),
    },
    "120": {
        Lang.DE: _S(
            "Antrag angelegt",
            "Ihr Antrag hat bei uns ein Aktenzeichen bekommen.",
            "Eine Sachbearbeiterin oder ein Sachbearbeiter bearbeitet ihn.",
        ),
        Lang.EN: _S(
            "Application registered",
            "Your application has been given a file number.",
            "A caseworker will deal with it.",
        ),
    },
    "200": {
        Lang.DE: _S("In Bearbeitung", "Wir bearbeiten Ihren Antrag.", "Sie müssen nichts tun. Wir melden uns."),
        Lang.EN: _S("Being processed", "We are working on your application.", "You need not do anything."),
    },
    "210": {
        Lang.DE: _S(
            "Unterlagen fehlen",
            "Für Ihren Antrag fehlen noch Unterlagen.",
            "Bitte reichen Sie die Unterlagen bis zur genannten Frist ein. Was fehlt, steht in unserem Schreiben.",
        ),
        Lang.EN: _S(
            "Documents missing",
            "Some documents for your application are still missing.",
            "Please send them by the deadline shown. Our letter says what is missing.",
        ),
    },
    "220": {
        Lang.DE: _S(
            "Unterlagen vollständig",
            "Alle Unterlagen liegen vor.",
            "Wir prüfen Ihren Antrag und entscheiden dann.",
        ),
        Lang.EN: _S("Documents complete", "We have all documents.", "We review your application and then decide."),
    },
    "230": {
        Lang.DE: _S(
            "Andere Stellen beteiligt",
            "Wir haben andere Stellen um ihre Einschätzung gebeten.",
            "Das kann etwas dauern. Sie müssen nichts tun.",
        ),
        Lang.EN: _S(
            "Other offices involved",
            "We have asked other offices for their opinion.",
            "This may take some time. You need not do anything.",
        ),
    },
    "300": {
        Lang.DE: _S(
            "Bitte bezahlen",
            "Für Ihren Antrag ist eine Zahlung fällig.",
            "Bitte bezahlen Sie bis zum Fälligkeitstag. Danach geht es weiter.",
        ),
        Lang.EN: _S(
            "Payment due",
            "A payment is due for your application.",
            "Please pay by the due date. Then we continue.",
        ),
    },
    "310": {
        Lang.DE: _S(
            "Zahlung eingegangen", "Ihre Zahlung ist bei uns angekommen.", "Wir bearbeiten Ihren Antrag weiter."
        ),
        Lang.EN: _S("Payment received", "Your payment has reached us.", "We continue with your application."),
    },
    "400": {
        Lang.DE: _S(
            "Entschieden",
            "Wir haben über Ihren Antrag entschieden.",
            "Sie bekommen den Bescheid. Darin steht die Entscheidung mit Begründung.",
        ),
        Lang.EN: _S(
            "Decided",
            "We have decided on your application.",
            "You will receive the notice of decision (Bescheid) with the reasons.",
        ),
    },
    "410": {
        Lang.DE: _S(
            "Bescheid bekanntgegeben",
            "Sie haben den Bescheid bekommen. Bis zum genannten Tag können Sie Widerspruch einlegen.",
            "Wenn Sie mit der Entscheidung einverstanden sind, müssen Sie nichts tun.",
        ),
        Lang.EN: _S(
            "Notice issued",
            "You have received the notice of decision. You can object (Widerspruch) until the date shown.",
            "If you agree with the decision, you need not do anything.",
        ),
    },
    "420": {
        Lang.DE: _S(
            "Bescheid bestandskräftig",
            "Die Frist für einen Widerspruch ist vorbei. Der Bescheid gilt jetzt endgültig.",
            "Ihr Antrag ist abgeschlossen. Sie müssen nichts mehr tun.",
        ),
        Lang.EN: _S(
            "Decision final",
            "The period for an objection has ended. The notice is now final.",
            "Your application is complete. You need not do anything more.",
        ),
    },
    "430": {
        Lang.DE: _S(
            "Widerspruch eingegangen",
            "Ihr Widerspruch ist bei uns angekommen.",
            "Wir prüfen die Entscheidung noch einmal und melden uns.",
        ),
        Lang.EN: _S(
            "Objection received",
            "Your objection has reached us.",
            "We review the decision again and will let you know.",
        ),
    },
    "440": {
        Lang.DE: _S(
            "Widerspruch erfolgreich",
            "Wir haben Ihren Widerspruch geprüft und die Entscheidung geändert.",
            "Sie bekommen einen neuen Bescheid.",
        ),
        Lang.EN: _S(
            "Objection upheld",
            "We have reviewed your objection and changed the decision.",
            "You will receive a new notice of decision.",
        ),
    },
    "450": {
        Lang.DE: _S(
            "Widerspruchsbescheid",
            "Über Ihren Widerspruch ist entschieden. Sie bekommen einen Widerspruchsbescheid.",
            "Darin steht, ob und bis wann Sie dagegen beim Verwaltungsgericht klagen können.",
        ),
        Lang.EN: _S(
            "Decision on your objection",
            "Your objection has been decided. You will receive a notice on it (Widerspruchsbescheid).",
            "It says whether and until when you can take the matter to the administrative court.",
        ),
    },
    "500": {
        Lang.DE: _S("Antrag zurückgenommen", "Sie haben Ihren Antrag zurückgenommen.", "Das Verfahren ist beendet."),
        Lang.EN: _S("Application withdrawn", "You have withdrawn your application.", "The procedure has ended."),
    },
    "510": {
        Lang.DE: _S("Verfahren abgeschlossen", "Das Verfahren ist abgeschlossen.", "Es kommt nichts mehr."),
        Lang.EN: _S("Procedure closed", "The procedure is closed.", "Nothing further will follow."),
    },
}

#: The decision (Entscheidungsart code) in plain words.
ENTSCHEIDUNG_TEXTS: dict[str, dict[Lang, str]] = {
    "01": {Lang.DE: "Ihr Antrag wurde bewilligt.", Lang.EN: "Your application was granted."},
    "02": {Lang.DE: "Ihr Antrag wurde teilweise bewilligt.", Lang.EN: "Your application was partly granted."},
    "03": {Lang.DE: "Ihr Antrag wurde abgelehnt.", Lang.EN: "Your application was refused."},
    "04": {Lang.DE: "Ihr Antrag war nicht zulässig.", Lang.EN: "Your application was not admissible."},
}

_FALLBACK = {
    Lang.DE: ("Es gibt Neuigkeiten zu Ihrem Antrag.", "Wir melden uns, sobald es weitergeht."),
    Lang.EN: ("There is news about your application.", "We will let you know when things move on."),
}


def status_text(code: str, lang: Lang, label: str) -> StatusText:
    """The texts of ``code``; for a code without an entry, the code list's ``label`` and a neutral sentence."""
    texts = STATUS_TEXTS.get(code)
    if texts is not None:
        return texts[lang]
    meaning, following = _FALLBACK[lang]
    return StatusText(label, meaning, following)


#: Words of the page itself.
UI: dict[str, dict[Lang, str]] = {
    "site": {Lang.DE: "Stand Ihres Antrags", Lang.EN: "Status of your application"},
    "your_application": {Lang.DE: "Ihr Antrag", Lang.EN: "Your application"},
    "current": {Lang.DE: "Aktueller Stand", Lang.EN: "Current status"},
    "next": {Lang.DE: "Wie es weitergeht", Lang.EN: "What happens next"},
    "since": {Lang.DE: "seit", Lang.EN: "since"},
    "history": {Lang.DE: "Bisheriger Verlauf", Lang.EN: "History"},
    "frist": {Lang.DE: "Frist", Lang.EN: "Deadline"},
    "frist_until": {Lang.DE: "bis einschließlich", Lang.EN: "up to and including"},
    "corrected": {Lang.DE: "berichtigt", Lang.EN: "corrected"},
    "no_status": {
        Lang.DE: "Zu Ihrem Antrag liegt noch keine Meldung vor. Schauen Sie später wieder hier nach.",
        Lang.EN: "There is no news about your application yet. Please look again later.",
    },
    "pay_heading": {Lang.DE: "Bezahlen", Lang.EN: "Payment"},
    "pay_link": {Lang.DE: "Zahlung ansehen: jetzt oder später bezahlen", Lang.EN: "View payment: pay now or later"},
    "pay_amount": {Lang.DE: "Betrag", Lang.EN: "Amount"},
    "pay_due": {Lang.DE: "Fällig am", Lang.EN: "Due on"},
    "pay_now": {Lang.DE: "Jetzt bezahlen", Lang.EN: "Pay now"},
    "pay_online": {Lang.DE: "Online bezahlen (ePayment der Stadt)", Lang.EN: "Pay online (city ePayment)"},
    "pay_online_note": {
        Lang.DE: "Sie verlassen diese Seite und kommen zum Bezahldienst der Stadt.",
        Lang.EN: "You leave this page for the city's payment service.",
    },
    "pay_transfer": {Lang.DE: "Per Überweisung", Lang.EN: "By bank transfer"},
    "pay_girocode": {
        Lang.DE: "Mit Ihrer Banking-App scannen: Die Überweisung ist dann schon ausgefüllt.",
        Lang.EN: "Scan with your banking app: the transfer is then filled in.",
    },
    "pay_girocode_alt": {
        Lang.DE: "GiroCode für die Überweisung von {amount} an {name}, Verwendungszweck {remittance}",
        Lang.EN: "GiroCode for the transfer of {amount} to {name}, reference {remittance}",
    },
    "payee": {Lang.DE: "Empfänger", Lang.EN: "Payee"},
    "iban": {Lang.DE: "IBAN", Lang.EN: "IBAN"},
    "bic": {Lang.DE: "BIC", Lang.EN: "BIC"},
    "remittance": {Lang.DE: "Verwendungszweck", Lang.EN: "Payment reference"},
    "remittance_kz": {
        Lang.DE: "Verwendungszweck (Kassenzeichen)",
        Lang.EN: "Payment reference (Kassenzeichen, the city's reference)",
    },
    "pay_later": {Lang.DE: "Später bezahlen", Lang.EN: "Pay later"},
    "pay_ics": {
        Lang.DE: "Fälligkeitstag in den Kalender eintragen (.ics-Datei)",
        Lang.EN: "Add the due date to your calendar (.ics file)",
    },
    "pay_done": {
        Lang.DE: "Wenn Sie schon bezahlt haben, müssen Sie nichts mehr tun.",
        Lang.EN: "If you have already paid, you need not do anything more.",
    },
    "widerspruch_heading": {Lang.DE: "Widerspruch", Lang.EN: "Objection (Widerspruch)"},
    "widerspruch_link": {
        Lang.DE: "Nicht einverstanden? Informationen zum Widerspruch",
        Lang.EN: "Do you disagree? How to object",
    },
    "widerspruch_deadline": {Lang.DE: "Widerspruch möglich bis", Lang.EN: "Objection possible until"},
    "widerspruch_deadline_default": {
        Lang.DE: "Die Frist ist ein Monat, nachdem Sie den Bescheid bekommen haben. Sie steht auch im Bescheid.",
        Lang.EN: "The period is one month after you received the notice. The notice states it too.",
    },
    "rechtsbehelf": {Lang.DE: "Rechtsbehelfsbelehrung", Lang.EN: "Information on legal remedies"},
    "rechtsbehelf_lang_note": {
        Lang.DE: "",
        Lang.EN: "The legally binding text is the German one:",
    },
    "widerspruch_form": {
        Lang.DE: "Zum Online-Formular für den Widerspruch (Anmeldung mit BundID)",
        Lang.EN: "To the online objection form (sign in with BundID)",
    },
    "widerspruch_form_note": {
        Lang.DE: "Dort können Sie Ihren Widerspruch begründen und absenden. Diese Seite legt keinen Widerspruch ein.",
        Lang.EN: "There you can give your reasons and send the objection. This page does not lodge an objection.",
    },
    "back": {Lang.DE: "Zurück zum Stand Ihres Antrags", Lang.EN: "Back to the status of your application"},
    "language": {Lang.DE: "English", Lang.EN: "Deutsch"},
    "language_label": {Lang.DE: "This page in English", Lang.EN: "Diese Seite auf Deutsch"},
    "accessibility": {Lang.DE: "Barrierefreiheit", Lang.EN: "Accessibility"},
    "privacy_note": {
        Lang.DE: "Diese Seite zeigt keine Namen, Adressen oder Aktenzeichen. Teilen Sie den Link nur mit Personen, "
        "die den Stand Ihres Antrags sehen dürfen.",
        Lang.EN: "This page shows no names, addresses or file numbers. Share the link only with people who may see "
        "the status of your application.",
    },
    "not_found_title": {Lang.DE: "Seite nicht gefunden", Lang.EN: "Page not found"},
    "not_found": {
        Lang.DE: "Diesen Link kennen wir nicht, oder er gilt nicht mehr. Links zum Stand eines Antrags gelten bis "
        "einige Zeit nach dem Abschluss des Verfahrens. Bitte prüfen Sie die Adresse oder wenden Sie sich an die "
        "Stelle, die Ihnen den Brief geschickt hat.",
        Lang.EN: "We do not know this link, or it is no longer valid. Links to the status of an application are "
        "valid until some time after the procedure has ended. Please check the address or contact the office that "
        "sent you the letter.",
    },
    "unavailable_title": {Lang.DE: "Vorübergehend nicht verfügbar", Lang.EN: "Temporarily unavailable"},
    "unavailable": {
        Lang.DE: "Der Stand Ihres Antrags kann gerade nicht angezeigt werden. Es geht dabei nichts verloren. Bitte "
        "versuchen Sie es in einigen Minuten noch einmal.",
        Lang.EN: "The status of your application cannot be shown right now. Nothing is lost. Please try again in a "
        "few minutes.",
    },
    "too_many_title": {Lang.DE: "Zu viele Anfragen", Lang.EN: "Too many requests"},
    "too_many": {
        Lang.DE: "Von Ihrem Anschluss kamen sehr viele Anfragen. Bitte versuchen Sie es in einer Minute noch einmal.",
        Lang.EN: "Very many requests came from your connection. Please try again in a minute.",
    },
}


def ui(key: str, lang: Lang) -> str:
    return UI[key][lang]
