"""Table id -> codec, so tools can decode any known table generically (``read BT28 --json``).

The codecs are the table declarations (:class:`~mepgate.tables.table.Table`) of the table
modules, collected here: declaring a table next to its layout registers it.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from types import MappingProxyType, ModuleType

from mepgate.errors import MepgateError
from mepgate.tables import (
    clock,
    dimensions,
    events,
    identity,
    load_profile,
    mep,
    procedures,
    registers,
    self_reads,
    status,
)
from mepgate.tables._layout import Layout
from mepgate.tables.dimensions import Dimensions
from mepgate.tables.errors import TableEncodeError, UnknownTableError
from mepgate.tables.ids import MFG_TABLE_BASE, TableId, describe
from mepgate.tables.table import DimensionedTable, FixedTable, Table
from mepgate.tables.timestamps import LTimeDate, STimeDate

JsonValue = None | bool | int | str | list["JsonValue"] | dict[str, "JsonValue"]

#: The modules whose module-level :class:`Table` declarations make up the registry.
_MODULES = (
    clock,
    dimensions,
    events,
    identity,
    load_profile,
    mep,
    procedures,
    registers,
    self_reads,
    status,
)


def _collect(modules: tuple[ModuleType, ...]) -> dict[int, Table[object]]:
    found: dict[int, Table[object]] = {}
    for module in modules:
        for table in vars(module).values():
            if not isinstance(table, Table):
                continue
            other = found.setdefault(table.table_id, table)
            if other is not table:  # a copy-pasted declaration
                raise ValueError(f"{table!r} and {other!r} declare the same table")
    return dict(sorted(found.items()))


#: Every table mepgate can decode, by id (read-only).
CODECS: Mapping[int, Table[object]] = MappingProxyType(_collect(_MODULES))


#: Dimensioned manufacturer tables that newer firmware extends past the fields mepgate decodes:
#: ET55 gained the MEP flags, the optical port's settings and tamper settings in firmware 4.0
#: (from offset A+40) and the failed-login lockout in 4.30 (MEP guide, ET55).
GROWN_WITH_FIRMWARE = frozenset({TableId.ET55})


def table_is_fixed_by_its_layout(table_id: int) -> bool:
    """Whether no meter holds more of ``table_id`` than its layout: a standard table (C12.19
    fixes their shapes) or one its dimension tables size (except :data:`GROWN_WITH_FIRMWARE`).
    A manufacturer table of fixed layout (ET03, ET04, ...) may have grown fields in newer
    firmware."""
    if table_id in GROWN_WITH_FIRMWARE:
        return False
    return table_id < MFG_TABLE_BASE or isinstance(CODECS.get(table_id), DimensionedTable)


def table_size(table_id: int, dims: Dimensions | None) -> int | None:
    """Bytes in table ``table_id`` by its layout (under ``dims``), when the layout fixes it."""
    table = CODECS.get(table_id)
    codec: object = None
    if isinstance(table, FixedTable):
        codec = table.codec
    elif isinstance(table, DimensionedTable) and dims is not None:
        try:
            codec = table.layout_for(dims)
        except MepgateError:  # dimensions it needs were not read (BT61 for BT64, ...)
            return None
    size = codec.size if isinstance(codec, Layout) else 0
    return size if size > 0 else None


def codec_for(table_id: int) -> Table[object]:
    """The codec of ``table_id``; :class:`UnknownTableError` for tables without one."""
    try:
        return CODECS[table_id]
    except KeyError:
        known = ", ".join(TableId(t).name for t in sorted(CODECS))
        raise UnknownTableError(
            f"no decoder for {describe(table_id)}; decodable tables are: {known}"
        ) from None


def decode_table(table_id: int, data: bytes, dims: Dimensions) -> object:
    """Decode any known table (raises a :class:`~mepgate.tables.errors.TableDecodeError`)."""
    return codec_for(table_id).decode_with(data, dims)


def encode_table(table_id: int, value: object, dims: Dimensions) -> bytes:
    """Encode any known table (the simulator's side)."""
    return codec_for(table_id).encode_with(value, dims)


def to_json(value: object, dims: Dimensions | None = None) -> JsonValue:
    """A decoded table as plain JSON-able data: dataclasses become dicts, bytes hex strings.

    With ``dims``, BT23 also gets ``total_registers`` / ``tier_registers`` in Wh (ET55 unit).
    """
    if value is None or isinstance(value, bool | int | str):
        return value
    if isinstance(value, bytes):
        return value.hex()
    if isinstance(value, tuple | list):
        return [to_json(v, dims) for v in value]
    if isinstance(value, LTimeDate | STimeDate):
        when = value.to_datetime()
        out = {f.name: to_json(getattr(value, f.name)) for f in dataclasses.fields(value)}
        return {**out, "iso": when.isoformat() if when else None}
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        out2: dict[str, JsonValue] = {
            f.name: to_json(getattr(value, f.name), dims) for f in dataclasses.fields(value)
        }
        if isinstance(value, registers.CurrentRegisterData) and dims is not None:
            unit = dims.energy_register_unit
            if value.total is not None:
                out2["total_registers"] = to_json(registers.register_totals(value.total, unit))
            out2["tier_registers"] = [
                to_json(registers.register_totals(t, unit)) for t in value.tiers or ()
            ]
        return out2
    raise TableEncodeError(f"cannot express a {type(value).__name__} as JSON")
