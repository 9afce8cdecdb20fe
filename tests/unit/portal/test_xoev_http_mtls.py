"""mTLS between the HTTP adapter and the reference portal, with a throwaway CA made by the openssl CLI."""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from adapters.portal.sim.config import SimConfig, TlsServer
from adapters.portal.sim.server import RunningPortal, started
from adapters.portal.xoev_http import XoevHttpPortal
from adapters.portal.xoev_http_config import PortalHttpConfig
from rueckkanal.errors import Reason, TransientDeliveryError
from tests.contract.portal_contract import statusmeldung

pytestmark = pytest.mark.skipif(shutil.which("openssl") is None, reason="needs the openssl command")

_EC = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]


@dataclass(frozen=True)
class Pki:
    ca: Path
    server_cert: Path
    server_key: Path
    client_cert: Path
    client_key: Path


def _openssl(*args: str, cwd: Path) -> None:
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True)


def _issue(directory: Path, name: str, extensions: str) -> None:
    _openssl("req", *_EC, "-keyout", f"{name}.key", "-out", f"{name}.csr", "-subj", f"/CN={name}", cwd=directory)
    (directory / f"{name}.ext").write_text(extensions)
    _openssl(
        "x509", "-req", "-in", f"{name}.csr", "-CA", "ca.pem", "-CAkey", "ca.key", "-CAcreateserial",
        "-out", f"{name}.pem", "-days", "1", "-extfile", f"{name}.ext", cwd=directory,
    )  # fmt: skip


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    directory = tmp_path_factory.mktemp("pki")
    _openssl(
        "req", "-x509", *_EC, "-keyout", "ca.key", "-out", "ca.pem", "-days", "1", "-subj", "/CN=Rueckkanal Test CA",
        "-addext", "basicConstraints=critical,CA:TRUE", "-addext", "keyUsage=critical,keyCertSign,cRLSign",
        cwd=directory,
    )  # fmt: skip
    _issue(directory, "server", "subjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth\n")
    _issue(directory, "client", "extendedKeyUsage=clientAuth\n")
    return Pki(
        ca=directory / "ca.pem",
        server_cert=directory / "server.pem",
        server_key=directory / "server.key",
        client_cert=directory / "client.pem",
        client_key=directory / "client.key",
    )


@pytest.fixture
async def sim(pki: Pki) -> AsyncIterator[RunningPortal]:
    tls = TlsServer(cert=pki.server_cert, key=pki.server_key, client_ca=pki.ca)
    async with started(SimConfig(port=0, tls=tls)) as running:
        yield running


async def send_with(running: RunningPortal, **config: Any) -> None:
    portal = XoevHttpPortal(PortalHttpConfig.model_validate({"url": running.nachrichten_url, **config}))
    try:
        await portal.send(statusmeldung())
    finally:
        await portal.aclose()


async def test_client_certificate_and_private_ca_deliver(sim: RunningPortal, pki: Pki) -> None:
    tls = {"ca_bundle": pki.ca, "client_cert": pki.client_cert, "client_key": pki.client_key}
    await send_with(sim, auth="mtls", tls=tls)
    assert sim.base_url.startswith("https://")
    assert sim.portal.counters["stored"] == 1


async def test_without_client_certificate_the_portal_refuses_the_connection(sim: RunningPortal, pki: Pki) -> None:
    with pytest.raises(TransientDeliveryError) as caught:
        await send_with(sim, tls={"ca_bundle": pki.ca})
    assert caught.value.reason is Reason.PORTAL_CONNECTION
    assert sim.portal.counters["stored"] == 0


async def test_portal_certificate_from_an_unknown_ca_is_refused(sim: RunningPortal, pki: Pki) -> None:
    with pytest.raises(TransientDeliveryError) as caught:
        await send_with(sim, auth="mtls", tls={"client_cert": pki.client_cert, "client_key": pki.client_key})
    assert caught.value.reason is Reason.PORTAL_CONNECTION
    assert sim.portal.counters["requests"] == 0
