"""Build kubeconform's JSON schemas offline, from pinned registry packages (called by ``scripts/tools.sh ensure``).

kubeconform looks a resource up as ``<dir>/v<kube-version>-standalone-strict/<kind>-<group>-<version>.json``
(e.g. ``deployment-apps-v1.json``, ``servicemonitor-monitoring-v1.json``). Two sources fill that directory:

* Kubernetes core types: the PyPI package ``kubernetes-validate`` carries the strict JSON schemas of every
  Kubernetes release, in a layout whose references point into one shared ``_definitions.json``. Each requested kind
  is made standalone here: the definitions it reaches are copied into the file under ``$defs``.
* Custom resources (ServiceMonitor, PrometheusRule): the ``openAPIV3Schema`` of the CRD as the prometheus-operator
  ships it, turned into a strict JSON schema (``additionalProperties: false`` wherever the CRD lists properties and
  does not preserve unknown fields, ``nullable`` and ``x-kubernetes-int-or-string`` expressed in JSON schema).

Standard library and PyYAML only: it runs before the tests, with whatever Python the caller names.
"""

from __future__ import annotations

import argparse
import json
import re
import zipfile
from pathlib import Path
from typing import Any

import yaml

_SHARED_REF = re.compile(r"^/api/_definitions\.json#/\$defs/(.+)$")
_LOCAL_REF = re.compile(r"^#/\$defs/(.+)$")


def _definition_name(ref: str) -> str:
    match = _SHARED_REF.match(ref) or _LOCAL_REF.match(ref)
    if not match:
        raise ValueError(f"unexpected $ref {ref!r}")
    return match.group(1)


def _rewrite_refs(node: Any, found: set[str]) -> Any:
    """A copy of ``node`` whose $refs point into the same document's $defs; the names met are added to found."""
    if isinstance(node, dict):
        out: dict[str, Any] = {}
        for key, value in node.items():
            if key == "$ref" and isinstance(value, str):
                name = _definition_name(value)
                found.add(name)
                out[key] = f"#/$defs/{name}"
            else:
                out[key] = _rewrite_refs(value, found)
        return out
    if isinstance(node, list):
        return [_rewrite_refs(item, found) for item in node]
    return node


def standalone(kind_schema: dict[str, Any], definitions: dict[str, Any]) -> dict[str, Any]:
    """The kind's schema with every definition it reaches (transitively, cycles allowed) copied into $defs."""
    pending: set[str] = set()
    root = _rewrite_refs(kind_schema, pending)
    root.pop("$id", None)
    defs: dict[str, Any] = {}
    while pending:
        name = pending.pop()
        if name in defs:
            continue
        if name not in definitions:
            raise KeyError(f"definition {name} is missing from _definitions.json")
        more: set[str] = set()
        defs[name] = _rewrite_refs(definitions[name], more)
        pending |= more - defs.keys()
    root["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    root["$defs"] = dict(sorted(defs.items()))
    return root


def kubernetes_schemas(wheel: Path, kube_version: str, kinds: list[str], out: Path) -> None:
    base = f"kubernetes_validate/kubernetes-json-schema/v{kube_version}-local-strict/"
    with zipfile.ZipFile(wheel) as archive:
        definitions = json.loads(archive.read(base + "_definitions.json"))["$defs"]
        for kind in kinds:
            try:
                raw = archive.read(f"{base}{kind}.json")
            except KeyError:
                raise SystemExit(f"schemagen: no schema {kind} for Kubernetes {kube_version} in {wheel.name}") from None
            _write(out / f"{kind}.json", standalone(json.loads(raw), definitions))


def strict_crd_schema(node: Any) -> Any:
    """An OpenAPI v3 structural schema of a CRD as a strict JSON schema."""
    if isinstance(node, list):
        return [strict_crd_schema(item) for item in node]
    if not isinstance(node, dict):
        return node
    out = {key: strict_crd_schema(value) for key, value in node.items()}
    if out.pop("x-kubernetes-int-or-string", False):
        out.pop("type", None)
        out.pop("anyOf", None)
        out["oneOf"] = [{"type": "string"}, {"type": "integer"}]
    nullable = out.pop("nullable", False)
    if nullable and isinstance(out.get("type"), str):
        out["type"] = [out["type"], "null"]
    preserve = out.get("x-kubernetes-preserve-unknown-fields", False)
    if "properties" in out and "additionalProperties" not in out and not preserve:
        out["additionalProperties"] = False
    return out


def crd_schemas(crd_files: list[Path], out: Path) -> None:
    for crd_file in crd_files:
        crd = yaml.safe_load(crd_file.read_text(encoding="utf-8"))
        spec = crd["spec"]
        group_prefix = spec["group"].split(".")[0]
        kind = spec["names"]["kind"]
        for version in spec["versions"]:
            schema = strict_crd_schema(version["schema"]["openAPIV3Schema"])
            properties = schema.setdefault("properties", {})
            properties["apiVersion"] = {"type": "string", "enum": [f"{spec['group']}/{version['name']}"]}
            properties["kind"] = {"type": "string", "enum": [kind]}
            schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
            _write(out / f"{kind.lower()}-{group_prefix}-{version['name']}.json", schema)


def _write(path: Path, schema: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(schema, indent=1, sort_keys=False) + "\n", encoding="utf-8")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--kubernetes-validate-wheel", type=Path, required=True)
    parser.add_argument("--kube-version", required=True, help="e.g. 1.33.0")
    parser.add_argument("--kinds", nargs="+", required=True, help="file stems, e.g. deployment-apps-v1")
    parser.add_argument("--crd", type=Path, action="append", default=[], help="a CustomResourceDefinition YAML")
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    kubernetes_schemas(args.kubernetes_validate_wheel, args.kube_version, args.kinds, args.out)
    crd_schemas(args.crd, args.out)
    print(f"schemagen: {len(list(args.out.glob('*.json')))} schemas in {args.out}")


if __name__ == "__main__":
    main()
