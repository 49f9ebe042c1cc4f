"""The poller (:mod:`mepgate.service.poller`): its pure parts, and polling a simulated meter over
real TCP and pty lines -- identity, pace, wrong key, silence, a meter that goes away and comes
back, and readings that fail validation."""

from __future__ import annotations

import asyncio
import datetime as dt
import itertools
import time
from collections.abc import Callable, Coroutine
from typing import Any

import pytest

from mepgate.client import (
    AuthenticationError,
    Backoff,
    EnergyTotals,
    LinkTiming,
    MepSession,
    MeterClient,
    MeterRefusedError,
    NoAnswerError,
    plan_energy_read,
    plan_present_read,
)
from mepgate.config import ConfigError, MeterConfig
from mepgate.proto import AccessLevel, parse_key
from mepgate.proto.constants import MAX_READ_DATA
from mepgate.reading import TIER_REFRESH_S, TIERS, Reading, tier_energy_field
from mepgate.service.poller import (
    PRESENT_FIELDS,
    MeterPoller,
    PollerState,
    RetryPolicy,
    absent_phases,
    describe_failure,
    present_fields,
    reading_from,
)
from mepgate.simulator.meter import DEFAULT_MAK, DEFAULT_MBK
from mepgate.simulator.model import GroundTruth, build_meter, model_of
from mepgate.simulator.serve import RunningSimulator
from mepgate.simulator.timing import WireTiming
from mepgate.tables.errors import TableDecodeError
from mepgate.tables.identity import ET04
from mepgate.tables.ids import TableId
from mepgate.tables.profiles import gen3_1phase, gen4_3phase
from mepgate.tables.registers import PresentValues, RegisterTotals, bt23_layout
from mepgate.transport import PortUnavailableError

from ..conftest import FROZEN
from ..support.wait import until

SimulatorFactory = Callable[..., RunningSimulator]
KEYS = {AccessLevel.BASIC: DEFAULT_MBK, AccessLevel.ADVANCED: DEFAULT_MAK}
MBK = DEFAULT_MBK.decode()
WRONG_KEY = "WRONG-KEY-ABCDEFGHIJ"
FAST = RetryPolicy(initial=0.1, maximum=0.4)
T0 = dt.datetime(2026, 6, 1, 12, tzinfo=dt.UTC)
MERGE_GAP = MepSession("/dev/null", b"K" * 16).merge_gap  # what a 9600 Bd MEP link merges


# -- pure parts -----------------------------------------------------------------------------------
def test_reading_from_turns_meter_units_into_si_units() -> None:
    present = PresentValues(
        forward_active_power_w=1500,
        reverse_active_power_w=0,
        forward_active_power_l1_w=700,
        reverse_active_power_l3_w=200,
        rms_voltage_l1_mv=230_123,
        rms_current_l2_ma=4_321,
        power_factor_l3_milli=987,
        frequency_mhz=49_987,
        import_reactive_power_var=300,
        export_reactive_power_var=50,
    )
    energy = RegisterTotals(
        energy_register_unit=1, forward_active_energy_wh=8_000_123, reverse_active_energy_wh=42
    )
    reading = reading_from("house", T0, present, energy, tier=0)
    assert reading.forward_active_energy_wh == 8_000_123.0
    assert reading.reverse_active_energy_wh == 42.0
    assert reading.active_power_import_w == 1500.0
    assert reading.active_power_import_l1_w == 700.0
    assert reading.active_power_export_l3_w == 200.0
    assert reading.voltage_l1_v == pytest.approx(230.123)
    assert reading.current_l2_a == pytest.approx(4.321)
    assert reading.power_factor_l3 == pytest.approx(0.987)
    assert reading.frequency_hz == pytest.approx(49.987)
    assert reading.reactive_power_var == 250.0
    assert reading.current_tier == 1  # BT55 counts from 0, the meter's display from 1
    assert reading.voltage_l2_v is None  # not read: None, never zero


def test_reading_from_needs_both_energy_registers() -> None:
    with pytest.raises(TableDecodeError, match="BT23"):
        reading_from("m", T0, PresentValues(), RegisterTotals(energy_register_unit=1))


def test_energy_read_is_the_reset_counter_and_two_summations() -> None:
    assert MERGE_GAP == 96  # 100 ms of 9600 Bd: what a request costs
    gen4 = gen4_3phase().dims
    assert gen4.register.demand_reset_counter
    assert plan_energy_read(gen4, 2, MERGE_GAP, max_count=MAX_READ_DATA).spans == ((0, 1 + 2 * 4),)
    gen3 = gen3_1phase().dims
    expected = (1 if gen3.register.demand_reset_counter else 0) + 8
    assert plan_energy_read(gen3, 2, MERGE_GAP, max_count=MAX_READ_DATA).spans == ((0, expected),)


def tier_values(reading: Reading, direction: str) -> list[float | None]:
    return [getattr(reading, tier_energy_field(direction, tier)) for tier in TIERS]


def truth_tiers(truth: GroundTruth, direction: str) -> list[float]:
    registers = getattr(truth, f"tier_{direction}_active_energy_wh")
    return [float(wh) for wh in registers]


def test_reading_from_carries_the_tier_registers_1_based() -> None:
    energy = RegisterTotals(
        energy_register_unit=1, forward_active_energy_wh=100, reverse_active_energy_wh=10
    )
    tiers = [
        RegisterTotals(energy_register_unit=1, forward_active_energy_wh=60 + n,
                       reverse_active_energy_wh=n)
        for n in range(2)
    ]  # fmt: skip
    reading = reading_from("house", T0, PresentValues(), energy, tier=0, tiers=tiers)
    assert tier_values(reading, "forward") == [60.0, 61.0, None, None]  # 2 tiers: 3, 4 absent
    assert tier_values(reading, "reverse") == [0.0, 1.0, None, None]
    untiered = reading_from("house", T0, PresentValues(), energy)
    assert tier_values(untiered, "forward") == [None] * len(TIERS)


@pytest.mark.parametrize("profile", ["gen4-3phase", "gen3-3phase", "gen3-1phase"])
def test_tier_reads_are_partial_ranges_from_the_bt23_layout(profile: str) -> None:
    model = model_of(build_meter(profile, seed=5, start=T0))
    model.advance(T0 + dt.timedelta(hours=7))  # the tiers' registers differ
    bt23 = model.table(TableId.BT23)
    assert bt23 is not None
    plan = plan_energy_read(model.dims, 2, MERGE_GAP, max_count=MAX_READ_DATA, tiers=True)
    layout = bt23_layout(model.dims.register)
    block_size = (layout.size - layout.offset_of("tiers")) // model.dims.register.number_of_tiers
    assert [offset for offset, _ in plan.tiers] == [
        layout.offset_of("tiers") + n * block_size for n in range(len(TIERS))
    ]
    # The total's prefix, then each tier's summations up to the last's: no trailing demands.
    assert plan.spans[0][0] == 0
    assert sum(plan.spans[-1]) == sum(plan.tiers[-1]) < len(bt23)
    if block_size > MERGE_GAP:  # the gaps cost more than a request: each range on its own
        assert plan.spans == ((0, plan.prefix), *plan.tiers)
    else:
        assert len(plan.spans) == 1
    totals = plan.assemble([(o, bt23[o : o + c]) for o, c in plan.spans])
    truth = model.snapshot()
    assert [t.forward_active_energy_wh for t in totals.tiers] == truth_tiers(truth, "forward")
    assert [t.reverse_active_energy_wh for t in totals.tiers] == truth_tiers(truth, "reverse")
    assert totals.total.forward_active_energy_wh == truth.forward_active_energy_wh


def test_present_fields_are_few_and_one_range_on_the_guides_layout() -> None:
    plan = plan_present_read(gen4_3phase().dims, PRESENT_FIELDS, MERGE_GAP, max_count=MAX_READ_DATA)
    assert len(plan.spans) == 1
    assert plan.spans[0][1] <= 160  # far less than BT28's 372 bytes on Gen 4


def test_retry_policy_doubles_up_to_its_maximum() -> None:
    policy = RetryPolicy(initial=1.0, maximum=60.0)
    assert [policy.delay(n) for n in (1, 2, 3, 4, 7, 8, 1 << 16)] == [1, 2, 4, 8, 60, 60, 60]


@pytest.mark.parametrize(
    ("error", "diagnosis"),
    [
        (AuthenticationError("reading BT01"), "wrong-key"),
        (NoAnswerError("reading BT28"), "no-answer"),
        (PortUnavailableError("cannot open /dev/ttyUSB7"), "port-unavailable"),
        (MeterRefusedError(0x01, "reading BT28"), "refused"),
        (TableDecodeError("BT28 too short"), "decode-error"),
        (ConfigError("meter 'house': key_file /x cannot be read"), "config"),
        (RuntimeError("a bug"), "internal-error"),
    ],
)
def test_link_errors_name_the_diagnosis_and_what_to_do(error: Exception, diagnosis: str) -> None:
    entry = describe_failure(error, T0)
    assert entry.diagnosis == diagnosis
    assert entry.message
    assert entry.advice
    assert MBK not in entry.message + entry.advice


# -- against a simulated meter ----------------------------------------------------------------
def meter_config(port: str, *, name: str = "house", poll_interval: float = 0.2) -> MeterConfig:
    return MeterConfig(name=name, port=port, poll_interval=poll_interval)


class VirtualTime:
    """The poller's monotonic clock and sleep, advanced only by the poller's own sleeps: what
    it does between them takes no time, so its pace is exact and checkable."""

    def __init__(self) -> None:
        self.now = 1000.0
        self.sleeps: list[float] = []

    def monotonic(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += max(seconds, 0.0)
        await asyncio.sleep(0)  # let the rest of the event loop run


def fast_client(port: str, key: str = MBK) -> MeterClient:
    session = MepSession(port, parse_key(key), timing=LinkTiming.fast())
    return MeterClient(session, backoff=Backoff(initial=0.05, maximum=0.1, attempts=1))


def poller_for(
    port: str,
    readings: list[Reading],
    *,
    key: str = MBK,
    previous: Reading | None = None,
    poll_interval: float = 0.2,
    retry: RetryPolicy = FAST,
    **options: Any,
) -> MeterPoller:
    return MeterPoller(
        meter_config(port, poll_interval=poll_interval),
        connect=lambda: fast_client(port, key),
        on_reading=readings.append,
        previous=previous,
        retry=retry,
        **options,
    )


async def running(
    poller: MeterPoller, condition: Callable[[], bool], timeout: float = 10.0
) -> asyncio.Task[None]:
    """Start ``poller`` and wait until ``condition()`` holds or the poller ends by itself."""
    task = asyncio.create_task(poller.run())
    await until(lambda: condition() or task.done(), what="the poller", timeout=timeout)
    return task


async def stopped(task: asyncio.Task[None]) -> None:
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)


def run(scenario: Coroutine[Any, Any, None]) -> None:
    asyncio.run(scenario)


@pytest.mark.parametrize("line", ["tcp", "pty"])
def test_identity_once_then_readings_at_the_configured_pace(
    simulator_factory: SimulatorFactory, line: str
) -> None:
    sim = simulator_factory(profile="gen4-3phase")
    port = sim.url if line == "tcp" else sim.device
    assert port is not None
    readings: list[Reading] = []
    clock = VirtualTime()
    polled_at: list[float] = []

    def received(reading: Reading) -> None:
        readings.append(reading)
        polled_at.append(clock.now)

    started = dt.datetime.now(dt.UTC)

    async def scenario() -> None:
        poller = MeterPoller(
            meter_config(port, poll_interval=0.25),  # exact in binary: no rounding in the sums
            connect=lambda: fast_client(port),
            on_reading=received,
            retry=FAST,
            monotonic=clock.monotonic,
            sleep=clock.sleep,
        )
        task = await running(poller, lambda: len(readings) >= 6)
        status = poller.status()
        await stopped(task)
        # One reading every poll interval of the poller's clock, none skipped or doubled.
        steps = [b - a for a, b in itertools.pairwise(polled_at)]
        assert steps[:5] == [0.25] * 5
        assert status.connected
        assert status.state == "polling"
        assert status.identity is not None
        assert status.identity.manufacturer == "ELON"
        assert status.identity.generation == 4
        assert status.identity.firmware.startswith("4.")
        assert status.meter_clock is not None
        assert status.link["replies"] > 0
        assert status.link["auth_failures"] == 0
        assert status.readings_rejected == 0
        assert poller.state is PollerState.STOPPED

    run(scenario())
    assert [r.at for r in readings] == sorted({r.at for r in readings})
    assert all(r.voltage_l1_v and 200 < r.voltage_l1_v < 260 for r in readings)
    assert all(r.current_tier in (1, 2, 3, 4) for r in readings)
    # Stamped with this computer's clock, whatever the meter's says (the simulator's starts at
    # 2026-06-01 12:00 UTC).
    assert started <= readings[0].at <= readings[-1].at <= dt.datetime.now(dt.UTC)


@pytest.mark.parametrize(
    ("late", "expected"),
    [
        # Ends 0.15 s past the next slot: that poll at once, then back on the schedule (the
        # 0.75 s slot is taken at 0.9 s, the 1.0 s slot at 1.0 s).
        (0.40, [0.25, 0.25, 0.40, 0.10, 0.25, 0.25]),
        # Ends 0.45 s past it, more than an interval behind the schedule: the missed slot at
        # once, the one before it skipped (no burst), then every interval from there.  (In this
        # virtual time a poll takes no time, so the two polls at once share a moment.)
        (0.70, [0.25, 0.25, 0.70, 0.0, 0.25, 0.25]),
    ],
)
def test_a_late_poll_keeps_its_slot_but_never_starts_a_burst(
    simulator_factory: SimulatorFactory, late: float, expected: list[float]
) -> None:
    sim = simulator_factory(profile="gen4-3phase")
    clock = VirtualTime()
    polled_at: list[float] = []

    def received(reading: Reading) -> None:
        polled_at.append(clock.now)
        if len(polled_at) == 3:
            clock.now += late  # this poll took longer than the interval (a lost reply)

    async def scenario() -> None:
        poller = MeterPoller(
            meter_config(sim.url or "", poll_interval=0.25),
            connect=lambda: fast_client(sim.url or ""),
            on_reading=received,
            retry=FAST,
            monotonic=clock.monotonic,
            sleep=clock.sleep,
        )
        task = await running(poller, lambda: len(polled_at) >= 7)
        await stopped(task)

    run(scenario())
    steps = [round(b - a, 9) for a, b in itertools.pairwise(polled_at)]
    assert steps[:6] == expected


@pytest.mark.parametrize(
    ("profile", "absent"),
    [("gen3-1phase", {"l2", "l3"}), ("gen3-3phase", set()), ("gen4-3phase", set())],
)
def test_et04_tells_which_phases_a_meter_has(profile: str, absent: set[str]) -> None:
    """ET04 "Inactive Voltage Phases" (offset 62), as each simulated meter reports it."""
    model = model_of(build_meter(profile, seed=1, start=T0))
    data = model.table(TableId.ET04)
    assert data is not None
    assert absent_phases(ET04.decode(data)) == absent
    fields = present_fields(frozenset(absent))
    assert all(not any(f"_{p}_" in name for p in absent) for name in fields)
    assert "rms_voltage_l1_mv" in fields


def test_a_single_phase_meter_has_no_l2_l3_values(simulator_factory: SimulatorFactory) -> None:
    """A single-phase meter's BT28 still holds L2/L3 slots (zeros); ET04 says they are not
    present, so the readings carry ``None`` for them: no dead phases on the dashboard, in the
    API, MQTT or Home Assistant (issue 10, item 6)."""
    sim = simulator_factory(profile="gen3-1phase")
    readings: list[Reading] = []

    async def scenario() -> None:
        poller = poller_for(sim.url or "", readings)
        task = await running(poller, lambda: len(readings) >= 3)
        await stopped(task)
        assert poller.readings_rejected == 0

    run(scenario())
    for reading in readings:
        for phase in ("l2", "l3"):
            for name in (
                f"voltage_{phase}_v",
                f"current_{phase}_a",
                f"power_factor_{phase}",
                f"active_power_import_{phase}_w",
                f"active_power_export_{phase}_w",
            ):
                assert getattr(reading, name) is None, name
            assert reading.phase_net_power_w(phase) is None
        assert reading.voltage_l1_v is not None
        assert 200 < reading.voltage_l1_v < 260
        assert reading.current_l1_a is not None
        assert reading.power_factor_l1 is not None
        assert reading.phase_net_power_w("l1") == reading.net_power_w  # L1 carries it all


class CountingClient(MeterClient):
    """A real client that notes when it reads the tier registers (``clock()`` at each read,
    in ``tier_reads``, shared by the clients of one poller's sessions)."""

    def __init__(self, port: str, tier_reads: list[float], clock: Callable[[], float]) -> None:
        super().__init__(MepSession(port, parse_key(MBK), timing=LinkTiming.fast()))
        self._tier_reads = tier_reads
        self._clock = clock

    async def read_energy_totals(self, summations: int = 2, *, tiers: bool = False) -> EnergyTotals:
        if tiers:
            self._tier_reads.append(self._clock())
        return await super().read_energy_totals(summations, tiers=tiers)


@pytest.mark.parametrize("profile", ["gen4-3phase", "gen3-1phase"])
def test_tier_registers_equal_the_simulators_ground_truth_read_once_a_refresh(
    simulator_factory: SimulatorFactory, profile: str
) -> None:
    sim = simulator_factory(profile=profile, speed=FROZEN)  # registers stand still
    tier_reads: list[float] = []
    readings: list[Reading] = []
    poller = MeterPoller(
        meter_config(sim.url or "", poll_interval=0.1),
        connect=lambda: CountingClient(sim.url or "", tier_reads, time.monotonic),
        on_reading=readings.append,
        retry=FAST,
    )

    async def scenario() -> None:
        task = await running(poller, lambda: len(readings) >= 10)
        await stopped(task)

    run(scenario())
    assert TIER_REFRESH_S >= 60  # the 10 readings took far less: tiers read at the start only
    assert len(tier_reads) == 1
    truth = model_of(sim.meter).snapshot()
    for reading in readings:
        assert tier_values(reading, "forward") == truth_tiers(truth, "forward")
        assert tier_values(reading, "reverse") == truth_tiers(truth, "reverse")
    assert sum(truth.tier_forward_active_energy_wh) > 0


def test_tier_registers_are_reread_every_refresh_interval(
    simulator_factory: SimulatorFactory,
) -> None:
    sim = simulator_factory(profile="gen4-3phase")
    clock = VirtualTime()
    tier_reads: list[float] = []
    readings: list[Reading] = []
    poller = MeterPoller(
        meter_config(sim.url or "", poll_interval=0.125),  # both exact in binary
        connect=lambda: CountingClient(sim.url or "", tier_reads, clock.monotonic),
        on_reading=readings.append,
        retry=FAST,
        monotonic=clock.monotonic,
        sleep=clock.sleep,
        tier_refresh=0.375,
    )

    async def scenario() -> None:
        task = await running(poller, lambda: len(tier_reads) >= 3)
        await stopped(task)

    run(scenario())
    # At the start and then every third cycle: the poller's clock says so exactly.
    assert [b - a for a, b in itertools.pairwise(tier_reads)][:2] == [0.375, 0.375]
    assert poller.readings_rejected == 0
    forward = [sum(v or 0.0 for v in tier_values(r, "forward")) for r in readings]
    assert forward == sorted(forward)  # carried between reads, never backwards


def test_wrong_key_stops_the_poller_and_says_so_without_a_retry_storm(
    simulator_factory: SimulatorFactory,
) -> None:
    sim = simulator_factory(profile="gen4-3phase")
    assert sim.url is not None
    readings: list[Reading] = []

    async def scenario() -> None:
        poller = poller_for(sim.url or "", readings, key=WRONG_KEY)
        task = await running(poller, lambda: poller.state is PollerState.STOPPED)
        frames = sim.port.stats.frames
        await asyncio.sleep(1.0)  # a retrying poller would send again within 0.1-0.4 s
        assert sim.port.stats.frames == frames
        assert frames <= 4  # the client's two tries, at most a resend each
        assert task.done()
        status = poller.status()
        assert status.state == "stopped"
        assert not status.connected
        assert status.last_errors[-1].diagnosis == "wrong-key"
        assert "MBK" in status.last_errors[-1].advice
        assert WRONG_KEY not in repr(status)

    run(scenario())
    assert readings == []


def test_a_silent_meter_is_retried_with_backoff_and_diagnosed(
    simulator_factory: SimulatorFactory,
) -> None:
    sim = simulator_factory(profile="gen4-3phase", faults="disabled")
    readings: list[Reading] = []

    async def scenario() -> None:
        poller = poller_for(sim.url or "", readings, retry=RetryPolicy(initial=0.2, maximum=0.4))
        task = await running(poller, lambda: len(poller.errors) >= 2)
        status = poller.status()
        await stopped(task)
        assert status.state in ("retrying", "starting")
        assert {e.diagnosis for e in status.last_errors} == {"no-answer"}
        assert "disabled" in status.last_errors[-1].advice  # the port may be disabled
        assert status.link["timeouts"] > 0

    run(scenario())
    assert readings == []


def test_a_meter_that_goes_away_and_comes_back_is_polled_again() -> None:
    meter = build_meter("gen4-3phase", seed=3, start=T0, origin=time.monotonic(), keys=KEYS)
    first = RunningSimulator(meter, keys=KEYS, timing=WireTiming(enabled=False), pty=False)
    first.start()
    assert first.url is not None
    address = first.url
    second: RunningSimulator | None = None
    readings: list[Reading] = []

    async def scenario() -> None:
        nonlocal second
        poller = poller_for(address, readings)
        task = await running(poller, lambda: len(readings) >= 3)
        await asyncio.to_thread(first.stop)  # unplugged: the TCP bridge goes away
        await until(lambda: poller.state is PollerState.RETRYING)
        before = len(readings)
        status = poller.status()
        assert not status.connected
        assert status.last_errors[-1].diagnosis in ("port-unavailable", "no-answer")
        port = int(address.rsplit(":", 1)[1])
        second = RunningSimulator(
            meter, keys=KEYS, timing=WireTiming(enabled=False), pty=False, tcp=("127.0.0.1", port)
        )
        await asyncio.to_thread(second.start)
        await until(lambda: len(readings) >= before + 3, timeout=10)
        assert poller.status().connected
        await stopped(task)

    try:
        run(scenario())
    finally:
        first.stop()
        if second is not None:
            second.stop()
    # The registers kept counting while the meter was away; nothing went backwards.
    energies = [r.forward_active_energy_wh + r.reverse_active_energy_wh for r in readings]
    assert energies == sorted(energies)


def test_readings_that_fail_validation_are_counted_and_not_published(
    simulator_factory: SimulatorFactory,
) -> None:
    sim = simulator_factory(profile="gen4-3phase")
    # As if the database held a reading with far more energy (a glitch stored by an old version).
    stored = Reading(
        meter="house",
        at=T0 - dt.timedelta(hours=1),
        forward_active_energy_wh=1e12,
        reverse_active_energy_wh=1e12,
    )
    readings: list[Reading] = []

    async def scenario() -> None:
        poller = poller_for(sim.url or "", readings, previous=stored)
        task = await running(poller, lambda: poller.readings_rejected >= 3)
        status = poller.status()
        await stopped(task)
        assert status.readings_rejected >= 3
        assert status.rejection_reasons == {"energy-decreased": status.readings_rejected}
        assert status.last_reading_at is None

    run(scenario())
    assert readings == []


def test_the_console_gets_the_line_between_poll_cycles(
    simulator_factory: SimulatorFactory,
) -> None:
    sim = simulator_factory(profile="gen4-3phase")
    readings: list[Reading] = []

    async def scenario() -> None:
        poller = poller_for(sim.url or "", readings, poll_interval=0.1)
        with pytest.raises(PortUnavailableError, match="not connected"):
            await poller.exchange(lambda client: client.read_table(1))
        task = await running(poller, lambda: len(readings) >= 1)
        replies = await asyncio.gather(
            *(poller.exchange(lambda client: client.read_table(1)) for _ in range(5))
        )
        await stopped(task)
        assert len({bytes(r) for r in replies}) == 1
        assert poller.status().link["damaged_replies"] == 0

    run(scenario())


def test_a_consistent_new_baseline_is_accepted_after_a_while(
    simulator_factory: SimulatorFactory,
) -> None:
    sim = simulator_factory(profile="gen4-3phase")
    replaced = Reading(  # the newest stored reading of the meter this one replaced
        meter="house", at=T0, forward_active_energy_wh=1e12, reverse_active_energy_wh=1e12
    )
    readings: list[Reading] = []

    async def scenario() -> None:
        poller = poller_for(
            sim.url or "", readings, previous=replaced, rebase_after=3, rebase_after_s=0.0
        )
        task = await running(poller, lambda: len(readings) >= 2)
        status = poller.status()
        await stopped(task)
        assert status.rejection_reasons == {"energy-decreased": 2}

    run(scenario())
    assert readings[0].forward_active_energy_wh < 1e12


def counted_sessions_poller(
    port: str, readings: list[Reading], missed_limit: int
) -> tuple[MeterPoller, list[MeterClient]]:
    """A poller at 0.2 s that keeps every client it connects (one per session)."""
    sessions: list[MeterClient] = []

    def connect() -> MeterClient:
        sessions.append(fast_client(port))
        return sessions[-1]

    poller = MeterPoller(
        meter_config(port, poll_interval=0.2),
        connect=connect,
        on_reading=readings.append,
        retry=FAST,
        missed_polls_before_restart=missed_limit,
    )
    return poller, sessions


def test_a_poll_lost_on_a_silent_line_keeps_the_session(
    simulator_factory: SimulatorFactory,
) -> None:
    """A meter silent for a moment costs the polls it misses, not a new session: no second
    identity and dimension reads, which take seconds on a noisy line."""
    sim = simulator_factory(profile="gen4-3phase")
    readings: list[Reading] = []

    async def scenario() -> None:
        poller, sessions = counted_sessions_poller(sim.url or "", readings, 1000)
        task = await running(poller, lambda: len(readings) >= 2)
        sim.stall(1.0)
        await until(lambda: poller.missed_polls >= 1, what="a missed poll")
        before = len(readings)
        await until(lambda: len(readings) >= before + 3, what="polling again")
        status = poller.status()
        await stopped(task)
        assert len(sessions) == 1
        assert status.link["missed_polls"] == poller.missed_polls >= 1
        assert status.last_errors[-1].diagnosis == "no-answer"
        assert status.state == "polling"

    run(scenario())


def test_a_meter_that_stays_silent_gets_a_new_session_after_missed_polls(
    simulator_factory: SimulatorFactory,
) -> None:
    sim = simulator_factory(profile="gen4-3phase")
    readings: list[Reading] = []

    async def scenario() -> None:
        poller, sessions = counted_sessions_poller(sim.url or "", readings, 2)
        task = await running(poller, lambda: len(readings) >= 2)
        sim.configure_faults("disabled")
        await until(lambda: len(sessions) >= 2, what="a new session")
        missed = poller.missed_polls
        await stopped(task)
        assert missed == 1  # the second miss in a row ended the session
        assert poller.errors[-1].diagnosis == "no-answer"

    run(scenario())
