"""The root of mepgate's exception tree.

Every error mepgate raises on purpose derives from :class:`MepgateError`, and falls in one of
two camps, after h11's split:

* :class:`RemoteProtocolError` -- the *peer* (the meter, or a client talking to the simulator)
  sent something that breaks the protocol: a garbled frame, a digest that does not verify, a
  table shorter than its header claims.  Retrying, rewiring or re-keying may help.
* :class:`LocalProtocolError` -- *we* (the caller of the API) asked for something impossible:
  a table id out of range, a message longer than a frame can carry, a malformed key.

Any other exception type escaping mepgate is a bug.  Messages say what to do next and never
contain key material.
"""

from __future__ import annotations


class MepgateError(Exception):
    """Base class of every error mepgate raises deliberately."""


class RemoteProtocolError(MepgateError):
    """The peer sent bytes that violate the MEP protocol or a table layout."""


class LocalProtocolError(MepgateError):
    """The API was used in a way the protocol does not allow (a bug in the caller)."""


class PortUnavailableError(MepgateError):
    """The port cannot be opened, or it went away (USB adapter unplugged, TCP peer gone).

    ``reason`` names it for the diagnosis (a :class:`mepgate.client.Diagnosis` value)."""

    reason = "port-unavailable"


class PortBusyError(PortUnavailableError):
    """A serial server accepted the connection and closed it at once: its port is in use."""

    reason = "port-busy"
