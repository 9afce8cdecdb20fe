"""Where the tools of the tests are: what ``scripts/tools.sh env`` prints (it installed them)."""

from __future__ import annotations

import subprocess
from functools import cache
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


@cache
def tools_env() -> dict[str, str]:
    out = subprocess.run(["bash", "scripts/tools.sh", "env"], cwd=ROOT, capture_output=True, text=True, check=True)
    return dict(line.split("=", 1) for line in out.stdout.splitlines() if "=" in line)
