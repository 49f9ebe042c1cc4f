"""Settings that do not come from the file: environment variables and command-line options.

``MEPGATE_KEY``, ``MEPGATE_MQTT_PASSWORD``, ``--listen``... override the file while the gateway
runs, and are never written back: saving (the setup and config pages) writes the file's own
value of an overridden key, so a secret passed in the environment never lands in plain text in
``mepgate.toml``, and a ``--listen`` given once does not stick.  Each override remembers the
value it put in effect and the file's own value; :func:`restore_file_values` puts the file's
value back wherever the value to save is still the overriding one.  (A value someone changed
since, on the setup page say, is theirs and is saved.)
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, Final

log = logging.getLogger(__name__)

Path = tuple[str | int, ...]


class _Absent:
    def __repr__(self) -> str:
        return "ABSENT"


ABSENT: Final = _Absent()
"""Not in the data (the file does not set the key; the override removed it)."""


@dataclass(frozen=True, slots=True)
class Override:
    """One key set by the environment or the command line."""

    path: Path  # ("web", "listen"), ("meter", 0, "key")
    source: str  # "MEPGATE_KEY", "--listen"
    # The value in effect (secrets in plain text, as saving would write them) and the file's
    # own; either may be ABSENT.  Never shown: they may be secrets.
    value: Any = field(repr=False)
    file_value: Any = field(repr=False)

    @property
    def name(self) -> str:
        """The dotted key, as the config page's fields and error messages name it."""
        return ".".join(str(part) for part in self.path)


def dig(data: Any, path: Path) -> Any:
    """The value at ``path`` in nested dicts and lists, or :data:`ABSENT`."""
    for part in path:
        if isinstance(data, list) and isinstance(part, int) and 0 <= part < len(data):
            data = data[part]
            continue
        if not isinstance(data, dict) or part not in data:
            return ABSENT
        data = data[part]
    return data


def restore_file_values(data: dict[str, Any], overrides: Iterable[Override]) -> None:
    """Put each override's file value back into ``data`` (the plain settings about to be
    saved) where ``data`` still holds the overriding value."""
    for override in overrides:
        parent = dig(data, override.path[:-1])
        last = override.path[-1]
        if isinstance(parent, dict) and isinstance(last, str):
            if parent.get(last, ABSENT) != override.value:
                continue
            if override.file_value is ABSENT:
                parent.pop(last, None)
            else:
                parent[last] = override.file_value
    mqtt = data.get("mqtt")
    if isinstance(mqtt, dict) and "url" not in mqtt:
        # An [mqtt] section without its url means nothing (and would not load): the broker
        # came from the command line or the environment, so does the section.
        log.warning("[mqtt] is not saved: its url is not the file's (command line or environment)")
        data.pop("mqtt")


def moved(overrides: Iterable[Override], meter_origins: list[int | None]) -> tuple[Override, ...]:
    """``overrides`` for a meter list rebuilt from the old one: ``meter_origins[i]`` is the
    old index of the new list's meter ``i`` (``None``: a new meter).  A removed meter's
    overrides go: nothing of it is saved."""
    new_index = {old: new for new, old in enumerate(meter_origins) if old is not None}
    kept = []
    for override in overrides:
        path = override.path
        if path[0] == "meter" and isinstance(path[1], int):
            index = new_index.get(path[1])
            if index is None:
                continue
            path = ("meter", index, *path[2:])
        kept.append(Override(path, override.source, override.value, override.file_value))
    return tuple(kept)
