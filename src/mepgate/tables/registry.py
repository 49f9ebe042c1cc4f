"""Table id -> codec, so tools can decode any known table generically (``read BT28 --json``).

Procedure tables BT07 and BT08/ET59/ET85 use the codecs in :mod:`mepgate.proto.procedures`
(one place for that layout); their errors are re-raised as :class:`TruncatedTableError`.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import TypeVar

from mepgate.proto.errors import MalformedMessageError
from mepgate.proto.procedures import ProcedureCall, ProcedureResponse
from mepgate.tables import clock, dimensions, events, identity, load_profile, mep, registers, status
from mepgate.tables.dimensions import Dimensions
from mepgate.tables.errors import TableEncodeError, TruncatedTableError, UnknownTableError
from mepgate.tables.ids import TableId, describe
from mepgate.tables.timestamps import LTimeDate, STimeDate

T = TypeVar("T")
JsonValue = None | bool | int | str | list["JsonValue"] | dict[str, "JsonValue"]


@dataclass(frozen=True, slots=True)
class TableCodec:
    """Decoder and encoder of one table, both taking the session's dimensions."""

    table_id: int
    value_type: type
    decode: Callable[[bytes, Dimensions], object]
    encode: Callable[[object, Dimensions], bytes]


def _codec(
    table_id: int,
    value_type: type[T],
    decode: Callable[[bytes, Dimensions], T],
    encode: Callable[[T, Dimensions], bytes],
) -> TableCodec:
    def checked_encode(value: object, dims: Dimensions) -> bytes:
        if not isinstance(value, value_type):
            raise TableEncodeError(
                f"{describe(table_id)} encodes a {value_type.__name__}, "
                f"not a {type(value).__name__}"
            )
        return encode(value, dims)

    return TableCodec(table_id, value_type, decode, checked_encode)


def _plain(
    table_id: int, value_type: type[T], dec: Callable[[bytes], T], enc: Callable[[T], bytes]
) -> TableCodec:
    return _codec(table_id, value_type, lambda b, _d: dec(b), lambda v, _d: enc(v))


def _procedure_call(data: bytes, _dims: Dimensions) -> ProcedureCall:
    try:
        return ProcedureCall.from_bytes(data)
    except MalformedMessageError as exc:
        raise TruncatedTableError(f"BT07: {exc}") from exc


def _procedure_response(data: bytes, _dims: Dimensions) -> ProcedureResponse:
    try:
        return ProcedureResponse.from_bytes(data)
    except MalformedMessageError as exc:
        raise TruncatedTableError(f"procedure response table: {exc}") from exc


def _load_profile_data(n: int) -> TableCodec:
    return _codec(
        TableId.BT64 + n - 1,
        load_profile.LoadProfileData,
        lambda b, d: load_profile.decode_bt64(b, d, n),
        lambda v, d: load_profile.encode_bt64(v, d, n),
    )


def _build() -> dict[int, TableCodec]:
    codecs = [
        _plain(
            TableId.BT00, identity.GeneralConfiguration, identity.decode_bt00, identity.encode_bt00
        ),
        _plain(
            TableId.BT01,
            identity.ManufacturerInformation,
            identity.decode_bt01,
            identity.encode_bt01,
        ),
        _codec(TableId.BT03, status.EndDeviceStatus, status.decode_bt03, status.encode_bt03),
        _codec(TableId.BT07, ProcedureCall, _procedure_call, lambda v, _d: v.to_bytes()),
        *(
            _codec(tid, ProcedureResponse, _procedure_response, lambda v, _d: v.to_bytes())
            for tid in (TableId.BT08, TableId.ET59, TableId.ET85)
        ),
        _plain(
            TableId.BT21, dimensions.ActualRegister, dimensions.decode_bt21, dimensions.encode_bt21
        ),
        _codec(
            TableId.BT22, dimensions.DataSelection, dimensions.decode_bt22, dimensions.encode_bt22
        ),
        _codec(
            TableId.BT23,
            registers.CurrentRegisterData,
            registers.decode_bt23,
            registers.encode_bt23,
        ),
        _codec(
            TableId.BT27,
            dimensions.PresentRegisterSelection,
            dimensions.decode_bt27,
            dimensions.encode_bt27,
        ),
        _codec(
            TableId.BT28,
            registers.PresentRegisterData,
            registers.decode_bt28,
            registers.encode_bt28,
        ),
        _plain(TableId.BT52, clock.ClockState, clock.decode_bt52, clock.encode_bt52),
        _plain(TableId.BT55, clock.LocalClockState, clock.decode_bt55, clock.encode_bt55),
        _plain(
            TableId.BT60,
            load_profile.ActualLoadProfile,
            load_profile.decode_bt60,
            load_profile.encode_bt60,
        ),
        _plain(
            TableId.BT61,
            load_profile.ActualLoadProfile,
            load_profile.decode_bt61,
            load_profile.encode_bt61,
        ),
        _codec(
            TableId.BT62,
            load_profile.LoadProfileControl,
            load_profile.decode_bt62,
            load_profile.encode_bt62,
        ),
        _codec(
            TableId.BT63,
            load_profile.LoadProfileStatus,
            load_profile.decode_bt63,
            load_profile.encode_bt63,
        ),
        *(_load_profile_data(n) for n in range(1, load_profile.MAX_DATA_SETS + 1)),
        _plain(TableId.BT71, events.ActualLog, events.decode_bt71, events.encode_bt71),
        _codec(TableId.BT74, events.HistoryLog, events.decode_bt74, events.encode_bt74),
        _plain(
            TableId.ET03, identity.UtilityInformation, identity.decode_et03, identity.encode_et03
        ),
        _plain(
            TableId.ET04, identity.SystemInformation, identity.decode_et04, identity.encode_et04
        ),
        _plain(
            TableId.ET11, dimensions.MfgDimensions, dimensions.decode_et11, dimensions.encode_et11
        ),
        _codec(TableId.ET13, mep.DeviceConfiguration, mep.decode_et13, mep.encode_et13),
        _codec(TableId.ET14, mep.DeviceStatusTable, mep.decode_et14, mep.encode_et14),
        _codec(TableId.ET16, mep.DeviceData, mep.decode_et16, mep.encode_et16),
        _codec(TableId.ET50, mep.MepInboundDataSpace, mep.decode_et50, mep.encode_et50),
        _codec(
            TableId.ET55,
            dimensions.MeterConfiguration,
            dimensions.decode_et55,
            dimensions.encode_et55,
        ),
    ]
    return {c.table_id: c for c in codecs}


#: Every table mepgate can decode, by id (read-only).
CODECS: Mapping[int, TableCodec] = MappingProxyType(_build())


def codec_for(table_id: int) -> TableCodec:
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
    return codec_for(table_id).decode(data, dims)


def encode_table(table_id: int, value: object, dims: Dimensions) -> bytes:
    """Encode any known table (the simulator's side)."""
    return codec_for(table_id).encode(value, dims)


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
