"""``rueckkanal report``: the yearly report for the council's committee, from status-web's database.

:func:`build_report` asks the store for the figures (computed in SQL, rules in :mod:`rueckkanal.transparency`);
:func:`render_html` and :func:`render_csv` print the same :class:`Report`, so the CSV has exactly the HTML's
numbers: every figure is one :class:`Cell` with a stable key, printed once in the HTML table beside its chart
(``data-k``) and once as a CSV row. The HTML is one self-contained German document: inline SVG charts, no script,
no third-party assets; every chart is an image with a title and description whose values stand in the data table
beside it (WCAG 2.1 AA: text alternatives, tables with captions and header cells, colour never the only cue,
contrast ≥ 4.5:1). The PDF is the HTML printed by Chromium (:mod:`streams.report_pdf`).
"""

from __future__ import annotations

import csv
import io
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from html import escape

from adapters.statusstore.base import StatusStore
from rueckkanal.transparency import (
    DELIVERY_LIMITS,
    STATUS_WEB_TARGET,
    STEP_BY_NAME,
    STEPS,
    TOTAL_PERIOD,
    DeadLetterFigure,
    DeliveryFigure,
    StepFigure,
    StepQuery,
    days,
    epoch_seconds,
)
from streams.status_web.html import long_date, month_name
from streams.status_web.texts import Lang

CHART_STEP = "eingang_entschieden"  # the step the per-Leistung chart shows month by month


@dataclass(frozen=True)
class Report:
    city: str
    start: date  # first day
    end: date  # last day (inclusive)
    by_leistung: list[StepFigure]  # monthly and TOTAL_PERIOD
    by_fachverfahren: list[StepFigure]
    deliveries: list[DeliveryFigure]
    dead_letters: list[DeadLetterFigure]
    fachverfahren_names: dict[str, str] = field(default_factory=dict)
    leistung_names: dict[tuple[str, str], str] = field(default_factory=dict)
    generated_at: datetime = field(default_factory=lambda: datetime.now(UTC))

    def fv_name(self, fv: str) -> str:
        return self.fachverfahren_names.get(fv, fv)

    def leistung_name(self, fv: str, leistung: str) -> str:
        return self.leistung_names.get((fv, leistung), f"Leistung {leistung}")


def window(start: date, end: date) -> tuple[int, int]:
    """``[start 00:00 UTC, end + 1 day 00:00 UTC)`` as epoch seconds."""
    return (
        epoch_seconds(datetime.combine(start, time(), UTC)),
        epoch_seconds(datetime.combine(end + timedelta(days=1), time(), UTC)),
    )


async def build_report(
    store: StatusStore,
    start: date,
    end: date,
    *,
    city: str,
    fachverfahren_names: dict[str, str] | None = None,
    leistung_names: dict[tuple[str, str], str] | None = None,
) -> Report:
    a, b = window(start, end)
    by_leistung = [
        *await store.step_figures(StepQuery(a, b, by="leistung", monthly=False)),
        *await store.step_figures(StepQuery(a, b, by="leistung", monthly=True)),
    ]
    by_fv = [
        *await store.step_figures(StepQuery(a, b, by="fachverfahren", monthly=False)),
        *await store.step_figures(StepQuery(a, b, by="fachverfahren", monthly=True)),
    ]
    return Report(
        city=city,
        start=start,
        end=end,
        by_leistung=by_leistung,
        by_fachverfahren=by_fv,
        deliveries=await store.delivery_figures(a, b),
        dead_letters=await store.dead_letter_figures(a, b),
        fachverfahren_names=dict(fachverfahren_names or {}),
        leistung_names=dict(leistung_names or {}),
    )


# --- formatting ------------------------------------------------------------------------------------------------


def de_number(value: float, decimals: int = 1) -> str:
    text = f"{value:,.{decimals}f}"
    return text.replace(",", " ").replace(".", ",").replace(" ", ".")


def de_int(value: int) -> str:
    return f"{value:,}".replace(",", ".")


def share(part: int, whole: int) -> str:
    return "–" if whole == 0 else de_number(100 * part / whole) + " %"


def de_date(day: date) -> str:
    return long_date(day, Lang.DE)


def period_label(period: str) -> str:
    if period == TOTAL_PERIOD:
        return "ganzer Zeitraum"
    year, month = period.split("-")
    return f"{month_name(int(month), Lang.DE)} {year}"


def target_label(target: str) -> str:
    if target == STATUS_WEB_TARGET:
        return "Statusseite der Stadt (status-web)"
    if target == "default":
        return "Landesportal (Standardziel)"
    if target == "":
        return "Eingang (vor der Zustellung)"
    return target


# --- cells: every figure once, with a key the CSV shares --------------------------------------------------------


@dataclass(frozen=True)
class Cell:
    key: str  # section|fachverfahren|leistung|period|item|measure
    text: str  # as printed (German number format)


def step_cells(section: str, f: StepFigure) -> list[Cell]:
    base = f"{section}|{f.fachverfahren}|{f.leistung or ''}|{f.period}|{f.step}"
    return [
        Cell(f"{base}|anzahl", de_int(f.count)),
        Cell(f"{base}|median_tage", de_number(days(f.median))),
        Cell(f"{base}|p80_tage", de_number(days(f.p80))),
    ]


def delivery_cells(f: DeliveryFigure) -> list[Cell]:
    base = f"zustellung|||{TOTAL_PERIOD}|{f.target}"
    cells = [Cell(f"{base}|statusmeldungen", de_int(f.statuses)), Cell(f"{base}|erreicht", de_int(f.reached))]
    for limit, count in zip(DELIVERY_LIMITS, f.within, strict=True):
        cells.append(Cell(f"{base}|anteil_{limit}s", share(count, f.statuses)))
    return cells


def dead_letter_cells(f: DeadLetterFigure) -> list[Cell]:
    return [Cell(f"fehler|||{TOTAL_PERIOD}|{f.target}/{f.stage}/{f.reason}|anzahl", de_int(f.count))]


def all_cells(report: Report) -> list[Cell]:
    cells = [c for f in report.by_fachverfahren for c in step_cells("fachverfahren", f)]
    cells += [c for f in report.by_leistung for c in step_cells("leistung", f)]
    cells += [c for f in report.deliveries for c in delivery_cells(f)]
    cells += [c for f in report.dead_letters for c in dead_letter_cells(f)]
    return cells


def render_csv(report: Report) -> str:
    """One row per figure: ``schluessel;abschnitt;fachverfahren;leistung;zeitraum;gegenstand;kennzahl;wert``
    (semicolons and decimal commas, as German spreadsheets read them)."""
    out = io.StringIO()
    writer = csv.writer(out, delimiter=";", lineterminator="\r\n")
    writer.writerow(
        ["schluessel", "abschnitt", "fachverfahren", "leistung", "zeitraum", "gegenstand", "kennzahl", "wert"]
    )
    for cell in all_cells(report):
        writer.writerow([cell.key, *cell.key.split("|"), cell.text])
    return out.getvalue()


# --- SVG charts -------------------------------------------------------------------------------------------------

# Two series colours with ≥ 4.5:1 against white (and told apart by their legend text and position, not colour).
COLOURS = ("#1d4f91", "#8a3b00")


def bar_chart(
    chart_id: str,
    title: str,
    rows: Sequence[tuple[str, Sequence[float]]],
    series: Sequence[str],
    unit: str,
    table_id: str,
    decimals: int = 1,
) -> str:
    """Horizontal bars, one group per row, one bar per series, each bar labelled with its value."""
    label_w, bar_w, bar_h, gap = 190, 300, 14, 10
    peak = max([v for _, values in rows for v in values] + [1e-9])
    group_h = bar_h * len(series) + gap
    legend_h = 22
    height = legend_h + group_h * len(rows) + 6
    width = label_w + bar_w + 90
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" role="img" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" aria-labelledby="{chart_id}-t {chart_id}-d">'
        f'<title id="{chart_id}-t">{escape(title)}</title>'
        f'<desc id="{chart_id}-d">Balkendiagramm; die Werte stehen in der Tabelle daneben ({escape(unit)}).</desc>'
    ]
    x = label_w
    for i, name in enumerate(series):
        parts.append(f'<rect x="{x}" y="4" width="12" height="12" fill="{COLOURS[i % 2]}"/>')
        parts.append(f'<text x="{x + 16}" y="14" font-size="12">{escape(name)}</text>')
        x += 16 + 8 * len(name) + 16
    y = legend_h
    for label, values in rows:
        parts.append(f'<text x="{label_w - 6}" y="{y + bar_h}" font-size="12" text-anchor="end">{escape(label)}</text>')
        for i, value in enumerate(values):
            w = max(1.0, bar_w * value / peak)
            by = y + i * bar_h
            parts.append(
                f'<rect x="{label_w}" y="{by + 1}" width="{w:.1f}" height="{bar_h - 2}" fill="{COLOURS[i % 2]}"/>'
            )
            parts.append(
                f'<text x="{label_w + w + 4:.1f}" y="{by + bar_h - 3}" font-size="11">'
                f"{de_number(value, decimals)}</text>"
            )
        y += group_h
    parts.append("</svg>")
    return "".join(parts)


# --- HTML ------------------------------------------------------------------------------------------------------

CSS = """
body{font-family:"DejaVu Sans",Arial,sans-serif;color:#1a1a1a;background:#fff;margin:0 auto;max-width:72rem;
padding:1rem;line-height:1.5}
h1{font-size:1.6rem}h2{font-size:1.3rem;margin-top:2rem;border-bottom:2px solid #1d4f91}h3{font-size:1.1rem}
.pair{display:flex;flex-wrap:wrap;gap:1.5rem;align-items:flex-start;margin:1rem 0;break-inside:avoid}
.pair>*{min-width:0;max-width:100%}figure{margin:0}.wrap{overflow-x:auto}svg{max-width:100%;height:auto}
table{border-collapse:collapse;font-size:.9rem}caption{text-align:left;font-weight:bold;padding-bottom:.3rem}
th,td{border:1px solid #6b6b6b;padding:.2rem .5rem;text-align:left}td.n{text-align:right}
thead th{background:#e8eef7}.note{color:#333}
@media print{body{max-width:none;padding:0}h2{break-after:avoid}}
"""


def _table(table_id: str, caption: str, head: Sequence[str], rows: Iterable[tuple[str, Sequence[Cell]]]) -> str:
    out = [
        f'<div class="wrap" role="region" tabindex="0" aria-labelledby="{table_id}-c">'
        f'<table id="{table_id}"><caption id="{table_id}-c">{escape(caption)}</caption><thead><tr>'
    ]
    out += [f'<th scope="col">{escape(h)}</th>' for h in head]
    out.append("</tr></thead><tbody>")
    for label, cells in rows:
        out.append(f'<tr><th scope="row">{escape(label)}</th>')
        out += [f'<td class="n" data-k="{escape(c.key)}">{escape(c.text)}</td>' for c in cells]
        out.append("</tr>")
    out.append("</tbody></table></div>")
    return "".join(out)


class _Ids:
    def __init__(self) -> None:
        self.n = 0

    def __call__(self, prefix: str) -> str:
        self.n += 1
        return f"{prefix}{self.n}"


def _steps_block(ids: _Ids, section: str, title: str, figures: list[StepFigure]) -> str:
    """A chart of median and 80th percentile per step over the whole period, the table beside it."""
    total = {f.step: f for f in figures if f.period == TOTAL_PERIOD}
    steps = [s for s in STEPS if s.name in total]
    if not steps:
        return '<p class="note">Im Zeitraum wurde hier kein Schritt abgeschlossen.</p>'
    table_id, chart_id = ids("t"), ids("c")
    chart = bar_chart(
        chart_id,
        f"{title}: Dauer je Schritt in Tagen",
        [(s.label_de, (days(total[s.name].median), days(total[s.name].p80))) for s in steps],
        ("Median", "80. Perzentil"),
        "Tage",
        table_id,
    )
    table = _table(
        table_id,
        f"{title}: Dauer je Schritt, ganzer Zeitraum",
        ("Schritt", "Vorgänge", "Median (Tage)", "80. Perzentil (Tage)"),
        [(s.label_de, step_cells(section, total[s.name])) for s in steps],
    )
    return f'<div class="pair"><figure>{chart}</figure>{table}</div>'


def _monthly_block(ids: _Ids, section: str, title: str, figures: list[StepFigure]) -> str:
    """Month by month: a chart of the median of Eingang → Entscheidung, the table of every step beside it."""
    monthly = sorted((f for f in figures if f.period != TOTAL_PERIOD), key=lambda f: (f.period, f.step))
    if not monthly:
        return ""
    table_id, chart_id = ids("t"), ids("c")
    chart_rows = [(period_label(f.period), (days(f.median), days(f.p80))) for f in monthly if f.step == CHART_STEP]
    step = STEP_BY_NAME[CHART_STEP]
    chart = (
        bar_chart(
            chart_id,
            f"{title}: {step.label_de} je Monat, in Tagen",
            chart_rows,
            ("Median", "80. Perzentil"),
            "Tage",
            table_id,
        )
        if chart_rows
        else ""
    )
    table = _table(
        table_id,
        f"{title}: je Monat (Monat des Abschlusses des Schritts)",
        ("Monat und Schritt", "Vorgänge", "Median (Tage)", "80. Perzentil (Tage)"),
        [(f"{period_label(f.period)}: {STEP_BY_NAME[f.step].label_de}", step_cells(section, f)) for f in monthly],
    )
    return f'<div class="pair">{f"<figure>{chart}</figure>" if chart else ""}{table}</div>'


def render_html(report: Report) -> str:
    ids = _Ids()
    period = f"{de_date(report.start)} bis {de_date(report.end)}"
    body = [
        f"<header><h1>Rückkanal: Bearbeitungszeiten und Zustellung</h1>"
        f"<p>{escape(report.city)}, Bericht an den Fachausschuss, Zeitraum {escape(period)}.</p></header>",
        "<main>",
        '<section aria-labelledby="lesen"><h2 id="lesen">So sind die Zahlen zu lesen</h2>'
        "<p>Gezählt werden Vorgänge, die einen Schritt im Zeitraum abgeschlossen haben, mit den Zeitpunkten, die "
        "das Fachverfahren gemeldet hat. Der <strong>Median</strong> ist die Dauer, die mindestens die Hälfte der "
        "Vorgänge nicht überschritten hat; das <strong>80. Perzentil</strong> die Dauer, die mindestens 80 von 100 "
        "Vorgängen nicht überschritten haben (Rangmethode: der Wert an Rang ⌈p·n/100⌉ der aufsteigend sortierten "
        "Dauern; bei gerader Anzahl ist der Median der kleinere der beiden mittleren Werte). Tage sind auf eine "
        "Nachkommastelle gerundet. Wurde ein Status berichtigt, zählt die Berichtigung; nach einem Widerspruch "
        "zählt die erste Entscheidung. Monate nach koordinierter Weltzeit (UTC).</p></section>",
        '<section aria-labelledby="fv"><h2 id="fv">Nach Fachverfahren</h2>',
    ]
    per_fv: dict[str, list[StepFigure]] = defaultdict(list)
    for f in report.by_fachverfahren:
        per_fv[f.fachverfahren].append(f)
    if not per_fv:
        body.append('<p class="note">Im Zeitraum wurde kein Schritt abgeschlossen.</p>')
    for fv in sorted(per_fv):
        name = report.fv_name(fv)
        body.append(f"<h3>{escape(name)}</h3>")
        body.append(_steps_block(ids, "fachverfahren", name, per_fv[fv]))
        body.append(_monthly_block(ids, "fachverfahren", name, per_fv[fv]))
    body.append("</section>")
    body.append('<section aria-labelledby="leistung"><h2 id="leistung">Nach Leistung und Monat</h2>')
    per_leistung: dict[tuple[str, str], list[StepFigure]] = defaultdict(list)
    for f in report.by_leistung:
        per_leistung[(f.fachverfahren, f.leistung or "")].append(f)
    if not per_leistung:
        body.append('<p class="note">Im Zeitraum wurde kein Schritt abgeschlossen.</p>')
    for fv, leistung in sorted(per_leistung):
        name = report.leistung_name(fv, leistung)
        figures = per_leistung[(fv, leistung)]
        body.append(f"<h3>{escape(name)} <small>({escape(report.fv_name(fv))}, {escape(leistung)})</small></h3>")
        body.append(_steps_block(ids, "leistung", name, figures))
        body.append(_monthly_block(ids, "leistung", name, figures))
    body.append("</section>")
    body.append(_delivery_section(ids, report))
    body.append("</main>")
    body.append(
        f'<footer><p class="note">Erstellt am {escape(de_date(report.generated_at.date()))} aus der Datenbank der '
        "Statusseite (status-web). Quelle der Zustellzeiten: Quittungen der Zustellziele und Fehlerkopfzeilen der "
        "Dead-Letter-Queue; keine Inhalte von Anträgen.</p></footer>"
    )
    return (
        '<!DOCTYPE html><html lang="de"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>Rückkanal: Bearbeitungszeiten und Zustellung, {escape(period)}</title>"
        f"<style>{CSS}</style></head><body>{''.join(body)}</body></html>"
    )


def _delivery_section(ids: _Ids, report: Report) -> str:
    parts = ['<section aria-labelledby="zustellung"><h2 id="zustellung">Zustellung je Ziel</h2>']
    parts.append(
        '<p class="note">Anteil der Statusmeldungen des Zeitraums, die das Ziel innerhalb einer Minute und innerhalb '
        "einer Stunde nach dem gemeldeten Zeitpunkt erreicht haben (ganze Sekunden). Grundlage sind alle "
        "Statusmeldungen in der Datenbank der Statusseite; ein Ziel, das manche Meldungen nicht erhält (etwa das "
        "BundID-Postfach ohne Postfachbezug), erreicht weniger als 100 %.</p>"
    )
    if report.deliveries:
        table_id, chart_id = ids("t"), ids("c")
        rows = []
        for f in report.deliveries:
            rows.append((target_label(f.target), tuple(100 * n / f.statuses if f.statuses else 0 for n in f.within)))
        parts.append('<div class="pair"><figure>')
        parts.append(
            bar_chart(
                chart_id,
                "Anteil rechtzeitig zugestellter Statusmeldungen je Ziel, in Prozent",
                rows,
                ("bis 1 Minute", "bis 1 Stunde"),
                "Prozent",
                table_id,
            )
        )
        parts.append("</figure>")
        parts.append(
            _table(
                table_id,
                "Zustellung je Ziel",
                ("Ziel", "Statusmeldungen", "erreicht", "bis 1 Minute", "bis 1 Stunde"),
                [(target_label(f.target), delivery_cells(f)) for f in report.deliveries],
            )
        )
        parts.append("</div>")
    else:
        parts.append('<p class="note">Im Zeitraum gab es keine Statusmeldungen.</p>')
    parts.append('<h3 id="fehler">Nicht zustellbare Nachrichten (Dead Letters) nach Grund</h3>')
    if report.dead_letters:
        table_id, chart_id = ids("t"), ids("c")
        labels = [f"{target_label(f.target)}: {f.reason}" for f in report.dead_letters]
        parts.append('<div class="pair"><figure>')
        parts.append(
            bar_chart(
                chart_id,
                "Dead Letters nach Ziel und Grund",
                [(label, (f.count,)) for label, f in zip(labels, report.dead_letters, strict=True)],
                ("Anzahl",),
                "Anzahl",
                table_id,
                decimals=0,
            )
        )
        parts.append("</figure>")
        parts.append(
            _table(
                table_id,
                "Dead Letters nach Ziel, Stufe und Grund",
                ("Ziel, Stufe und Grund", "Anzahl"),
                [
                    (f"{target_label(f.target)}, {f.stage}: {f.reason}", dead_letter_cells(f))
                    for f in report.dead_letters
                ],
            )
        )
        parts.append("</div>")
    else:
        parts.append('<p class="note">Im Zeitraum gab es keine.</p>')
    parts.append("</section>")
    return "".join(parts)


# --- the command ----------------------------------------------------------------------------------------------


def report_command(start: date, end: date, fmt: str, settings: object, configs: Sequence[object]) -> bytes:
    """Build and render the report (the CLI's body; ``settings`` and ``configs`` as loaded by the CLI)."""
    import asyncio

    from adapters.statusstore import open_store

    fv_names: dict[str, str] = {}
    leistung_names: dict[tuple[str, str], str] = {}
    for config in configs:
        name = config.name  # type: ignore[attr-defined]
        fv_names[name] = config.description or name.capitalize()  # type: ignore[attr-defined]
        for key, value in config.leistungen.items():  # type: ignore[attr-defined]
            leistung_names[(name, key)] = value.de

    async def run() -> Report:
        sw = settings.status_web  # type: ignore[attr-defined]
        store = await open_store(sw.database_url.get_secret_value())
        try:
            return await build_report(
                store, start, end, city=sw.city, fachverfahren_names=fv_names, leistung_names=leistung_names
            )
        finally:
            await store.close()

    report = asyncio.run(run())
    if fmt == "csv":
        return render_csv(report).encode("utf-8-sig")  # with BOM: spreadsheets then read the umlauts
    html = render_html(report)
    if fmt == "pdf":
        from streams.report_pdf import html_to_pdf

        return html_to_pdf(html)
    return html.encode()
