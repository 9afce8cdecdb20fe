"""Alert rules pass promtool and their unit tests; rules and dashboard use only catalogue metrics and have runbooks."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest
import yaml

from tests.ops.tooling import (
    CHART,
    OPERATIONS_DOC,
    RULES,
    RULES_TEST,
    Tools,
    alert_rules,
    catalogue_samples,
    dashboard,
    dashboard_exprs,
    helm_template,
    manifests,
    metric_names,
    of_kind,
    ops_tools,
    referenced_metrics,
)

# Synthetic series Prometheus itself writes for every target; the only non-catalogue name rules may use.
PROMETHEUS_OWN = frozenset({"up"})


@pytest.fixture(scope="module")
def tools() -> Tools:
    return ops_tools()


def test_promtool_checks_the_rule_file(tools: Tools) -> None:
    checked = subprocess.run([tools.tool("promtool"), "check", "rules", str(RULES)], capture_output=True, text=True)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert f"SUCCESS: {len(alert_rules())} rules found" in checked.stdout


def test_promtool_checks_the_rules_as_the_chart_renders_them(tools: Tools, tmp_path: Path) -> None:
    rendered = helm_template(tools, CHART / "ci" / "full-values.yaml")
    assert rendered.returncode == 0, rendered.stderr
    (rule,) = of_kind(manifests(rendered.stdout), "PrometheusRule")
    rule_file = tmp_path / "rendered-rules.yaml"
    rule_file.write_text(yaml.safe_dump(rule["spec"], allow_unicode=True), encoding="utf-8")
    checked = subprocess.run([tools.tool("promtool"), "check", "rules", str(rule_file)], capture_output=True, text=True)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    plain = yaml.safe_load(RULES.read_text(encoding="utf-8"))
    rendered_alerts = [r for group in rule["spec"]["groups"] for r in group["rules"]]
    assert [r["expr"] for r in rendered_alerts] == [r["expr"] for g in plain["groups"] for r in g["rules"]]
    for alert in rendered_alerts:
        assert alert["annotations"]["runbook_url"].startswith(
            "https://git.example.org/leipzig/rueckkanal/-/blob/main/docs/operations.md#"
        )


def test_promtool_unit_tests_fire_every_alert(tools: Tools) -> None:
    tested = subprocess.run([tools.tool("promtool"), "test", "rules", str(RULES_TEST)], capture_output=True, text=True)
    assert tested.returncode == 0, tested.stdout + tested.stderr
    assert "SUCCESS" in tested.stdout
    cases = yaml.safe_load(RULES_TEST.read_text(encoding="utf-8"))["tests"]
    fired = {
        check["alertname"] for case in cases for check in case.get("alert_rule_test", []) if check.get("exp_alerts")
    }
    assert fired == {rule["alert"] for rule in alert_rules()}


def _github_anchor(heading: str) -> str:
    anchor = heading.strip().lower()
    anchor = re.sub(r"[^\w\- ]", "", anchor)
    return anchor.replace(" ", "-")


def test_every_alert_links_to_its_runbook_section() -> None:
    headings = {
        _github_anchor(line.lstrip("#"))
        for line in OPERATIONS_DOC.read_text(encoding="utf-8").splitlines()
        if line.startswith("#")
    }
    for rule in alert_rules():
        url = rule["annotations"]["runbook_url"]
        path, _, anchor = url.partition("#")
        assert path == "docs/operations.md", url
        assert anchor == rule["alert"].lower(), url
        assert anchor in headings, f"docs/operations.md has no section for {rule['alert']}"
        assert rule["labels"]["severity"] in {"warning", "critical"}
        assert rule["annotations"]["summary"] and rule["annotations"]["description"]


def test_rules_and_dashboard_use_only_catalogue_metrics() -> None:
    catalogue = catalogue_samples()
    for rule in alert_rules():
        unknown = metric_names(rule["expr"]) - catalogue - PROMETHEUS_OWN
        assert not unknown, f"{rule['alert']} uses {unknown}, not in rueckkanal/metrics.py"
    for expr in dashboard_exprs():
        unknown = metric_names(expr) - catalogue
        assert not unknown, f"dashboard query uses {unknown}, not in rueckkanal/metrics.py: {expr}"


def test_promtool_parses_every_dashboard_query(tools: Tools, tmp_path: Path) -> None:
    """Each query of the dashboard, with Grafana's variables filled in, as a recording rule: promtool parses the
    PromQL (a typo in a panel would otherwise show only as an empty panel)."""
    filled = {"$__rate_interval": "5m", "$job": "rueckkanal", "$instance": ".*"}
    rules = []
    for n, expr in enumerate(dashboard_exprs()):
        for variable, value in filled.items():
            expr = expr.replace(variable, value)
        assert "$" not in expr, expr
        rules.append({"record": f"dashboard:query_{n}", "expr": expr})
    rule_file = tmp_path / "dashboard-queries.yaml"
    rule_file.write_text(yaml.safe_dump({"groups": [{"name": "dashboard", "rules": rules}]}), encoding="utf-8")
    checked = subprocess.run([tools.tool("promtool"), "check", "rules", str(rule_file)], capture_output=True, text=True)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert f"{len(rules)} rules found" in checked.stdout


def test_dashboard_covers_what_an_operator_needs() -> None:
    used = referenced_metrics()
    needed = {
        "rueckkanal_events_consumed_total",  # consumed
        "rueckkanal_deliveries_total",  # delivered
        "rueckkanal_delivery_attempts_total",  # retried, error ratio
        "rueckkanal_dead_letters_total",  # dead-lettered, error ratio by reason
        "rueckkanal_delivery_duration_seconds_bucket",  # delivery latency
        "rueckkanal_end_to_end_latency_seconds_bucket",  # end-to-end latency
        "rueckkanal_delivery_in_flight",
        "rueckkanal_circuit_state",
        "rueckkanal_consumer_lag_messages",
        "rueckkanal_oldest_undelivered_age_seconds",
        # the citizens' status page: answers and refusals, answer time, database trouble, how far behind it is
        "rueckkanal_status_web_views_total",
        "rueckkanal_status_web_unavailable_total",
        "rueckkanal_status_web_request_duration_seconds_bucket",
        "rueckkanal_status_web_store_errors_total",
        "rueckkanal_status_web_outbox_lag_messages",
        "rueckkanal_status_web_store_delay_seconds_bucket",
    }
    assert needed <= used, needed - used
    exprs = "\n".join(dashboard_exprs())
    for phi in ("0.5", "0.99"):
        assert f"histogram_quantile({phi}, sum by (le, target, portal) (rate(rueckkanal_delivery_duration" in exprs
        assert f"histogram_quantile({phi}, sum by (le, target, portal) (rate(rueckkanal_end_to_end_latency" in exprs
    board = dashboard()
    assert board["uid"] == "rueckkanal-overview"
    ids = [panel["id"] for panel in board["panels"]]
    assert len(ids) == len(set(ids))
