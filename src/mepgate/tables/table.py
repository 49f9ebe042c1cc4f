"""One declaration per table: its id, the value it decodes to, and how to code it.

Each table module declares its tables next to their layouts, e.g.
``BT01 = FixedTable(TableId.BT01, ManufacturerInformation, BT01_LAYOUT)``, and
:mod:`~mepgate.tables.registry` collects those declarations, so adding a table is one
declaration.  There are two kinds, because the MEP guide sizes most tables from others
("Dynamic Sizing of Tables"):

* :class:`FixedTable` -- the shape is fixed (or follows from the data itself, BT60/BT61):
  ``BT01.decode(data)``, ``BT01.encode(value)``;
* :class:`DimensionedTable` -- the layout is built from the session's
  :class:`~mepgate.tables.dimensions.Dimensions`: ``BT23.decode(data, dims)``.

Both are generic over the value type, so ``BT01.decode(data)`` is a ``ManufacturerInformation``
to the type checker; the registry sees them all as :class:`Table` (``decode_with`` /
``encode_with``, the dimensions being ignored by fixed tables).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable
from typing import TYPE_CHECKING, Generic, Protocol, TypeVar

from mepgate.tables.errors import TableEncodeError
from mepgate.tables.ids import TableId, describe

if TYPE_CHECKING:
    from mepgate.tables.dimensions import Dimensions

T = TypeVar("T")
# Covariant: every FixedTable[X] / DimensionedTable[X] is a Table[object] to the registry.
T_co = TypeVar("T_co", covariant=True)


class Codec(Protocol[T]):
    """Bytes <-> value: a :class:`~mepgate.tables._layout.Layout`, or a codec doing more."""

    def decode(self, data: bytes) -> T: ...

    def encode(self, value: T) -> bytes: ...


class Table(ABC, Generic[T_co]):
    """A table as the registry sees it: coded with the session's dimensions."""

    def __init__(self, table_id: TableId, value_type: type[T_co]) -> None:
        self.table_id = table_id
        self._value_type = value_type

    @property
    def value_type(self) -> type[T_co]:
        """The type :meth:`decode_with` returns and :meth:`encode_with` accepts."""
        return self._value_type

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.table_id.name} -> {self.value_type.__name__}>"

    @abstractmethod
    def decode_with(self, data: bytes, dims: Dimensions) -> T_co:
        """Decode (a prefix of) the table; raises a ``TableDecodeError``."""

    @abstractmethod
    def encode_with(self, value: object, dims: Dimensions) -> bytes:
        """Encode ``value``; :class:`TableEncodeError` if it is not a :attr:`value_type`."""

    def _checked(self, value: object) -> T_co:
        if not isinstance(value, self.value_type):
            raise TableEncodeError(
                f"{describe(self.table_id)} encodes a {self.value_type.__name__}, "
                f"not a {type(value).__name__}"
            )
        return value


class FixedTable(Table[T]):
    """A table whose shape does not depend on other tables."""

    def __init__(self, table_id: TableId, value_type: type[T], codec: Codec[T]) -> None:
        super().__init__(table_id, value_type)
        self.codec = codec

    def decode(self, data: bytes) -> T:
        """Decode (a prefix of) the table; raises a ``TableDecodeError``."""
        return self.codec.decode(data)

    def encode(self, value: T) -> bytes:
        """Encode the table; raises :class:`TableEncodeError` for values that do not fit."""
        return self.codec.encode(value)

    def decode_with(self, data: bytes, dims: Dimensions) -> T:
        return self.decode(data)

    def encode_with(self, value: object, dims: Dimensions) -> bytes:
        return self.encode(self._checked(value))


class DimensionedTable(Table[T]):
    """A table whose layout follows from the dimension tables (``layout_for(dims)``)."""

    def __init__(
        self,
        table_id: TableId,
        value_type: type[T],
        layout_for: Callable[[Dimensions], Codec[T]],
    ) -> None:
        super().__init__(table_id, value_type)
        self.layout_for = layout_for

    def decode(self, data: bytes, dims: Dimensions) -> T:
        """Decode (a prefix of) the table; raises a ``TableDecodeError``."""
        return self.layout_for(dims).decode(data)

    def encode(self, value: T, dims: Dimensions) -> bytes:
        """Encode the table; raises :class:`TableEncodeError` for values that do not fit."""
        return self.layout_for(dims).encode(value)

    def decode_with(self, data: bytes, dims: Dimensions) -> T:
        return self.decode(data, dims)

    def encode_with(self, value: object, dims: Dimensions) -> bytes:
        return self.encode(self._checked(value), dims)
