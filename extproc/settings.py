"""The sidecar's settings: one typed object, from flags or environment variables.

Every setting has a documented default and an environment name; a bad value stops
the start with a message naming the setting and the remedy.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any


class SettingsError(ValueError):
    """A setting has a value the sidecar cannot start with."""


@dataclass(frozen=True, slots=True)
class Settings:
    rules_dir: Path = Path("rules")  # EXTPROC_RULES_DIR
    redis_url: str = "redis://127.0.0.1:6379/0"  # REDIS_URL
    host: str = "127.0.0.1"  # EXTPROC_HOST: where ext_proc listens
    port: int = 50051  # EXTPROC_PORT
    admin_host: str = "127.0.0.1"  # EXTPROC_ADMIN_HOST: where the admin API listens
    admin_port: int = 50052  # EXTPROC_ADMIN_PORT
    metrics_host: str = "127.0.0.1"  # EXTPROC_METRICS_HOST: Prometheus /metrics
    metrics_port: int = 9464  # EXTPROC_METRICS_PORT
    # EXTPROC_ADMIN_TOKENS_FILE: `name:sha256-of-token` lines; the variable
    # EXTPROC_ADMIN_TOKEN adds one plain token, named "env".
    admin_tokens_file: Path | None = None
    key_prefix: str = "llmq"  # EXTPROC_KEY_PREFIX: Redis key namespace
    default_output_tokens: int = 1024  # EXTPROC_DEFAULT_OUTPUT_TOKENS: tokens
    hold_seconds: int = 600  # EXTPROC_HOLD_SECONDS: reservation lifetime
    retention_days: int = 90  # EXTPROC_RETENTION_DAYS: counters after window
    usage_retention_days: int = 90  # EXTPROC_USAGE_RETENTION_DAYS: usage buckets
    events_max_len: int = 100_000  # EXTPROC_EVENTS_MAX_LEN: stream entries
    # EXTPROC_REDIS_TIMEOUT_MS: per command, and for a free pooled connection;
    # keep it under Envoy's message_timeout (2 s in the shipped configs).
    redis_timeout_ms: int = 1000
    redis_max_connections: int = 64  # EXTPROC_REDIS_MAX_CONNECTIONS
    settle_retry_seconds: int = 900  # EXTPROC_SETTLE_RETRY_SECONDS
    shutdown_grace_seconds: float = 20.0  # EXTPROC_SHUTDOWN_GRACE_SECONDS
    # EXTPROC_PASSTHROUGH_PATHS: comma-separated path prefixes whose requests
    # pass unmetered even for limited consumers (by default none: a body sent
    # to a path no API shape reads is refused for them, as it could not be
    # charged).
    passthrough_paths: tuple[str, ...] = ()
    log_format: str = "auto"  # EXTPROC_LOG_FORMAT: auto, json or console
    log_level: str = "info"  # EXTPROC_LOG_LEVEL

    @classmethod
    def from_env(
        cls, environ: Mapping[str, str] | None = None, **overrides: Any
    ) -> Settings:
        """Defaults, then environment variables, then explicit overrides."""
        environ = os.environ if environ is None else environ
        values: dict[str, Any] = {}
        for setting in fields(cls):
            name = _ENV_NAMES.get(setting.name, "EXTPROC_" + setting.name.upper())
            if name in environ:
                values[setting.name] = _convert(setting.name, environ[name], name)
        values.update({k: v for k, v in overrides.items() if v is not None})
        settings = cls(**values)
        settings.validate()
        return settings

    def validate(self) -> None:
        positive = (
            "port",
            "admin_port",
            "metrics_port",
            "default_output_tokens",
            "hold_seconds",
            "retention_days",
            "usage_retention_days",
            "events_max_len",
            "redis_timeout_ms",
            "redis_max_connections",
        )
        for name in positive:
            if int(getattr(self, name)) <= 0:
                raise SettingsError(f"{name} must be a positive number")
        for prefix in self.passthrough_paths:
            if not prefix.startswith("/"):
                raise SettingsError(
                    f"passthrough path {prefix!r} must start with '/' "
                    "(EXTPROC_PASSTHROUGH_PATHS)"
                )
        if self.shutdown_grace_seconds < 0:
            raise SettingsError("shutdown_grace_seconds must not be negative")
        if self.log_level.lower() not in _LOG_LEVELS:
            raise SettingsError(f"log_level must be one of {', '.join(_LOG_LEVELS)}")
        if self.log_format not in {"auto", "json", "console"}:
            raise SettingsError("log_format must be one of auto, json, console")
        if not self.redis_url.startswith(("redis://", "rediss://", "unix://")):
            raise SettingsError(
                "redis_url must start with redis://, rediss:// or unix:// "
                "(set REDIS_URL or --redis-url)"
            )


_LOG_LEVELS = ("debug", "info", "warning", "error", "critical")

_ENV_NAMES = {"redis_url": "REDIS_URL"}


def _convert(name: str, raw: str, env_name: str) -> Any:
    kind = Settings.__dataclass_fields__[name].type
    try:
        if kind == "int":
            return int(raw)
        if kind == "float":
            return float(raw)
    except ValueError:
        raise SettingsError(f"{env_name}={raw!r} is not a number") from None
    if kind in ("Path", "Path | None"):
        return Path(raw)
    if kind == "tuple[str, ...]":
        return tuple(part.strip() for part in raw.split(",") if part.strip())
    return raw
