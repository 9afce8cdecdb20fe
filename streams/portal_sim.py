"""``rueckkanal portal-sim``: the reference portal as a process, for tests, the demo and the benchmarks."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer
from pydantic import ValidationError

from rueckkanal.settings import LogFormat, LogSettings
from streams import logs

_FAULTS = "Fault injection (also at run time: POST /admin/faults)"
_AUTH = "OAuth2 and TLS"


def portal_sim_command(
    host: Annotated[str, typer.Option(help="address to listen on")] = "127.0.0.1",
    port: Annotated[int, typer.Option(min=0, max=65535, help="0: any free port (the ready line says which)")] = 8090,
    db: Annotated[Path | None, typer.Option(help="SQLite file; without it the portal forgets on exit")] = None,
    duplicates: Annotated[
        str, typer.Option(help="answer to a known nachrichtenUUID: 409 (original Quittung) or s100 (Rückweisung)")
    ] = "409",
    max_body_bytes: Annotated[int, typer.Option(min=1024, help="larger messages get 413 + Rückweisung X005")] = 262144,
    oauth2_client_id: Annotated[
        str | None, typer.Option(help="enable /oauth2/token and require a bearer token", rich_help_panel=_AUTH)
    ] = None,
    oauth2_client_secret: Annotated[
        str | None, typer.Option(envvar="RK_PORTAL_SIM_CLIENT_SECRET", show_default=False, rich_help_panel=_AUTH)
    ] = None,
    oauth2_token_ttl: Annotated[int, typer.Option(min=1, help="token lifetime, seconds", rich_help_panel=_AUTH)] = 300,
    tls_cert: Annotated[Path | None, typer.Option(help="serve HTTPS (PEM chain)", rich_help_panel=_AUTH)] = None,
    tls_key: Annotated[Path | None, typer.Option(rich_help_panel=_AUTH)] = None,
    tls_client_ca: Annotated[Path | None, typer.Option(help="require client certs", rich_help_panel=_AUTH)] = None,
    error_rate: Annotated[float, typer.Option(rich_help_panel=_FAULTS)] = 0.0,
    error_status: Annotated[int, typer.Option(rich_help_panel=_FAULTS)] = 503,
    latency_min_ms: Annotated[int, typer.Option(rich_help_panel=_FAULTS)] = 0,
    latency_max_ms: Annotated[int | None, typer.Option(help="default: = min", rich_help_panel=_FAULTS)] = None,
    throttle_rate: Annotated[float, typer.Option(help="share answered 429", rich_help_panel=_FAULTS)] = 0.0,
    retry_after_s: Annotated[int, typer.Option(help="Retry-After of 429/503", rich_help_panel=_FAULTS)] = 1,
    retry_after_format: Annotated[str, typer.Option(help="seconds or http-date", rich_help_panel=_FAULTS)] = "seconds",
    outage_seconds: Annotated[float | None, typer.Option(help="503 for N s", rich_help_panel=_FAULTS)] = None,
    outage_until_cleared: Annotated[bool, typer.Option(rich_help_panel=_FAULTS)] = False,
    drop_rate: Annotated[
        float, typer.Option(help="share of connections closed unanswered", rich_help_panel=_FAULTS)
    ] = 0,
    reject_vorgang_pattern: Annotated[str | None, typer.Option(rich_help_panel=_FAULTS)] = None,
    reject_code: Annotated[str, typer.Option(help="Rückweisungsgrund of that rule", rich_help_panel=_FAULTS)] = "S011",
    redirect_rate: Annotated[float, typer.Option(help="share answered 3xx + Location", rich_help_panel=_FAULTS)] = 0.0,
    redirect_status: Annotated[int, typer.Option(rich_help_panel=_FAULTS)] = 307,
    not_found_rate: Annotated[float, typer.Option(help="share answered 404", rich_help_panel=_FAULTS)] = 0.0,
    html_rate: Annotated[float, typer.Option(help="share answered 200 + HTML page", rich_help_panel=_FAULTS)] = 0.0,
    store_then_hang_rate: Annotated[
        float, typer.Option(help="share stored, then left unanswered", rich_help_panel=_FAULTS)
    ] = 0.0,
    hang_s: Annotated[float, typer.Option(help="longest hang of store-then-hang", rich_help_panel=_FAULTS)] = 60.0,
    slow_body_rate: Annotated[float, typer.Option(help="share answered in slow pieces", rich_help_panel=_FAULTS)] = 0.0,
    slow_body_chunk_bytes: Annotated[int, typer.Option(rich_help_panel=_FAULTS)] = 64,
    slow_body_delay_ms: Annotated[int, typer.Option(rich_help_panel=_FAULTS)] = 20,
    token_error_rate: Annotated[
        float, typer.Option(help="share of token requests answered 5xx/garbage", rich_help_panel=_FAULTS)
    ] = 0.0,
    seed: Annotated[int | None, typer.Option(help="seed of the fault dice", rich_help_panel=_FAULTS)] = None,
    mode: Annotated[
        str, typer.Option(help="xoev (the XÖV back channel) or zbp (BundID status monitor, mailbox)")
    ] = "xoev",
    zbp_ca: Annotated[
        Path | None, typer.Option(help="mode zbp: PEM of the CA whose signing certificates are trusted")
    ] = None,
    zbp_role: Annotated[str, typer.Option(help="mode zbp: role the authorToken must carry")] = "THIRD_PARTY",
    zbp_leeway: Annotated[int, typer.Option(min=0, help="mode zbp: seconds of clock skew forgiven on exp")] = 0,
    log_format: Annotated[LogFormat, typer.Option(help="json or console")] = LogFormat.JSON,
    log_level: Annotated[str, typer.Option()] = "INFO",
) -> None:
    """Run the reference portal (XÖV back channel with XSD check, de-duplication, OAuth2, fault injection)."""
    from adapters.portal.sim.config import DuplicateAnswer, OAuth2Client, SimConfig, SimMode, TlsServer, ZbpTrust
    from adapters.portal.sim.faults import FaultSpec
    from adapters.portal.sim.server import run

    fault_flags: dict[str, Any] = {
        "error_rate": error_rate,
        "error_status": error_status,
        "latency_min_ms": latency_min_ms,
        "latency_max_ms": latency_min_ms if latency_max_ms is None else latency_max_ms,
        "throttle_rate": throttle_rate,
        "retry_after_s": retry_after_s,
        "retry_after_format": retry_after_format,
        "outage_seconds": outage_seconds,
        "outage_until_cleared": outage_until_cleared,
        "drop_rate": drop_rate,
        "reject_vorgang_pattern": reject_vorgang_pattern,
        "reject_code": reject_code,
        "redirect_rate": redirect_rate,
        "redirect_status": redirect_status,
        "not_found_rate": not_found_rate,
        "html_rate": html_rate,
        "store_then_hang_rate": store_then_hang_rate,
        "hang_s": hang_s,
        "slow_body_rate": slow_body_rate,
        "slow_body_chunk_bytes": slow_body_chunk_bytes,
        "slow_body_delay_ms": slow_body_delay_ms,
        "token_error_rate": token_error_rate,
        "seed": seed,
    }
    try:
        faults = FaultSpec.model_validate(fault_flags)
        duplicate_answer = DuplicateAnswer(duplicates)
    except (ValidationError, ValueError) as exc:
        typer.echo(f"rueckkanal portal-sim: invalid options: {_describe(exc)}", err=True)
        raise typer.Exit(2) from None
    if (oauth2_client_id is None) != (oauth2_client_secret is None):
        typer.echo("rueckkanal portal-sim: --oauth2-client-id and --oauth2-client-secret go together", err=True)
        raise typer.Exit(2)
    try:
        sim_mode = SimMode(mode)
    except ValueError:
        typer.echo("rueckkanal portal-sim: --mode is xoev or zbp", err=True)
        raise typer.Exit(2) from None
    if (sim_mode is SimMode.ZBP) != (zbp_ca is not None):
        typer.echo("rueckkanal portal-sim: --mode zbp and --zbp-ca go together", err=True)
        raise typer.Exit(2)
    if tls_cert is None and (tls_key is not None or tls_client_ca is not None):
        typer.echo("rueckkanal portal-sim: --tls-key and --tls-client-ca need --tls-cert", err=True)
        raise typer.Exit(2)
    config = SimConfig(
        host=host,
        port=port,
        db=db,
        duplicates=duplicate_answer,
        max_body_bytes=max_body_bytes,
        oauth2=(
            OAuth2Client(oauth2_client_id, oauth2_client_secret, oauth2_token_ttl)
            if oauth2_client_id is not None and oauth2_client_secret is not None
            else None
        ),
        tls=TlsServer(tls_cert, tls_key, tls_client_ca) if tls_cert is not None else None,
        faults=faults,
        mode=sim_mode,
        zbp=ZbpTrust(zbp_ca, zbp_role, zbp_leeway) if zbp_ca is not None else None,
    )
    logs.setup(LogSettings(format=log_format, level=log_level.upper()))
    run(config)


def _describe(exc: Exception) -> str:
    if isinstance(exc, ValidationError):
        return "; ".join(f"{'.'.join(str(p) for p in e['loc']) or 'faults'}: {e['msg']}" for e in exc.errors())
    return str(exc)
