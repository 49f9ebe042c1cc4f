"""The gateway (:class:`mepgate.service.gateway.Gateway`) on simulated meters over real TCP, with
real SQLite and PostgreSQL stores: values match the simulator's ground truth, meters are polled
concurrently, a missing port or wrong key is shown and does not stop the others, nothing stored
is lost across restarts, the console, ``apply_settings``, outputs and ``sim:`` ports.

``store_url`` (``conftest.py``) runs a test on SQLite and on the local PostgreSQL.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import socket
import stat
import zlib
from collections.abc import Callable
from pathlib import Path

import pytest
from pydantic import SecretStr

from mepgate.client import LinkTiming
from mepgate.config import (
    ConfigError,
    MeterConfig,
    Settings,
    StorageConfig,
    WebConfig,
    load_settings,
)
from mepgate.proto import ReadRequest, WriteRequest, parse_key, parse_request
from mepgate.reading import TIER_ENERGY_FIELDS, TIERS, Reading, tier_energy_field
from mepgate.service.gateway import OUTPUT_STOP_TIMEOUT, Gateway, check_settings
from mepgate.service.poller import RetryPolicy
from mepgate.service.validate import baseline_findings
from mepgate.service.view import ConsoleError, GatewayView, MeterStatus
from mepgate.simulator.embedded import EmbeddedSimulators
from mepgate.simulator.meter import DEFAULT_MBK
from mepgate.simulator.model import GroundTruth, build_meter, model_of
from mepgate.simulator.serve import RunningSimulator
from mepgate.store import SqlStore, open_store
from mepgate.store.rollup import epoch_ms

from ..conftest import FROZEN
from ..support.wait import until as wait_for

SimulatorFactory = Callable[..., RunningSimulator]
MBK = DEFAULT_MBK.decode()
T0 = dt.datetime(2026, 6, 1, 12, tzinfo=dt.UTC)  # the simulator fixture's start
PROFILE = "gen4-3phase"


def meter(name: str, port: str, *, key: str = MBK, poll_interval: float = 0.2) -> MeterConfig:
    return MeterConfig(name=name, port=port, key=SecretStr(key), poll_interval=poll_interval)


def settings_with(meters: list[MeterConfig], url: str, *, writes: bool = False) -> Settings:
    return Settings(
        meter=meters,
        storage=StorageConfig(url=url, timezone="UTC"),
        web=WebConfig(console_writes=writes),
    )


def gateway_for(settings: Settings, tmp_path: Path, **options: object) -> Gateway:
    return Gateway(
        settings,
        data_dir=tmp_path,
        config_path=tmp_path / "mepgate.toml",
        timing=LinkTiming.fast(),
        retry=RetryPolicy(initial=0.1, maximum=0.4),
        batch_interval=0.3,
        **options,  # type: ignore[arg-type]
    )


def request(text: str) -> ReadRequest | WriteRequest:
    """A console request as the web page passes it: parsed from the hex typed."""
    return parse_request(bytes.fromhex(text))


def status_of(gateway: Gateway, name: str) -> object:
    return next(m for m in gateway.meters() if m.name == name)


def stored(gateway: Gateway, name: str) -> int:
    return next(m.readings_stored for m in gateway.meters() if m.name == name)


async def collect(gateway: Gateway, readings: list[Reading]) -> None:
    async with gateway.hub.subscribe() as queue:
        while True:
            readings.append(await queue.get())


# -- ground truth ---------------------------------------------------------------------------------
def truth_at(seed: int, when: dt.datetime) -> GroundTruth:
    model = model_of(build_meter(PROFILE, seed=seed, start=T0))
    model.advance(when)
    return model.snapshot()


def matches(reading: Reading, truth: GroundTruth) -> bool:
    e = truth.electrical
    phases = zip(("l1", "l2", "l3"), e.phases, strict=True)
    return (
        reading.active_power_import_w == e.forward_active_power_w
        and reading.active_power_export_w == e.reverse_active_power_w
        and reading.frequency_hz == pytest.approx(e.frequency_mhz / 1000)
        and all(
            getattr(reading, f"voltage_{n}_v") == pytest.approx(p.voltage_mv / 1000)
            and getattr(reading, f"current_{n}_a") == pytest.approx(p.current_ma / 1000)
            and getattr(reading, f"power_factor_{n}") == pytest.approx(p.power_factor_milli / 1000)
            and getattr(reading, f"active_power_import_{n}_w") == p.forward_active_power_w
            and getattr(reading, f"active_power_export_{n}_w") == p.reverse_active_power_w
            for n, p in phases
        )
    )


def assert_ground_truth(readings: list[Reading], seed: int, clock_offset_s: float | None) -> None:
    """Each reading is what the simulated meter measured at the reading's time.

    Readings are stamped with the gateway's clock; the meter's time is that plus the clock
    offset the gateway measured.  Values are constant within 10 s steps and the offset comes
    from BT52 (whole seconds), so the truth is taken a second either side; energy must lie
    between the two.
    """
    assert readings
    assert clock_offset_s is not None
    second = dt.timedelta(seconds=1)
    offset = dt.timedelta(seconds=clock_offset_s)
    for reading in readings:
        meter_time = reading.at + offset
        before, now, after = (truth_at(seed, meter_time + d) for d in (-second, 0 * second, second))
        assert any(matches(reading, t) for t in (before, now, after)), reading
        assert (
            before.forward_active_energy_wh
            <= reading.forward_active_energy_wh
            <= after.forward_active_energy_wh
        )
        assert (
            before.reverse_active_energy_wh
            <= reading.reverse_active_energy_wh
            <= after.reverse_active_energy_wh
        )


def raw_rows(url: str, meter_name: str) -> list[tuple[int, float]]:
    with open_store(url) as store:
        assert isinstance(store, SqlStore)
        rows = store._q(
            "SELECT raw.t_ms, raw.forward_active_energy_wh FROM raw JOIN meter m"
            " ON m.id = raw.meter_id WHERE m.name = ? ORDER BY raw.t_ms",
            (meter_name,),
        )
        return [(int(r[0]), float(r[1])) for r in rows]


# -- tests ----------------------------------------------------------------------------------------
def test_stored_readings_match_the_simulators_ground_truth(
    simulator_factory: SimulatorFactory, store_url: str, tmp_path: Path
) -> None:
    sim = simulator_factory(profile=PROFILE, seed=1)
    readings: list[Reading] = []
    statuses: list[MeterStatus] = []

    async def scenario() -> None:
        gateway = gateway_for(settings_with([meter("house", sim.url or "")], store_url), tmp_path)
        async with gateway:
            listener = asyncio.create_task(collect(gateway, readings))
            await wait_for(lambda: stored(gateway, "house") >= 8)
            listener.cancel()
            latest = await gateway.store.latest("house")
            status = gateway.meters()[0]
            statuses.append(status)
        assert status.connected
        assert status.readings_rejected == 0
        assert latest is not None
        assert latest.at <= readings[-1].at

    asyncio.run(scenario())
    assert_ground_truth(readings, seed=1, clock_offset_s=statuses[0].clock_offset_s)
    rows = raw_rows(store_url, "house")
    # Everything published was stored, the last batch too (flushed on stop).
    assert [t for t, _ in rows] == [epoch_ms(r.at) for r in readings]
    assert [wh for _, wh in rows] == [r.forward_active_energy_wh for r in readings]


def test_stored_tier_registers_equal_the_simulators_ground_truth(
    simulator_factory: SimulatorFactory, store_url: str, tmp_path: Path
) -> None:
    sim = simulator_factory(profile=PROFILE, seed=2, speed=FROZEN)  # registers stand still

    async def scenario() -> None:
        gateway = gateway_for(settings_with([meter("house", sim.url or "")], store_url), tmp_path)
        async with gateway:
            await wait_for(lambda: stored(gateway, "house") >= 3)

    asyncio.run(scenario())
    truth = model_of(sim.meter).snapshot()
    expected = {
        tier_energy_field(direction, tier): float(wh)
        for direction in ("forward", "reverse")
        for tier, wh in zip(
            TIERS, getattr(truth, f"tier_{direction}_active_energy_wh"), strict=True
        )
    }
    with open_store(store_url) as store:
        assert isinstance(store, SqlStore)
        latest = store.latest("house")
        assert latest is not None
        assert {name: getattr(latest, name) for name in TIER_ENERGY_FIELDS} == expected
        columns = ", ".join(f"{name}_last" for name in TIER_ENERGY_FIELDS)
        for table in ("rollup_minute", "rollup_hour", "rollup_day"):
            [row] = store._q(f"SELECT {columns} FROM {table}")
            assert dict(zip(TIER_ENERGY_FIELDS, row, strict=True)) == expected, table


def test_several_meters_are_polled_concurrently(
    simulator_factory: SimulatorFactory, tmp_path: Path
) -> None:
    sims = {f"m{seed}": simulator_factory(profile=PROFILE, seed=seed) for seed in (1, 2, 3)}
    readings: list[Reading] = []
    offsets: dict[str, float | None] = {}
    url = f"sqlite:///{tmp_path}/many.db"

    async def scenario() -> None:
        meters = [meter(name, sim.url or "") for name, sim in sims.items()]
        async with gateway_for(settings_with(meters, url), tmp_path) as gateway:
            listener = asyncio.create_task(collect(gateway, readings))
            await wait_for(lambda: all(stored(gateway, name) >= 5 for name in sims))
            listener.cancel()
            offsets.update((m.name, m.clock_offset_s) for m in gateway.meters())
        # Polled side by side: every meter's readings arrive before any has its fifth (one
        # after the other, the first meters would have all theirs first).
        first = readings[: len(readings) // 3]
        assert {r.meter for r in first[:6]} == set(sims)

    asyncio.run(scenario())
    for seed, name in ((1, "m1"), (2, "m2"), (3, "m3")):
        mine = [r for r in readings if r.meter == name]
        assert_ground_truth(mine, seed=seed, clock_offset_s=offsets[name])
        assert len(raw_rows(url, name)) == len([r for r in readings if r.meter == name])


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def test_a_missing_port_or_a_wrong_key_is_shown_and_the_others_keep_polling(
    simulator_factory: SimulatorFactory, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    good = simulator_factory(profile=PROFILE, seed=1)
    keyed = simulator_factory(profile=PROFILE, seed=2)
    url = f"sqlite:///{tmp_path}/g.db"
    wrong_key = "NOT-THE-KEY-12345678"
    meters = [
        meter("good", good.url or ""),
        meter("gone", f"tcp://127.0.0.1:{free_port()}"),
        meter("rekey", keyed.url or "", key=wrong_key),
    ]

    async def scenario() -> None:
        async with gateway_for(settings_with(meters, url), tmp_path) as gateway:
            await wait_for(lambda: stored(gateway, "good") >= 5)
            await wait_for(lambda: len(gateway.meters()[1].last_errors) >= 2)
            await wait_for(lambda: gateway.meters()[2].state == "stopped")
            statuses = {m.name: m for m in gateway.meters()}
            frames = keyed.port.stats.frames
            await asyncio.sleep(0.6)
            assert keyed.port.stats.frames == frames  # no retry storm against a wrong key
        gone, rekey = statuses["gone"], statuses["rekey"]
        assert statuses["good"].connected
        assert not gone.connected
        assert gone.state in ("retrying", "starting")
        assert gone.last_errors[-1].diagnosis == "port-unavailable"
        assert "127.0.0.1" in gone.last_errors[-1].message
        assert gone.last_errors[-1].advice
        assert not rekey.connected
        assert rekey.last_errors[-1].diagnosis == "wrong-key"
        assert wrong_key not in repr(statuses)
        assert wrong_key[:16] not in repr(statuses)

    asyncio.run(scenario())
    assert "wrong" in caplog.text.lower()  # the log says so...
    assert wrong_key[:16] not in caplog.text  # ...without the key
    assert MBK[:16] not in caplog.text


def test_a_restart_keeps_everything_stored_and_continues(
    simulator_factory: SimulatorFactory, store_url: str, tmp_path: Path
) -> None:
    sim = simulator_factory(profile=PROFILE, seed=1)
    settings = settings_with([meter("house", sim.url or "")], store_url)

    async def run_once(count: int) -> int:
        async with gateway_for(settings, tmp_path) as gateway:
            await wait_for(lambda: stored(gateway, "house") >= count)
            return gateway.meters()[0].readings_rejected

    assert asyncio.run(run_once(4)) == 0
    first = raw_rows(store_url, "house")
    # The second run checks its readings against the newest stored one: all pass.
    assert asyncio.run(run_once(4)) == 0
    second = raw_rows(store_url, "house")
    assert second[: len(first)] == first
    assert len(second) >= len(first) + 4
    assert [wh for _, wh in second] == sorted(wh for _, wh in second)


def test_console_reads_decodes_and_refuses_writes_unless_allowed(
    simulator_factory: SimulatorFactory, tmp_path: Path
) -> None:
    sim = simulator_factory(profile=PROFILE, seed=1)
    url = f"sqlite:///{tmp_path}/c.db"

    async def scenario() -> None:
        settings = settings_with([meter("house", sim.url or "")], url)
        async with gateway_for(settings, tmp_path) as gateway:
            await wait_for(lambda: gateway.meters()[0].connected)
            full = await gateway.console("house", request("30 0001 0200"))  # BT01, full read
            assert full.code == 0
            assert full.meaning
            assert full.decoded is not None
            assert full.decoded["manufacturer"] == "ELON"
            partial = await gateway.console("house", request("3F0017000000 0009"))  # BT23 prefix
            assert partial.code == 0
            assert len(bytes.fromhex(partial.data_hex)) == 9
            refused = await gateway.console("house", request("30 0FFE 0200"))  # no such table
            assert refused.code != 0
            assert refused.meaning
            with pytest.raises(ConsoleError, match="console_writes"):
                await gateway.console("house", request("40 0007 0003 010203"))
            with pytest.raises(ConsoleError, match="no meter called"):
                await gateway.console("garage", request("30 0001 0200"))
            allowed = settings_with([meter("house", sim.url or "")], url, writes=True)
            await gateway.apply_settings(allowed)
            await wait_for(lambda: gateway.meters()[0].connected)
            written = await gateway.console("house", request("40 0007 0003 270000"))  # BT07, EP39
            assert isinstance(written.code, int)  # an answer (accepted or refused), not an error
            assert gateway.meters()[0].readings_rejected == 0

    asyncio.run(scenario())


def test_apply_settings_saves_0600_and_restarts_only_what_changed(
    simulator_factory: SimulatorFactory, tmp_path: Path
) -> None:
    first_sim = simulator_factory(profile=PROFILE, seed=1)
    second_sim = simulator_factory(profile=PROFILE, seed=2)
    url = f"sqlite:///{tmp_path}/a.db"
    one = settings_with([meter("one", first_sim.url or "")], url)
    path = tmp_path / "mepgate.toml"
    runs: list[Settings] = []

    async def output(view: GatewayView) -> None:
        runs.append(view.settings)
        await asyncio.Event().wait()  # runs until cancelled

    async def scenario() -> None:
        async with gateway_for(one, tmp_path, outputs=[output]) as gateway:
            await wait_for(lambda: stored(gateway, "one") >= 2)
            await wait_for(lambda: len(runs) == 1)
            poller = gateway._pollers["one"][0]
            two = settings_with(
                [meter("one", first_sim.url or ""), meter("two", second_sim.url or "")], url
            )
            await gateway.apply_settings(two)
            assert stat.S_IMODE(path.stat().st_mode) == 0o600
            assert load_settings(path, env={}) == two
            await wait_for(lambda: stored(gateway, "two") >= 2)
            assert gateway._pollers["one"][0] is poller  # unchanged: not restarted
            await wait_for(lambda: len(runs) == 2)  # outputs restart with the new settings
            assert runs[-1] is two
            broken = Settings(
                meter=[MeterConfig(name="one", port="/dev/ttyUSB9", key_file=Path("missing"))],
                storage=two.storage,
            )
            with pytest.raises(ConfigError, match="key_file"):
                await gateway.apply_settings(broken)
            assert load_settings(path, env={}) == two  # nothing saved
            assert gateway.settings is two

    asyncio.run(scenario())


def test_a_sim_port_runs_the_simulator_in_process_and_continues_its_history(
    tmp_path: Path,
) -> None:
    url = f"sqlite:///{tmp_path}/demo.db"
    settings = settings_with([MeterConfig(name="demo", port=f"sim:{PROFILE}")], url)

    async def run_once() -> int:
        gateway = Gateway(  # real wire timing
            settings, data_dir=tmp_path, batch_interval=0.3, simulated=EmbeddedSimulators()
        )
        async with gateway:
            await wait_for(lambda: gateway.hub.latest("demo") is not None)
            await wait_for(lambda: stored(gateway, "demo") >= 2)
            return gateway.meters()[0].readings_rejected

    rejected = asyncio.run(run_once())
    assert rejected == 0
    before = raw_rows(url, "demo")
    rejected = asyncio.run(run_once())
    assert rejected == 0  # the new simulated meter continues above the stored registers
    after = raw_rows(url, "demo")
    assert after[: len(before)] == before
    assert [wh for _, wh in after] == sorted(wh for _, wh in after)


DEMO_SPEED = 20.0
"""Simulated seconds per second for the demo restart: three minutes of meter time in nine
seconds, slow enough that the energy rise stays within what the gateway's clock allows."""


def demo_tier_sum(reading: Reading) -> float:
    return sum(getattr(reading, tier_energy_field("forward", tier)) or 0.0 for tier in TIERS)


def test_demo_stopped_after_three_minutes_stores_and_publishes_at_once_when_started_again(
    tmp_path: Path,
) -> None:
    """The demo's meter is simulated anew at each start: its tier registers must continue from
    the stored ones too, or every reading fails "energy decreased" (issue 10, item 2)."""
    url = f"sqlite:///{tmp_path}/demo.db"
    settings = settings_with([MeterConfig(name="demo", port=f"sim:{PROFILE}")], url)
    # What a fresh demo meter's tier registers start at (its seed is the meter's name).
    fresh = model_of(build_meter(PROFILE, seed=zlib.crc32(b"demo"), start=T0)).snapshot()
    fresh_tiers = float(sum(fresh.tier_forward_active_energy_wh))

    def demo_gateway() -> Gateway:
        return Gateway(  # real wire timing, the demo's poll interval
            settings,
            data_dir=tmp_path,
            batch_interval=0.3,
            simulated=EmbeddedSimulators(speed=DEMO_SPEED),
            tier_refresh=1.0,  # the tiers are re-read within the run, as in three real minutes
        )

    async def first_run() -> Reading:
        async with demo_gateway() as gateway:
            await asyncio.sleep(180 / DEMO_SPEED)  # three minutes of the meter's time

            def risen() -> bool:
                latest = gateway.hub.latest("demo")
                return latest is not None and demo_tier_sum(latest) > fresh_tiers

            await wait_for(risen, what="the tier registers to rise")
            assert gateway.meters()[0].readings_rejected == 0
        with open_store(url) as store:
            newest = store.latest("demo")
        assert newest is not None
        return newest

    async def second_run() -> tuple[list[Reading], MeterStatus]:
        published: list[Reading] = []
        async with demo_gateway() as gateway:
            listener = asyncio.create_task(collect(gateway, published))
            await wait_for(
                lambda: stored(gateway, "demo") >= 2 or gateway.meters()[0].readings_rejected >= 3,
                what="readings stored or rejected after the restart",
            )
            listener.cancel()
            return published, gateway.meters()[0]

    before = asyncio.run(first_run())
    assert demo_tier_sum(before) > fresh_tiers  # the stored tiers are above a fresh meter's
    published, status = asyncio.run(second_run())
    assert status.readings_rejected == 0, status.rejection_reasons
    assert status.readings_stored >= 2
    assert published
    after = [r for r in published if r.at > before.at]
    assert after
    for reading in after:
        for name in ("forward_active_energy_wh", *TIER_ENERGY_FIELDS):
            assert getattr(reading, name) >= getattr(before, name), name
        # The tiers still add up to the total, as a meter's do (within what the time between
        # the total's and the tiers' requests adds: the gateway's own cross-check).
        assert baseline_findings(reading) == ()


def test_sim_ports_run_only_with_the_simulators_the_command_line_passes(tmp_path: Path) -> None:
    settings = settings_with(
        [MeterConfig(name="demo", port=f"sim:{PROFILE}")], f"sqlite:///{tmp_path}/s.db"
    )
    with pytest.raises(ConfigError, match=r"meter 'demo': port sim:.*runs no simulated meters"):
        check_settings(settings, tmp_path)
    with pytest.raises(ConfigError, match="runs no simulated meters"):
        asyncio.run(Gateway(settings, data_dir=tmp_path).start())  # before anything runs
    assert not (tmp_path / "s.db").exists()
    simulated = EmbeddedSimulators()
    assert check_settings(settings, tmp_path, simulated) == {"demo": parse_key(MBK)}
    other = "ABCDEFGHIJKLMNOPQRST"  # a sim: meter given a key is checked with that key
    keyed = settings.model_copy(update={"meter": [meter("demo", f"sim:{PROFILE}", key=other)]})
    assert check_settings(keyed, tmp_path, simulated) == {"demo": parse_key(other)}
    assert simulated.default_key("tcp://127.0.0.1:2000") is None


def test_an_output_that_will_not_stop_does_not_keep_readings_from_being_stored(
    simulator_factory: SimulatorFactory, tmp_path: Path
) -> None:
    sim = simulator_factory(profile=PROFILE)
    url = f"sqlite:///{tmp_path}/a.db"

    released = asyncio.Event()

    async def stubborn(view: GatewayView) -> None:
        while not released.is_set():
            try:
                await released.wait()
            except asyncio.CancelledError:
                continue  # a buggy output that swallows its cancellation

    async def scenario() -> None:
        gateway = gateway_for(settings_with([meter("house", sim.url or "")], url), tmp_path,
                              outputs=[stubborn])  # fmt: skip
        await gateway.start()
        await wait_for(lambda: stored(gateway, "house") >= 1)
        # stop() leaves the output behind after OUTPUT_STOP_TIMEOUT instead of waiting on it
        # for ever (a generous bound: this proves the wait ends, not how fast).
        async with asyncio.timeout(OUTPUT_STOP_TIMEOUT * 6):
            await gateway.stop()
        released.set()  # let the event loop finish

    asyncio.run(scenario())
    with open_store(url) as store:
        assert store.latest("house") is not None
