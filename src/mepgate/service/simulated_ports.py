"""What the gateway needs of the ``sim:PROFILE`` meters (``mepgate demo``, or a configuration
that names one): simulated meters it reaches like real ones, over a loopback port.

The service does not build simulated meters (an import-linter contract keeps it so): the
command line passes an implementation, :class:`mepgate.simulator.embedded.EmbeddedSimulators`.
A gateway given none refuses ``sim:`` ports
(:func:`~mepgate.service.settings_check.check_settings`).
"""

from __future__ import annotations

from typing import Protocol

from mepgate.config import Interface, MeterSecret
from mepgate.reading import Reading


class SimulatedPorts(Protocol):
    async def url_for(
        self,
        name: str,
        port: str,
        *,
        continue_from: Reading | None = None,
        interface: Interface = "mep",
    ) -> str:
        """The URL (``tcp://...``) at which meter ``name``'s ``sim:`` ``port`` answers on
        ``interface`` (its MEP or its optical port), its simulated meter started if need be.
        ``continue_from`` is the newest stored reading: a new simulated meter continues above
        its energy registers."""
        ...

    def default_key(self, port: str, *, interface: Interface = "mep") -> MeterSecret | None:
        """The key of a ``sim:`` meter configured without one (its MBK, or for ``optical`` its
        optical password); ``None``: none (the meter needs its key configured like a real
        one)."""
        ...

    async def close(self) -> None:
        """Stop the simulated meters (the gateway calls this when it stops)."""
        ...
