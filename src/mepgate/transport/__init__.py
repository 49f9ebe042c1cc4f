"""Byte links to a meter's MEP port: a serial device, ``tcp://host:port`` or ``rfc2217://``.

A :class:`Link` moves bytes and nothing else; framing, timing rules and security belong to
:mod:`mepgate.client`.  :func:`open_link` picks the implementation from the port string.
"""

from mepgate.errors import PortUnavailableError
from mepgate.transport.link import (
    EnableLine,
    Link,
    StreamLink,
    open_link,
)

__all__ = [
    "EnableLine",
    "Link",
    "PortUnavailableError",
    "StreamLink",
    "open_link",
]
