"""The ZBP's signed envelope, and the signing key and certificate read from files that may be replaced at run time.

An envelope is four strings (docs/zbp.md)::

    content            the payload JSON as text
    sha512sum          base64 of the RSA signature (PKCS#1 v1.5, SHA-512) over the UTF-8 bytes of content
    authorToken        a JWT signed RS512 with iat, exp = iat + token_ttl_s, signer = the certificate's CN,
                       roles (default ["THIRD_PARTY"])
    authorCertificate  the PEM certificate whose key signed both

**Rotation.** Key and certificate are files (a Kubernetes Secret volume). Before every envelope the signer compares
both files' inode, modification time and size with what it loaded; when they changed, it loads them again. The new pair
is taken only if the key is an RSA key, the certificate has a CN and the certificate's public key is the key's:
while a rotation is half done (one file replaced, the other not yet) or a file is broken, the previous pair keeps
signing and a warning is logged once per change. The files are read and never logged; neither is the key.
"""

from __future__ import annotations

import base64
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jwt
import structlog
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.x509.oid import NameOID

from rueckkanal.errors import ConfigError

log = structlog.get_logger("rueckkanal.portal.zbp")


_Stamp = tuple[int, ...]  # inode, mtime_ns and size of the key file, then of the certificate file


@dataclass(frozen=True, slots=True)
class _Material:
    stamp: _Stamp
    key: rsa.RSAPrivateKey
    certificate_pem: str
    common_name: str
    not_after: float


class SigningMaterialError(Exception):
    """The key or certificate files cannot be used; the message never names their content."""


class EnvelopeSigner:
    def __init__(
        self,
        key_path: Path,
        cert_path: Path,
        *,
        password: bytes | None = None,
        roles: tuple[str, ...] = ("THIRD_PARTY",),
        token_ttl_s: int = 1800,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.key_path = key_path
        self.cert_path = cert_path
        self._password = password
        self.roles = roles
        self.token_ttl_s = token_ttl_s
        self.clock = clock
        self._refused_stamp: _Stamp | None = None
        try:
            self._material = self._load(self._stamp())
        except (OSError, SigningMaterialError) as exc:
            raise ConfigError(f"zbp signing key or certificate cannot be used: {_describe(exc)}") from None

    @property
    def common_name(self) -> str:
        return self._current().common_name

    @property
    def certificate_not_after(self) -> float:
        """When the signing certificate expires (Unix time): an alert watches it."""
        return self._current().not_after

    def envelope(self, content: str) -> dict[str, str]:
        """The signed envelope of ``content`` (the payload JSON as text)."""
        material = self._current()
        signature = material.key.sign(content.encode("utf-8"), padding.PKCS1v15(), hashes.SHA512())
        return {
            "content": content,
            "sha512sum": base64.b64encode(signature).decode("ascii"),
            "authorToken": self._token(material),
            "authorCertificate": material.certificate_pem,
        }

    def _token(self, material: _Material) -> str:
        now = int(self.clock())
        claims: dict[str, Any] = {
            "iat": now,
            "exp": now + self.token_ttl_s,
            "signer": material.common_name,
            "roles": list(self.roles),
        }
        return jwt.encode(claims, material.key, algorithm="RS512", headers={"typ": "JWT"})

    def _current(self) -> _Material:
        try:
            stamp = self._stamp()
        except OSError as exc:
            self._refuse(None, exc)
            return self._material
        if stamp == self._material.stamp or stamp == self._refused_stamp:
            return self._material
        try:
            self._material = self._load(stamp)
        except (OSError, SigningMaterialError) as exc:
            self._refuse(stamp, exc)
        else:
            self._refused_stamp = None
            log.info("zbp signing key and certificate reloaded", signer=self._material.common_name)
        return self._material

    def _refuse(self, stamp: _Stamp | None, exc: Exception) -> None:
        if stamp is None or stamp != self._refused_stamp:
            log.warning(
                "zbp signing files changed but cannot be used; signing with the previous pair", problem=_describe(exc)
            )
        self._refused_stamp = stamp

    def _stamp(self) -> _Stamp:
        key, cert = os.stat(self.key_path), os.stat(self.cert_path)
        return (key.st_ino, key.st_mtime_ns, key.st_size, cert.st_ino, cert.st_mtime_ns, cert.st_size)

    def _load(self, stamp: _Stamp) -> _Material:
        key_bytes = self.key_path.read_bytes()
        cert_bytes = self.cert_path.read_bytes()
        try:
            key = serialization.load_pem_private_key(key_bytes, password=self._password)
        except (ValueError, TypeError):
            raise SigningMaterialError("the key is not a readable PEM private key") from None
        if not isinstance(key, rsa.RSAPrivateKey):
            raise SigningMaterialError("the key is not an RSA key (RS512 needs RSA)")
        try:
            certificate = x509.load_pem_x509_certificate(cert_bytes)
        except ValueError:
            raise SigningMaterialError("the certificate is not a readable PEM certificate") from None
        names = certificate.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
        if not names or not str(names[0].value):
            raise SigningMaterialError("the certificate's subject has no CN")
        if certificate.public_key().public_numbers() != key.public_key().public_numbers():  # type: ignore[union-attr]
            raise SigningMaterialError("the certificate does not belong to the key")
        return _Material(
            stamp=stamp,
            key=key,
            certificate_pem=certificate.public_bytes(serialization.Encoding.PEM).decode("ascii"),
            common_name=str(names[0].value),
            not_after=certificate.not_valid_after_utc.timestamp(),
        )


def _describe(exc: Exception) -> str:
    if isinstance(exc, OSError):
        return f"{exc.strerror or type(exc).__name__} ({Path(exc.filename).name if exc.filename else 'file'})"
    return str(exc)
