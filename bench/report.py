"""``rueckkanal report`` benchmark, short (well under a minute): the report for the example Vorgänge (baseline)
and for 100,000 generated Vorgänge (tests/support/timelines.py: about 450,000 statuses, receipts of two targets),
both in SQLite, in the same invocation. Timed separately: filling the database (not part of the report), the
figures in SQL (``build_report``), the HTML and CSV rendering, and the PDF (Chromium, if installed).

    .venv/bin/python bench/report.py [--vorgaenge 100000]
"""

from __future__ import annotations

import argparse
import asyncio
import shutil
import sys
import tempfile
import time
from datetime import UTC, date, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from adapters.statusstore import open_store  # noqa: E402
from rueckkanal.tracking import status_from_message  # noqa: E402
from streams.report import build_report, render_csv, render_html  # noqa: E402
from tests.support import timelines  # noqa: E402
from tests.support.status_web import example_outbox  # noqa: E402


async def fill_examples(url: str) -> None:
    store = await open_store(url)
    statuses = []
    for _key, value, headers in example_outbox():
        name = next(v.decode() for k, v in headers if k == "rk.source")
        statuses.append(status_from_message(value, fachverfahren=name))
    await store.apply(statuses, datetime(2024, 12, 31, tzinfo=UTC))
    await store.close()


async def fill_generated(url: str, count: int) -> int:
    store = await open_store(url)
    batch, total = [], 0
    for vorgang in timelines.vorgaenge(count):
        batch += vorgang
        if len(batch) >= 20_000:
            await store.apply(batch, datetime(2025, 12, 31, tzinfo=UTC))
            await store.record_deliveries(timelines.receipts(batch), [])
            total += len(batch)
            batch = []
    await store.apply(batch, datetime(2025, 12, 31, tzinfo=UTC))
    await store.record_deliveries(timelines.receipts(batch), timelines.dead_letters(200))
    await store.close()
    return total + len(batch)


async def report_times(url: str, start: date, end: date) -> dict[str, float]:
    store = await open_store(url)
    t0 = time.perf_counter()
    report = await build_report(store, start, end, city="Stadt Leipzig")
    t1 = time.perf_counter()
    html = render_html(report)
    render_csv(report)
    t2 = time.perf_counter()
    await store.close()
    times = {"sql_s": t1 - t0, "html_csv_s": t2 - t1, "html_kb": len(html) / 1024}
    if shutil.which("chromium"):
        from streams.report_pdf import html_to_pdf

        t3 = time.perf_counter()
        pdf = await asyncio.to_thread(html_to_pdf, html)
        times["pdf_s"] = time.perf_counter() - t3
        times["pdf_kb"] = len(pdf) / 1024
    return times


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--vorgaenge", type=int, default=100_000)
    args = parser.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="rk-report-bench-"))
    base_url, big_url = f"sqlite:///{tmp}/examples.sqlite3", f"sqlite:///{tmp}/generated.sqlite3"
    asyncio.run(fill_examples(base_url))
    t = time.perf_counter()
    statuses = asyncio.run(fill_generated(big_url, args.vorgaenge))
    fill_s = time.perf_counter() - t
    base = asyncio.run(report_times(base_url, date(2024, 1, 1), date(2024, 12, 31)))
    big = asyncio.run(report_times(big_url, date(2025, 1, 1), date(2025, 12, 31)))
    print(f"filled {args.vorgaenge} Vorgänge ({statuses} statuses) in {fill_s:.1f} s (not part of the report)")
    for name, figures in (("examples", base), (f"{args.vorgaenge} Vorgänge", big)):
        print(name, " ".join(f"{k}={v:.2f}" for k, v in figures.items()))
    total = lambda f: f["sql_s"] + f["html_csv_s"] + f.get("pdf_s", 0.0)  # noqa: E731
    print(
        f"ratio total (100k / examples): x{total(big) / total(base):.1f}; SQL alone x{big['sql_s'] / base['sql_s']:.0f}"
    )
    shutil.rmtree(tmp)


if __name__ == "__main__":
    main()
