"""Shared fixtures: a simulated meter served in-process on a real TCP port and a real pty.

``simulator`` is a started :class:`~mepgate.simulator.serve.RunningSimulator` (timing off,
no faults) with ``.url`` (``tcp://127.0.0.1:PORT``), ``.device`` (``/dev/pts/N``), ``.meter``,
``.keys`` and ``.configure_faults("drop=0.5,seed=1")``; ``simulator_factory(**options)``
starts one with other options (``timing=WireTiming(...)``, ``faults=...``,
``tls_required=True``, ``tables={...}``, or ``profile="gen4-3phase"`` for the full meter model
instead of fixed tables, with ``speed=`` its simulated seconds per second: a tiny speed such as
``FROZEN`` holds its values still).  Both are stopped after the test.

``store_url`` runs a test twice: on SQLite in its tmp dir and on the local PostgreSQL in a
fresh schema (``postgres_url``; server ``MEPGATE_TEST_POSTGRES``, default
``postgresql://postgres@127.0.0.1:5432/test``).  A server that cannot be reached makes the
tests fail, never skip.
"""

from __future__ import annotations

import datetime as dt
import os
import time
import uuid
from collections.abc import Callable, Iterator, Mapping
from typing import Any

import psycopg
import pytest

from mepgate.proto import AccessLevel
from mepgate.simulator.meter import DEFAULT_MAK, DEFAULT_MBK, SimClock, SimulatedMeter
from mepgate.simulator.model import build_meter
from mepgate.simulator.serve import RunningSimulator
from mepgate.simulator.static_store import StaticStore
from mepgate.simulator.timing import WireTiming

POSTGRES_BASE = os.environ.get("MEPGATE_TEST_POSTGRES", "postgresql://postgres@127.0.0.1:5432/test")


@pytest.fixture
def postgres_url() -> Iterator[str]:
    schema = f"mepgate_test_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(POSTGRES_BASE, autocommit=True) as conn:
        conn.execute(f'CREATE SCHEMA "{schema}"')
    try:
        yield f"{POSTGRES_BASE}?options=-csearch_path%3D{schema}"
    finally:
        with psycopg.connect(POSTGRES_BASE, autocommit=True) as conn:
            conn.execute(f'DROP SCHEMA "{schema}" CASCADE')


@pytest.fixture(params=["sqlite", "postgresql"])
def store_url(request: pytest.FixtureRequest, tmp_path: os.PathLike[str]) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path}/mepgate.db"
    url: str = request.getfixturevalue("postgres_url")
    return url


SIM_KEYS = {AccessLevel.BASIC: DEFAULT_MBK, AccessLevel.ADVANCED: DEFAULT_MAK}
SIM_START_SEQUENCE = 4242
FROZEN = 1e-9
"""A model speed at which simulated time stands still for a test's length (``build_meter``
refuses 0): values stay within one 10 s step, energies move by far less than 1 Wh."""

FIXTURE_TABLES: Mapping[int, bytes] = {
    0x0001: b"GE  I210+c      \x03\x01\x04\x02MEPGATE-SIM-0001",  # BT01-like identity
    0x0017: bytes(range(60)),  # BT23: 60 bytes
    0x001C: bytes(i % 251 for i in range(300)),  # BT28-sized: three 117-byte segments
}


class StaticModel(StaticStore):
    """The smallest :class:`~mepgate.simulator.meter.ModelStore`: fixed tables, a settable
    alert condition, counted reboots."""

    def __init__(self, tables: Mapping[int, bytes]) -> None:
        super().__init__(tables)
        self.alert = False
        self.reboots: list[dt.datetime] = []
        self.now: dt.datetime | None = None

    def advance(self, when: dt.datetime) -> None:
        self.now = when

    def alert_pending(self) -> bool:
        return self.alert

    def reboot(self, when: dt.datetime) -> None:
        self.reboots.append(when)

    def reconfigure(self) -> None:
        pass


def static_meter(
    *, tables: Mapping[int, bytes] = FIXTURE_TABLES, tls_required: bool = False
) -> SimulatedMeter:
    return SimulatedMeter(
        model=StaticModel(tables),
        clock=SimClock(origin=time.monotonic(), start=dt.datetime(2026, 1, 1, tzinfo=dt.UTC)),
        keys=SIM_KEYS,
        sequence=SIM_START_SEQUENCE,
        tls_required=tls_required,
    )


SimulatorFactory = Callable[..., RunningSimulator]


@pytest.fixture
def simulator_factory() -> Iterator[SimulatorFactory]:
    started: list[RunningSimulator] = []

    def start(
        *,
        timing: WireTiming | None = None,
        faults: str = "",
        tls_required: bool = False,
        tables: Mapping[int, bytes] = FIXTURE_TABLES,
        profile: str | None = None,
        seed: int = 1,
        speed: float = 1.0,
        mbus: tuple[str, ...] | None = None,
        mbus_stops: dict[int, float] | None = None,
        mbus_et16_compat: bool = True,
        **options: Any,
    ) -> RunningSimulator:
        meter = (
            static_meter(tables=tables, tls_required=tls_required)
            if profile is None
            else build_meter(
                profile,
                seed=seed,
                start=dt.datetime(2026, 6, 1, 12, tzinfo=dt.UTC),
                speed=speed,
                origin=time.monotonic(),  # the front end's clock
                keys=SIM_KEYS,
                tls_required=tls_required,
                mbus=mbus,
                mbus_stops=mbus_stops,
                mbus_et16_compat=mbus_et16_compat,
            )
        )
        sim = RunningSimulator(
            meter,
            seed=seed,
            keys=SIM_KEYS,
            timing=timing if timing is not None else WireTiming(enabled=False),
            faults=faults,
            **options,
        )
        sim.start()
        started.append(sim)
        return sim

    yield start
    for sim in started:
        sim.stop()


@pytest.fixture
def simulator(simulator_factory: SimulatorFactory) -> RunningSimulator:
    """A simulated meter on 127.0.0.1 and a pty; timing off, no faults."""
    return simulator_factory()
