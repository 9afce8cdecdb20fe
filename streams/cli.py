"""The ``rueckkanal`` command."""

from __future__ import annotations

import json
import sys
from datetime import datetime
from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer
from lxml import etree

from adapters.inbound.config import FachverfahrenConfig, FachverfahrenConfigError, build_adapter, load_fachverfahren
from adapters.inbound.samples import read_sample
from rueckkanal import __version__, safexml
from rueckkanal.errors import ConfigError, DecodeError, InputRejected
from rueckkanal.lifecycle import VorgangState
from rueckkanal.settings import Settings
from rueckkanal.xoev import MessageRenderer, code_problems, xsd
from streams.app import Role
from streams.cliutil import load_settings
from streams.dlq_tool import dlq_cli
from streams.portal_sim import portal_sim_command
from streams.status_web.main import status_web_cli

cli = typer.Typer(
    name="rueckkanal",
    help="Rückkanal: application status from Fachverfahren to the citizen's portal, as XÖV messages.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,  # tracebacks with locals could print secrets and payloads
)


def _show_version(value: bool) -> None:
    if value:
        typer.echo(f"rueckkanal {__version__}")
        raise typer.Exit


@cli.callback()
def _main(
    version: Annotated[
        bool, typer.Option("--version", callback=_show_version, is_eager=True, help="print the version and exit")
    ] = False,
) -> None:
    """Rückkanal: application status from Fachverfahren to the citizen's portal, as XÖV messages."""


@cli.command()
def worker(
    role: Annotated[Role, typer.Option(help="run both stages, or only ingest or only delivery")] = Role.ALL,
    target: Annotated[
        str | None,
        typer.Option(help="only this delivery target (default: every one; `default` is the portal section)"),
    ] = None,
) -> None:
    """Run the stream worker until SIGTERM or Ctrl-C."""
    from rueckkanal.errors import ConfigError
    from streams.worker import build_worker  # faust is heavy to import; the other commands do not need it

    try:
        built = build_worker(load_settings(), role, target)
    except ConfigError as error:
        typer.echo(f"rueckkanal worker: {error.message}", err=True)
        raise typer.Exit(2) from None
    built.execute_from_commandline()


@cli.command("config")
def show_config() -> None:
    """Print the effective settings as JSON, secrets masked."""
    typer.echo(json.dumps(load_settings().safe_dump(), indent=2, ensure_ascii=False))


cli.command("portal-sim")(portal_sim_command)
cli.add_typer(dlq_cli, name="dlq")
cli.add_typer(status_web_cli, name="status-web")


class ReportFormat(StrEnum):
    HTML = "html"
    PDF = "pdf"
    CSV = "csv"


@cli.command("report")
def report(
    start: Annotated[datetime, typer.Option("--from", formats=["%Y-%m-%d"], help="first day (UTC), e.g. 2025-01-01")],
    end: Annotated[datetime, typer.Option("--to", formats=["%Y-%m-%d"], help="last day, inclusive, e.g. 2025-12-31")],
    fmt: Annotated[ReportFormat, typer.Option("--format", help="html, pdf or csv")] = ReportFormat.HTML,
    output: Annotated[Path | None, typer.Option("--output", "-o", help="write here instead of stdout")] = None,
) -> None:
    """The yearly report from status-web's database: processing times per Leistung and Fachverfahren, delivery."""
    from streams.report import report_command

    if end < start:
        typer.echo("rueckkanal report: --to is before --from", err=True)
        raise typer.Exit(2)
    settings = load_settings()
    try:
        body = report_command(
            start.date(), end.date(), fmt.value, settings, load_fachverfahren(settings.fachverfahren_dir)
        )
    except ConfigError as error:
        typer.echo(f"rueckkanal report: {error.message}", err=True)
        raise typer.Exit(2) from None
    if output is None:
        sys.stdout.buffer.write(body)
        sys.stdout.buffer.flush()
    else:
        output.write_bytes(body)


# ---------------------------------------------------------------- the XÖV contract: render, validate, check-config

EXIT_INVALID = 1  # the input (a file, the configuration) is wrong; 2 is typer's usage error
_MAX_VALIDATE_BYTES = 16 * 1024 * 1024


@cli.command()
def render(
    event_file: Annotated[
        Path, typer.Argument(exists=True, dir_okay=False, help="a sample record, e.g. config/examples/<name>/*.json")
    ],
    source: Annotated[
        str | None, typer.Option("--source", help="Fachverfahren that decodes it; default: the file's folder name")
    ] = None,
    sequence: Annotated[int, typer.Option(min=1, help="sequence number of the message in its Vorgang")] = 1,
) -> None:
    """Print the XÖV Statusmeldung (0100) that a sample record becomes."""
    settings = load_settings()
    name = source or event_file.parent.name
    config = _fachverfahren(settings).get(name)
    if config is None:
        typer.echo(f"rueckkanal: no Fachverfahren named {name!r} (use --source)", err=True)
        raise typer.Exit(2)
    try:
        event = build_adapter(config).decode(read_sample(event_file).record(config.topic))
    except (ConfigError, InputRejected) as exc:
        typer.echo(f"ungültig / invalid: {exc.reason}: {exc.message}", err=True)
        raise typer.Exit(EXIT_INVALID) from None
    state = VorgangState(event.status, sequence, event.status_time, (event.event_id,))
    message = MessageRenderer(settings.xoev).render(event, state)
    typer.echo(_pretty(message.xml), nl=False)


@cli.command()
def validate(
    xml_file: Annotated[Path, typer.Argument(exists=True, dir_okay=False, help="a 0100, 0190 or 0191 message")],
) -> None:
    """Check a message against the XAntragsstatus XSD and its code lists; errors with line numbers."""
    try:
        root = safexml.parse(xml_file.read_bytes(), max_bytes=_MAX_VALIDATE_BYTES)
    except DecodeError as exc:
        typer.echo(f"ungültig / invalid: {exc.reason}: {exc.message}", err=True)
        raise typer.Exit(EXIT_INVALID) from None
    schema = xsd()
    problems = [] if schema.validate(root) else [f"{e.line}: {e.message}" for e in schema.error_log]
    if not problems:
        problems = [problem.removeprefix("line ") for problem in code_problems(root)]
    if problems:
        typer.echo(f"ungültig / invalid: {xml_file}", err=True)
        for problem in problems:
            typer.echo(f"  Zeile / line {problem}", err=True)
        raise typer.Exit(EXIT_INVALID)
    typer.echo(f"gültig / valid: {xml_file} ({etree.QName(root).localname})")


@cli.command("check-config")
def check_config() -> None:
    """Validate every Fachverfahren mapping, the code lists and the XÖV identity; report all errors at once."""

    settings = load_settings()
    problems: list[str] = []
    configs = []
    try:
        configs = load_fachverfahren(settings.fachverfahren_dir)
    except FachverfahrenConfigError as exc:
        problems.extend(exc.problems)
    try:
        MessageRenderer(settings.xoev)
    except ConfigError as exc:
        problems.append(exc.message)
    if not configs and not problems:
        problems.append(f"{settings.fachverfahren_dir}: no Fachverfahren configured (*.yaml)")
    if problems:
        typer.echo("ungültig / invalid configuration:", err=True)
        for problem in problems:
            typer.echo(f"  {problem}", err=True)
        raise typer.Exit(EXIT_INVALID)
    for config in configs:
        typer.echo(f"ok  {config.name:<20} {config.format:<12} {config.topic}")


def _fachverfahren(settings: Settings) -> dict[str, FachverfahrenConfig]:

    try:
        return {config.name: config for config in load_fachverfahren(settings.fachverfahren_dir)}
    except FachverfahrenConfigError as exc:
        typer.echo(str(exc), err=True)
        raise typer.Exit(EXIT_INVALID) from None


def _pretty(xml: bytes) -> str:

    return etree.tostring(etree.fromstring(xml), pretty_print=True, encoding="unicode")


def main() -> None:
    cli()
