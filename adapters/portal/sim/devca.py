"""A throwaway CA and signing certificates for the ZBP simulator, made with ``cryptography`` when needed.

The tests (tests/conftest.py) and the demo (scripts/demo.py) make their own CA per run and issue the signing pair
from it; no key material is committed. The simulator trusts the CA (``portal-sim --mode zbp --zbp-ca``), the
adapter signs with the pair, written the way a Kubernetes Secret volume holds it (each file replaced atomically).
Never for production: the BundID operator issues the real certificate.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID

KEY_BITS = 2048  # fast enough for tests and the demo


@dataclass(frozen=True)
class Ca:
    key: rsa.RSAPrivateKey
    certificate: x509.Certificate

    @property
    def pem(self) -> bytes:
        return self.certificate.public_bytes(serialization.Encoding.PEM)

    def write(self, path: Path) -> Path:
        path.write_bytes(self.pem)
        return path


@dataclass(frozen=True)
class SigningPair:
    key_path: Path
    cert_path: Path
    common_name: str


def _name(common_name: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


def new_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=KEY_BITS)


def make_ca(common_name: str = "Rückkanal Test-CA") -> Ca:
    key = new_key()
    now = datetime.now(UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(_name(common_name))
        .issuer_name(_name(common_name))
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=5))
        .not_valid_after(now + timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .sign(key, hashes.SHA256())
    )
    return Ca(key, certificate)


def issue(
    ca: Ca,
    directory: Path,
    common_name: str = "stadt-leipzig-rueckkanal",
    *,
    key: rsa.RSAPrivateKey | None = None,
    key_name: str = "zbp.key",
    cert_name: str = "zbp.crt",
    valid_days: float = 1,
) -> SigningPair:
    """A key and a certificate signed by ``ca``, written atomically (a new inode, as a Secret update does)."""
    key = key or new_key()
    now = datetime.now(UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(_name(common_name))
        .issuer_name(ca.certificate.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=5))
        .not_valid_after(now + timedelta(days=valid_days))
        .sign(ca.key, hashes.SHA256())
    )
    directory.mkdir(parents=True, exist_ok=True)
    key_pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    key_path = replace_file(directory / key_name, key_pem)
    cert_path = replace_file(directory / cert_name, certificate.public_bytes(serialization.Encoding.PEM))
    return SigningPair(key_path, cert_path, common_name)


def replace_file(path: Path, content: bytes) -> Path:
    temporary = path.with_name(path.name + ".new")
    temporary.write_bytes(content)
    os.replace(temporary, path)
    return path
