"""status-web in tests: the example Vorgänge as outbox records, and a running site on a real port.

:func:`example_outbox` renders every example record of ``config/examples`` through the pipeline's own path
(adapter → lifecycle → renderer → outbox headers), so the pages are fed exactly what the outbox would carry.
:class:`RunningSite` serves the public pages of a SQLite store on 127.0.0.1 (aiohttp), with a link per Vorgang.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path

from aiohttp import web
from prometheus_client import CollectorRegistry

from adapters.inbound.config import build_adapter, load_fachverfahren
from adapters.inbound.samples import read_sample
from adapters.statusstore import open_store
from adapters.statusstore.base import StatusStore
from rueckkanal.lifecycle import Advanced, VorgangState, advance
from rueckkanal.settings import PROJECT_ROOT, Settings
from rueckkanal.tracking import status_from_message
from rueckkanal.xoev import MessageRenderer
from streams.ingest import outbox_headers
from streams.status_web.estimate import Estimates
from streams.status_web.http import StatusSite, public_app
from streams.status_web.links import Links
from streams.status_web.main import leistung_names, widerspruch_configs
from streams.status_web.metrics import StatusWebMetrics
from streams.status_web.ratelimit import RateLimiter
from tests.support.kafka_io import Record

EXAMPLES = PROJECT_ROOT / "config" / "examples"
PEPPER = b"test-pepper-0123456789abcdef"


def example_outbox() -> list[Record]:
    """The outbox records of every example Vorgang (the demo's illegal transition is not among the examples)."""
    settings = Settings()
    renderer = MessageRenderer(settings.xoev)
    records: list[Record] = []
    for config in sorted(load_fachverfahren(settings.fachverfahren_dir), key=lambda c: c.name):
        adapter = build_adapter(config)
        states: dict[str, VorgangState] = {}
        for path in sorted((EXAMPLES / config.name).glob("*.json")):
            sample = read_sample(path)
            event = adapter.decode(sample.record(config.topic))
            result = advance(states.get(event.vorgang_key), event)
            if not isinstance(result, Advanced):
                raise AssertionError(f"{path.name}: {result}")
            states[event.vorgang_key] = result.state
            rendered = renderer.render(event, result.state)
            headers = [(name, value.encode()) for name, value in sample.headers.items()]
            records.append(
                (event.vorgang_key.encode(), rendered.xml, outbox_headers(event, rendered, headers, config.name))
            )
    return records


@dataclass
class RunningSite:
    """The public pages on a free port, over a SQLite store holding the example Vorgänge."""

    store: StatusStore
    links: Links
    site: StatusSite
    runner: web.AppRunner
    base_url: str
    urls: dict[str, str] = field(default_factory=dict)  # Vorgang key → its tracking link

    async def close(self) -> None:
        await self.runner.cleanup()
        await self.store.close()


async def start_site(
    tmp_path: Path, *, rate_limit: int = 100_000, ttl: timedelta = timedelta(days=90), estimate_min_count: int = 20
) -> RunningSite:
    settings = Settings()
    store = await open_store(f"sqlite:///{tmp_path}/status-web.sqlite3")
    from datetime import UTC, datetime

    from rueckkanal.tracking import StoredStatus

    statuses: list[StoredStatus] = []
    for _key, value, headers in example_outbox():
        name = next(v.decode() for k, v in headers if k == "rk.source")
        statuses.append(status_from_message(value, fachverfahren=name))
    await store.apply(statuses, datetime.now(UTC))
    runner_box: list[web.AppRunner] = []
    links = Links(store, PEPPER, "http://127.0.0.1:0", ttl)
    per_leistung, default = widerspruch_configs(settings.status_web)
    sw = settings.status_web
    site = StatusSite(
        links=links,
        metrics=StatusWebMetrics(CollectorRegistry()),
        limiter=RateLimiter(rate_limit),
        leistung_name=leistung_names(load_fachverfahren(settings.fachverfahren_dir)),
        widerspruch=per_leistung,
        default_widerspruch=default,
        city=sw.city,
        accessibility={
            "contact_email": sw.accessibility_contact_email,
            "contact_phone": sw.accessibility_contact_phone,
            "statement_date": sw.accessibility_statement_date,
            "enforcement_url": str(sw.enforcement_url),
            "enforcement_name": sw.enforcement_name,
        },
        estimates=Estimates(store, estimate_min_count),
        page_deadline_s=sw.page_deadline_s,
    )
    runner = web.AppRunner(public_app(site), access_log=None)
    await runner.setup()
    tcp = web.TCPSite(runner, "127.0.0.1", 0)
    await tcp.start()
    port = tcp._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    runner_box.append(runner)
    base = f"http://127.0.0.1:{port}"
    links.base_url = base
    running = RunningSite(store, links, site, runner, base)
    for key in sorted({s.vorgang_key for s in statuses}):
        running.urls[key] = (await links.mint(key)).url
    return running
