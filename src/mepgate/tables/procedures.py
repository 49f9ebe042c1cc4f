"""Procedure tables: BT07 "Procedure Initiate", BT08 / ET59 / ET85 (the procedure responses).

Their layout lives in :mod:`mepgate.proto.procedures` (the client writes BT07 and reads the
responses through it, MEP guide, chapter 4 "Calling Procedures"); these declarations put the
same codecs in the table registry, with the proto layer's errors re-raised as
:class:`~mepgate.tables.errors.TruncatedTableError` like every other table's.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Generic, Protocol, TypeVar

from mepgate.proto.errors import MalformedMessageError
from mepgate.proto.procedures import ProcedureCall, ProcedureResponse
from mepgate.tables.errors import TruncatedTableError
from mepgate.tables.ids import TableId
from mepgate.tables.table import FixedTable


class _Message(Protocol):
    def to_bytes(self) -> bytes: ...


M = TypeVar("M", bound=_Message)


class _ProcedureCodec(Generic[M]):
    """A proto message as table data; ``what`` names the table in decode errors."""

    def __init__(self, what: str, parse: Callable[[bytes], M]) -> None:
        self.what = what
        self.parse = parse

    def decode(self, data: bytes) -> M:
        try:
            return self.parse(data)
        except MalformedMessageError as exc:
            raise TruncatedTableError(f"{self.what}: {exc}") from exc

    def encode(self, value: M) -> bytes:
        return value.to_bytes()


_RESPONSE = _ProcedureCodec("procedure response table", ProcedureResponse.from_bytes)

BT07 = FixedTable(TableId.BT07, ProcedureCall, _ProcedureCodec("BT07", ProcedureCall.from_bytes))
BT08 = FixedTable(TableId.BT08, ProcedureResponse, _RESPONSE)
ET59 = FixedTable(TableId.ET59, ProcedureResponse, _RESPONSE)
ET85 = FixedTable(TableId.ET85, ProcedureResponse, _RESPONSE)
