"""The coordinator's settings from the environment."""

import pytest
from aperture_contracts.enums import Stage
from aperture_coordinator.job_messages import STAGES_WITH_MESSAGES
from aperture_coordinator.settings import CoordinatorSettings
from pydantic import ValidationError


def test_defaults_dispatch_every_built_stage_to_an_embedded_database(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("APERTURE_DATABASE_URL", "APERTURE_ENABLED_STAGES", "APERTURE_FAULT_INJECTION"):
        monkeypatch.delenv(name, raising=False)
    settings = CoordinatorSettings()
    assert settings.database_url == "sqlite:///var/aperture.db"
    assert settings.enabled_stages == list(Stage)
    assert (settings.api_host, settings.api_port, settings.max_attempts) == ("127.0.0.1", 8000, 3)
    assert settings.time_limit_s(Stage.IMAGING) == 12 * 3600
    assert settings.fault_injection is None


def test_enabled_stages_and_time_limits_come_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("APERTURE_ENABLED_STAGES", " ingest , ")
    monkeypatch.setenv("APERTURE_STAGE_TIME_LIMITS_S", '{"ingest": 120}')
    monkeypatch.setenv("APERTURE_FAULT_INJECTION", "crash_after_publish_before_commit")
    settings = CoordinatorSettings()
    assert settings.enabled_stages == [Stage.INGEST]
    assert settings.time_limit_s(Stage.INGEST) == 120
    assert settings.time_limit_s(Stage.EXPORT) == 3600  # the stages not named keep their defaults
    assert settings.fault_injection == "crash_after_publish_before_commit"


def test_every_stage_has_a_job_message_builder() -> None:
    assert STAGES_WITH_MESSAGES == set(Stage)


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("enabled_stages", ["deploy"]),
        ("fault_injection", "crash_sometimes"),
        ("stage_time_limits_s", {"ingest": 0}),
    ],
)
def test_bad_settings_are_refused_naming_the_setting(field: str, value: object) -> None:
    with pytest.raises(ValidationError, match=field):
        CoordinatorSettings(**{field: value})  # type: ignore[arg-type]


def test_cube_chunk_size_comes_from_the_environment_and_zero_turns_chunking_off(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("APERTURE_CUBE_CHUNK_CHANNELS", raising=False)
    assert CoordinatorSettings().cube_chunk_channels == 256
    monkeypatch.setenv("APERTURE_CUBE_CHUNK_CHANNELS", "0")
    assert CoordinatorSettings().cube_chunk_channels == 0
    with pytest.raises(ValidationError, match="cube_chunk_channels"):
        CoordinatorSettings(cube_chunk_channels=-1)
