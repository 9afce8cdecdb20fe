"""``make demo ARGS=--once`` against the test broker: the table shows what the portal holds and what went to the
dead-letter queue, the demo exits 0, and nothing it started is left running.
"""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
from pathlib import Path

from rueckkanal.codelists import codelists
from tests.support.processes import free_port

ROOT = Path(__file__).resolve().parents[2]

# The Vorgänge of config/examples/ (its README lists them) with their status codes in file-name order.
TIMELINES = {
    ("Bewohnerparken", "BWP-2024-004711"): ["100", "120", "210", "220", "300", "310", "400", "410"],
    ("Bewohnerparken", "BWP-2024-004802"): ["100", "200", "500"],
    ("Gewerberegister", "GA-2024-000912"): ["100", "120", "300", "310", "410"],
    ("Gewerberegister", "GA-2024-001037"): ["100", "210", "400", "410", "430", "440", "410"],
    ("Hundesteuer", "HST-2024-000123"): ["100", "120", "220", "300", "310", "400", "410", "420"],
    ("Hundesteuer", "HST-2024-000178"): ["100", "210", "510"],
}
# The broken records the demo sends: Fachverfahren, Vorgang, stage, rk.error.reason.
DEAD_LETTERS = [
    ["Hundesteuer", "HST-2024-000901", "ingest", "malformed_json"],
    ["Hundesteuer", "HST-2024-000906", "ingest", "unknown_status"],
    ["Bewohnerparken", "BWP-2024-000907", "ingest", "unknown_status"],
    ["Gewerberegister", "GA-2024-000950", "ingest", "xml_forbidden_construct"],
    ["Hundesteuer", "HST-2024-000178", "lifecycle", "illegal_transition"],
]


def test_demo_once_prints_portal_timelines_and_dead_letters_and_stops_everything(
    kafka_bootstrap: str, tmp_path: Path
) -> None:
    portal_port, web_port, zbp_port = free_port(), free_port(), free_port()
    status_port, status_internal = free_port(), free_port()
    state_dir = tmp_path / "demo"
    args = ["--once", "--portal-port", str(portal_port), "--web-port", str(web_port), "--state-dir", str(state_dir)]
    args += ["--status-port", str(status_port), "--status-internal-port", str(status_internal)]
    args += ["--zbp-port", str(zbp_port)]
    done = subprocess.run(
        [sys.executable, "scripts/demo.py", *args, "--deadline", "45"],
        cwd=ROOT,
        env={**os.environ, "RK_KAFKA__BOOTSTRAP": kafka_bootstrap},  # the demo must not start a broker of its own
        capture_output=True,
        text=True,
        timeout=150,
    )
    out = done.stdout
    assert done.returncode == 0, out + done.stderr

    flat = " ".join(out.split())  # timelines are wrapped to the terminal width
    label = codelists().antragsstatus.label
    for (fachverfahren, vorgang), codes in TIMELINES.items():
        timeline = " → ".join(f"{code} {label(code)}" for code in codes)
        assert f"{fachverfahren} · {vorgang} · {len(codes)} Meldungen {timeline} Statusseite:" in flat, vorgang
        link = re.search(rf"{vorgang} · .*? Statusseite: (\S+) QR-Code: (\S+)\.png", flat)
        assert link is not None, vorgang
        assert re.fullmatch(rf"http://127\.0\.0\.1:{status_port}/s/[A-Za-z0-9_-]{{27}}", link.group(1)), vorgang
        assert vorgang not in link.group(1)  # never derived from the Vorgang id
        assert (state_dir / "qr" / f"{vorgang}.png").stat().st_size > 0
        zbp = " → ".join(codelists().antragsstatus.value(code, "bundid") or "" for code in codes)
        assert f"BundID (ZBP): {len(codes)} Statusmeldungen" in flat.split(f"· {vorgang} ·", 1)[1], vorgang
        assert zbp in flat.split(f"· {vorgang} ·", 1)[1].split("Ansicht im BundID-Konto")[0], vorgang
    assert _dead_letter_rows(out) == DEAD_LETTERS
    assert f"http://127.0.0.1:{web_port}/metrics" in out
    assert f"http://127.0.0.1:{portal_port}/status/" in out

    pids = [int(pid) for pid in re.findall(r"\(PID (\d+)\)", out)]
    assert len(pids) == 4, out  # portal-sim, the ZBP simulator, the worker, status-web
    for pid in pids:
        assert not _running(pid), f"PID {pid} still runs after the demo ended"
    for port in (portal_port, web_port, zbp_port, status_port, status_internal):
        assert not _listening(port), f"port {port} still answers after the demo ended"
    worker_log = (state_dir / "worker.log").read_text(encoding="utf-8")
    assert '"worker ready"' in worker_log
    assert not any(vorgang in worker_log for _, vorgang in TIMELINES), "the worker log names a Vorgang"


def _dead_letter_rows(out: str) -> list[list[str]]:
    lines = out.splitlines()
    start = next(i for i, line in enumerate(lines) if line.split()[:2] == ["Fachverfahren", "Vorgang"])
    rows = []
    for line in lines[start + 1 :]:
        if not line.strip():
            break
        rows.append(line.split()[:4])
    return rows


def _running(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def _listening(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1):
            return True
    except OSError:
        return False
