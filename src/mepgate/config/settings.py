"""The gateway's configuration: a TOML file, overridden by environment variables.

Validation errors name the key that is wrong and what would be valid, and never repeat the
value given (it might be a secret).  Secrets (meter keys, MQTT and admin passwords) are held
as :class:`pydantic.SecretStr` or read from separate files created with mode 0600.

Example::

    [[meter]]
    name = "house"
    port = "/dev/ttyUSB0"        # or tcp://host:port, rfc2217://host:port
    key_file = "mbk.txt"
    poll_interval = 1.0

    [[meter]]
    name = "garage"
    port = "/dev/ttyUSB1"        # an infrared head on the meter's optical port
    interface = "optical"
    key_file = "optical-password.txt"

    [storage]
    url = "sqlite:///var/lib/mepgate/mepgate.db"   # or postgresql://user@host/db

    [web]
    listen = "127.0.0.1:8080"
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PrivateAttr,
    SecretStr,
    field_validator,
    model_validator,
)

from mepgate.config.overrides import Override, moved
from mepgate.config.retention import Retention
from mepgate.urls import mask_url

_NAME = re.compile(r"^[a-z0-9][a-z0-9_-]{0,31}$")
_LISTEN = re.compile(r"^(?P<host>\[[0-9a-fA-F:]+\]|[^:\s]+):(?P<port>\d{1,5})$")
_PORT_URL = re.compile(
    r"^(tcp|rfc2217)://[^:/\s]+:(?P<number>\d{1,5})$|^/dev/\S+$|^sim:[\w-]+$|^COM\d+$"
)
SIM_SCHEME = "sim:"
"""``sim:PROFILE`` ports name a simulated meter that runs inside the gateway (``mepgate demo``)."""


INTERFACES = ("mep", "optical")
"""How the gateway talks to a meter: ``mep``, the MEP port (the default), or ``optical``, the
infrared port on the meter's face (ANSI C12.18)."""
Interface = Literal["mep", "optical"]

MEP_ONLY = {"encrypt": False, "security": "auto", "enable_line": "none"}
"""The ``[[meter]]`` settings that mean something on the MEP port only, with their defaults.
An optical meter refuses any other value: it would silently do nothing."""
MEP_ONLY_PROBLEM = "only for the MEP port"


def is_simulated(port: str) -> bool:
    """Whether ``port`` is a ``sim:PROFILE`` port (a simulated meter, not a line to a meter)."""
    return port.startswith(SIM_SCHEME)


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class MeterConfig(_Section):
    """One ``[[meter]]`` entry."""

    name: str = "meter"
    port: str
    interface: Interface = "mep"
    """``mep`` or ``optical``.  For an optical meter ``key`` / ``key_file`` hold the optical
    password (:func:`mepgate.c1218.keys.parse_password`) and the MEP-only settings
    (:data:`MEP_ONLY`) must keep their defaults."""
    key: SecretStr | None = None
    key_file: Path | None = None
    baud: Literal[300, 600, 1200, 2400, 4800, 9600, 19200, 38400, 57600, 115200] = 9600
    poll_interval: Annotated[float, Field(ge=0.1, le=3600)] = 1.0
    encrypt: bool = False
    security: Literal["auto", "tls", "rc4"] = "auto"
    """As the client's ``Security`` and ``--security``: ``auto`` starts with RC4 digests and
    switches to TLS-PSK when the meter requires it, ``tls`` always, ``rc4`` never.  Files
    written before spell it ``tls = "auto"|"always"|"never"`` (:mod:`mepgate.config.loader`)."""
    enable_line: Literal["none", "dtr", "rts"] = "none"

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        if not _NAME.match(value):
            raise ValueError(
                "use 1-32 lower-case letters, digits, '-' or '_', starting with a letter or digit"
            )
        return value

    @field_validator("port")
    @classmethod
    def _port(cls, value: str) -> str:
        match = _PORT_URL.match(value)
        if match and match["number"] is not None and not 0 < int(match["number"]) < 65536:
            raise ValueError("a TCP port is a number from 1 to 65535")
        if not match:
            raise ValueError(
                "give a serial device (/dev/ttyUSB0), tcp://host:port, rfc2217://host:port "
                "or sim:PROFILE for the built-in simulator"
            )
        return value

    @model_validator(mode="after")
    def _one_key(self) -> MeterConfig:
        if self.key is not None and self.key_file is not None:
            raise ValueError("set either key or key_file, not both (key_file is safer)")
        return self

    @model_validator(mode="after")
    def _mep_only(self) -> MeterConfig:
        if self.interface != "optical":
            return self
        given = [name for name, default in MEP_ONLY.items() if getattr(self, name) != default]
        if given:
            raise ValueError(
                f"{', '.join(given)}: {MEP_ONLY_PROBLEM}; an optical meter (interface = "
                '"optical") does not use it: remove it, or set interface = "mep"'
            )
        return self


class StorageConfig(_Section):
    url: str | None = None  # default: sqlite in the data directory
    retention: Retention = Retention()
    timezone: str = "Europe/Copenhagen"

    @field_validator("url")
    @classmethod
    def _url(cls, value: str | None) -> str | None:
        if value is not None and not value.startswith(("sqlite:///", "postgresql://")):
            raise ValueError("use sqlite:///path/to/file.db or postgresql://user@host/db")
        return value


class WebConfig(_Section):
    listen: str = "127.0.0.1:8080"
    public_dashboard: bool = True  # read-only pages without login (local network use)
    console_writes: bool = False  # allow table writes from the web console
    trusted_proxies: tuple[str, ...] = ()
    """Addresses or networks (``"127.0.0.1"``, ``"10.0.0.0/8"``) of reverse proxies whose
    ``X-Forwarded-For`` / ``X-Forwarded-Proto`` are believed.  Empty (the default): those
    headers are ignored, whoever sends them, and the client is the connection's peer."""

    @field_validator("trusted_proxies", mode="before")
    @classmethod
    def _split_proxies(cls, value: object) -> object:
        # MEPGATE_WEB_TRUSTED_PROXIES="127.0.0.1, 10.0.0.0/8"
        if isinstance(value, str):
            return tuple(part.strip() for part in value.split(",") if part.strip())
        return value

    @field_validator("trusted_proxies")
    @classmethod
    def _proxies(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        for entry in value:
            try:
                ipaddress.ip_network(entry, strict=False)
            except ValueError:
                raise ValueError(
                    'list IP addresses or networks, e.g. ["127.0.0.1", "10.0.0.0/8"]'
                ) from None
        return value

    @property
    def listens_on_loopback_only(self) -> bool:
        """Whether only this machine can connect (127.0.0.0/8, ::1 or ``localhost``)."""
        if self.host.lower() == "localhost":
            return True
        try:
            return ipaddress.ip_address(self.host).is_loopback
        except ValueError:
            return False  # a host name: it may resolve to any interface

    # The pages' address as a browser on another device opens them (Home Assistant's device
    # page links there); needed when listen is 0.0.0.0, [::] or loopback, e.g. behind a proxy.
    public_url: str | None = None

    @field_validator("public_url")
    @classmethod
    def _public_url(cls, value: str | None) -> str | None:
        if value is not None and not re.match(r"^https?://[^\s/]+(/\S*)?$", value):
            raise ValueError("use the address a browser opens, e.g. http://mepgate.lan:8080/")
        return value

    @field_validator("listen")
    @classmethod
    def _listen(cls, value: str) -> str:
        match = _LISTEN.match(value)
        if not match or not 0 < int(match["port"]) < 65536:
            raise ValueError("use HOST:PORT, e.g. 127.0.0.1:8080 or 0.0.0.0:8080")
        return value

    @property
    def host(self) -> str:
        match = _LISTEN.match(self.listen)
        return match["host"].strip("[]") if match else "127.0.0.1"

    @property
    def port(self) -> int:
        match = _LISTEN.match(self.listen)
        return int(match["port"]) if match else 8080


class MqttConfig(_Section):
    url: str  # mqtt://host:1883 or mqtts://host:8883
    username: str | None = None
    password: SecretStr | None = None
    password_file: Path | None = None
    ca_file: Path | None = None
    cert_file: Path | None = None
    key_file: Path | None = None
    client_id: str = "mepgate"
    base_topic: str = "mepgate"
    qos: Literal[0, 1, 2] = 1
    power_interval: Annotated[float, Field(ge=1, le=3600)] = 5.0
    energy_interval: Annotated[float, Field(ge=1, le=86400)] = 60.0
    power_threshold_w: Annotated[float, Field(ge=0)] = 0.0
    discovery: bool = True
    discovery_prefix: str = "homeassistant"
    compat_dabbler: bool = False
    queue_max_messages: Annotated[int, Field(ge=10)] = 100_000
    # Home Assistant entities not to announce (and to remove if announced), by key, e.g.
    # ["reactive_power", "tariff_tier"]; see mepgate.outputs.discovery.ENTITIES.
    disabled_entities: tuple[str, ...] = ()

    def __repr_args__(self) -> Iterator[tuple[str | None, Any]]:
        # The URL may carry user:password@ (allowed, like libpq's): never show the password.
        for name, value in super().__repr_args__():
            yield name, mask_url(value) if name == "url" and isinstance(value, str) else value

    @field_validator("url")
    @classmethod
    def _url(cls, value: str) -> str:
        if not re.match(r"^mqtts?://[^\s/]+(:\d{1,5})?/?$", value):
            raise ValueError("use mqtt://host:1883 or mqtts://host:8883")
        return value


_CURRENCY = re.compile(r"^\S{1,8}$")
_PRICE_LIMIT = 1000.0
PRICE_TIERS = (1, 2, 3, 4)
"""The TOU tiers a price can be given for (``tier1`` .. ``tier4``, as ``mepgate.reading.TIERS``)."""


class PricesConfig(_Section):
    """``[prices]``: what a kWh costs, for the dashboard's cost today and this month.

    ``tier1`` .. ``tier4``: the price of a kWh imported while that TOU tier counts (the meter's
    tiers, numbered as on its display); ``import``: the price of any imported kWh whose tier
    has no price of its own (or of every kWh, for a meter without tiers); ``export``: what an
    exported kWh earns.  Prices are per kWh in ``currency``, taxes included as you want them.
    """

    model_config = ConfigDict(
        extra="forbid", frozen=True, populate_by_name=True, serialize_by_alias=True
    )

    currency: str = "DKK"
    import_price: float | None = Field(default=None, alias="import")
    tier1: float | None = None
    tier2: float | None = None
    tier3: float | None = None
    tier4: float | None = None
    export: float | None = None

    @field_validator("currency")
    @classmethod
    def _currency(cls, value: str) -> str:
        if not _CURRENCY.match(value):
            raise ValueError('use 1-8 characters without spaces, e.g. "DKK", "EUR" or "kr"')
        return value

    @field_validator("import_price", "tier1", "tier2", "tier3", "tier4", "export")
    @classmethod
    def _price(cls, value: float | None) -> float | None:
        if value is not None and not -_PRICE_LIMIT <= value <= _PRICE_LIMIT:
            raise ValueError(
                f"a price per kWh from {-_PRICE_LIMIT:g} to {_PRICE_LIMIT:g}, e.g. 2.15"
            )
        return value

    @model_validator(mode="after")
    def _some_price(self) -> PricesConfig:
        if self.import_price is None and all(self.tier(t) is None for t in PRICE_TIERS):
            raise ValueError(
                "give the price of an imported kWh: import = 2.15, or tier1 = ... per TOU tier "
                "(or remove the [prices] section)"
            )
        return self

    def tier(self, tier: int) -> float | None:
        """The price given for ``tier`` itself (``None``: none, ``import`` applies)."""
        value: float | None = getattr(self, f"tier{tier}")
        return value

    def import_price_of(self, tier: int) -> float | None:
        """What a kWh imported in ``tier`` costs: its own price, else ``import``."""
        own = self.tier(tier)
        return own if own is not None else self.import_price


class Settings(_Section):  # noqa: PLW1641 -- unhashable as ever: it holds lists
    """The whole configuration.

    It also knows which keys the environment or the command line overrode
    (:attr:`overrides`, see :mod:`mepgate.config.overrides`): saving writes the file's own
    values for those.  Two settings are equal when their values are.
    """

    meter: list[MeterConfig] = []
    storage: StorageConfig = StorageConfig()
    web: WebConfig = WebConfig()
    mqtt: MqttConfig | None = None
    prices: PricesConfig | None = None
    _overrides: tuple[Override, ...] = PrivateAttr(default=())

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Settings):
            return NotImplemented
        return self.__dict__ == other.__dict__

    @property
    def overrides(self) -> tuple[Override, ...]:
        return self._overrides

    def overridden(self, name: str) -> Override | None:
        """The override of the dotted key ``name`` (``"meter.0.key"``), if any."""
        return next((o for o in self._overrides if o.name == name), None)

    def with_overrides(self, overrides: tuple[Override, ...]) -> Settings:
        copy = self.model_copy()
        copy._overrides = overrides
        return copy

    def keeping_overrides_of(
        self, current: Settings, meter_origins: list[int | None] | None = None
    ) -> Settings:
        """These settings (made from ``current`` by a form) with ``current``'s overrides.
        ``meter_origins[i]``: the index in ``current.meter`` of the meter ``self.meter[i]``
        was made from, ``None`` for a new one (default: the same order)."""
        if meter_origins is None:
            meter_origins = [i if i < len(current.meter) else None for i in range(len(self.meter))]
        return self.with_overrides(moved(current.overrides, meter_origins))

    @model_validator(mode="after")
    def _unique_names(self) -> Settings:
        names = [m.name for m in self.meter]
        duplicates = sorted({n for n in names if names.count(n) > 1})
        if duplicates:
            raise ValueError(f"meter names must be unique; repeated: {', '.join(duplicates)}")
        return self
