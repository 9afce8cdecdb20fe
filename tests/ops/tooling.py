"""Shared helpers of the operations tests: the pinned tools, the chart, the metric catalogue, PromQL names."""

from __future__ import annotations

import json
import re
import subprocess
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import yaml
from prometheus_client import CollectorRegistry

from rueckkanal.metrics import Metrics
from streams.status_web.metrics import StatusWebMetrics

ROOT = Path(__file__).resolve().parents[2]
CHART = ROOT / "helm" / "rueckkanal"
RULES = CHART / "rules" / "rueckkanal-alerts.yaml"
DASHBOARD = CHART / "dashboards" / "rueckkanal.json"
RULES_TEST = Path(__file__).with_name("rules-test.yaml")
OPERATIONS_DOC = ROOT / "docs" / "operations.md"
CI_VALUES = sorted((CHART / "ci").glob("*.yaml"))


@dataclass(frozen=True)
class Tools:
    bin: Path
    kube_version: str
    schema_location: str

    def tool(self, name: str) -> str:
        return str(self.bin / name)


@cache
def ops_tools() -> Tools:
    """Install what is missing (scripts/tools.sh ensure: quick when cached), then read where it is."""
    ensured = subprocess.run(["bash", str(ROOT / "scripts" / "tools.sh"), "ensure"], capture_output=True, text=True)
    if ensured.returncode != 0:
        raise RuntimeError(f"scripts/tools.sh ensure failed:\n{ensured.stdout[-2000:]}\n{ensured.stderr[-4000:]}")
    env = subprocess.run(
        ["bash", str(ROOT / "scripts" / "tools.sh"), "env"], capture_output=True, text=True, check=True
    ).stdout
    values = dict(line.split("=", 1) for line in env.splitlines() if "=" in line)
    return Tools(Path(values["RK_TOOLS_BIN"]), values["RK_KUBE_VERSION"], values["RK_KUBE_SCHEMA_LOCATION"])


def helm_template(tools: Tools, *values: Path, sets: tuple[str, ...] = ()) -> subprocess.CompletedProcess[str]:
    args = [tools.tool("helm"), "template", "rk", str(CHART), "--namespace", "rk", "--kube-version", tools.kube_version]
    for path in values:
        args += ["--values", str(path)]
    for assignment in sets:
        args += ["--set", assignment]
    return subprocess.run(args, capture_output=True, text=True)


def manifests(rendered: str) -> list[dict[str, Any]]:
    return [doc for doc in yaml.safe_load_all(rendered) if doc]


def of_kind(docs: list[dict[str, Any]], kind: str) -> list[dict[str, Any]]:
    return [doc for doc in docs if doc.get("kind") == kind]


# --- metric names ---------------------------------------------------------------------------------------------

_SAMPLE_SUFFIXES = {
    "counter": ("_total",),
    "gauge": ("",),
    "histogram": ("_bucket", "_sum", "_count"),
    "info": ("_info",),
}


@cache
def catalogue_samples(*, status_web: bool = True) -> frozenset[str]:
    """Every sample name the metric catalogue exposes, histograms as _bucket/_sum/_count: the worker's
    (rueckkanal/metrics.py) and, unless ``status_web`` is False, status-web's (streams/status_web/metrics.py)."""
    registry = CollectorRegistry()
    Metrics(registry)
    if status_web:
        StatusWebMetrics(registry)
    names: set[str] = set()
    for family in registry.collect():
        for suffix in _SAMPLE_SUFFIXES[family.type]:
            names.add(family.name + suffix)
    return frozenset(names)


_SELECTOR = re.compile(r"([a-zA-Z_:][a-zA-Z0-9_:]*)\s*\{")
_OURS = re.compile(r"\brueckkanal_[a-z0-9_]+\b")
_LABEL_VALUES = re.compile(r"label_values\(\s*([a-zA-Z_:][a-zA-Z0-9_:]*)")


def metric_names(expr: str) -> set[str]:
    """Metric names a PromQL expression selects: every `name{...}` and every rueckkanal_* identifier."""
    return set(_SELECTOR.findall(expr)) | set(_OURS.findall(expr)) | set(_LABEL_VALUES.findall(expr))


def alert_rules() -> list[dict[str, Any]]:
    data = yaml.safe_load(RULES.read_text(encoding="utf-8"))
    return [rule for group in data["groups"] for rule in group["rules"] if "alert" in rule]


def dashboard() -> dict[str, Any]:
    return dict(json.loads(DASHBOARD.read_text(encoding="utf-8")))


def dashboard_exprs() -> list[str]:
    exprs: list[str] = []

    def walk(panels: list[dict[str, Any]]) -> None:
        for panel in panels:
            exprs.extend(target["expr"] for target in panel.get("targets", []) if target.get("expr"))
            walk(panel.get("panels", []))

    walk(dashboard()["panels"])
    return exprs


def dashboard_variable_queries() -> list[str]:
    queries = []
    for variable in dashboard()["templating"]["list"]:
        query = variable.get("query")
        if isinstance(query, dict):
            queries.append(query["query"])
    return queries


def referenced_metrics() -> set[str]:
    """Every metric name used by the dashboard's queries and variables and by the alert rules."""
    names: set[str] = set()
    for expr in dashboard_exprs() + dashboard_variable_queries():
        names |= metric_names(expr)
    for rule in alert_rules():
        names |= metric_names(rule["expr"])
    return names
