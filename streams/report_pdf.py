"""The report as PDF: the HTML printed by Chromium (Playwright for Python driving an installed Chromium).

Chromium prints exactly the HTML the committee would see, with real text (``pdftotext`` extracts every figure) and
the SVG charts as vectors. A deployment that makes PDFs needs a Chromium binary (Debian's ``chromium``, or the
path in ``RK_CHROMIUM``) and the Python package ``playwright`` (extra ``rueckkanal[pdf]``); ``playwright install``
is never needed. The page is loaded from memory with JavaScript off and no network: the report has no script and no
external asset.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from rueckkanal.errors import ConfigError

CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--no-first-run"]


def chromium_path() -> str:
    found = os.environ.get("RK_CHROMIUM") or shutil.which("chromium") or shutil.which("chromium-browser")
    if not found or not Path(found).exists():
        raise ConfigError("report --format pdf needs Chromium: install Debian's chromium or set RK_CHROMIUM")
    return found


def html_to_pdf(html: str) -> bytes:
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:  # pragma: no cover - the extra is missing
        raise ConfigError("report --format pdf needs the Python package playwright (rueckkanal[pdf])") from None
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium_path(), args=CHROMIUM_FLAGS)
        try:
            context = browser.new_context(java_script_enabled=False, offline=True)
            page = context.new_page()
            page.set_content(html, wait_until="load")
            pdf = page.pdf(
                format="A4",
                print_background=True,
                tagged=True,
                margin={"top": "15mm", "bottom": "15mm", "left": "12mm", "right": "12mm"},
            )
        finally:
            browser.close()
    return pdf
