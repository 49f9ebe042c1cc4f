"""Reading and writing the configuration file, with environment overrides."""

from __future__ import annotations

import copy
import logging
import os
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import tomli_w
from pydantic import SecretStr, ValidationError

from mepgate.c1218.keys import Password, parse_password
from mepgate.config.overrides import Override, dig, restore_file_values
from mepgate.config.overrides import Path as OverridePath
from mepgate.config.secrets import too_open, write_secret_file
from mepgate.config.settings import MEP_ONLY, MeterConfig, Settings
from mepgate.config.textfile import TextFileError, read_text
from mepgate.errors import MepgateError
from mepgate.proto import MepKey, parse_key

log = logging.getLogger(__name__)

ENV_PREFIX = "MEPGATE_"
_SECTIONS = ("web", "storage", "mqtt", "prices")


class ConfigError(MepgateError):
    """The configuration cannot be used; the message names the key and what is valid."""


def load_settings(path: Path | None, env: Mapping[str, str] | None = None) -> Settings:
    """The settings from ``path`` (absent file: defaults), then environment overrides.

    Environment: ``MEPGATE_<SECTION>_<FIELD>`` for the web, storage, mqtt and prices sections
    (``MEPGATE_WEB_LISTEN``, ``MEPGATE_MQTT_URL``...), ``MEPGATE_METER_<FIELD>`` for the
    first meter, and ``MEPGATE_KEY`` for the first meter's key.  A meter's old ``tls`` key
    (and ``MEPGATE_METER_TLS``) loads as ``security``, with a warning that says the new spelling.
    """
    environment = os.environ if env is None else env
    data: dict[str, Any] = {}
    if path is not None and path.exists():
        try:
            data = tomllib.loads(read_text(path, "the configuration file"))
        except TextFileError as error:
            raise ConfigError(str(error)) from None
        except tomllib.TOMLDecodeError as error:
            raise ConfigError(
                f"{path}: not valid TOML ({error}); fix the line named, or move the file away "
                "to start over with the setup page"
            ) from None
        except OSError as error:
            raise ConfigError(f"{path}: cannot be read ({error.strerror})") from None
    _rename_old_keys(data, path)
    file_data = copy.deepcopy(data)
    changed = _apply_environment(data, environment)
    try:
        settings = Settings.model_validate(data)
    except ValidationError as error:
        raise ConfigError(_explain(error, path)) from None
    return settings.with_overrides(_overrides(settings, file_data, changed))


def override_settings(settings: Settings, changes: Mapping[str, tuple[str, object]]) -> Settings:
    """``settings`` with command-line options applied: ``{"web.listen": ("--listen", value)}``.

    Like the environment's, these are never saved (:mod:`mepgate.config.overrides`).  Raises
    :class:`pydantic.ValidationError` for a value that is not valid."""
    if not changes:
        return settings
    data: dict[str, Any] = settings.model_dump()
    for name, (_source, value) in changes.items():
        section, _, key = name.partition(".")
        data[section] = {**(data.get(section) or {}), key: value}
    result = Settings.model_validate(data)
    own = settings.model_dump(mode="json", exclude_unset=True)  # the file's, or nothing
    kept = [o for o in settings.overrides if o.name not in changes]
    plain = plain_data(result)
    for name, (source, _value) in changes.items():
        path = tuple(name.split("."))
        earlier = settings.overridden(name)
        file_value = earlier.file_value if earlier is not None else dig(own, path)
        kept.append(Override(path, source, dig(plain, path), file_value))
    return result.with_overrides(tuple(kept))


def _overrides(
    settings: Settings, file_data: dict[str, Any], changed: list[tuple[OverridePath, str]]
) -> tuple[Override, ...]:
    plain = plain_data(settings)
    return tuple(
        Override(path, source, dig(plain, path), dig(file_data, path)) for path, source in changed
    )


def _apply_environment(
    data: dict[str, Any], env: Mapping[str, str]
) -> list[tuple[OverridePath, str]]:
    """Apply the ``MEPGATE_*`` variables; returns the keys each one set."""
    changed: list[tuple[OverridePath, str]] = []
    for name, value in env.items():
        if not name.startswith(ENV_PREFIX):
            continue
        rest = name[len(ENV_PREFIX) :].lower()
        if rest == "key":  # the environment's key replaces the file's key_file
            meter = _first_meter(data)
            meter.pop("key_file", None)
            meter["key"] = value
            changed += [(("meter", 0, "key"), name), (("meter", 0, "key_file"), name)]
            continue
        section, _, field = rest.partition("_")
        if not field:
            continue
        if section == "meter" and field == "tls":  # the old name of MEPGATE_METER_SECURITY
            security = _security(value, name)
            log.warning("%s is the old name; set MEPGATE_METER_SECURITY=%s instead", name, security)
            _first_meter(data)["security"] = security
            changed.append((("meter", 0, "security"), name))
        elif section == "meter":
            _first_meter(data)[field] = value
            changed.append((("meter", 0, field), name))
        elif section in _SECTIONS:
            data.setdefault(section, {})[field] = value
            changed.append(((section, field), name))
    return changed


_OLD_TLS = {"auto": "auto", "always": "tls", "never": "rc4"}
"""``[[meter]] tls`` (before ``security``, which speaks the client's and ``--security``'s
words): its values and their ``security`` equivalents."""


def _rename_old_keys(data: dict[str, Any], path: Path | None) -> None:
    """Accept a file written with ``tls = ...`` in a ``[[meter]]``, and say the new spelling.
    Saving the settings writes the new key."""
    where = f"{path}: " if path is not None else ""
    meters = data.get("meter")
    for index, meter in enumerate(meters if isinstance(meters, list) else []):
        if not isinstance(meter, dict) or "tls" not in meter:
            continue
        key = f"{where}meter.{index}.tls"
        if "security" in meter:
            raise ConfigError(
                f"invalid configuration:\n  {key}: the old spelling of security; set only security"
            )
        old = meter.pop("tls")
        meter["security"] = _security(old, key)
        log.warning(
            '%s: tls = "%s" is the old spelling; write security = "%s" instead (saving the '
            "configuration from the config page does)",
            key,
            old,
            meter["security"],
        )


def _security(old: object, key: str) -> str:
    """The ``security`` value of an old ``tls`` value (never echoed if it is not one)."""
    new = _OLD_TLS.get(old) if isinstance(old, str) else None
    if new is None:
        raise ConfigError(
            f"invalid configuration:\n  {key}: the old spelling of security: use security = "
            '"auto", "tls" or "rc4" (the old tls took "auto", "always" or "never")'
        )
    return new


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


MeterSecret = MepKey | Password
"""What a meter's ``key`` / ``key_file`` holds: the MEP key (MBK) of a MEP meter, the optical
password of an optical one."""


def _secret_name(meter: MeterConfig) -> str:
    return "the optical password" if meter.interface == "optical" else "the MBK"


def meter_key(meter: MeterConfig, base: Path) -> MeterSecret:
    """The meter's key, from ``key`` or ``key_file`` (relative to ``base``): a :class:`MepKey`
    for a MEP meter, the optical :class:`Password` (``interface = "optical"``).  Malformed
    text raises :class:`~mepgate.errors.LocalProtocolError` saying what is wrong, never the
    text itself."""
    if meter.key is not None:
        text = meter.key.get_secret_value()
    elif meter.key_file is not None:
        key_path = meter.key_file if meter.key_file.is_absolute() else base / meter.key_file
        try:
            text = read_text(key_path, f"meter {meter.name!r}: key_file")
        except TextFileError as error:
            raise ConfigError(str(error)) from None
        except OSError as error:
            raise ConfigError(
                f"meter {meter.name!r}: key_file {key_path} cannot be read "
                f"({error.strerror}); create it with {_secret_name(meter)} as its only line"
            ) from None
        if too_open(key_path):
            log.warning("key file %s is readable by others; run: chmod 600 %s", key_path, key_path)
    else:
        raise ConfigError(
            f"meter {meter.name!r} has no key: set key_file (a file holding "
            f"{_secret_name(meter)}) or the environment variable MEPGATE_KEY"
        )
    if meter.interface == "optical":
        return parse_password(text)
    return parse_key(text)


def plain_data(settings: Settings) -> dict[str, Any]:
    """The settings as the file holds them: TOML-able values, secrets in plain text."""
    data = settings.model_dump(mode="json", exclude_none=True)
    for meter, source in zip(data.get("meter", []), settings.meter, strict=True):
        if source.key is not None:
            meter["key"] = source.key.get_secret_value()
        if source.interface == "optical":  # MEP-only settings: defaults, meaningless here
            for name in MEP_ONLY:
                meter.pop(name, None)
    mqtt = settings.mqtt
    if mqtt is not None and isinstance(mqtt.password, SecretStr):
        data["mqtt"]["password"] = mqtt.password.get_secret_value()
    return data


def save_settings(settings: Settings, path: Path) -> None:
    """Write the settings as TOML, mode 0600 (it may hold an MQTT password).  Keys that the
    environment or the command line overrode get the file's own values
    (:mod:`mepgate.config.overrides`)."""
    data = plain_data(settings)
    restore_file_values(data, settings.overrides)
    for index, meter in enumerate(data.get("meter", [])):
        if "port" not in meter:
            log.warning(
                "meter.%d is saved without a port: it comes from the environment "
                "(MEPGATE_METER_PORT), not the file",
                index,
            )
    write_secret_file(path, tomli_w.dumps(data))
