"""What the chart renders is what rueckkanal/settings.py accepts: the config file, the secret file names, the env.

The chart writes snake_case settings by hand, so a renamed or new setting could silently break a deployment; this
test loads each rendered config exactly the way a pod does (RK_CONFIG_FILE, RK_SECRETS_DIR with the projected
file names) and checks the values arrive.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.ops.tooling import CHART, CI_VALUES, ROOT, Tools, helm_template, manifests, of_kind, ops_tools

VALUE_SETS = [pytest.param(None, id="defaults")] + [pytest.param(path, id=path.stem) for path in CI_VALUES]
_PROBE = """
import json
from rueckkanal.settings import Settings
s = Settings()
out = {
    "app_id": s.app_id,
    "bootstrap": s.kafka.bootstrap,
    "partitions": s.topics.partitions,
    "dlq_retention_ms": s.topics.dlq_retention_ms,
    "receipts_retention_ms": s.topics.receipts_retention_ms,
    "min_insync_replicas": s.topics.min_insync_replicas,
    "max_request_size": s.kafka.max_request_size,
    "drain": s.delivery.drain_deadline_s,
    "sasl_password": s.kafka.sasl_password.get_secret_value() if s.kafka.sasl_password else None,
    "fachverfahren_dir": str(s.fachverfahren_dir),
    "data_dir": str(s.data_dir),
    "state": [s.state.store, s.state.retention_days, s.state.standby_replicas],
    "targets": {name: [str(getattr(t, "signing_key", "")), str(getattr(t, "signing_cert", ""))]
                for name, t in s.targets.items()},
    "target_delivery": {name: s.delivery_for(name).model_dump() for name in s.targets},
}
portal = getattr(s, "portal", None)
if portal is not None:
    out["portal_url"] = str(portal.url)
    oauth2 = portal.oauth2
    out["client_secret"] = oauth2.client_secret.get_secret_value() if oauth2 else None
print(json.dumps(out))
"""


@pytest.fixture(scope="module")
def tools() -> Tools:
    return ops_tools()


def _pod_view(docs: list[dict[str, Any]], tmp_path: Path, deployment_index: int = 0) -> dict[str, str]:
    """Lay out config, fachverfahren and secret files as the pod sees them; return the container env."""
    deployment = of_kind(docs, "Deployment")[deployment_index]
    pod = deployment["spec"]["template"]["spec"]
    container = pod["containers"][0]
    env = {item["name"]: item["value"] for item in container["env"] if "value" in item}
    config_maps = {doc["metadata"]["name"]: doc.get("data") or {} for doc in of_kind(docs, "ConfigMap")}
    secrets = {doc["metadata"]["name"]: doc.get("data") or {} for doc in of_kind(docs, "Secret")}
    volumes = {volume["name"]: volume for volume in pod["volumes"]}
    for mount in container["volumeMounts"]:
        target = tmp_path / mount["mountPath"].lstrip("/")
        target.mkdir(parents=True, exist_ok=True)
        volume = volumes[mount["name"]]
        if "configMap" in volume:
            for name, text in config_maps[volume["configMap"]["name"]].items():
                (target / name).write_text(text, encoding="utf-8")
        for source in volume.get("projected", {}).get("sources", []):
            for item in source["secret"]["items"]:
                # a chart-made Secret carries its value; an existing one is the operator's: use a marker
                value = secrets.get(source["secret"]["name"], {}).get(item["key"])
                (target / item["path"]).write_text(f"secret-of-{item['path']}" if value is None else "from-chart")
    return {
        name: str(tmp_path / value.lstrip("/")) if value.startswith("/etc/") else value for name, value in env.items()
    }


@pytest.mark.parametrize("values", VALUE_SETS)
def test_rendered_settings_load_in_the_worker(tools: Tools, values: Path | None, tmp_path: Path) -> None:
    rendered = helm_template(tools, *([values] if values else []))
    assert rendered.returncode == 0, rendered.stderr
    docs = manifests(rendered.stdout)
    env = _pod_view(docs, tmp_path)
    raw = yaml.safe_load((values or CHART / "values.yaml").read_text(encoding="utf-8")) or {}
    defaults = yaml.safe_load((CHART / "values.yaml").read_text(encoding="utf-8"))
    probe_env = {k: v for k, v in os.environ.items() if not k.startswith("RK_")} | env
    probe = subprocess.run([sys.executable, "-c", _PROBE], env=probe_env, cwd=ROOT, capture_output=True, text=True)
    assert probe.returncode == 0, probe.stderr[-3000:]
    loaded = yaml.safe_load(probe.stdout)

    kafka = {**defaults["kafka"], **raw.get("kafka", {})}
    topics = {**defaults["kafka"]["topics"], **kafka.get("topics", {})}
    assert loaded["app_id"] == {**defaults["config"], **raw.get("config", {})}["appId"]
    assert loaded["bootstrap"] == kafka["bootstrap"]
    assert loaded["partitions"] == topics["partitions"]
    assert loaded["dlq_retention_ms"] == topics["dlqRetentionMs"]
    assert loaded["receipts_retention_ms"] == topics["receiptsRetentionMs"]
    assert loaded["min_insync_replicas"] == topics["minInsyncReplicas"]
    assert loaded["max_request_size"] == kafka["maxRequestSize"]
    assert loaded["drain"] == {**defaults["delivery"], **raw.get("delivery", {})}["drainDeadlineSeconds"]
    assert loaded["fachverfahren_dir"] == env["RK_FACHVERFAHREN_DIR"]
    state = {**defaults["state"], **raw.get("state", {})}
    assert loaded["state"] == [state["store"], state["retentionDays"], state["standbyReplicas"]]
    if kafka["securityProtocol"].startswith("SASL"):
        assert loaded["sasl_password"] in {"from-chart", "secret-of-rk_kafka__sasl_password"}
    portal = raw.get("portal", {})
    if portal.get("url"):
        assert loaded["portal_url"] == portal["url"]
        if portal.get("auth") == "oauth2":
            assert loaded["client_secret"] in {"from-chart", "secret-of-rk_portal__oauth2__client_secret"}
    assert sorted(loaded["targets"]) == sorted(raw.get("targets", {}))
    for name, target in raw.get("targets", {}).items():  # a target's own delivery bounds arrive as it set them
        for key, value in target.get("settings", {}).get("delivery", {}).items():
            assert loaded["target_delivery"][name][key] == value, (name, key)
    deployment = of_kind(docs, "Deployment")[0]
    mounts = {
        m["name"]: m["mountPath"] for m in deployment["spec"]["template"]["spec"]["containers"][0]["volumeMounts"]
    }
    assert loaded["data_dir"] == mounts["state"]  # the local store is on its own volume
    for name, (key, cert) in loaded["targets"].items():  # the signing files are where the pod mounts them
        assert key == f"{mounts[f'target-{name}']}/signing.key"
        assert cert == f"{mounts[f'target-{name}']}/signing.crt"


def test_fachverfahren_values_become_loadable_mapping_files(tools: Tools, tmp_path: Path) -> None:
    values = CHART / "ci" / "full-values.yaml"
    rendered = helm_template(tools, values)
    assert rendered.returncode == 0, rendered.stderr
    (config_map,) = [
        doc for doc in of_kind(manifests(rendered.stdout), "ConfigMap") if "fachverfahren" in doc["metadata"]["name"]
    ]
    for name, text in config_map["data"].items():
        (tmp_path / name).write_text(text, encoding="utf-8")
    code = (
        "import json, sys; from pathlib import Path; from adapters.inbound.config import load_fachverfahren; "
        "print(json.dumps(sorted(c.name for c in load_fachverfahren(Path(sys.argv[1])))))"
    )
    loaded = subprocess.run([sys.executable, "-c", code, str(tmp_path)], cwd=ROOT, capture_output=True, text=True)
    assert loaded.returncode == 0, loaded.stderr[-3000:]
    expected = sorted(yaml.safe_load(values.read_text(encoding="utf-8"))["fachverfahren"])
    assert yaml.safe_load(loaded.stdout) == expected


_STATUS_WEB_PROBE = """
import json
from rueckkanal.settings import Settings
s = Settings().status_web
print(json.dumps({
    "base_url": str(s.base_url),
    "port": s.port,
    "internal_port": s.internal_port,
    "rate_limit": s.rate_limit_per_minute,
    "form_url": str(s.widerspruch.form_url),
    "database_url": s.database_url.get_secret_value(),
    "pepper": s.token_pepper.get_secret_value() if s.token_pepper else None,
    "api_token": s.api_token.get_secret_value() if s.api_token else None,
}))
"""


def test_status_web_pod_loads_its_settings_and_secret_files(tools: Tools, tmp_path: Path) -> None:
    values = CHART / "ci" / "full-values.yaml"
    rendered = helm_template(tools, values)
    assert rendered.returncode == 0, rendered.stderr
    docs = manifests(rendered.stdout)
    names = [doc["metadata"]["name"] for doc in of_kind(docs, "Deployment")]
    index = next(i for i, name in enumerate(names) if name.endswith("-status-web"))
    deployment = of_kind(docs, "Deployment")[index]
    assert deployment["spec"]["template"]["spec"]["containers"][0]["args"] == ["status-web"]
    worker_labels = of_kind(docs, "Deployment")[0]["spec"]["selector"]["matchLabels"]
    status_labels = deployment["spec"]["template"]["metadata"]["labels"]
    assert not worker_labels.items() <= status_labels.items(), "the worker's selector would match status-web pods"
    env = _pod_view(docs, tmp_path, index)
    probe_env = {k: v for k, v in os.environ.items() if not k.startswith("RK_")} | env
    probe = subprocess.run(
        [sys.executable, "-c", _STATUS_WEB_PROBE], env=probe_env, cwd=ROOT, capture_output=True, text=True
    )
    assert probe.returncode == 0, probe.stderr[-3000:]
    loaded = yaml.safe_load(probe.stdout)
    raw = yaml.safe_load(values.read_text(encoding="utf-8"))["statusWeb"]
    assert loaded["base_url"].rstrip("/") == raw["baseUrl"]
    assert loaded["rate_limit"] == raw["rateLimitPerMinute"]
    assert loaded["form_url"] == raw["widerspruchFormUrl"]
    assert (loaded["port"], loaded["internal_port"]) == (8095, 8096)
    assert loaded["database_url"] == "secret-of-rk_status_web__database_url"
    assert loaded["pepper"] == "secret-of-rk_status_web__token_pepper"
    assert loaded["api_token"] == "secret-of-rk_status_web__api_token"  # noqa: S105  # a file marker
