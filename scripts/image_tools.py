"""Helpers of scripts/image.sh and scripts/image-smoke.sh (standard library only; they run with any python3).

image_tools.py runtime-lock requirements.lock     the lock without the pins only the build backend needs
image_tools.py add-debs SBOM DPKG_LIST             add the Debian packages (name, version, arch per line)
image_tools.py check-sbom SBOM DISTRIBUTIONS       every installed distribution (JSON name → version) is listed
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

BUILD_ONLY = "# via -r pyproject.toml (build-system)"


def runtime_lock(lock: Path) -> str:
    """Every block of the lock file except those whose only reason is the build backend (setuptools, wheel)."""
    blocks: list[list[str]] = []
    for line in lock.read_text(encoding="utf-8").splitlines():
        if line and not line.startswith((" ", "#")):
            blocks.append([line])
        elif blocks:
            blocks[-1].append(line)
    kept = [block for block in blocks if not any(line.strip() == BUILD_ONLY for line in block)]
    return "".join("\n".join(block) + "\n" for block in kept)


def add_debs(sbom_path: Path, dpkg_list: Path) -> None:
    """The Debian packages of the root file system as components (purl pkg:deb/debian/...)."""
    sbom = json.loads(sbom_path.read_text(encoding="utf-8"))
    components = sbom.setdefault("components", [])
    for line in dpkg_list.read_text(encoding="utf-8").splitlines():
        name, version, arch = line.split("\t")
        purl = f"pkg:deb/debian/{name}@{version}?arch={arch}&distro=debian-12"
        components.append({"type": "library", "bom-ref": purl, "name": name, "version": version, "purl": purl})
    sbom_path.write_text(json.dumps(sbom, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")


def _norm(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def check_sbom(sbom_path: Path, distributions: Path) -> list[str]:
    """Problems: a distribution installed in the image that the SBOM lacks, or lists with another version."""
    sbom = json.loads(sbom_path.read_text(encoding="utf-8"))
    listed = {
        _norm(c["name"]): c.get("version")
        for c in sbom.get("components", [])
        if not c.get("purl", "").startswith("pkg:deb/")  # the wheel itself has no purl (a local archive)
    }
    root = sbom.get("metadata", {}).get("component")
    if root:
        listed[_norm(root["name"])] = root.get("version")
    installed = {_norm(name): version for name, version in json.loads(distributions.read_text()).items()}
    return [
        f"{name} {version}: not in the SBOM" if name not in listed else f"{name} {version}: SBOM says {listed[name]}"
        for name, version in sorted(installed.items())
        if listed.get(name) != version
    ]


def main(argv: list[str]) -> int:
    command, *args = argv
    if command == "runtime-lock":
        sys.stdout.write(runtime_lock(Path(args[0])))
    elif command == "add-debs":
        add_debs(Path(args[0]), Path(args[1]))
    elif command == "check-sbom":
        problems = check_sbom(Path(args[0]), Path(args[1]))
        for problem in problems:
            print(f"SBOM: {problem}", file=sys.stderr)
        return 1 if problems else 0
    else:
        print(__doc__, file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
