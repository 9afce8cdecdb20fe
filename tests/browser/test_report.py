"""``rueckkanal report`` end to end: the example Vorgänge and a generated year in a SQLite store, the command run
three times (html, csv, pdf), then:

* every figure of the HTML tables (``td[data-k]``) equals the CSV's row with the same key, and nothing is missing
  on either side;
* the HTML in Chromium (JavaScript off, as a reader would open the file): axe-core finds no WCAG 2.1 A/AA
  violation, the browser requested nothing, every chart is an image with a name and has a table beside it;
* the PDF's text (``pdftotext`` from poppler-utils) holds every table figure of the HTML, in the same order.
"""

from __future__ import annotations

import asyncio
import csv
import io
import shutil
import subprocess
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from lxml import html as lxml_html
from playwright.sync_api import Browser, sync_playwright
from typer.testing import CliRunner

from adapters.statusstore import open_store
from rueckkanal.tracking import status_from_message
from streams.cli import cli
from tests.browser.test_status_pages import CHROMIUM_FLAGS, WCAG_TAGS
from tests.support import timelines
from tests.support.status_web import example_outbox
from tests.support.tools import tools_env

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def outputs(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, bytes]]:
    tmp = tmp_path_factory.mktemp("report")
    url = f"sqlite:///{tmp}/status-web.sqlite3"

    async def fill() -> None:
        store = await open_store(url)
        examples = []
        for _key, value, headers in example_outbox():
            name = next(v.decode() for k, v in headers if k == "rk.source")
            examples.append(status_from_message(value, fachverfahren=name))
        await store.apply(examples, datetime(2024, 12, 31, tzinfo=UTC))
        generated = [s for v in timelines.vorgaenge(900) for s in v]
        await store.apply(generated, datetime(2025, 12, 31, tzinfo=UTC))
        await store.record_deliveries(timelines.receipts(generated), timelines.dead_letters(25))
        await store.close()

    asyncio.run(fill())
    env = {"RK_STATUS_WEB__DATABASE_URL": url}
    out = {}
    for fmt in ("html", "csv", "pdf"):
        path = tmp / f"bericht.{fmt}"
        result = CliRunner().invoke(
            cli, ["report", "--from", "2024-01-01", "--to", "2025-12-31", "--format", fmt, "-o", str(path)], env=env
        )
        assert result.exit_code == 0, result.output
        out[fmt] = path.read_bytes()
    yield out


def html_cells(html: bytes) -> list[tuple[str, str]]:
    tree = lxml_html.fromstring(html)
    return [(td.get("data-k"), td.text_content()) for td in tree.iter("td") if td.get("data-k")]


def test_the_csv_has_exactly_the_figures_of_the_html(outputs: dict[str, bytes]) -> None:
    cells = html_cells(outputs["html"])
    rows = list(csv.DictReader(io.StringIO(outputs["csv"].decode("utf-8-sig")), delimiter=";"))
    assert len(cells) > 100  # the example data and the generated year fill every section
    assert dict(cells) == {row["schluessel"]: row["wert"] for row in rows}
    assert len(rows) == len(cells)
    sections = {row["abschnitt"] for row in rows}
    assert sections == {"fachverfahren", "leistung", "zustellung", "fehler"}
    # the example Vorgänge of 2024 are in it: a month of 2024 for the Hundesteuer
    assert any(r["zeitraum"].startswith("2024-") and r["fachverfahren"] == "hundesteuer" for r in rows)


def test_the_html_is_german_self_contained_and_names_every_leistung(outputs: dict[str, bytes]) -> None:
    text = outputs["html"].decode()
    assert '<html lang="de">' in text
    assert "<script" not in text and "http://" not in text.replace('xmlns="http://www.w3.org/2000/svg"', "")
    for name in ("Hundesteuer: Anmeldung eines Hundes", "Bewohnerparkausweis", "Gewerbeanmeldung"):
        assert name in text


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    chromium = tools_env().get("RK_CHROMIUM", "/usr/bin/chromium")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium, args=CHROMIUM_FLAGS)
        yield browser
        browser.close()


@pytest.mark.parametrize("width", [320, 1280])
def test_the_html_report_has_no_axe_violations(
    outputs: dict[str, bytes], browser: Browser, tmp_path: Path, width: int
) -> None:
    path = tmp_path / "bericht.html"
    path.write_bytes(outputs["html"])
    axe = Path(tools_env()["RK_AXE_JS"]).read_text(encoding="utf-8")
    context = browser.new_context(viewport={"width": width, "height": 900})
    page = context.new_page()
    requested: list[str] = []
    page.on("request", lambda request: requested.append(request.url))
    page.goto(path.as_uri(), wait_until="load")
    assert requested == [path.as_uri()]
    page.add_script_tag(content=axe)
    result = page.evaluate(
        "async (tags) => await axe.run(document, {runOnly: {type: 'tag', values: tags}, resultTypes: ['violations']})",
        WCAG_TAGS,
    )
    violations = [(v["id"], [n["target"] for n in v["nodes"]][:3]) for v in result["violations"]]
    assert violations == []
    # every chart is a named image, and the table with its values stands in the same pair
    pairs = page.locator("div.pair")
    assert pairs.count() > 5
    for i in range(pairs.count()):
        pair = pairs.nth(i)
        assert pair.locator("table").count() == 1
        for svg in pair.locator("svg").all():
            assert svg.get_attribute("role") == "img"
            assert svg.locator("title").count() == 1
    width_used = page.evaluate("document.documentElement.scrollWidth")
    assert width_used <= width
    context.close()


def test_the_pdf_text_holds_every_figure_of_the_html_in_order(outputs: dict[str, bytes], tmp_path: Path) -> None:
    pdftotext = shutil.which("pdftotext")
    assert pdftotext, "pdftotext is missing: run `bash scripts/tools.sh ensure` (installs Debian's poppler-utils)"
    assert outputs["pdf"].startswith(b"%PDF-")
    path = tmp_path / "bericht.pdf"
    path.write_bytes(outputs["pdf"])
    text = subprocess.run([pdftotext, "-enc", "UTF-8", str(path), "-"], capture_output=True, text=True, check=True)
    tokens = text.stdout.split()
    assert "Bearbeitungszeiten" in tokens[:20]
    wanted = [token for _, value in html_cells(outputs["html"]) for token in value.split()]
    position = 0
    for token in wanted:  # a subsequence: every figure, in the HTML's order
        try:
            position = tokens.index(token, position) + 1
        except ValueError:
            pytest.fail(f"figure {token!r} (#{wanted.index(token)}) not found in the PDF's text after token {position}")
