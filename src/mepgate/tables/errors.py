"""Errors raised by the table codecs.

Decoding problems are the meter's (or the wire's) fault, so they derive from
:class:`~mepgate.errors.RemoteProtocolError`; encoding problems and unknown table names are
the caller's, so they derive from :class:`~mepgate.errors.LocalProtocolError`.
"""

from __future__ import annotations

from mepgate.errors import LocalProtocolError, RemoteProtocolError


class TableDecodeError(RemoteProtocolError):
    """Table data does not fit the layout the guide (and the dimension tables) describe."""


class TruncatedTableError(TableDecodeError):
    """The data ends in the middle of a field, or before the fields every firmware has."""


class TableLengthError(TableDecodeError):
    """The data is longer than the dimension tables say it can be."""


class InvalidDimensionError(TableDecodeError):
    """A dimension table holds a value no meter can have (e.g. a zero-byte entry size)."""


class TableEncodeError(LocalProtocolError):
    """A value handed to an encoder does not fit its field (wrong type, out of range)."""


class UnknownTableError(LocalProtocolError):
    """A table name or number that mepgate does not know or cannot parse."""
