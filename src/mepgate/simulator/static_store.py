"""A :class:`~mepgate.simulator.core.TableStore` over fixed bytes: for tests and tinkering.

The full meter model (evolving values, profiles) is in :mod:`mepgate.simulator.model`; this
store only holds what it is given and remembers writes, which is enough to exercise the
protocol, the access rules and procedures.
"""

from __future__ import annotations

from collections.abc import Mapping

from mepgate.proto import AccessLevel, ProcedureCall, ProcedureResponse, ProcedureResult
from mepgate.proto.codes import ResponseCode
from mepgate.proto.procedures import BT08_PROCEDURE_RESPONSE, EP39_POST_MEP_DATA

# MEP guide, appendix C, Table C.1 ("MAK Has Write Access").
MAK_WRITABLE_DEFAULT = frozenset(
    {0x0007, 0x000F, 0x0017, 0x0018, 0x0021, 0x0035, 0x0036}
    | {
        0x0800 + n
        for n in (1, 2, 3, 4, 5, 6, 7, 9, 13, 23, 34, 40, 47, 50, 51, 52, 55, 57, 76, 77, 80)
    }
)


class StaticStore:
    """Tables as plain bytes; writes patch them; procedures answer 'completed' (EP39) or
    'unrecognised'."""

    def __init__(
        self,
        tables: Mapping[int, bytes],
        *,
        mak_writable: frozenset[int] = MAK_WRITABLE_DEFAULT,
        response_table: int = BT08_PROCEDURE_RESPONSE,
        known_procedures: frozenset[int] = frozenset({EP39_POST_MEP_DATA}),
    ) -> None:
        self.tables = {tid: bytearray(data) for tid, data in tables.items()}
        self.tables.setdefault(0x0007, bytearray(8))
        self.tables.setdefault(response_table, bytearray(4))
        self._mak_writable = mak_writable
        self._response_table = response_table
        self._known = known_procedures
        self.calls: list[tuple[ProcedureCall, AccessLevel]] = []

    def table(self, table_id: int) -> bytes | None:
        data = self.tables.get(table_id)
        return None if data is None else bytes(data)

    def note_read(self, table_id: int) -> None:
        """Reads have no side effects on fixed tables."""

    def mak_writable(self, table_id: int) -> bool:
        return table_id in self._mak_writable

    def write(self, table_id: int, offset: int, data: bytes) -> ResponseCode:
        table = self.tables[table_id]
        if offset + len(data) > len(table):
            return ResponseCode.TABLE_OPERATION_NOT_POSSIBLE
        table[offset : offset + len(data)] = data
        return ResponseCode.OK

    def run_procedure(self, call: ProcedureCall, level: AccessLevel) -> ProcedureResponse:
        self.calls.append((call, level))
        result = (
            ProcedureResult.COMPLETED
            if call.number in self._known
            else ProcedureResult.UNRECOGNIZED_PROCEDURE
        )
        return ProcedureResponse(number=call.number, psn=call.psn, result=result)

    def procedure_response_table(self) -> int:
        return self._response_table

    def store_procedure_response(self, table_id: int, response: ProcedureResponse) -> None:
        self.tables[table_id] = bytearray(response.to_bytes())
