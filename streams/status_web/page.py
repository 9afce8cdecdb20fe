"""The page model: what the citizen's status page shows, decided from the stored statuses alone. Pure.

:func:`build_page` turns a Vorgang's :class:`~rueckkanal.tracking.StoredStatus` rows into a :class:`StatusPage`:

* the timeline in sequenznummer order (never arrival order), the last entry being the current status;
* the current status in plain words and what happens next (:mod:`streams.status_web.texts`), the Frist of the
  current status, and the decision in words when there is one;
* an open payment: the newest 300 that no later 310 answered (pay now, pay later);
* the Widerspruch view while an objection is possible (current status 400 decided or 410 Bescheid bekanntgegeben,
  not 420 bestandskräftig), with the deadline of the newest 410 and the Rechtsbehelfsbelehrung from that status's
  Hinweis or else from the configuration of the Leistung;
* a corrected status (Statusberichtigung 0102) in the place of the one it replaced, marked as corrected.

The Leistung is named by the Fachverfahren's configuration, never by its code or the Fachverfahren's URN.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import date, datetime

from rueckkanal.codelists import codelists
from rueckkanal.epc import Transfer, transfer_for
from rueckkanal.tracking import Payment, StoredStatus, timeline
from streams.status_web.texts import ENTSCHEIDUNG_TEXTS, Lang, StatusText, status_text

PAYMENT_REQUESTED, PAYMENT_RECEIVED = "300", "310"
DECISION_STATUSES = frozenset({"400", "410"})  # objection possible: decided, or bekanntgegeben with a Frist
RECHTSBEHELFSFRIST = "410"  # Bescheid bekanntgegeben: its Frist is the end of the Rechtsbehelfsfrist
REOPENED = "430"


@dataclass(frozen=True)
class Widerspruch:
    """How to object: the legal text, the online form, and the deadline if the authority reported one."""

    form_url: str
    rechtsbehelfsbelehrung: str
    deadline: date | None


@dataclass(frozen=True)
class WiderspruchConfig:
    """The Rechtsbehelfsbelehrung and the online form of a Leistung (or the default)."""

    form_url: str
    rechtsbehelfsbelehrung: str


@dataclass(frozen=True)
class Entry:
    """One step of the timeline."""

    status: str
    title: str
    detail: str | None  # the Fachverfahren's own line, when it says more than the code list's label
    when: datetime
    frist: date | None
    corrected: bool = False  # a Statusberichtigung replaced the status first reported here


@dataclass(frozen=True)
class StatusPage:
    lang: Lang
    leistung: str | None
    entries: tuple[Entry, ...]
    current: StatusText | None
    zusatz: tuple[str, ...]  # the current status's Zusatzinformation and Hinweis, as given
    decision: str | None
    frist: date | None
    payment: Payment | None
    transfer: Transfer | None
    widerspruch: Widerspruch | None
    estimate: str | None = None  # "usually about N days from here to the decision" (streams/status_web/estimate.py)

    @property
    def latest(self) -> Entry | None:
        return self.entries[-1] if self.entries else None


LeistungNames = Callable[[str, str, Lang], str | None]  # (fachverfahren, leistung, lang) → name


def build_page(
    statuses: Iterable[StoredStatus],
    lang: Lang,
    leistung_name: LeistungNames,
    widerspruch: Mapping[str, WiderspruchConfig],
    default_widerspruch: WiderspruchConfig,
) -> StatusPage:
    steps = timeline(statuses)
    label = codelists().antragsstatus.label
    entries = tuple(
        Entry(
            status=step.status,
            title=status_text(step.status, lang, label(step.status)).title,
            detail=step.status_text if step.status_text != label(step.status) else None,
            when=step.zeitpunkt,
            frist=step.frist,
            corrected=step.corrected,
        )
        for step in steps
    )
    if not steps:
        return StatusPage(lang, None, (), None, (), None, None, None, None, None)
    latest = steps[-1]
    name = leistung_name(latest.fachverfahren, latest.leistung, lang)
    decision = next((step.entscheidung for step in reversed(steps) if step.entscheidung is not None), None)
    payment = _open_payment(steps)
    return StatusPage(
        lang=lang,
        leistung=name,
        entries=entries,
        current=status_text(latest.status, lang, label(latest.status)),
        zusatz=tuple(text for text in (latest.zusatzinformation, latest.hinweis) if text),
        decision=ENTSCHEIDUNG_TEXTS[decision][lang] if decision in ENTSCHEIDUNG_TEXTS else None,
        frist=latest.frist,
        payment=payment,
        transfer=transfer_for(payment) if payment is not None else None,
        widerspruch=_widerspruch(steps, widerspruch.get(latest.leistung, default_widerspruch)),
    )


def _open_payment(steps: list[StoredStatus]) -> Payment | None:
    """The newest requested payment that no later receipt answered."""
    for step in reversed(steps):
        if step.status == PAYMENT_RECEIVED:
            return None
        if step.status == PAYMENT_REQUESTED:
            return step.zahlung
    return None


def _widerspruch(steps: list[StoredStatus], config: WiderspruchConfig) -> Widerspruch | None:
    if steps[-1].status not in DECISION_STATUSES:
        return None
    frist = None
    for step in reversed(steps):  # the Frist of this decision: none from before a Widerspruch reopened the Vorgang
        if step.status == REOPENED:
            break
        if step.status == RECHTSBEHELFSFRIST:
            frist = step
            break
    text = frist.hinweis if frist is not None and frist.hinweis else config.rechtsbehelfsbelehrung
    return Widerspruch(config.form_url, text, frist.frist if frist is not None else None)
