"""The signed envelope: a signature and a token the CA's certificate verifies, and key rotation without restart."""

from __future__ import annotations

import base64
import json
import time
from pathlib import Path

import jwt
import pytest
import structlog.testing
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding

from adapters.portal.sim.zbp import Refusal, ZbpRules, verify_envelope
from adapters.portal.zbp_sign import EnvelopeSigner
from rueckkanal.errors import ConfigError
from tests.support.zbp_ca import Ca, SigningPair, issue, new_key, replace_file

NOW = int(time.time())  # set again before each test: the certificates are valid from five minutes before issue


@pytest.fixture(autouse=True)
def _now() -> None:
    """The test's own time: a certificate issued during a long run is not valid at the time the module was read."""
    global NOW
    NOW = int(time.time())


def signer(pair: SigningPair, **kwargs: object) -> EnvelopeSigner:
    return EnvelopeSigner(pair.key_path, pair.cert_path, clock=lambda: NOW, **kwargs)  # type: ignore[arg-type]


def test_the_envelope_verifies_against_its_certificate(zbp_signing: SigningPair) -> None:
    envelope = signer(zbp_signing).envelope('{"status":"RECEIVED"}')
    assert set(envelope) == {"content", "sha512sum", "authorToken", "authorCertificate"}
    certificate = x509.load_pem_x509_certificate(envelope["authorCertificate"].encode())
    key = certificate.public_key()
    key.verify(  # type: ignore[union-attr, call-arg]
        base64.b64decode(envelope["sha512sum"]),
        envelope["content"].encode(),
        padding.PKCS1v15(),  # type: ignore[arg-type]
        hashes.SHA512(),  # type: ignore[arg-type]
    )
    header = jwt.get_unverified_header(envelope["authorToken"])
    claims = jwt.decode(envelope["authorToken"], key, algorithms=["RS512"], options={"verify_exp": False})  # type: ignore[arg-type]
    assert header["alg"] == "RS512"
    assert claims == {"iat": NOW, "exp": NOW + 1800, "signer": zbp_signing.common_name, "roles": ["THIRD_PARTY"]}


def test_the_same_content_gets_the_same_signature(zbp_signing: SigningPair) -> None:
    s = signer(zbp_signing)
    assert s.envelope("x")["sha512sum"] == s.envelope("x")["sha512sum"]


def test_a_replaced_key_and_certificate_are_used_without_restart(
    zbp_ca: Ca, zbp_signing: SigningPair, zbp_ca_file: Path
) -> None:
    s = signer(zbp_signing)
    rules = ZbpRules(zbp_ca.pem)
    assert verify_envelope(json.dumps(s.envelope("{}")).encode(), rules, now=NOW)[1] == zbp_signing.common_name
    rotated = issue(zbp_ca, zbp_signing.key_path.parent, "stadt-leipzig-rueckkanal-2026")
    with structlog.testing.capture_logs() as logs:
        envelope = s.envelope("{}")
    assert verify_envelope(json.dumps(envelope).encode(), rules, now=NOW)[1] == rotated.common_name
    assert [line["event"] for line in logs] == ["zbp signing key and certificate reloaded"]


def test_a_half_done_rotation_keeps_signing_with_the_previous_pair(zbp_ca: Ca, zbp_signing: SigningPair) -> None:
    s = signer(zbp_signing)
    old_certificate = s.envelope("{}")["authorCertificate"]
    other = issue(zbp_ca, zbp_signing.key_path.parent / "next", "next")  # a new pair elsewhere
    replace_file(zbp_signing.key_path, other.key_path.read_bytes())  # only the key was replaced so far
    with structlog.testing.capture_logs() as logs:
        first = s.envelope("{}")
        second = s.envelope("{}")
    assert first["authorCertificate"] == second["authorCertificate"] == old_certificate
    warnings = [line for line in logs if line["log_level"] == "warning"]
    assert len(warnings) == 1  # once per change, not per message
    assert "does not belong" in warnings[0]["problem"]
    assert "PRIVATE" not in json.dumps(logs)
    replace_file(zbp_signing.cert_path, other.cert_path.read_bytes())  # the rotation completes
    assert s.envelope("{}")["authorCertificate"] != old_certificate


def test_unusable_files_at_start_are_a_config_error_that_names_no_content(
    zbp_signing: SigningPair, tmp_path: Path
) -> None:
    broken = tmp_path / "broken.pem"
    broken.write_text("-----BEGIN PRIVATE KEY-----\nnot a key\n-----END PRIVATE KEY-----\n")
    with pytest.raises(ConfigError) as caught:
        EnvelopeSigner(broken, zbp_signing.cert_path)
    assert "not a key" not in str(caught.value)
    with pytest.raises(ConfigError):
        EnvelopeSigner(tmp_path / "missing.pem", zbp_signing.cert_path)


def test_a_token_past_its_exp_is_refused(zbp_ca: Ca, zbp_signing: SigningPair) -> None:
    envelope = signer(zbp_signing).envelope("{}")
    with pytest.raises(Refusal) as caught:
        verify_envelope(json.dumps(envelope).encode(), ZbpRules(zbp_ca.pem), now=NOW + 1801)
    assert caught.value.code == "token_expired"


def test_a_certificate_of_another_ca_is_refused(zbp_ca: Ca, zbp_signing: SigningPair, tmp_path: Path) -> None:
    from tests.support.zbp_ca import make_ca

    stranger = issue(make_ca("Fremde CA"), tmp_path / "stranger", key=new_key())
    envelope = signer(stranger).envelope("{}")
    with pytest.raises(Refusal) as caught:
        verify_envelope(json.dumps(envelope).encode(), ZbpRules(zbp_ca.pem), now=NOW)
    assert caught.value.code == "certificate_untrusted"
