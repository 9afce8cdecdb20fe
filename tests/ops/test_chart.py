"""The Helm chart lints strictly, renders manifests that Kubernetes' own schemas accept, and refuses bad values."""

from __future__ import annotations

import math
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from streams.worker import STOP_MARGIN_S
from tests.ops.tooling import (
    CHART,
    CI_VALUES,
    DASHBOARD,
    Tools,
    helm_template,
    manifests,
    of_kind,
    ops_tools,
)

BROKEN = Path(__file__).with_name("broken-values")
VALUE_SETS = [pytest.param(None, id="defaults")] + [pytest.param(path, id=path.stem) for path in CI_VALUES]


@pytest.fixture(scope="module")
def tools() -> Tools:
    return ops_tools()


def _render(tools: Tools, values: Path | None) -> str:
    rendered = helm_template(tools, *([values] if values else []))
    assert rendered.returncode == 0, rendered.stderr
    return rendered.stdout


def _kubeconform(tools: Tools, manifests_text: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [
            tools.tool("kubeconform"),
            "-strict",
            "-summary",
            "-kubernetes-version",
            tools.kube_version,
            "-schema-location",
            tools.schema_location,
            "-",
        ],
        input=manifests_text,
        capture_output=True,
        text=True,
    )


@pytest.mark.parametrize("values", VALUE_SETS)
def test_helm_lint_strict(tools: Tools, values: Path | None) -> None:
    args = [tools.tool("helm"), "lint", "--strict", str(CHART)]
    if values:
        args += ["--values", str(values)]
    linted = subprocess.run(args, capture_output=True, text=True)
    assert linted.returncode == 0, linted.stdout + linted.stderr
    assert "0 chart(s) failed" in linted.stdout


@pytest.mark.parametrize("values", VALUE_SETS)
def test_rendered_manifests_conform_to_kubernetes_schemas(tools: Tools, values: Path | None) -> None:
    rendered = _render(tools, values)
    checked = _kubeconform(tools, rendered)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    count = len(manifests(rendered))
    # Every resource validated against a schema: none skipped for a missing schema, none invalid.
    assert f"{count} resources found" in checked.stdout
    assert f"Valid: {count}, Invalid: 0, Errors: 0, Skipped: 0" in checked.stdout, checked.stdout


def test_kubeconform_rejects_what_kubernetes_would_reject(tools: Tools) -> None:
    """The schemas are strict and really applied: an unknown field and a wrong type in a CRD are both caught."""
    docs = manifests(_render(tools, CHART / "ci" / "full-values.yaml"))
    deployment = of_kind(docs, "Deployment")[0]
    deployment["spec"]["template"]["spec"]["containers"][0]["securityContext"]["runAsRoot"] = False
    monitor = of_kind(docs, "ServiceMonitor")[0]
    monitor["spec"]["endpoints"][0]["interval"] = 30
    checked = _kubeconform(tools, yaml.safe_dump_all([deployment, monitor]))
    assert checked.returncode != 0
    assert "Invalid: 2" in checked.stdout, checked.stdout
    assert "runAsRoot" in checked.stdout


def test_ci_values_exercise_every_optional_part(tools: Tools) -> None:
    kinds: set[str] = set()
    for values in CI_VALUES:
        kinds |= {doc["kind"] for doc in manifests(_render(tools, values))}
    assert {"ServiceMonitor", "PrometheusRule", "NetworkPolicy", "PodDisruptionBudget", "Job", "Secret"} <= kinds
    defaults = {doc["kind"] for doc in manifests(_render(tools, None))}
    assert defaults == {"ServiceAccount", "ConfigMap", "Service", "Deployment"}


@pytest.mark.parametrize("values", VALUE_SETS)
def test_worker_pod_is_locked_down(tools: Tools, values: Path | None) -> None:
    raw = yaml.safe_load((values or CHART / "values.yaml").read_text(encoding="utf-8")) or {}
    deployment = of_kind(manifests(_render(tools, values)), "Deployment")[0]
    pod = deployment["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    security = container["securityContext"]
    assert security["runAsNonRoot"] is True
    assert security["readOnlyRootFilesystem"] is True
    assert security["allowPrivilegeEscalation"] is False
    assert security["capabilities"]["drop"] == ["ALL"]
    assert pod["securityContext"]["seccompProfile"]["type"] == "RuntimeDefault"
    assert pod["automountServiceAccountToken"] is False
    mounts = {mount["mountPath"]: mount["name"] for mount in container["volumeMounts"]}
    volumes = {volume["name"]: volume for volume in pod["volumes"]}
    assert "emptyDir" in volumes[mounts["/tmp"]]
    assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert container["resources"]["requests"] and container["resources"]["limits"]
    drain = (raw.get("delivery") or {}).get("drainDeadlineSeconds", 20)
    margin = raw.get("terminationGraceMarginSeconds", 15)
    assert pod["terminationGracePeriodSeconds"] == math.ceil(drain) + margin
    assert pod["terminationGracePeriodSeconds"] > drain
    # the worker's own stop deadline ends a hung stop, with its log line, before the kubelet's SIGKILL
    assert pod["terminationGracePeriodSeconds"] >= drain + STOP_MARGIN_S + 5


def test_replicas_never_exceed_partitions_and_schema_types_are_enforced(tools: Tools) -> None:
    cases = sorted(BROKEN.glob("*.yaml"))
    assert len(cases) >= 4
    for case in cases:
        first_line = case.read_text(encoding="utf-8").splitlines()[0]
        assert first_line.startswith("# expect: "), f"{case.name} must start with '# expect: <error text>'"
        expected = first_line.removeprefix("# expect: ")
        rendered = helm_template(tools, case)
        assert rendered.returncode != 0, f"{case.name} rendered, but should fail with {expected!r}"
        assert expected in rendered.stderr, f"{case.name}: {rendered.stderr}"


def test_replica_limit_is_exactly_the_partition_count(tools: Tools) -> None:
    assert helm_template(tools, sets=("replicaCount=6", "kafka.topics.partitions=6")).returncode == 0
    too_many = helm_template(tools, sets=("replicaCount=7", "kafka.topics.partitions=6"))
    assert too_many.returncode != 0
    assert "replicaCount (7) must not exceed kafka.topics.partitions (6)" in too_many.stderr


def test_dashboard_configmap_ships_the_dashboard_file(tools: Tools) -> None:
    docs = manifests(_render(tools, CHART / "ci" / "full-values.yaml"))
    (dashboard_map,) = [doc for doc in of_kind(docs, "ConfigMap") if "rueckkanal.json" in doc.get("data", {})]
    assert dashboard_map["metadata"]["labels"]["grafana_dashboard"] == "1"
    assert dashboard_map["data"]["rueckkanal.json"].strip() == DASHBOARD.read_text(encoding="utf-8").strip()


def _secret_files(deployment: dict[str, Any]) -> list[str]:
    pod = deployment["spec"]["template"]["spec"]
    files = []
    for volume in pod["volumes"]:
        for source in volume.get("projected", {}).get("sources", []):
            files.extend(item["path"] for item in source["secret"]["items"])
    return files


def test_secrets_are_files_and_never_in_the_config_map(tools: Tools) -> None:
    docs = manifests(_render(tools, CHART / "ci" / "dev-secrets-values.yaml"))
    config = "\n".join(str(doc.get("data")) for doc in of_kind(docs, "ConfigMap"))
    assert "dev-password" not in config and "dev-client-secret" not in config
    deployment = of_kind(docs, "Deployment")[0]
    assert sorted(_secret_files(deployment)) == ["rk_kafka__sasl_password", "rk_portal__oauth2__client_secret"]
    env = {item["name"]: item.get("value") for item in deployment["spec"]["template"]["spec"]["containers"][0]["env"]}
    assert env["RK_SECRETS_DIR"] == "/etc/rueckkanal/secrets"
    assert not any("password" in str(value) for value in env.values())


def test_status_web_has_its_own_network_policy(tools: Tools) -> None:
    """Pages open to the ingress peers, the internal port to Prometheus and the link minters, egress to DNS, Kafka
    and its database only."""
    policies = {
        doc["metadata"]["name"]: doc
        for doc in of_kind(manifests(_render(tools, CHART / "ci" / "full-values.yaml")), "NetworkPolicy")
    }
    web = next(doc for name, doc in policies.items() if name.endswith("-status-web"))
    assert web["spec"]["podSelector"]["matchLabels"]["app.kubernetes.io/name"].endswith("-status-web")
    by_port = {rule["ports"][0]["port"]: rule.get("from") for rule in web["spec"]["ingress"]}
    namespaces = lambda peers: {p["namespaceSelector"]["matchLabels"]["kubernetes.io/metadata.name"] for p in peers}  # noqa: E731
    assert namespaces(by_port["http"]) == {"ingress-nginx"}
    assert namespaces(by_port["internal"]) == {"monitoring", "fachverfahren"}
    egress_ports = {port["port"] for rule in web["spec"]["egress"] for port in rule["ports"]}
    assert egress_ports == {53, 9093, 5432}
    worker = next(doc for name, doc in policies.items() if not name.endswith("-status-web"))
    assert worker["spec"]["podSelector"] != web["spec"]["podSelector"]
