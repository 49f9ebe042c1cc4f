"""Reading and writing the configuration file, with environment overrides."""

from __future__ import annotations

import logging
import os
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import tomli_w
from pydantic import SecretStr, ValidationError

from mepgate.config.secrets import too_open, write_secret_file
from mepgate.config.settings import MeterConfig, Settings
from mepgate.errors import MepgateError
from mepgate.proto import MepKey, parse_key

log = logging.getLogger(__name__)

ENV_PREFIX = "MEPGATE_"
_SECTIONS = ("web", "storage", "mqtt")


class ConfigError(MepgateError):
    """The configuration cannot be used; the message names the key and what is valid."""


def load_settings(path: Path | None, env: Mapping[str, str] | None = None) -> Settings:
    """The settings from ``path`` (absent file: defaults), then environment overrides.

    Environment: ``MEPGATE_<SECTION>_<FIELD>`` for the web, storage and mqtt sections
    (``MEPGATE_WEB_LISTEN``, ``MEPGATE_MQTT_URL``...), ``MEPGATE_METER_<FIELD>`` for the
    first meter, and ``MEPGATE_KEY`` for the first meter's key.
    """
    environment = os.environ if env is None else env
    data: dict[str, Any] = {}
    if path is not None and path.exists():
        try:
            data = tomllib.loads(path.read_text(encoding="utf-8"))
        except tomllib.TOMLDecodeError as error:
            raise ConfigError(
                f"{path}: not valid TOML ({error}); fix the line named, or move the file away "
                "to start over with the setup page"
            ) from None
        except OSError as error:
            raise ConfigError(f"{path}: cannot be read ({error.strerror})") from None
    _apply_environment(data, environment)
    try:
        return Settings.model_validate(data)
    except ValidationError as error:
        raise ConfigError(_explain(error, path)) from None


def _apply_environment(data: dict[str, Any], env: Mapping[str, str]) -> None:
    for name, value in env.items():
        if not name.startswith(ENV_PREFIX):
            continue
        rest = name[len(ENV_PREFIX) :].lower()
        if rest == "key":  # the environment's key replaces the file's key_file
            meter = _first_meter(data)
            meter.pop("key_file", None)
            meter["key"] = value
            continue
        section, _, field = rest.partition("_")
        if not field:
            continue
        if section == "meter":
            _first_meter(data)[field] = value
        elif section in _SECTIONS:
            data.setdefault(section, {})[field] = value


def _first_meter(data: dict[str, Any]) -> dict[str, Any]:
    meters = data.setdefault("meter", [])
    if not meters:
        meters.append({})
    first: dict[str, Any] = meters[0]
    return first


def _explain(error: ValidationError, path: Path | None) -> str:
    where = f"{path}: " if path is not None else ""
    lines = []
    for problem in error.errors(include_input=False, include_url=False):
        key = ".".join(str(part) for part in problem["loc"]) or "(top level)"
        message = problem["msg"].removeprefix("Value error, ")
        if problem["type"] == "extra_forbidden":
            message = "unknown setting; check its spelling against docs/configuration.md"
        elif problem["type"] == "missing":
            message = "required, but not set"
        lines.append(f"{where}{key}: {message}")
    return "invalid configuration:\n  " + "\n  ".join(lines)


def meter_key(meter: MeterConfig, base: Path) -> MepKey:
    """The meter's key, from ``key`` or ``key_file`` (relative to ``base``)."""
    if meter.key is not None:
        text = meter.key.get_secret_value()
    elif meter.key_file is not None:
        key_path = meter.key_file if meter.key_file.is_absolute() else base / meter.key_file
        try:
            text = key_path.read_text(encoding="utf-8")
        except OSError as error:
            raise ConfigError(
                f"meter {meter.name!r}: key_file {key_path} cannot be read "
                f"({error.strerror}); create it with the MBK as its only line"
            ) from None
        if too_open(key_path):
            log.warning("key file %s is readable by others; run: chmod 600 %s", key_path, key_path)
    else:
        raise ConfigError(
            f"meter {meter.name!r} has no key: set key_file (a file holding the MBK) "
            "or the environment variable MEPGATE_KEY"
        )
    return parse_key(text)


def save_settings(settings: Settings, path: Path) -> None:
    """Write the settings as TOML, mode 0600 (it may hold an MQTT password)."""
    data = settings.model_dump(mode="json", exclude_none=True)
    for meter, source in zip(data.get("meter", []), settings.meter, strict=True):
        if source.key is not None:
            meter["key"] = source.key.get_secret_value()
    mqtt = settings.mqtt
    if mqtt is not None and isinstance(mqtt.password, SecretStr):
        data["mqtt"]["password"] = mqtt.password.get_secret_value()
    write_secret_file(path, tomli_w.dumps(data))
