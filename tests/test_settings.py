"""Settings from defaults, environment variables and flags."""

from __future__ import annotations

from pathlib import Path

import pytest

from extproc.settings import Settings, SettingsError


def test_environment_overrides_defaults_and_flags_override_both() -> None:
    """Flags win over EXTPROC_* variables, which win over defaults."""
    environ = {"EXTPROC_PORT": "6000", "REDIS_URL": "redis://db:6379/1"}

    settings = Settings.from_env(environ, port=7000, rules_dir=None)

    assert (7000, "redis://db:6379/1", Path("rules")) == (
        settings.port,
        settings.redis_url,
        settings.rules_dir,
    )


@pytest.mark.parametrize(
    ("environ", "message"),
    [
        ({"EXTPROC_PORT": "many"}, "EXTPROC_PORT='many' is not a number"),
        ({"EXTPROC_HOLD_SECONDS": "0"}, "hold_seconds must be a positive number"),
        ({"REDIS_URL": "localhost:6379"}, "redis_url must start with redis://"),
        ({"EXTPROC_LOG_FORMAT": "xml"}, "log_format must be one of"),
        ({"EXTPROC_LOG_LEVEL": "verbose"}, "log_level must be one of"),
        ({"EXTPROC_SHUTDOWN_GRACE_SECONDS": "-1"}, "must not be negative"),
        ({"EXTPROC_PASSTHROUGH_PATHS": "v1/files"}, "must start with '/'"),
    ],
)
def test_bad_settings_name_the_setting(environ: dict[str, str], message: str) -> None:
    """A bad value stops the start with a message naming the setting."""
    with pytest.raises(SettingsError) as refused:
        Settings.from_env(environ)

    assert message in str(refused.value)
