"""The wheel works anywhere: built once, installed with the lock file into a fresh venv, and run from a directory
that has nothing of the source tree, with no ``PYTHONPATH``.

Every file the code reads at run time (the XSD, the code lists, the DIN SPEC 91379 list, the default Fachverfahren
mappings, status-web's migrations and static files) must come from the installed package; a path into the source
tree shows up here as a traceback or a missing file.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import subprocess
import tomllib
import urllib.request
import venv
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.support.kafka_io import create_topics
from tests.support.processes import CliProcess, free_port

pytestmark = pytest.mark.wheel

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "config" / "examples"
#: What the wheel is built from: the packages and the project metadata, nothing else of the tree.
BUILD_INPUTS = ("pyproject.toml", "README.md", "rueckkanal", "adapters", "streams")


@dataclass(frozen=True)
class Installed:
    wheel: Path
    bin: Path
    workdir: Path  # an unrelated directory: the commands run here
    env: dict[str, str]  # a clean environment: no PYTHONPATH, no RK_* of the caller

    def run(self, *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [str(self.bin / "rueckkanal"), *args],
            cwd=self.workdir,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )


def _call(*args: str | Path, cwd: Path | None = None) -> None:
    done = subprocess.run([str(a) for a in args], cwd=cwd, capture_output=True, text=True, timeout=600, check=False)
    assert done.returncode == 0, f"{args[:4]}: {done.stdout[-2000:]}{done.stderr[-2000:]}"


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Installed]:
    base = tmp_path_factory.mktemp("wheel")
    # Built from a copy, so that the build leaves nothing in the source tree and sees only what it is given.
    src = base / "src"
    src.mkdir()
    for name in BUILD_INPUTS:
        source = ROOT / name
        if source.is_dir():
            shutil.copytree(source, src / name, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
        else:
            shutil.copy2(source, src / name)
    env_dir = base / "venv"
    venv.create(env_dir, with_pip=True, clear=True)
    python = env_dir / "bin" / "python"
    pip = (python, "-m", "pip", "--disable-pip-version-check")
    # The lock holds the build backend too: the wheel is built with exactly the pinned setuptools, offline.
    _call(*pip, "install", "-q", "--no-deps", "--require-hashes", "-r", ROOT / "requirements.lock")
    dist = base / "dist"
    _call(*pip, "wheel", "-q", "--no-deps", "--no-build-isolation", "-w", dist, src)
    [wheel] = dist.glob("rueckkanal-*.whl")
    _call(*pip, "install", "-q", "--no-deps", wheel)
    _call(python, "-m", "pip", "check")
    workdir = base / "elsewhere"
    workdir.mkdir()
    env = {
        "PATH": f"{env_dir / 'bin'}{os.pathsep}{os.environ.get('PATH', '/usr/bin:/bin')}",
        "HOME": str(base),
        "LANG": "C.UTF-8",
        "RK_DATA_DIR": str(base / "data"),
    }
    yield Installed(wheel, env_dir / "bin", workdir, env)


def _fachverfahren_with_examples() -> set[str]:
    return {path.name for path in EXAMPLES.iterdir() if path.is_dir()}


def test_the_wheel_holds_the_run_time_data_and_no_tests(installed: Installed) -> None:
    names = zipfile.ZipFile(installed.wheel).namelist()
    assert not [name for name in names if name.startswith(("tests/", "config/", "schemas/", "bench/", "scripts/"))]
    suffixes = {Path(name).suffix for name in names}
    assert {".xsd", ".xml", ".yaml", ".sql", ".css", ".svg", ".txt"} <= suffixes, sorted(suffixes)


def test_version_and_check_config_from_an_unrelated_directory(installed: Installed) -> None:
    version = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]["version"]
    shown = installed.run("--version")
    assert shown.returncode == 0, shown.stderr
    assert shown.stdout.split() == ["rueckkanal", version]

    checked = installed.run("check-config")
    assert checked.returncode == 0, checked.stderr
    ok = {line.split()[1] for line in checked.stdout.splitlines() if line.startswith("ok ")}
    assert ok >= _fachverfahren_with_examples(), checked.stdout


def test_render_and_validate_an_example_from_an_unrelated_directory(installed: Installed) -> None:
    for fachverfahren in sorted(_fachverfahren_with_examples()):
        example = sorted((EXAMPLES / fachverfahren).glob("*.json"))[0]
        copy = installed.workdir / fachverfahren / example.name
        copy.parent.mkdir(exist_ok=True)
        shutil.copy2(example, copy)
        rendered = installed.run("render", str(copy.relative_to(installed.workdir)))
        assert rendered.returncode == 0, rendered.stderr
        message = installed.workdir / f"{fachverfahren}.xml"
        message.write_text(rendered.stdout, encoding="utf-8")
        checked = installed.run("validate", message.name)
        assert checked.returncode == 0, checked.stderr
        assert checked.stdout.startswith("gültig / valid:"), checked.stdout


def test_worker_starts_to_ready_and_stops_on_sigterm(
    installed: Installed, kafka_bootstrap: str, unique: str, tmp_path: Path
) -> None:
    env = {
        "RK_KAFKA__BOOTSTRAP": kafka_bootstrap,
        "RK_APP_ID": f"rk-test-{unique}",
        "RK_TOPICS__EVENTS": f"rk.{unique}.events",
        "RK_TOPICS__OUTBOX": f"rk.{unique}.outbox",
        "RK_TOPICS__DLQ": f"rk.{unique}.dlq",
        "RK_TOPICS__RECEIPTS": f"rk.{unique}.receipts",
        "RK_TOPICS__PARTITIONS": "1",
        "RK_DATA_DIR": str(tmp_path / "data"),
        "RK_WEB__PORT": str(free_port()),
    }
    worker = CliProcess(
        ["worker"],
        env=env,
        cwd=installed.workdir,
        log_file=tmp_path / "worker.log",
        program=[str(installed.bin / "rueckkanal")],
        base_env=installed.env,
    )
    try:
        ready = worker.wait_for_event("worker ready", timeout=120)
        assert ready["app_id"] == env["RK_APP_ID"]
    finally:
        code = worker.terminate()
    assert code == 0, worker.lines[-10:]


def test_status_web_migrates_its_database_and_serves_its_static_files(
    installed: Installed, kafka_bootstrap: str, unique: str, tmp_path: Path
) -> None:
    # The worker's outbox, which status-web reads; the worker test above does not share its topics.
    asyncio.run(create_topics(kafka_bootstrap, [f"rk.{unique}.outbox"], partitions=1))
    port, internal = free_port(), free_port()
    env = {
        "RK_KAFKA__BOOTSTRAP": kafka_bootstrap,
        "RK_APP_ID": f"rk-test-{unique}",
        "RK_TOPICS__OUTBOX": f"rk.{unique}.outbox",
        "RK_STATUS_WEB__PORT": str(port),
        "RK_STATUS_WEB__INTERNAL_PORT": str(internal),
        "RK_STATUS_WEB__BASE_URL": f"http://127.0.0.1:{port}",
        "RK_STATUS_WEB__DATABASE_URL": f"sqlite:///{tmp_path}/status-web.sqlite3",
        "RK_STATUS_WEB__TOKEN_PEPPER": "wheel-test-pepper-0123456789abcdef",
        "RK_STATUS_WEB__TRACKING_TOPIC": f"rk.{unique}.tracking",
    }
    web = CliProcess(
        ["status-web"],
        env=env,
        cwd=installed.workdir,
        log_file=tmp_path / "status-web.log",
        program=[str(installed.bin / "rueckkanal")],
        base_env=installed.env,
    )
    try:
        web.wait_for_event("status-web ready", timeout=90)
        for name, kind in (("status.css", "text/css"), ("favicon.svg", "image/svg+xml")):
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/static/{name}", timeout=10) as response:
                assert response.status == 200
                assert response.headers["Content-Type"].startswith(kind)
                assert response.read()
    finally:
        code = web.terminate()
    assert code == 0, web.lines[-10:]
