"""The status pages in a real browser: Debian's Chromium driven by Playwright, checked by axe-core from npm.

For every example Vorgang's page, the payment view, the Widerspruch view, the accessibility statement, the 404
page and the page of a link whose database is gone (503), at 320 and at 1280 CSS px:

* axe-core (WCAG 2.1 A and AA rules) finds no violation;
* nothing scrolls sideways (the page is no wider than the viewport);
* only the site's own origin was requested (every request the browser made is recorded);
* keyboard only: Tab reaches every link of the page, each with a visible focus outline;
* a screenshot is written to ``var/screenshots/status-web/`` (git-ignored), for a person to look at.

Chromium runs with JavaScript disabled for the page itself (the pages must work without it); axe is injected
into a second, script-enabled context of the same page that bypasses the page's CSP (which would refuse it).
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from playwright.sync_api import Browser, Page, sync_playwright

from tests.support.status_web import RunningSite, start_site
from tests.support.tools import tools_env

ROOT = Path(__file__).resolve().parents[2]
SHOTS = ROOT / "var" / "screenshots" / "status-web"
WIDTHS = (320, 1280)
CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
WCAG_TAGS = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa"]


@dataclass
class Served:
    site: RunningSite
    loop: asyncio.AbstractEventLoop
    down: RunningSite  # a second site whose database is gone: every link answers the "temporarily unavailable" page


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    """The sites on their own event loop in a thread, so the synchronous Playwright API can drive them."""
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    site = asyncio.run_coroutine_threadsafe(start_site(tmp_path_factory.mktemp("status-web")), loop).result(timeout=60)
    down = asyncio.run_coroutine_threadsafe(start_site(tmp_path_factory.mktemp("down")), loop).result(timeout=60)
    asyncio.run_coroutine_threadsafe(down.store.close(), loop).result(timeout=30)
    yield Served(site, loop, down)
    for running in (site, down):
        asyncio.run_coroutine_threadsafe(running.runner.cleanup(), loop).result(timeout=30)
    asyncio.run_coroutine_threadsafe(site.store.close(), loop).result(timeout=30)
    loop.call_soon_threadsafe(loop.stop)
    thread.join(timeout=10)


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    env = tools_env()
    chromium = env.get("RK_CHROMIUM", "/usr/bin/chromium")
    if not Path(chromium).exists():
        pytest.fail(f"{chromium} is missing: run `bash scripts/tools.sh ensure` (installs Debian's chromium)")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium, args=CHROMIUM_FLAGS)
        yield browser
        browser.close()


@pytest.fixture(scope="module")
def axe_js() -> str:
    path = Path(tools_env()["RK_AXE_JS"])
    if not path.exists():
        pytest.fail(f"{path} is missing: run `bash scripts/tools.sh ensure` (installs axe-core from npm)")
    return path.read_text(encoding="utf-8")


def pages(served: Served) -> list[tuple[str, str]]:
    """(name, URL) of every page the acceptance criteria name, and the page of a link the database cannot answer."""
    return [(name, served.site.base_url + path) for name, path in _paths(served.site)] + [
        ("unavailable", next(iter(sorted(served.down.urls.values())))),
    ]


def _paths(site: RunningSite) -> list[tuple[str, str]]:
    out = []
    for key, url in sorted(site.urls.items()):
        path = urlsplit(url).path
        vorgang = key.split("|", 1)[1]
        out.append((f"status-{vorgang}", path))
    open_payment = site.urls["urn:de:leipzig:fachverfahren:hundesteuer|HST-2024-000205"]
    decided = site.urls["urn:de:leipzig:fachverfahren:gewerberegister|GA-2024-001037"]
    out += [
        ("status-HST-2024-000205-en", urlsplit(open_payment).path + "?lang=en"),
        ("zahlung-HST-2024-000205", urlsplit(open_payment).path + "/zahlung"),
        ("zahlung-HST-2024-000205-en", urlsplit(open_payment).path + "/zahlung?lang=en"),
        ("widerspruch-GA-2024-001037", urlsplit(decided).path + "/widerspruch"),
        ("widerspruch-GA-2024-001037-en", urlsplit(decided).path + "/widerspruch?lang=en"),
        ("barrierefreiheit", "/barrierefreiheit"),
        ("barrierefreiheit-en", "/barrierefreiheit?lang=en"),
        ("not-found", "/s/AAAAAAAAAAAAAAAAAAAAAAAAAAA"),
    ]
    return out


def _visit(browser: Browser, url: str, width: int) -> tuple[Page, list[str], Any]:
    context = browser.new_context(viewport={"width": width, "height": 900}, java_script_enabled=False)
    page = context.new_page()
    requested: list[str] = []
    page.on("request", lambda request: requested.append(request.url))
    page.goto(url, wait_until="load")
    return page, requested, context


def test_every_page_is_accessible_self_contained_and_fits_320_px(served: Served, browser: Browser, axe_js: str) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    problems: list[str] = []
    for name, url in pages(served):
        origin = url[: url.index("/", len("http://"))]
        for width in WIDTHS:
            page, requested, context = _visit(browser, url, width)
            page.screenshot(path=str(SHOTS / f"{name}-{width}.png"), full_page=True)
            foreign = [url for url in requested if not url.startswith(origin + "/")]
            if foreign:
                problems.append(f"{name}@{width}: requests outside the origin: {foreign}")
            html = page.content()
            if name == "unavailable" and "Vorübergehend nicht verfügbar" not in html:
                problems.append(f"{name}@{width}: not the page of a link the database cannot answer")
            page.context.close()
            # axe needs script: the same page in a script-enabled context that lets the test inject it past the CSP
            checker_context = browser.new_context(viewport={"width": width, "height": 900}, bypass_csp=True)
            checker = checker_context.new_page()
            checker.goto(url, wait_until="load")
            checker.add_script_tag(content=axe_js)
            result = checker.evaluate(
                "async (tags) => await axe.run(document, "
                "{runOnly: {type: 'tag', values: tags}, resultTypes: ['violations']})",
                WCAG_TAGS,
            )
            for violation in result["violations"]:
                targets = [node["target"] for node in violation["nodes"]][:3]
                problems.append(f"{name}@{width}: {violation['id']} ({violation['impact']}): {targets}")
            scroll = checker.evaluate("() => [document.documentElement.scrollWidth, window.innerWidth]")
            if scroll[0] > scroll[1]:
                problems.append(f"{name}@{width}: scrolls sideways ({scroll[0]} px content in {scroll[1]} px)")
            if "<script" in html.lower():
                problems.append(f"{name}@{width}: the page ships a script")
            checker_context.close()
            del context
    assert not problems, "\n".join(problems)


def test_keyboard_alone_reaches_every_link_with_a_visible_focus(served: Served, browser: Browser) -> None:
    problems: list[str] = []
    for name, url in pages(served):
        context = browser.new_context(viewport={"width": 320, "height": 900})
        page = context.new_page()
        page.goto(url, wait_until="load")
        links = page.evaluate("() => Array.from(document.querySelectorAll('a[href]')).map(a => a.outerHTML)")
        reached: list[str] = []
        for _ in range(len(links) + 3):
            page.keyboard.press("Tab")
            focused = page.evaluate(
                """() => {
                    const el = document.activeElement;
                    if (!el || el === document.body) return null;
                    const style = getComputedStyle(el);
                    const visible = style.outlineStyle !== 'none' && parseFloat(style.outlineWidth) >= 2;
                    return [el.outerHTML, visible];
                }"""
            )
            if focused is None:
                continue
            html, visible = focused
            if not visible:
                problems.append(f"{name}: focus not visible on {html[:80]}")
            if html not in reached:
                reached.append(html)
        missing = [link[:80] for link in links if link not in reached]
        if missing:
            problems.append(f"{name}: Tab never reaches {missing}")
        context.close()
    assert not problems, "\n".join(problems)
