"""What every command shares: loading the settings with errors a person can act on."""

from __future__ import annotations

import typer
from pydantic import ValidationError

from rueckkanal.settings import Settings


def load_settings() -> Settings:
    """Settings, or a readable list of what is wrong with them and exit code 2."""
    try:
        return Settings()
    except ValidationError as exc:
        typer.echo("rueckkanal: invalid settings (environment RK_*, RK_CONFIG_FILE):", err=True)
        for error in exc.errors():
            where = ".".join(str(part) for part in error["loc"])
            typer.echo(f"  {where}: {error['msg']}", err=True)
        raise typer.Exit(2) from None
