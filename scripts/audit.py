"""Known vulnerabilities of every pin in the lock files, from PyPI's vulnerability data (the OSV database).

    python scripts/audit.py requirements.lock requirements-dev.lock

pip-audit asks PyPI's JSON API per pinned version (``/pypi/<name>/<version>/json``). Where that answer is not to
be had (a PyPI mirror that serves only the project pages), a pin that *is* the project's newest release is looked
up in the project page, whose ``vulnerabilities`` are those of the newest release; a pin behind the newest release
that cannot be looked up is listed as not audited. Exit 1 when a pin has a known vulnerability, 0 otherwise; the
list of pins not audited is printed either way (docs/operations.md, "Dependency audit", says what was done).
"""

from __future__ import annotations

import json
import subprocess
import sys
import urllib.request
from pathlib import Path
from typing import Any

PYPI = "https://pypi.org/pypi"


def _pip_audit(locks: list[str]) -> Any:
    args = [sys.executable, "-m", "pip_audit", "--disable-pip", "--require-hashes", "--progress-spinner", "off"]
    for lock in locks:
        args += ["-r", lock]
    done = subprocess.run([*args, "-f", "json"], capture_output=True, text=True, check=False)  # noqa: S603
    if not done.stdout.strip():
        raise SystemExit(f"pip-audit failed: {done.stderr[-2000:]}")
    return json.loads(done.stdout)


def _project(name: str) -> Any:
    with urllib.request.urlopen(f"{PYPI}/{name}/json", timeout=30) as response:  # noqa: S310 - a fixed https URL
        return json.load(response)


def main(locks: list[str]) -> int:
    report = _pip_audit(locks)
    found: list[str] = []
    unaudited: list[str] = []
    dependencies = report["dependencies"]
    for dep in dependencies:
        name, version = dep["name"], dep.get("version")
        vulns = dep.get("vulns", [])
        if "skip_reason" in dep:
            version = dep["skip_reason"].rsplit("(", 1)[-1].rstrip(")")
            project = _project(name)
            info = project["info"]
            if info["version"] != version:
                unaudited.append(f"{name} {version} (newest {info['version']})")
                continue
            vulns = [
                {"id": v["id"], "fix_versions": v.get("fixed_in", [])}
                for v in project.get("vulnerabilities", [])
                if not v.get("withdrawn")
            ]
        for vuln in vulns:
            found.append(f"{name} {version}: {vuln['id']} (fixed in {', '.join(vuln['fix_versions']) or '-'})")
    audited = len(dependencies) - len(unaudited)
    print(f"audit: {audited} pins audited, {len(found)} known vulnerabilities, {len(unaudited)} not audited")
    for line in found:
        print(f"  VULNERABLE {line}")
    for line in unaudited:
        print(f"  not audited: {line}")
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:] or [str(Path("requirements.lock"))]))
