"""Errors the store raises on purpose (all derive from :class:`mepgate.errors.MepgateError`)."""

from __future__ import annotations

from mepgate.errors import MepgateError


class StoreError(MepgateError):
    """The database could not be opened, read or written; the message says what to check."""


class StoreUrlError(StoreError):
    """A storage URL is malformed or names an unsupported engine."""


class SchemaTooNewError(StoreError):
    """The database was written by a newer mepgate; this version refuses to touch it."""
