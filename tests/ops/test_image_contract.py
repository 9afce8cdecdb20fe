"""The chart's default image is the one `make image` builds: same name, same version as the package."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import yaml

from rueckkanal import __version__

ROOT = Path(__file__).resolve().parents[2]


def test_the_charts_default_image_is_what_make_image_builds() -> None:
    chart = yaml.safe_load((ROOT / "helm" / "rueckkanal" / "Chart.yaml").read_text(encoding="utf-8"))
    values = yaml.safe_load((ROOT / "helm" / "rueckkanal" / "values.yaml").read_text(encoding="utf-8"))
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    script = (ROOT / "scripts" / "image.sh").read_text(encoding="utf-8")
    [built_name] = re.findall(r"^NAME=(\S+)$", script, re.MULTILINE)
    assert 'image="$NAME:$version"' in script  # the tag is the package's version

    tag = values["image"]["tag"] or chart["appVersion"]
    assert f"{values['image']['repository']}:{tag}" == f"{built_name}:{project['version']}"
    assert project["version"] == __version__
