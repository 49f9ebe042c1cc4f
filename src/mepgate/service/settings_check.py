"""What pydantic cannot check about the settings: each meter's key readable, the time zone known.

The gateway runs :func:`check_settings` before it starts and before it saves new settings, so a
key file that cannot be read stops either with a message naming the meter, and nothing runs
(or is saved) half-configured.
"""

from __future__ import annotations

from pathlib import Path
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from mepgate.config import ConfigError, MeterSecret, Settings, is_simulated, meter_key
from mepgate.errors import LocalProtocolError
from mepgate.service.simulated_ports import SimulatedPorts


def check_settings(
    settings: Settings, base: Path, simulated: SimulatedPorts | None = None
) -> dict[str, MeterSecret]:
    """Everything about ``settings`` that pydantic cannot check: keys readable, time zone known.

    Returns each meter's key: the MBK of a MEP meter, the optical password of an optical one (a
    ``sim:`` meter without one gets ``simulated``'s default key for its interface).
    Raises :class:`ConfigError` naming the key at fault, or a ``sim:`` port when there is no
    ``simulated`` to run it.
    """
    try:
        ZoneInfo(settings.storage.timezone)
    except (ZoneInfoNotFoundError, ValueError):
        raise ConfigError(
            "storage.timezone: unknown time zone; use an IANA name such as Europe/Copenhagen"
        ) from None
    keys: dict[str, MeterSecret] = {}
    for meter in settings.meter:
        if is_simulated(meter.port):
            if simulated is None:
                raise ConfigError(
                    f"meter {meter.name!r}: port {meter.port}: this gateway runs no simulated "
                    "meters (mepgate serve and mepgate demo do); give a serial device or "
                    "tcp://host:port"
                )
            default = simulated.default_key(meter.port, interface=meter.interface)
            if default is not None and meter.key is None and meter.key_file is None:
                keys[meter.name] = default
                continue
        try:
            keys[meter.name] = meter_key(meter, base)
        except ConfigError:
            raise
        except LocalProtocolError as error:  # the key's text is malformed; never echo it
            raise ConfigError(f"meter {meter.name!r}: key: {error}") from None
    return keys
