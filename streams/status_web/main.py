"""``rueckkanal status-web``: composition of store, links, outbox reader and the two HTTP servers; and the
operators' commands ``link`` and ``revoke``."""

from __future__ import annotations

import asyncio
import contextlib
import re
import signal
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Annotated

import structlog
import typer
from aiohttp import web

from adapters.inbound.config import FachverfahrenConfig, load_fachverfahren
from adapters.statusstore import open_store
from adapters.statusstore.base import StatusStore
from rueckkanal.errors import ConfigError
from rueckkanal.model import VORGANG_ID_PATTERN
from rueckkanal.settings import Settings, StatusWebSettings
from streams import logs
from streams.app import kafka_client_options
from streams.cliutil import load_settings
from streams.obs import Progress
from streams.status_web.consumer import OutboxReader
from streams.status_web.deliveries import DeliveryLogReader
from streams.status_web.estimate import Estimates
from streams.status_web.http import InternalApi, StatusSite, internal_app, pepper_bytes, public_app
from streams.status_web.links import Links
from streams.status_web.metrics import StatusWebMetrics
from streams.status_web.page import WiderspruchConfig
from streams.status_web.ratelimit import RateLimiter
from streams.status_web.texts import Lang

log = structlog.get_logger("rueckkanal.status_web")


def leistung_names(configs: list[FachverfahrenConfig]) -> Callable[[str, str, Lang], str | None]:
    by_name = {config.name: config for config in configs}

    def name(fachverfahren: str, leistung: str, lang: Lang) -> str | None:
        config = by_name.get(fachverfahren)
        found = config.leistung_name(leistung) if config is not None else None
        if found is None:
            return None
        return found.en if lang is Lang.EN and found.en else found.de

    return name


def vorgang_keys(configs: list[FachverfahrenConfig]) -> Callable[[str, str], str | None]:
    sources = {config.name: config.source for config in configs}
    pattern = re.compile(VORGANG_ID_PATTERN)

    def key(fachverfahren: str, vorgang_id: str) -> str | None:
        source = sources.get(fachverfahren)
        if source is None or len(vorgang_id) > 64 or not pattern.match(vorgang_id):
            return None
        return f"{source}|{vorgang_id}"

    return key


def widerspruch_configs(sw: StatusWebSettings) -> tuple[dict[str, WiderspruchConfig], WiderspruchConfig]:
    def convert(settings: object) -> WiderspruchConfig:
        return WiderspruchConfig(str(settings.form_url), settings.rechtsbehelfsbelehrung)  # type: ignore[attr-defined]

    return {key: convert(value) for key, value in sw.widerspruch_per_leistung.items()}, convert(sw.widerspruch)


async def build_links(settings: Settings, store: StatusStore) -> Links:
    sw = settings.status_web
    pepper = pepper_bytes(sw.token_pepper.get_secret_value() if sw.token_pepper else None)
    return Links(store, pepper, str(sw.base_url), timedelta(days=sw.link_ttl_days))


async def serve(settings: Settings) -> None:
    sw = settings.status_web
    configs = load_fachverfahren(settings.fachverfahren_dir)
    store = await open_store(sw.database_url.get_secret_value())
    links = await build_links(settings, store)
    metrics = StatusWebMetrics()
    per_leistung, default = widerspruch_configs(sw)
    site = StatusSite(
        links=links,
        metrics=metrics,
        limiter=RateLimiter(sw.rate_limit_per_minute),
        leistung_name=leistung_names(configs),
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
        trusted_proxies=sw.trusted_proxies,
        estimates=Estimates(store, sw.estimate_min_count),
        page_deadline_s=sw.page_deadline_s,
    )
    progress = Progress(settings.web.stall_after_s)
    reader = OutboxReader(
        kafka_options=kafka_client_options(settings.kafka),
        outbox_topic=settings.topics.outbox,
        group_id=f"{settings.app_id}.status-web",
        store=store,
        links=links,
        metrics=metrics,
        fachverfahren_by_source={config.source: config.name for config in configs},
        tracking_topic=sw.tracking_topic if sw.publish_tracking else None,
        session_timeout_ms=sw.consumer_session_timeout_ms,
        progress=progress,
        store_deadline_s=sw.store_deadline_s,
    )
    deliveries = DeliveryLogReader(
        kafka_options=kafka_client_options(settings.kafka),
        receipts_topic=settings.topics.receipts,
        dlq_topic=settings.topics.dlq,
        group_id=f"{settings.app_id}.status-web.deliveries",
        store=store,
        metrics=metrics,
        session_timeout_ms=sw.consumer_session_timeout_ms,
        store_deadline_s=sw.store_deadline_s,
    )
    metrics.initialise_steps([config.name for config in configs])
    api = InternalApi(
        links=links,
        metrics=metrics,
        api_token=sw.api_token.get_secret_value() if sw.api_token else None,
        vorgang_key_of=vorgang_keys(configs),
        ready=lambda: reader.started,
        health=lambda: reader.problem() or deliveries.problem() or progress.problem(),
    )
    runners = [web.AppRunner(public_app(site), access_log=None), web.AppRunner(internal_app(api), access_log=None)]
    for runner in runners:
        await runner.setup()
    public = web.TCPSite(runners[0], sw.host, sw.port)
    internal = web.TCPSite(runners[1], sw.host, sw.internal_port)
    await public.start()
    await internal.start()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    if sw.publish_tracking:
        await ensure_tracking_topic(settings)
    figures: asyncio.Task[bool] | None = None
    if await until_topics_exist(settings, [settings.topics.outbox], stop):
        await reader.start()
        # Receipts and dead letters feed only the figures: the pages do not wait for them.
        figures = asyncio.create_task(_read_figures_once_they_exist(settings, deliveries, stop))
        log.info(
            "status-web ready",
            port=sw.port,
            internal_port=sw.internal_port,
            database=store.backend,
            group=reader.group_id,
        )
        await stop.wait()
    log.info("status-web stopping")
    if figures is not None and await figures:
        await deliveries.stop()
    if reader.started:
        await reader.stop()
    for runner in runners:
        await runner.cleanup()
    await store.close()
    log.info("status-web stopped")


TOPIC_POLL_S = 5.0


async def _read_figures_once_they_exist(settings: Settings, deliveries: DeliveryLogReader, stop: asyncio.Event) -> bool:
    """Start the receipts and dead-letter reader once both topics exist; whether it was started."""
    if not await until_topics_exist(settings, [settings.topics.receipts, settings.topics.dlq], stop):
        return False
    await deliveries.start()
    return True


async def until_topics_exist(settings: Settings, topics: list[str], stop: asyncio.Event) -> bool:
    """Wait until every one of ``topics`` exists; False if stopped first.

    status-web creates none of the topics it reads (the worker and the chart's topics job do, with their configs).
    Until the outbox exists the pages are served from the database and ``/readyz`` says not ready; until receipts and
    dead letters exist the figures wait. One warning says what is missing, instead of the Kafka client's error line
    ten times a second.
    """
    from aiokafka.admin import AIOKafkaAdminClient

    admin = AIOKafkaAdminClient(**kafka_client_options(settings.kafka))
    await admin.start()
    warned: set[str] = set()
    try:
        while not stop.is_set():
            missing = sorted(set(topics) - set(await admin.list_topics()))
            if not missing:
                if warned:
                    log.info("the topics status-web reads exist now", topics=sorted(warned))
                return True
            if set(missing) - warned:
                log.warning(
                    "topics status-web reads do not exist yet; waiting (the worker or the chart's topics job "
                    "creates them)",
                    missing=missing,
                )
                warned.update(missing)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), TOPIC_POLL_S)
        return False
    finally:
        await admin.close()


async def ensure_tracking_topic(settings: Settings) -> None:
    """Create the tracking topic if it is missing: compacted, so a Fachverfahren finds each Vorgang's newest link."""
    from aiokafka.admin import AIOKafkaAdminClient, NewTopic
    from aiokafka.errors import TopicAlreadyExistsError

    admin = AIOKafkaAdminClient(**kafka_client_options(settings.kafka))
    await admin.start()
    try:
        topic = settings.status_web.tracking_topic
        if topic not in await admin.list_topics():
            with contextlib.suppress(TopicAlreadyExistsError):  # another replica was first
                await admin.create_topics(
                    [
                        NewTopic(
                            topic,
                            num_partitions=settings.topics.partitions,
                            replication_factor=settings.topics.replication_factor,
                            topic_configs={"cleanup.policy": "compact"},
                        )
                    ]
                )
    finally:
        await admin.close()


# ------------------------------------------------------------------------------------------------------- CLI

status_web_cli = typer.Typer(
    help="The citizen status page: serve it, or mint and revoke tracking links.",
    invoke_without_command=True,
    no_args_is_help=False,
)


@status_web_cli.callback()
def status_web_main(ctx: typer.Context) -> None:
    """Run status-web (pages, link API, outbox reader) until SIGTERM or Ctrl-C."""
    if ctx.invoked_subcommand is not None:
        return
    settings = load_settings()
    logs.setup(settings.log)
    logs.configure_vorgang_hash(settings.log.hash_key.get_secret_value() if settings.log.hash_key else None)
    try:
        asyncio.run(serve(settings))
    except ConfigError as error:
        typer.echo(f"rueckkanal status-web: {error.message}", err=True)
        raise typer.Exit(2) from None


def _vorgang_key(settings: Settings, fachverfahren: str, vorgang_id: str) -> str:
    key = vorgang_keys(load_fachverfahren(settings.fachverfahren_dir))(fachverfahren, vorgang_id)
    if key is None:
        typer.echo(f"rueckkanal status-web: no Fachverfahren {fachverfahren!r}, or an invalid Vorgang id", err=True)
        raise typer.Exit(2)
    return key


@status_web_cli.command("link")
def link_command(
    fachverfahren: Annotated[str, typer.Option(help="the Fachverfahren's name, e.g. hundesteuer")],
    vorgang: Annotated[str, typer.Option(help="its Vorgang id, e.g. HST-2024-000123")],
    qr_dir: Annotated[Path | None, typer.Option(help="write the QR code there as <vorgang>.svg and .png")] = None,
) -> None:
    """Mint a new tracking link for a Vorgang (e.g. for a reprinted letter) and print it."""
    settings = load_settings()
    key = _vorgang_key(settings, fachverfahren, vorgang)

    async def run() -> None:
        store = await open_store(settings.status_web.database_url.get_secret_value())
        try:
            link = await (await build_links(settings, store)).mint(key)
        finally:
            await store.close()
        typer.echo(link.url)
        if qr_dir is not None:
            qr_dir.mkdir(parents=True, exist_ok=True)
            stem = re.sub(r"[^A-Za-z0-9._-]", "_", vorgang)
            (qr_dir / f"{stem}.svg").write_bytes(link.qr_svg())
            (qr_dir / f"{stem}.png").write_bytes(link.qr_png())
            typer.echo(f"QR: {qr_dir / stem}.svg, .png", err=True)

    try:
        asyncio.run(run())
    except ConfigError as error:
        typer.echo(f"rueckkanal status-web: {error.message}", err=True)
        raise typer.Exit(2) from None


@status_web_cli.command("revoke")
def revoke_command(
    url: Annotated[str | None, typer.Option(help="one link, as printed")] = None,
    fachverfahren: Annotated[str | None, typer.Option(help="with --vorgang: every link of that Vorgang")] = None,
    vorgang: Annotated[str | None, typer.Option()] = None,
) -> None:
    """Revoke one link (--url) or every link of a Vorgang (--fachverfahren, --vorgang)."""
    settings = load_settings()
    if (url is None) == (vorgang is None or fachverfahren is None):
        typer.echo("rueckkanal status-web revoke: give --url, or --fachverfahren with --vorgang", err=True)
        raise typer.Exit(2)

    async def run() -> int:
        from datetime import UTC, datetime

        store = await open_store(settings.status_web.database_url.get_secret_value())
        try:
            links = await build_links(settings, store)
            if url is not None:
                token = links.token_of(url)
                return int(token is not None and await links.revoke(token))
            key = _vorgang_key(settings, fachverfahren or "", vorgang or "")
            return await store.revoke_vorgang(key, datetime.now(UTC))
        finally:
            await store.close()

    typer.echo(f"revoked: {asyncio.run(run())}")
