"""The worker exports when a ZBP target's signing certificate expires, read at scrape time (an alert watches it)."""

from __future__ import annotations

from pathlib import Path

from cryptography import x509
from prometheus_client import CollectorRegistry

from adapters.portal.sim.devca import Ca, SigningPair, issue
from rueckkanal.metrics import Metrics
from rueckkanal.settings import Settings, ZbpSettings
from streams.worker import build_portal

METRIC = "rueckkanal_zbp_signing_certificate_expiry_timestamp_seconds"


def _not_after(path: Path) -> float:
    return x509.load_pem_x509_certificate(path.read_bytes()).not_valid_after_utc.timestamp()


def test_the_expiry_of_the_signing_certificate_is_a_metric_that_follows_a_rotation(
    zbp_ca: Ca, zbp_signing: SigningPair, tmp_path: Path
) -> None:
    zbp = ZbpSettings(signing_key=zbp_signing.key_path, signing_cert=zbp_signing.cert_path)
    settings = Settings(targets={"zbp": zbp})
    metrics = Metrics(CollectorRegistry())

    build_portal(settings, "zbp", [], metrics)

    sample = metrics.registry.get_sample_value(METRIC, {"target": "zbp"})
    assert sample == _not_after(zbp_signing.cert_path)
    renewed = issue(zbp_ca, tmp_path / "renewed", valid_days=400)
    zbp_signing.key_path.write_bytes(renewed.key_path.read_bytes())
    zbp_signing.cert_path.write_bytes(renewed.cert_path.read_bytes())
    assert metrics.registry.get_sample_value(METRIC, {"target": "zbp"}) == _not_after(renewed.cert_path) != sample
