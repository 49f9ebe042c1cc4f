"""What pydantic cannot check about the settings: each meter's key readable, the time zone known.

The gateway runs :func:`check_settings` before it starts and before it saves new settings, so a
key file that cannot be read stops either with a message naming the meter, and nothing runs
(or is saved) half-configured.
"""

from __future__ import annotations

from pathlib import Path
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from mepgate.config import ConfigError, Settings, meter_key
from mepgate.errors import LocalProtocolError
from mepgate.proto import MepKey, parse_key
from mepgate.service.simulated import SIM_KEY_TEXT, is_simulated


def check_settings(settings: Settings, base: Path) -> dict[str, MepKey]:
    """Everything about ``settings`` that pydantic cannot check: keys readable, time zone known.

    Returns each meter's key.  Raises :class:`ConfigError` naming the key at fault.
    """
    try:
        ZoneInfo(settings.storage.timezone)
    except (ZoneInfoNotFoundError, ValueError):
        raise ConfigError(
            "storage.timezone: unknown time zone; use an IANA name such as Europe/Copenhagen"
        ) from None
    keys: dict[str, MepKey] = {}
    for meter in settings.meter:
        if is_simulated(meter.port) and meter.key is None and meter.key_file is None:
            keys[meter.name] = parse_key(SIM_KEY_TEXT)
            continue
        try:
            keys[meter.name] = meter_key(meter, base)
        except ConfigError:
            raise
        except LocalProtocolError as error:  # the key's text is malformed; never echo it
            raise ConfigError(f"meter {meter.name!r}: key: {error}") from None
    return keys
