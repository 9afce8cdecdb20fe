from pydantic import SecretStr

from rueckkanal.settings import LogSettings
from streams.logs import logging_config, vorgang_ref


def test_a_configured_hash_key_makes_every_process_hash_a_vorgang_alike() -> None:
    key = "urn:de:leipzig:fachverfahren:hundesteuer|HST-2024-000123"
    logging_config(LogSettings(hash_key=SecretStr("geteilt")))
    first = vorgang_ref(key)
    logging_config(LogSettings(hash_key=SecretStr("anders")))
    other = vorgang_ref(key)
    logging_config(LogSettings(hash_key=SecretStr("geteilt")))
    assert vorgang_ref(key) == first
    assert other != first
    assert "HST-2024-000123" not in first
