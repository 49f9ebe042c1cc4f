"""Serving a simulated meter on a real line: wire timing, alerts, faults, TCP and pty."""

from mepgate.simulator.serve.background import RunningSimulator
from mepgate.simulator.serve.links import PtyFrontEnd, TcpFrontEnd
from mepgate.simulator.serve.port import Link, MeterPort, PortStats

__all__ = ["Link", "MeterPort", "PortStats", "PtyFrontEnd", "RunningSimulator", "TcpFrontEnd"]
