"""The shared port of a Gen 2/3 meter: the gateway polls its MEP port while a second client
(``mepgate watch --interface optical``, a real process) holds an optical session.  The MEP
side falls silent, and the poller's diagnosis names the cause ("an optical session is active
on the meter") instead of blaming the wiring; polling resumes when the session ends, and every
stored reading equals the simulator's ground truth.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from pathlib import Path

from pydantic import SecretStr

from mepgate.client import Diagnosis, LinkTiming
from mepgate.config import MeterConfig, Settings, StorageConfig, write_secret_file
from mepgate.reading import Reading
from mepgate.service.gateway import Gateway
from mepgate.service.poller import RetryPolicy
from mepgate.simulator.meter import DEFAULT_MBK, DEFAULT_RK
from mepgate.simulator.model import GroundTruth, ground_truth

from ..conftest import FROZEN, SimulatorFactory
from ..support.wait import until

OPTICAL_UPDATES = 6  # one a second: the optical session lasts some six seconds


def _true(reading: Reading, truth: GroundTruth) -> None:
    assert reading.forward_active_energy_wh == truth.forward_active_energy_wh
    assert reading.reverse_active_energy_wh == truth.reverse_active_energy_wh
    for n, phase in enumerate(truth.phases, start=1):
        assert getattr(reading, f"voltage_l{n}_v") == phase.voltage_mv / 1000, n
        assert getattr(reading, f"current_l{n}_a") == phase.current_ma / 1000, n


def test_the_mep_side_names_an_optical_session_and_resumes_after_it(
    simulator_factory: SimulatorFactory, tmp_path: Path
) -> None:
    sim = simulator_factory(profile="gen3-3phase", speed=FROZEN, interface="both", pty=False)
    assert sim.shared is not None
    truth = sim.call(lambda: ground_truth(sim.meter, sim.meter.clock.origin))
    rk = tmp_path / "rk.txt"
    write_secret_file(rk, DEFAULT_RK.decode() + "\n")
    meter = MeterConfig(
        name="house", port=str(sim.url), key=SecretStr(DEFAULT_MBK.decode()), poll_interval=0.2
    )
    settings = Settings(
        meter=[meter], storage=StorageConfig(url=f"sqlite:///{tmp_path}/db.db", timezone="UTC")
    )

    async def scenario() -> list[Reading]:
        gateway = Gateway(
            settings,
            data_dir=tmp_path,
            timing=LinkTiming.fast(),
            retry=RetryPolicy(initial=0.2, maximum=0.4),
            batch_interval=0.3,
        )
        async with gateway:
            await until(
                lambda: gateway.meters()[0].last_reading_at is not None,
                what="the MEP poller's first reading",
                timeout=20,
            )
            optical = await asyncio.create_subprocess_exec(
                sys.executable, "-m", "mepgate", "watch", "--interface", "optical",
                "--port", str(sim.optical_url), "--key-file", str(rk),
                "--count", str(OPTICAL_UPDATES), "--interval", "1",
                env={**os.environ, "MEPGATE_KEY": ""},
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
            )  # fmt: skip
            _, err = await asyncio.wait_for(optical.communicate(), timeout=60)
            assert optical.returncode == 0, err.decode()
            diagnoses = [e.diagnosis for e in gateway.meters()[0].last_errors]
            assert Diagnosis.OPTICAL_SESSION.value in diagnoses, diagnoses
            named = next(
                e
                for e in gateway.meters()[0].last_errors
                if e.diagnosis == Diagnosis.OPTICAL_SESSION.value
            )
            assert "an optical session is active on the meter" in named.advice
            stored_before = gateway.meters()[0].readings_stored
            await until(
                lambda: (
                    gateway.meters()[0].state == "polling"
                    and gateway.meters()[0].readings_stored > stored_before + 3
                ),
                what="MEP polling to resume after the optical session",
                timeout=30,
            )
            await asyncio.sleep(0.5)  # a batch written
            return await gateway.store.recent("house", 100_000)

    readings = asyncio.run(scenario())
    assert sim.shared.switches >= 1  # the UART went over to the optical side
    assert sim.call(lambda: sim.optical_port.server.counters.sessions) >= 1
    assert len(readings) > 3
    for reading in readings:  # nothing wrong stored, before, during or after
        _true(reading, truth)
