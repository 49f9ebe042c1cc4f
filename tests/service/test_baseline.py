"""The baseline a reading is checked against, chosen from evidence (issue 10 item 2, issue 11
item 10): an absurd first reading does not become it, an absurd stored one is not taken back
after a restart, a replaced meter's consistent readings replace it, and every rejection is
counted, shown and logged without flooding the log.

Real parts throughout: the simulator's meter model on a real TCP port, the real poller and
client, the real gateway and stores (SQLite and PostgreSQL through ``store_url``).
"""

from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt
import logging
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from pydantic import SecretStr

from mepgate.client import EnergyTotals, LinkTiming, MepSession, MeterClient
from mepgate.config import MeterConfig, Settings, StorageConfig
from mepgate.proto import parse_key
from mepgate.reading import TIERS, Reading, tier_energy_field
from mepgate.service.gateway import Gateway
from mepgate.service.poller import REJECTION_LOG_INTERVAL, MeterPoller, RetryPolicy
from mepgate.service.view import MeterStatus
from mepgate.simulator.meter import DEFAULT_MBK, SimulatedMeter
from mepgate.simulator.model import build_meter, model_of
from mepgate.simulator.serve import RunningSimulator
from mepgate.simulator.timing import WireTiming
from mepgate.store import open_store

from ..conftest import FROZEN, SIM_KEYS
from ..support.wait import until

MBK = DEFAULT_MBK.decode()
FAST = RetryPolicy(initial=0.1, maximum=0.4)
T0 = dt.datetime(2026, 6, 1, 12, tzinfo=dt.UTC)  # the simulated meters' clocks start here
ABSURD = 2_147_483_647  # what a fake meter sent: INT32's maximum, in Wh and in var
GLITCH_WH = 2_000_000_000
"""The simulated meter's absurd register: below INT32's maximum, which its summation of
forward plus reverse energy could not encode."""
FORWARD = "forward_active_energy_wh"


def fast_client(port: str) -> MeterClient:
    return MeterClient(MepSession(port, parse_key(MBK), timing=LinkTiming.fast()))


def settings_for(port: str, store_url: str) -> Settings:
    meter = MeterConfig(name="house", port=port, key=SecretStr(MBK), poll_interval=0.2)
    return Settings(meter=[meter], storage=StorageConfig(url=store_url, timezone="UTC"))


def gateway_for(settings: Settings, data_dir: Path) -> Gateway:
    return Gateway(
        settings, data_dir=data_dir, timing=LinkTiming.fast(), retry=FAST, batch_interval=0.2
    )


def poller_for(port: str, readings: list[Reading], **options: object) -> MeterPoller:
    return MeterPoller(
        MeterConfig(name="house", port=port, poll_interval=0.1),
        connect=lambda: fast_client(port),
        on_reading=readings.append,
        retry=FAST,
        **options,  # type: ignore[arg-type]
    )


async def run_until(poller: MeterPoller, condition: object, what: str) -> None:
    task = asyncio.create_task(poller.run())
    try:
        await until(condition, what=what, tasks=[task])  # type: ignore[arg-type]
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


def serve(meter: SimulatedMeter, port: int = 0) -> RunningSimulator:
    sim = RunningSimulator(
        meter,
        keys=SIM_KEYS,
        timing=WireTiming(enabled=False),
        pty=False,
        tcp=("127.0.0.1", port),
    )
    sim.start()
    return sim


def meter_with(seed: int, *, speed: float = 1.0, forward_wh: int | None = None) -> SimulatedMeter:
    """A simulated meter; ``forward_wh`` sets its forward registers, the tiers included (so
    that they still add up to the total, as a real meter's do)."""
    meter = build_meter(
        "gen4-3phase", seed=seed, start=T0, speed=speed, origin=time.monotonic(), keys=SIM_KEYS
    )
    if forward_wh is not None:
        model = model_of(meter)
        model.registers.continue_from(FORWARD, forward_wh, [], tier=0)
    return meter


def tiers_of(reading: Reading, direction: str = "forward") -> list[float | None]:
    return [getattr(reading, tier_energy_field(direction, tier)) for tier in TIERS]


class GlitchOnce(MeterClient):
    """A real client of a meter whose forward total register reads ``GLITCH_WH`` once: the first
    energy read of the poller's life (``done`` is shared by the clients of its sessions), as
    the fake meter of issue 11 sent it."""

    def __init__(self, sim: RunningSimulator, done: list[bool]) -> None:
        super().__init__(MepSession(sim.url or "", parse_key(MBK), timing=LinkTiming.fast()))
        self._sim = sim
        self._done = done

    def _preset(self, wh: int) -> int:
        """Set the meter's forward total register (in the simulator's thread); the old value."""
        registers = model_of(self._sim.meter).registers

        def preset() -> int:
            before = registers.total.energies_wh()[FORWARD]
            registers.preset(FORWARD, wh)
            return before

        return self._sim.call(preset)

    async def read_energy_totals(self, summations: int = 2, *, tiers: bool = False) -> EnergyTotals:
        if self._done:
            return await super().read_energy_totals(summations, tiers=tiers)
        true_wh = await asyncio.to_thread(self._preset, GLITCH_WH)
        try:
            totals = await super().read_energy_totals(summations, tiers=tiers)
        finally:  # back to the truth (a frozen meter: nothing was counted meanwhile)
            await asyncio.to_thread(self._preset, true_wh)
        self._done.append(True)
        return totals


# -- an absurd first reading ---------------------------------------------------------------------
def test_an_absurd_first_reading_does_not_become_the_baseline(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO)
    meter = meter_with(seed=2, speed=FROZEN)
    sim = serve(meter)
    port = sim.url or ""
    readings: list[Reading] = []
    glitched: list[bool] = []
    poller = MeterPoller(
        MeterConfig(name="house", port=port, poll_interval=0.1),
        connect=lambda: GlitchOnce(sim, glitched),
        on_reading=readings.append,
        retry=FAST,
    )
    try:
        asyncio.run(run_until(poller, lambda: len(readings) >= 5, "readings after the glitch"))
    finally:
        sim.stop()
    status = poller.status()
    assert glitched
    # The glitch was rejected on its own evidence (its tiers), and only the glitch.
    assert status.rejection_reasons == {"tier-sum-mismatch": 1}
    assert status.rejected_in_a_row == 0
    assert status.last_rejection is not None
    assert "2,000,000,000 Wh" in status.last_rejection
    truth = model_of(meter).snapshot()
    assert all(r.forward_active_energy_wh == truth.forward_active_energy_wh for r in readings)
    assert "tier-sum-mismatch" in caplog.text
    assert "2,000,000,000 Wh" in caplog.text  # the log says which value, not just that


def stored_truth(meter: SimulatedMeter, at: dt.datetime) -> Reading:
    """A reading of ``meter``'s registers (totals and tiers) as the gateway stores them."""
    truth = model_of(meter).snapshot()
    values: dict[str, Any] = {
        tier_energy_field(direction, tier): float(wh)
        for direction in ("forward", "reverse")
        for tier, wh in zip(
            TIERS, getattr(truth, f"tier_{direction}_active_energy_wh"), strict=True
        )
    }
    return Reading(
        meter="house",
        at=at,
        forward_active_energy_wh=float(truth.forward_active_energy_wh),
        reverse_active_energy_wh=float(truth.reverse_active_energy_wh),
        reactive_power_var=float(truth.electrical.reactive_power_var),
        **values,
    )


@pytest.mark.parametrize(
    ("absurd", "why"),
    [
        # 2,147,483,647 Wh while the tiers sum to the real total, and as many var: implausible
        # on its own (no meter carries that reactive power).
        ({FORWARD: float(ABSURD), "reactive_power_var": float(ABSURD)}, "power-out-of-range"),
        # The energy alone: its tiers, and the reading stored before it, speak against it.
        ({FORWARD: float(ABSURD)}, "disagree with its tiers"),
    ],
)
def test_a_gateway_started_on_an_absurd_stored_reading_stores_again_at_once(
    store_url: str,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
    absurd: dict[str, Any],
    why: str,
) -> None:
    """The newest stored reading is checked before it becomes the baseline: an older version
    stored the glitch, and every restart then rejected every real reading (issue 11, item 10)."""
    caplog.set_level(logging.INFO)
    meter = meter_with(seed=3, speed=FROZEN)
    sim = serve(meter)
    good = stored_truth(meter, dt.datetime.now(dt.UTC) - dt.timedelta(minutes=5))
    glitch = dataclasses.replace(good, at=good.at + dt.timedelta(seconds=1), **absurd)
    with open_store(store_url) as store:
        store.ingest([good, glitch])
    settings = settings_for(sim.url or "", store_url)

    async def scenario() -> MeterStatus:
        async with gateway_for(settings, tmp_path) as gateway:
            await until(
                lambda: (
                    gateway.meters()[0].readings_stored >= 3
                    or gateway.meters()[0].readings_rejected >= 3
                ),
                what="readings stored or rejected",
            )
            return gateway.meters()[0]

    try:
        status = asyncio.run(scenario())
    finally:
        sim.stop()
    assert status.readings_rejected == 0, status.last_rejection
    assert status.readings_stored >= 3
    assert "not the baseline" in caplog.text
    assert why in caplog.text
    with open_store(store_url) as store:
        newest = store.latest("house")
    assert newest is not None
    assert newest.at > glitch.at
    assert newest.forward_active_energy_wh == good.forward_active_energy_wh  # frozen meter


# -- a replaced meter ------------------------------------------------------------------------------
def test_a_replaced_meter_becomes_the_baseline_by_evidence_and_stays_it_after_a_restart(
    store_url: str, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """A meter swapped for one with lower registers (same name, same port): its readings agree
    with each other, not with the old meter's; after a consistent story they are the new
    baseline, stored, and a restarted gateway continues from them without a rejection."""
    caplog.set_level(logging.INFO)
    old = serve(meter_with(seed=1, forward_wh=9_500_000))
    port = int((old.url or "").rsplit(":", 1)[1])
    readings: list[Reading] = []
    new: RunningSimulator | None = None
    poller = poller_for(old.url or "", readings, rebase_after=4, rebase_after_s=0.5)

    async def swap() -> None:
        nonlocal new
        task = asyncio.create_task(poller.run())
        try:
            await until(lambda: len(readings) >= 3, what="the old meter's readings", tasks=[task])
            await asyncio.to_thread(old.stop)
            new = serve(meter_with(seed=1), port)  # 8,000,001 Wh: far below the old one
            await until(lambda: poller.readings_rejected >= 1, what="a rejection", tasks=[task])
            status = poller.status()
            assert status.rejected_in_a_row >= 1
            assert status.last_rejection is not None
            assert "energy-decreased" in status.last_rejection
            assert "9,500,0" in status.last_rejection  # the baseline's value, in words
            await until(
                lambda: sum(r.forward_active_energy_wh < 9_000_000 for r in readings) >= 3,
                what="the new meter's readings",
                tasks=[task],
            )
        finally:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)

    try:
        asyncio.run(swap())
        assert poller.rebaselines == 1
        assert poller.status().rejected_in_a_row == 0
        assert set(poller.rejections) == {"energy-decreased"}
        assert "new baseline" in caplog.text
        assert "readings accepted again after" in caplog.text
        with open_store(store_url) as store:
            store.ingest(readings)
        assert new is not None
        settings = settings_for(new.url or "", store_url)

        async def restart() -> None:
            async with gateway_for(settings, tmp_path) as gateway:
                await until(
                    lambda: (
                        gateway.meters()[0].readings_stored >= 3
                        or gateway.meters()[0].readings_rejected >= 3
                    ),
                    what="readings after the restart",
                )
                status = gateway.meters()[0]
            assert status.readings_rejected == 0, status.last_rejection
            assert status.readings_stored >= 3

        asyncio.run(restart())
    finally:
        old.stop()
        if new is not None:
            new.stop()


# -- rejections: counted, shown, logged at a bounded rate -----------------------------------------
class VirtualTime:
    """The poller's monotonic clock and sleep, advanced only by its own sleeps."""

    def __init__(self) -> None:
        self.now = 1000.0

    def monotonic(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.now += max(seconds, 0.0)
        await asyncio.sleep(0)


def test_persistent_rejections_are_logged_once_a_minute_with_reason_and_values(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO)
    sim = serve(meter_with(seed=5, speed=FROZEN))
    clock = VirtualTime()
    readings: list[Reading] = []
    baseline = Reading(  # trusted (plausible, in the past), far above the meter
        meter="house",
        at=dt.datetime.now(dt.UTC) - dt.timedelta(hours=1),
        forward_active_energy_wh=1e10,
        reverse_active_energy_wh=1e10,
    )
    poller = MeterPoller(
        MeterConfig(name="house", port=sim.url or "", poll_interval=10.0),
        connect=lambda: fast_client(sim.url or ""),
        on_reading=readings.append,
        previous=baseline,
        retry=FAST,
        monotonic=clock.monotonic,
        sleep=clock.sleep,
        rebase_after=10**6,  # never re-based here: this test is about the rejections
    )
    try:
        asyncio.run(run_until(poller, lambda: poller.readings_rejected >= 25, "25 rejections"))
    finally:
        sim.stop()
    status = poller.status()
    assert readings == []
    assert status.rejected_in_a_row == status.readings_rejected >= 25
    assert status.rejection_reasons == {"energy-decreased": status.readings_rejected}
    assert status.last_rejection is not None
    assert "forward_active_energy_wh went from 10,000,000,000 Wh" in status.last_rejection
    lines = [r for r in caplog.records if "reading rejected" in r.getMessage()]
    assert all(r.levelno == logging.WARNING for r in lines)
    # 25+ readings 10 s apart on the poller's clock: the first at once, then one a minute.
    span = 10.0 * (status.readings_rejected - 1)
    assert len(lines) == 1 + int(span // REJECTION_LOG_INTERVAL)
    assert "10,000,000,000 Wh" in lines[0].getMessage()


def test_the_evidence_for_a_new_baseline_survives_a_gateway_restart(
    store_url: str, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """A gateway restarted while a replaced meter's readings are being rejected continues the
    story from the store instead of starting over (the old 300-reading counter lived in
    memory: a gateway restarted often enough never recovered)."""
    caplog.set_level(logging.INFO)
    meter = meter_with(seed=7)  # the new meter: 8,000,007 Wh
    sim = serve(meter)
    old = stored_truth(meter, dt.datetime.now(dt.UTC) - dt.timedelta(minutes=1))
    old = dataclasses.replace(  # the replaced meter's newest reading, far above
        old,
        forward_active_energy_wh=old.forward_active_energy_wh + 1_000_000,
        forward_active_energy_tier1_wh=(old.forward_active_energy_tier1_wh or 0) + 1_000_000,
    )
    with open_store(store_url) as store:
        store.ingest([old])
    settings = settings_for(sim.url or "", store_url)
    needed = 8

    async def run(condition: str) -> MeterStatus:
        gateway = Gateway(
            settings,
            data_dir=tmp_path,
            timing=LinkTiming.fast(),
            retry=FAST,
            batch_interval=0.2,
            rebase_after=needed,
            rebase_after_s=0.0,
        )
        async with gateway:

            def done() -> bool:
                status = gateway.meters()[0]
                if condition == "half":
                    return status.rejected_in_a_row >= needed // 2
                return status.readings_stored >= 1 or status.readings_rejected >= needed

            await until(done, what=condition)
            return gateway.meters()[0]

    try:
        first = asyncio.run(run("half"))
        assert first.readings_stored == 0
        with open_store(store_url) as store:
            assert store.state("house", "baseline-story") is not None
        second = asyncio.run(run("stored"))
    finally:
        sim.stop()
    assert "the evidence for a new one continues from there" in caplog.text
    assert second.readings_stored >= 1
    # The story went on where it stopped: fewer rejections than a whole story needs (without
    # the first run's, the 8th reading would be the first accepted, after 7 rejected).
    assert first.readings_rejected >= needed // 2
    assert second.readings_rejected < needed - 1
    with open_store(store_url) as store:
        assert store.state("house", "baseline-story") is None  # done: the evidence is spent
        newest = store.latest("house")
    assert newest is not None
    assert newest.forward_active_energy_wh < old.forward_active_energy_wh


def test_a_meter_reboot_leaves_nothing_rejected(
    simulator_factory: Callable[..., RunningSimulator], tmp_path: Path
) -> None:
    """A meter that reboots (its sequence counter restarts, its registers do not) is polled on
    without a rejection: one of the restart paths that must never stop the history."""
    sim = simulator_factory(profile="gen4-3phase", faults="reboot=@1")
    settings = settings_for(sim.url or "", f"sqlite:///{tmp_path}/reboot.db")

    async def scenario() -> tuple[int, MeterStatus]:
        async with gateway_for(settings, tmp_path) as gateway:
            await until(lambda: sim.reboots >= 1, what="the meter's reboot")
            before = gateway.meters()[0].readings_stored
            await until(lambda: gateway.meters()[0].readings_stored >= before + 3)
            return before, gateway.meters()[0]

    before, status = asyncio.run(scenario())
    assert status.readings_stored >= before + 3
    assert status.readings_rejected == 0, status.last_rejection
