from pathlib import Path

import pytest
from pydantic import ValidationError

from rueckkanal.settings import Settings, TopicSettings


def test_environment_overrides_nested_values(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RK_KAFKA__BOOTSTRAP", "broker-a:9092,broker-b:9092")
    monkeypatch.setenv("RK_TOPICS__PARTITIONS", "24")
    settings = Settings()
    assert settings.kafka.bootstrap == "broker-a:9092,broker-b:9092"
    assert settings.topics.partitions == 24


def test_yaml_file_is_read_and_environment_wins(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    config = tmp_path / "rueckkanal.yaml"
    config.write_text("app_id: leipzig-rk\ntopics:\n  outbox: leipzig.outbox\n  partitions: 6\n")
    monkeypatch.setenv("RK_CONFIG_FILE", str(config))
    monkeypatch.setenv("RK_TOPICS__PARTITIONS", "8")
    settings = Settings()
    assert settings.app_id == "leipzig-rk"
    assert settings.topics.outbox == "leipzig.outbox"
    assert settings.topics.partitions == 8


def test_secrets_are_masked_in_every_dump(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RK_KAFKA__SASL_PASSWORD", "hunter2-geheim")
    settings = Settings()
    assert settings.kafka.sasl_password is not None
    assert settings.kafka.sasl_password.get_secret_value() == "hunter2-geheim"
    for text in (repr(settings), str(settings.safe_dump()), settings.model_dump_json()):
        assert "hunter2-geheim" not in text


def test_settings_are_frozen() -> None:
    settings = Settings()
    with pytest.raises(ValidationError):
        settings.app_id = "other"  # type: ignore[misc]


def test_unknown_keys_are_rejected(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    config = tmp_path / "typo.yaml"
    config.write_text("topics:\n  outbx: misspelt\n")
    monkeypatch.setenv("RK_CONFIG_FILE", str(config))
    with pytest.raises(ValidationError, match="outbx"):
        Settings()


def test_secret_files_fill_nested_settings_as_kubernetes_mounts_them(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "rk_kafka__sasl_password").write_text("aus-der-datei\n")
    (tmp_path / "rk_portal__oauth2__client_secret").write_text("portal-geheim")
    monkeypatch.setenv("RK_SECRETS_DIR", str(tmp_path))
    monkeypatch.setenv("RK_PORTAL__AUTH", "oauth2")
    monkeypatch.setenv("RK_PORTAL__OAUTH2__TOKEN_URL", "https://portal.example/token")
    monkeypatch.setenv("RK_PORTAL__OAUTH2__CLIENT_ID", "leipzig")
    settings = Settings()
    assert settings.kafka.sasl_password is not None
    assert settings.kafka.sasl_password.get_secret_value() == "aus-der-datei"
    assert settings.portal.oauth2 is not None
    assert settings.portal.oauth2.client_secret.get_secret_value() == "portal-geheim"


def test_environment_wins_over_a_secret_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "rk_kafka__sasl_password").write_text("datei")
    monkeypatch.setenv("RK_SECRETS_DIR", str(tmp_path))
    monkeypatch.setenv("RK_KAFKA__SASL_PASSWORD", "umgebung")
    settings = Settings()
    assert settings.kafka.sasl_password is not None
    assert settings.kafka.sasl_password.get_secret_value() == "umgebung"


@pytest.mark.parametrize(("replication_factor", "insync"), [(1, 1), (2, 1), (3, 2), (5, 2)])
def test_min_insync_replicas_follows_the_replication_factor_unless_set(replication_factor: int, insync: int) -> None:
    assert TopicSettings(replication_factor=replication_factor).insync_replicas == insync
    assert TopicSettings(replication_factor=replication_factor, min_insync_replicas=1).insync_replicas == 1


def test_min_insync_replicas_above_the_replication_factor_is_refused() -> None:
    with pytest.raises(ValidationError, match="min_insync_replicas"):
        TopicSettings(replication_factor=2, min_insync_replicas=3)


def test_dlq_and_receipts_retention_are_long_by_default_and_settable(monkeypatch: pytest.MonkeyPatch) -> None:
    day_ms = 24 * 60 * 60 * 1000
    assert TopicSettings().dlq_retention_ms == 365 * day_ms
    assert TopicSettings().receipts_retention_ms == 90 * day_ms
    monkeypatch.setenv("RK_TOPICS__DLQ_RETENTION_MS", "-1")
    monkeypatch.setenv("RK_TOPICS__RECEIPTS_RETENTION_MS", str(day_ms))
    settings = Settings()
    assert settings.topics.dlq_retention_ms == -1
    assert settings.topics.receipts_retention_ms == day_ms
