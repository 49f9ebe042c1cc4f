"""Client tests run against the simulator's real meter model (``build_meter``), served by the
real front ends (TCP and pty) of :class:`~mepgate.simulator.serve.RunningSimulator`.

``start_sim("gen3"|"gen4", tls_required=..., faults=..., speed=...)`` wraps the shared
``simulator_factory``; the returned :class:`Sim` reaches into the meter on the simulator's own
thread (``truth()``, ``table()``), so comparisons never race the front ends.  By default the
model's clock is frozen (:data:`~tests.conftest.FROZEN`): what a client decodes must then equal
the ground truth exactly, whenever the test looks.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable

import pytest

from mepgate.simulator.meter import DEFAULT_MBK, SimulatedMeter
from mepgate.simulator.model import GroundTruth, MeterModel, ground_truth, model_of
from mepgate.simulator.model.present import named_present_values
from mepgate.simulator.serve import RunningSimulator
from mepgate.simulator.timing import WireTiming
from mepgate.tables.registers import PresentValues

from ..conftest import FROZEN, SimulatorFactory

MBK_TEXT = DEFAULT_MBK.decode()
PROFILES = {"gen3": "gen3-3phase", "gen4": "gen4-3phase"}


@dataclasses.dataclass
class Sim:
    running: RunningSimulator

    @property
    def meter(self) -> SimulatedMeter:
        return self.running.meter

    @property
    def model(self) -> MeterModel:
        return model_of(self.running.meter)

    def port(self, kind: str) -> str:
        where = self.running.url if kind == "tcp" else self.running.device
        if where is None:
            raise LookupError(f"the simulator has no {kind} front end")
        return where

    def truth(self) -> GroundTruth:
        """The model's ground truth now, taken on the simulator's thread."""
        return self.running.call(lambda: ground_truth(self.meter, time.monotonic()))

    def table(self, table_id: int) -> bytes:
        """The bytes the meter would answer for ``table_id`` now."""

        def encode() -> bytes:
            self.model.advance(self.meter.clock.at(time.monotonic()))
            data = self.model.table(table_id)
            if data is None:
                raise LookupError(f"the model has no table {table_id}")
            return data

        return self.running.call(encode)


def expected_present(truth: GroundTruth) -> dict[str, int]:
    """Every present value the model shows in BT28, by decoder field name."""
    return named_present_values(truth.electrical)


def mismatches(readings: PresentValues, truth: GroundTruth) -> dict[str, tuple[int, int]]:
    """Decoded present values that differ from the ground truth: ``{name: (decoded, true)}``."""
    expected = expected_present(truth)
    out: dict[str, tuple[int, int]] = {}
    for field in dataclasses.fields(readings):
        value = getattr(readings, field.name)
        if value is not None and value != expected[field.name]:
            out[field.name] = (value, expected[field.name])
    return out


StartSim = Callable[..., Sim]


@pytest.fixture
def start_sim(simulator_factory: SimulatorFactory) -> StartSim:
    def start(
        profile: str = "gen4",
        *,
        tls_required: bool = False,
        faults: str = "",
        timing: WireTiming | None = None,
        seed: int = 1,
        speed: float = FROZEN,
        **options: object,
    ) -> Sim:
        running = simulator_factory(
            profile=PROFILES[profile],
            tls_required=tls_required,
            faults=faults,
            timing=timing,
            seed=seed,
            speed=speed,
            **options,
        )
        return Sim(running)

    return start
