"""The config page's form: settings -> fields, and posted fields -> new settings.

Secrets (a meter's key, the MQTT password, a password inside the storage URL) are never put
into the page: the field shows :data:`MASK` (or the URL with ``***``), and posting the mask
back keeps the secret.  A new meter key goes to a 0600 key file in the data directory, never
into the page or the TOML file.  Settings the form does not show are kept as they are.
"""

from __future__ import annotations

import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, SecretStr, ValidationError

from mepgate.config import MeterConfig, MqttConfig, Settings, write_secret_file
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
    ("key", "MEP key (MBK)", "secret", "the 20 characters as the grid company sent them"),
    ("baud", "Baud rate", "select", ""),
    ("poll_interval", "Poll interval (s)", "number", ""),
    ("encrypt", "Encrypt requests (RC4)", "checkbox", ""),
    ("security", "Security", "select", "auto: TLS-PSK if the meter requires it; tls; rc4"),
    ("enable_line", "ENABLE line", "select", ""),
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
}
_SECTION_TITLES = {"web": "Web", "storage": "Storage", "mqtt": "MQTT"}


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
            elif meter is None and attribute in ("security", "enable_line"):
                value = {"security": "auto", "enable_line": "none"}[attribute]
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
            if section == "storage" and attribute == "url" and value:
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
    return sections


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
    """New settings from the posted fields, keeping every secret posted back as the mask."""
    errors: dict[str, str] = {}
    key_files: dict[Path, str] = {}
    data = current.model_dump(mode="json", exclude_none=True)

    meters: list[dict[str, Any]] = []
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
        for attribute, _label, kind, _help in _METER_FIELDS:
            name = f"{prefix}.{attribute}"
            raw = posted.get(name, "")
            if attribute == "key":
                if raw in ("", MASK):
                    continue
                try:
                    parse_key(raw)
                except MepgateError as error:
                    errors[name] = str(error)
                    continue
                meter_name = posted.get(f"{prefix}.name", "meter") or "meter"
                path = data_dir / f"{meter_name}.key"
                key_files[path] = raw.strip()
                entry.pop("key", None)
                entry["key_file"] = str(path)
            elif kind == "checkbox":
                entry[attribute] = raw == "on"
            elif kind == "select":
                entry[attribute] = _literal(MeterConfig, attribute, raw)
            else:
                entry[attribute] = raw.strip()
        meters.append(entry)
    data["meter"] = meters

    for section, specs in _SECTION_FIELDS.items():
        target: dict[str, Any] = dict(data.get(section) or {})
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
                else:
                    value = raw or None
            else:
                value = raw.strip() or None
            if section == "storage" and attribute == "url":
                old_url = current.storage.url
                if old_url is not None and value == mask_url(old_url):
                    value = old_url
            _put(target, attribute, value)
        if section == "mqtt" and not target.get("url"):
            data.pop("mqtt", None)
            continue
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
        settings = Settings.model_validate(data)
    except ValidationError as error:
        for detail in error.errors(include_input=False, include_url=False):
            location = _form_name(".".join(str(p) for p in detail["loc"]), current)
            errors.setdefault(location, detail["msg"].removeprefix("Value error, "))
    return ParsedForm(
        settings=settings if not errors else None,
        errors=errors,
        key_files=key_files,
        admin_password=admin_password,
    )


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
