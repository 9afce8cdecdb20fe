"""The ``rueckkanal`` command."""

from __future__ import annotations

import json

import faust
import structlog
import typer
from pydantic import ValidationError

from rueckkanal.settings import Settings
from streams import logs
from streams.app import Pipeline, create_pipeline
from streams.portal_sim import portal_sim_command

cli = typer.Typer(
    name="rueckkanal",
    help="Rückkanal: application status from Fachverfahren to the citizen's portal, as XÖV messages.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,  # tracebacks with locals could print secrets and payloads
)


class RueckkanalWorker(faust.Worker):
    """faust's Worker, with one structured line when it is ready to process."""

    def __init__(self, pipeline: Pipeline) -> None:
        self.pipeline = pipeline
        settings = pipeline.settings
        super().__init__(
            pipeline.app,
            loglevel=settings.log.level,
            logging_config=logs.logging_config(settings.log),
            redirect_stdouts=False,
        )

    async def on_startup_finished(self) -> None:
        await super().on_startup_finished()
        app = self.pipeline.app
        structlog.get_logger("rueckkanal.worker").info(
            "worker ready", app_id=app.conf.id, web=f"{app.conf.web_bind}:{app.conf.web_port}"
        )


@cli.command()
def worker() -> None:
    """Run the stream worker until SIGTERM or Ctrl-C."""
    logs.configure_structlog()
    pipeline = create_pipeline(load_settings())
    RueckkanalWorker(pipeline).execute_from_commandline()


@cli.command("config")
def show_config() -> None:
    """Print the effective settings as JSON, secrets masked."""
    typer.echo(json.dumps(load_settings().safe_dump(), indent=2, ensure_ascii=False))


cli.command("portal-sim")(portal_sim_command)


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


def main() -> None:
    cli()
