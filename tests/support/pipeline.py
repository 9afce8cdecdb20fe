"""A complete, isolated pipeline configuration for one test: its own topics, group and Fachverfahren copies."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import yaml

from rueckkanal.resources import data_path
from tests.support.processes import free_port

ROOT = Path(__file__).resolve().parents[2]


@dataclass(frozen=True)
class PipelineEnv:
    app_id: str
    events: str
    outbox: str
    dlq: str
    receipts: str
    source_topics: dict[str, str]  # Fachverfahren name → its topic for this test
    fachverfahren_dir: Path
    env: dict[str, str] = field(default_factory=dict)


def pipeline_env(
    bootstrap: str, unique: str, tmp_path: Path, *, partitions: int = 4, web_port: int | None = None
) -> PipelineEnv:
    fv_dir = tmp_path / "fachverfahren"
    fv_dir.mkdir(parents=True, exist_ok=True)
    sources: dict[str, str] = {}
    for path in sorted(data_path("fachverfahren").glob("*.yaml")):
        config = yaml.safe_load(path.read_text(encoding="utf-8"))
        config["topic"] = f"{config['topic']}.{unique}"
        sources[config["name"]] = config["topic"]
        (fv_dir / path.name).write_text(yaml.safe_dump(config, allow_unicode=True), encoding="utf-8")
    p = PipelineEnv(
        app_id=f"rk-test-{unique}",
        events=f"rk.{unique}.events",
        outbox=f"rk.{unique}.outbox",
        dlq=f"rk.{unique}.dlq",
        receipts=f"rk.{unique}.receipts",
        source_topics=sources,
        fachverfahren_dir=fv_dir,
    )
    p.env.update(
        {
            "RK_KAFKA__BOOTSTRAP": bootstrap,
            "RK_APP_ID": p.app_id,
            "RK_TOPICS__EVENTS": p.events,
            "RK_TOPICS__OUTBOX": p.outbox,
            "RK_TOPICS__DLQ": p.dlq,
            "RK_TOPICS__RECEIPTS": p.receipts,
            "RK_TOPICS__PARTITIONS": str(partitions),
            "RK_FACHVERFAHREN_DIR": str(fv_dir),
            "RK_DATA_DIR": str(tmp_path / "data"),
        }
    )
    # Never the default port: a developer's worker or demo may be using it.
    p.env["RK_WEB__PORT"] = str(web_port if web_port is not None else free_port())
    return p
