"""The config page's form: settings -> fields, and posted fields -> new settings.

Secrets (a meter's key, the MQTT password, a password inside the storage or broker URL) are
never put into the page: the field shows :data:`MASK` (or the URL with ``***``), and posting
the mask back keeps the secret -- but only for the host it was entered for: a kept secret whose
meter port, broker or database now leads to another host is refused, and has to be typed again
(so a changed URL cannot send it elsewhere).  A new meter key goes to a 0600 key file in the
data directory, never into the page or the TOML file.  Settings the form does not show are kept
as they are.  A key that the environment or the command line sets is shown read-only and kept:
saving writes the file's own value for it (:mod:`mepgate.config.overrides`).
"""

from __future__ import annotations

import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit

from pydantic import BaseModel, SecretStr, ValidationError

from mepgate.c1218.keys import parse_password
from mepgate.config import (
    MEP_ONLY,
    MEP_ONLY_PROBLEM,
    MeterConfig,
    MqttConfig,
    Settings,
    write_secret_file,
)
from mepgate.errors import MepgateError
from mepgate.proto import parse_key
from mepgate.urls import mask_url

MASK = "********"
NEW_METER = "new"

Kind = Literal["text", "number", "checkbox", "select", "secret"]


@dataclass(slots=True, kw_only=True)
class Field:
    name: str  # the form field: the dotted settings path ("web.listen", "meter.0.port")
    label: str
    kind: Kind = "text"
    value: Any = ""
    options: list[str] = field(default_factory=list)
    help: str = ""
    error: str = ""
    source: str = ""  # the environment variable or option that sets it: shown, not editable


@dataclass(slots=True, kw_only=True)
class Section:
    title: str
    fields: list[Field]
    note: str = ""


def _options(model: type[BaseModel], name: str) -> list[str]:
    return [str(o) for o in typing.get_args(model.model_fields[name].annotation)]


# (attribute, label, kind, help) per section; selects take their options from the model.
_METER_FIELDS: list[tuple[str, str, Kind, str]] = [
    ("name", "Name", "text", "lower-case letters, digits, '-' or '_'"),
    ("port", "Port", "text", "/dev/ttyUSB0, tcp://host:port, rfc2217://host:port"),
    ("interface", "Interface", "select", "mep: the MEP port; optical: the infrared port"),
    (
        "key",
        "Key",
        "secret",
        "MEP: the MBK; optical: the optical password; the 20 characters as the grid company "
        "sent them",
    ),
    ("baud", "Baud rate", "select", ""),
    ("poll_interval", "Poll interval (s)", "number", ""),
    ("encrypt", "Encrypt requests (RC4)", "checkbox", "MEP only"),
    (
        "security",
        "Security",
        "select",
        "MEP only; auto: TLS-PSK if the meter requires it; tls; rc4",
    ),
    ("enable_line", "ENABLE line", "select", "MEP only"),
]
_SECTION_FIELDS: dict[str, list[tuple[str, str, Kind, str]]] = {
    "web": [
        ("listen", "Listen on", "text", "HOST:PORT; 127.0.0.1 keeps the pages on this machine"),
        ("public_dashboard", "Dashboard readable without login", "checkbox", ""),
        ("console_writes", "Allow table writes from the console", "checkbox", ""),
    ],
    "storage": [
        ("url", "Database URL", "text", "blank: SQLite in the data directory"),
        ("timezone", "Time zone of 'today'", "text", "e.g. Europe/Copenhagen"),
        ("retention.raw_days", "Keep raw readings (days)", "number", "0 = forever"),
        ("retention.minute_days", "Keep minute values (days)", "number", ""),
        ("retention.hour_days", "Keep hour values (days)", "number", ""),
        ("retention.day_days", "Keep day values (days)", "number", ""),
    ],
    "mqtt": [
        ("url", "Broker URL", "text", "blank: MQTT off; mqtt://host:1883 or mqtts://host:8883"),
        ("username", "User", "text", ""),
        ("password", "Password", "secret", ""),
        ("base_topic", "Base topic", "text", ""),
        ("client_id", "Client id", "text", ""),
        ("qos", "QoS", "select", ""),
        ("discovery", "Home Assistant discovery", "checkbox", ""),
        ("discovery_prefix", "Discovery prefix", "text", ""),
        ("compat_dabbler", "Also publish the old firmware's topics", "checkbox", ""),
        ("power_interval", "Power every (s)", "number", ""),
        ("energy_interval", "Energy every (s)", "number", ""),
    ],
    "prices": [
        ("currency", "Currency", "text", "e.g. DKK, EUR, kr"),
        ("import", "Import price per kWh", "number", "for tiers without a price of their own"),
        ("tier1", "Tier 1 price per kWh", "number", "blank: the import price"),
        ("tier2", "Tier 2 price per kWh", "number", "blank: the import price"),
        ("tier3", "Tier 3 price per kWh", "number", "blank: the import price"),
        ("tier4", "Tier 4 price per kWh", "number", "blank: the import price"),
        ("export", "Export price per kWh", "number", "what an exported kWh earns; blank: none"),
    ],
}
_SECTION_TITLES = {"web": "Web", "storage": "Storage", "mqtt": "MQTT", "prices": "Prices"}
_PRICES = ("import", "tier1", "tier2", "tier3", "tier4", "export")
"""The prices section's prices: with none of them given, there is no [prices] section."""


def _dig(data: dict[str, Any], path: str) -> Any:
    value: Any = data
    for part in path.split("."):
        value = value.get(part) if isinstance(value, dict) else None
    return value


def _display(kind: Kind, value: Any) -> Any:
    if kind == "checkbox":
        return bool(value)
    if kind == "secret":
        return MASK if value else ""
    return "" if value is None else str(value)


def _select_options(section: str, attribute: str) -> list[str]:
    """The choices of a ``Literal`` setting (selects exist in the meter and MQTT sections)."""
    return _options(MeterConfig if section == "meter" else MqttConfig, attribute)


def form_sections(settings: Settings) -> list[Section]:
    """The page's sections for ``settings``, without any secret."""
    sections: list[Section] = []
    meters = [*settings.meter, None]
    for index, meter in enumerate(meters):
        prefix = f"meter.{index}" if meter is not None else f"meter.{NEW_METER}"
        data = meter.model_dump(mode="json") if meter is not None else {}
        fields = []
        for attribute, label, kind, help_text in _METER_FIELDS:
            value = data.get(attribute)
            if attribute == "key":
                value = meter is not None and (meter.key is not None or meter.key_file is not None)
            elif meter is None and attribute == "baud":
                value = 9600
            elif meter is None and attribute == "poll_interval":
                value = 1.0
            elif meter is None and attribute in ("interface", *MEP_ONLY):
                value = {"interface": "mep", **MEP_ONLY}[attribute]
            fields.append(
                Field(
                    name=f"{prefix}.{attribute}",
                    label=label,
                    kind=kind,
                    value=_display(kind, value),
                    options=_select_options("meter", attribute) if kind == "select" else [],
                    help=help_text,
                )
            )
        if meter is not None:
            fields.append(
                Field(name=f"{prefix}.remove", label="Remove this meter", kind="checkbox")
            )
        title = f"Meter {meter.name}" if meter is not None else "Add a meter"
        note = "" if meter is not None else "Fill in a name and a port to add a meter."
        sections.append(Section(title=title, fields=fields, note=note))
    dumped = settings.model_dump(mode="json")
    for section, specs in _SECTION_FIELDS.items():
        data = dumped.get(section) or {}
        fields = []
        for attribute, label, kind, help_text in specs:
            value = _dig(data, attribute)
            if attribute == "url" and value:
                value = mask_url(value)
            if section == "mqtt" and settings.mqtt is None and attribute != "url":
                value = _dig(MqttConfig(url="mqtt://localhost").model_dump(mode="json"), attribute)
            fields.append(
                Field(
                    name=f"{section}.{attribute}",
                    label=label,
                    kind=kind,
                    value=_display(kind, value),
                    options=_select_options(section, attribute) if kind == "select" else [],
                    help=help_text,
                )
            )
        sections.append(Section(title=_SECTION_TITLES[section], fields=fields))
    sections.append(
        Section(
            title="Admin password",
            note="Leave blank to keep the current password.",
            fields=[
                Field(name="admin.password", label="New password", kind="secret"),
                Field(name="admin.password_repeat", label="New password again", kind="secret"),
            ],
        )
    )
    for f in (f for section in sections for f in section.fields):
        override = settings.overridden(f.name)
        if override is not None:
            f.source = override.source
    return sections


def _displayed(settings: Settings) -> dict[str, str]:
    """What the form shows, as a browser posts it back unchanged."""
    shown: dict[str, str] = {}
    for f in (f for section in form_sections(settings) for f in section.fields):
        if f.kind == "checkbox":
            if f.value:
                shown[f.name] = "on"
        else:
            shown[f.name] = str(f.value)
    return shown


def destination(url_or_port: str) -> str:
    """The host a secret goes to with ``url_or_port``: a URL's host name (lower case), or
    ``""`` for this machine (a serial device, ``sim:``)."""
    if "://" not in url_or_port:
        return ""
    try:
        host = urlsplit(url_or_port).hostname
    except ValueError:
        return url_or_port
    return (host or "").lower()


def unmask_url(posted: str, old: str | None) -> tuple[str, str | None]:
    """The URL to save for ``posted`` (perhaps the masked ``old``), or an error.  A ``***``
    password is the old URL's -- for the old URL's host only."""
    if old is None or not posted:
        return posted, None
    if posted == mask_url(old):
        return old, None
    try:
        parts = urlsplit(posted)
        masked = parts.password == "***"
        old_password = urlsplit(old).password
    except ValueError:
        return posted, None  # validation names what is wrong with it
    if not masked:
        return posted, None
    if old_password is None or destination(posted) != destination(old):
        return posted, _RETYPE_URL
    user = parts.username or ""
    return parts._replace(
        netloc=f"{user}:{old_password}@{parts.netloc.rpartition('@')[2]}"
    ).geturl(), None


RETYPE_KEY = (
    "the port leads to another host now: type the key again (a saved key goes only to the "
    "meter it was entered for)"
)
RETYPE_INTERFACE = (
    "the interface changed: type the key for it (the optical port's password is not the MEP "
    "key, and the MEP key is not the optical password)"
)
_RETYPE_PASSWORD = (
    "the broker is another host now: type the password again (a saved password goes only to "
    "the host it was entered for)"
)
_RETYPE_URL = (
    "another host: type the password in the URL again (a saved password goes only to the "
    "host it was entered for)"
)


@dataclass(slots=True)
class ParsedForm:
    settings: Settings | None
    errors: dict[str, str]  # field name -> message
    key_files: dict[Path, str]  # new meter keys to write (0600) before applying
    admin_password: str | None


def _literal(model: type[BaseModel], attribute: str, raw: str) -> object:
    for option in typing.get_args(model.model_fields[attribute].annotation):
        if str(option) == raw:
            return option
    return raw  # let validation name the valid choices


def parse_form(posted: dict[str, str], current: Settings, data_dir: Path) -> ParsedForm:
    """New settings from the posted fields, keeping every secret posted back as the mask (for
    its host only) and every key the environment or the command line sets."""
    errors: dict[str, str] = {}
    key_files: dict[Path, str] = {}
    data = current.model_dump(mode="json", exclude_none=True)
    shown = _displayed(current)
    # What an overridden field "posts" is what the form showed: it is not the visitor's to set.
    posted = {k: v for k, v in posted.items() if current.overridden(k) is None}
    for name in (o.name for o in current.overrides):
        if name in shown:
            posted[name] = shown[name]

    meters: list[dict[str, Any]] = []
    origins: list[int | None] = []
    sources = [*current.meter, None]
    for index, source in enumerate(sources):
        prefix = f"meter.{index}" if source is not None else f"meter.{NEW_METER}"
        if source is not None and posted.get(f"{prefix}.remove") == "on":
            continue
        if source is None and not posted.get(f"{prefix}.name") and not posted.get(f"{prefix}.port"):
            continue
        entry: dict[str, Any] = source.model_dump(mode="json", exclude_none=True) if source else {}
        if source is not None and source.key is not None:
            entry["key"] = source.key.get_secret_value()
        new_key = False
        for attribute, _label, kind, _help in _METER_FIELDS:
            name = f"{prefix}.{attribute}"
            raw = posted.get(name, "")
            if attribute == "key":
                if raw in ("", MASK):
                    continue
                optical = posted.get(f"{prefix}.interface") == "optical"
                try:
                    parse_password(raw) if optical else parse_key(raw)
                except MepgateError as error:
                    errors[name] = str(error)
                    continue
                meter_name = posted.get(f"{prefix}.name", "meter") or "meter"
                path = data_dir / f"{meter_name}.key"
                key_files[path] = raw.strip()
                entry.pop("key", None)
                entry["key_file"] = str(path)
                new_key = True
            elif kind == "checkbox":
                entry[attribute] = raw == "on"
            elif kind == "select":
                entry[attribute] = _literal(MeterConfig, attribute, raw)
            else:
                entry[attribute] = raw.strip()
        if entry.get("interface") == "optical":
            for attribute, default in MEP_ONLY.items():
                if entry.get(attribute, default) != default:
                    errors[f"{prefix}.{attribute}"] = (
                        f"only for the MEP port: set it back to {_shown(default)} for an "
                        "optical meter, or choose the interface mep"
                    )
        has_key = source is not None and (source.key is not None or source.key_file is not None)
        if (
            has_key
            and not new_key
            and source is not None
            and destination(str(entry.get("port", ""))) != destination(source.port)
        ):
            errors[f"{prefix}.key"] = _retype(current, f"{prefix}.key", RETYPE_KEY)
        elif (
            has_key
            and not new_key
            and source is not None
            and entry.get("interface", "mep") != source.interface
        ):
            errors[f"{prefix}.key"] = _retype(current, f"{prefix}.key", RETYPE_INTERFACE)
        meters.append(entry)
        origins.append(index if source is not None else None)
    data["meter"] = meters

    for section, specs in _SECTION_FIELDS.items():
        target: dict[str, Any] = dict(data.get(section) or {})
        kept_password = False
        for attribute, _label, kind, _help in specs:
            name = f"{section}.{attribute}"
            raw = posted.get(name, "")
            value: Any
            if kind == "checkbox":
                value = raw == "on"
            elif kind == "select":
                value = _literal(MqttConfig, attribute, raw)
            elif kind == "secret":
                old = current.mqtt.password if section == "mqtt" and current.mqtt else None
                if raw == MASK and isinstance(old, SecretStr):
                    value = old.get_secret_value()
                    kept_password = True
                else:
                    value = raw or None
            else:
                value = raw.strip() or None
            if attribute == "url" and section in ("storage", "mqtt"):
                old_url = current.storage.url if section == "storage" else _mqtt_url(current)
                value, problem = unmask_url(value or "", old_url)
                value = value or None
                if problem:
                    errors[name] = problem
            _put(target, attribute, value)
        if section == "mqtt" and not target.get("url"):
            data.pop("mqtt", None)
            continue
        if section == "prices" and all(target.get(k) is None for k in _PRICES):
            data.pop("prices", None)  # no price: no costs on the dashboard
            continue
        if section == "mqtt" and current.mqtt is not None:
            moved_away = destination(str(target["url"])) != destination(current.mqtt.url)
            if moved_away and kept_password:
                errors["mqtt.password"] = _retype(current, "mqtt.password", _RETYPE_PASSWORD)
            if moved_away and current.mqtt.password_file is not None:
                errors["mqtt.url"] = (
                    "the password comes from password_file, for the broker it was written "
                    "for: to change the broker, edit the configuration file"
                )
        data[section] = target

    admin_password = posted.get("admin.password") or None
    if admin_password is not None:
        from mepgate.web.auth import password_problem  # noqa: PLC0415 -- avoid a cycle

        problem = password_problem(admin_password, posted.get("admin.password_repeat", ""))
        if problem:
            errors["admin.password"] = problem
            admin_password = None

    settings = None
    try:
        settings = Settings.model_validate(data).keeping_overrides_of(current, origins)
    except ValidationError as error:
        for detail in error.errors(include_input=False, include_url=False):
            location = _form_name(".".join(str(p) for p in detail["loc"]), current)
            message = detail["msg"].removeprefix("Value error, ")
            if MEP_ONLY_PROBLEM in message and any(k.startswith(f"{location}.") for k in errors):
                continue  # already next to the MEP-only fields at fault
            errors.setdefault(location, message)
    return ParsedForm(
        settings=settings if not errors else None,
        errors=errors,
        key_files=key_files,
        admin_password=admin_password,
    )


def _shown(value: object) -> str:
    """A default as the form shows it (``off`` for an unticked box)."""
    return ("on" if value else "off") if isinstance(value, bool) else str(value)


def _retype(current: Settings, name: str, message: str) -> str:
    """``message``, or for a secret the environment sets (read-only here) where to change it."""
    override = current.overridden(name)
    if override is None:
        return message
    return (
        f"it comes from {override.source}, given for the old host; a new host needs its own: "
        f"change it where {override.source} is set"
    )


def _mqtt_url(settings: Settings) -> str | None:
    return settings.mqtt.url if settings.mqtt is not None else None


def _form_name(location: str, current: Settings) -> str:
    """``meter.<n>`` beyond the existing meters is the new-meter block."""
    parts = location.split(".")
    if (
        parts[0] == "meter"
        and len(parts) > 1
        and parts[1].isdigit()
        and int(parts[1]) >= len(current.meter)
    ):
        parts[1] = NEW_METER
    return ".".join(parts)


def _put(target: dict[str, Any], path: str, value: Any) -> None:
    head, _, rest = path.partition(".")
    if rest:
        child = target.setdefault(head, {})
        _put(child, rest, value)
    elif value is None:
        target.pop(head, None)
    else:
        target[head] = value


def write_key_files(key_files: dict[Path, str]) -> None:
    for path, key in key_files.items():
        write_secret_file(path, key + "\n")


def mark_errors(sections: list[Section], errors: dict[str, str], posted: dict[str, str]) -> None:
    """Put each error next to its field and keep what was typed (secrets excepted)."""
    unplaced = dict(errors)
    for section in sections:
        for f in section.fields:
            if f.name in posted and f.kind not in ("secret", "checkbox"):
                f.value = posted[f.name]
            elif f.kind == "checkbox" and posted:
                f.value = posted.get(f.name) == "on"
            message = unplaced.pop(f.name, None)
            if message:
                f.error = message
    # Errors on fields the form does not show stay in the list at the top.
    errors.clear()
    errors.update(unplaced)
