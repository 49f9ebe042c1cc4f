"""The M-Bus sub-meter job in a running gateway: a simulated meter over real TCP with gas and
water sub-meters, real SQLite and PostgreSQL stores.

Values equal the simulator's ground truth; a device that stops answering becomes unavailable
with its last value (not zero); a restart keeps the history and the last values.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import random
import time
from pathlib import Path
from typing import Any

from mepgate.client import OutOfTimeError
from mepgate.mbus import decode_long_header_data, main_value
from mepgate.service.gateway import Gateway
from mepgate.service.submeter_board import SubmeterBoard
from mepgate.service.submeters import MBusJob
from mepgate.simulator.model import ground_truth, model_of
from mepgate.simulator.serve import RunningSimulator
from mepgate.tables.ids import TableId
from mepgate.tables.mep import ET16
from tests.service.test_gateway import gateway_for, meter, settings_with
from tests.service.test_poller import fast_client
from tests.support.jobs import virtual_context
from tests.support.wait import until

FAR = dt.timedelta(days=3)
FROZEN_ENOUGH = 1e-9  # simulated time stands still: the first reads stay the truth


def truth_by_slot(sim: RunningSimulator) -> dict[int, Any]:
    """The sub-meters' ground truth now (computed in the simulator's own thread)."""
    truth = sim.call(lambda: ground_truth(sim.meter, time.monotonic()))
    return {t.slot: t for t in truth.mbus}


def board_matches_truth(gateway: Gateway, sim: RunningSimulator, minimum_reads: int) -> bool:
    truth = truth_by_slot(sim)
    states = {s.slot: s for s in gateway.hub.submeters.states("house")}
    now = dt.datetime.now(dt.UTC)
    return set(states) == set(truth) and all(
        t.reads >= minimum_reads
        and states[slot].value == t.value
        and states[slot].unit == t.unit
        and states[slot].identification == t.identification
        and states[slot].medium == t.medium
        and states[slot].available(now)
        for slot, t in truth.items()
    )


def et16_values(sim: RunningSimulator, devices: int = 2) -> dict[int, float]:
    """The values ET16 holds per slot (call in the simulator's thread)."""
    model = model_of(sim.meter)
    table = ET16.decode(model.table(TableId.ET16) or b"", model.dims)
    values = {}
    for slot, record in enumerate((table.entries or ())[:devices], start=1):
        main = main_value(decode_long_header_data(getattr(record, "telegram", b"")))
        assert main is not None
        values[slot] = main.value
    return values


def test_gas_and_water_equal_ground_truth_go_unavailable_and_survive_a_restart(
    simulator_factory: Any, store_url: str, tmp_path: Path
) -> None:
    # 600 simulated seconds per second: an hourly M-Bus read every 6 s.
    sim = simulator_factory(profile="gen4-3phase", speed=600.0, mbus=("gas", "water"))
    settings = settings_with([meter("house", sim.url, poll_interval=0.5)], store_url)

    async def first_run() -> list[float]:
        gateway = gateway_for(settings, tmp_path, mbus_check_interval=0.5)
        async with gateway:
            await until(lambda: board_matches_truth(gateway, sim, 1), timeout=30)
            await until(lambda: board_matches_truth(gateway, sim, 3), timeout=60)
            states = gateway.hub.submeters.states("house")
            assert [(s.slot, s.medium, s.unit) for s in states] == [
                (1, "gas", "m³"),
                (2, "water", "m³"),
            ]
            job = next(j for j in gateway.meters()[0].jobs if j.name == "m-bus")
            assert job.state == "idle"
            assert "2 M-Bus device(s)" in job.detail
            # The water meter stops answering: unavailable, its last value kept.
            sim.call(lambda: model_of(sim.meter).stop_mbus_device(2))
            last = truth_by_slot(sim)[2].value

            def water_down() -> bool:
                water = gateway.hub.submeters.get("house", 2)
                return water is not None and not water.available(dt.datetime.now(dt.UTC))

            await until(water_down, timeout=30)
            water = gateway.hub.submeters.get("house", 2)
            assert water is not None
            assert water.value is not None
            assert water.value >= last > 0
            assert water.value == truth_by_slot(sim)[2].value  # the last answer, not zero
            assert "no answer" in (water.why_unavailable(dt.datetime.now(dt.UTC)) or "")
            gas = gateway.hub.submeters.get("house", 1)
            assert gas is not None
            assert gas.available(dt.datetime.now(dt.UTC))
            now = dt.datetime.now(dt.UTC)
            history = await gateway.store.submeters.history("house", 1, now - FAR, now + FAR, "raw")
            assert len(history) >= 2
            assert [p.value for p in history] == sorted(p.value for p in history)
            return [p.value for p in history]

    values = asyncio.run(first_run())

    async def second_run() -> None:
        gateway = gateway_for(settings, tmp_path, mbus_check_interval=0.5)
        async with gateway:
            now = dt.datetime.now(dt.UTC)
            history = await gateway.store.submeters.history("house", 1, now - FAR, now + FAR, "raw")
            assert [p.value for p in history][: len(values)] == values
            hours = await gateway.store.submeters.history("house", 1, now - FAR, now + FAR, "hour")
            assert sum(p.delta for p in hours) == sum(p.delta for p in history)

            def restored() -> bool:
                gas = gateway.hub.submeters.get("house", 1)
                return gas is not None and gas.value is not None and gas.value >= values[-1]

            await until(restored, timeout=30)

    asyncio.run(second_run())


def test_on_a_noisy_line_the_sub_meters_still_arrive_complete(
    simulator_factory: Any, store_url: str, tmp_path: Path
) -> None:
    # A third of the replies lost: failed steps are retried, an ET16 entry whose read failed is
    # read again after the next ET14 check, and nothing half-read is taken for a value.
    sim = simulator_factory(
        profile="gen3-1phase", speed=FROZEN_ENOUGH, mbus=("water", "heat"), faults="drop=0.3"
    )
    settings = settings_with([meter("house", sim.url, poll_interval=0.5)], store_url)

    async def scenario() -> None:
        gateway = gateway_for(settings, tmp_path, mbus_check_interval=0.3)
        async with gateway:
            await until(lambda: board_matches_truth(gateway, sim, 1), timeout=60)

    asyncio.run(scenario())


def test_reads_logged_to_et45_only_reach_the_gateway(
    simulator_factory: Any, store_url: str, tmp_path: Path
) -> None:
    # A meter whose compatibility setting keeps ET16 at each device's first read: the later
    # hourly reads are only in ET45, the recurring read log.
    sim = simulator_factory(
        profile="gen4-3phase", speed=600.0, mbus=("gas", "water"), mbus_et16_compat=False
    )
    settings = settings_with([meter("house", sim.url, poll_interval=0.5)], store_url)

    first = sim.call(lambda: et16_values(sim))  # ET16 keeps the first reads

    def moved_on_and_matches(gateway: Gateway) -> bool:
        truth = truth_by_slot(sim)
        return all(t.value != first[slot] for slot, t in truth.items()) and board_matches_truth(
            gateway, sim, 2
        )

    async def scenario() -> None:
        gateway = gateway_for(settings, tmp_path, mbus_check_interval=0.5)
        async with gateway:
            await until(lambda: moved_on_and_matches(gateway), timeout=60)
            now = dt.datetime.now(dt.UTC)
            history = await gateway.store.submeters.history("house", 1, now - FAR, now + FAR, "raw")
            values = [p.value for p in history]
            assert values[0] == first[1]  # ET16's first read, then ET45's later ones
            assert values == sorted(values)
            assert len(set(values)) >= 2
            assert sim.call(lambda: et16_values(sim)) == first  # still: the rest came from ET45

    asyncio.run(scenario())


def test_a_register_going_back_is_rejected_and_a_swapped_device_starts_its_own_history(
    simulator_factory: Any, store_url: str, tmp_path: Path
) -> None:
    sim = simulator_factory(profile="gen4-3phase", speed=600.0, mbus=("gas",))
    settings = settings_with([meter("house", sim.url, poll_interval=0.5)], store_url)

    def gas() -> Any:
        return model_of(sim.meter).mep.devices[0]

    def set_register(value: int, identification: int | None = None) -> None:
        device = gas()
        device.register = value
        if identification is not None:
            device.identification = identification

    async def scenario() -> None:
        gateway = gateway_for(settings, tmp_path, mbus_check_interval=0.3)
        async with gateway:
            await until(lambda: board_matches_truth(gateway, sim, 1), timeout=30)
            state = gateway.hub.submeters.get("house", 1)
            assert state is not None
            assert state.value is not None
            before = state.value
            # The same device suddenly lower: the reading is rejected, the value stays.
            sim.call(lambda: set_register(10))
            await until(
                lambda: getattr(gateway.hub.submeters.get("house", 1), "rejected", 0) > 0,
                what="the decrease rejected",
                timeout=30,
            )
            job = next(j for j in gateway.meters()[0].jobs if j.name == "m-bus")
            assert "went back" in (job.last_error or "")
            kept = gateway.hub.submeters.get("house", 1)
            assert kept is not None
            assert kept.value is not None
            assert kept.value >= before
            # A new device in the slot (another identification) starts low: accepted.
            sim.call(lambda: set_register(5, identification=87654321))

            def swapped() -> bool:
                now_state = gateway.hub.submeters.get("house", 1)
                return now_state is not None and now_state.identification == "87654321"

            await until(swapped, what="the swapped device taken", timeout=30)
            now = dt.datetime.now(dt.UTC)
            history = await gateway.store.submeters.history("house", 1, now - FAR, now + FAR, "raw")
            assert [p.identification for p in history][-1] == "87654321"
            assert all(p.delta >= 0 for p in history)  # the swap is not negative use
            listed = await gateway.store.submeters.latest("house")
            assert [s.device.identification for s in listed] == ["87654321"]

    asyncio.run(scenario())


def test_every_read_lost_once_on_the_line_is_asked_again(
    simulator_factory: Any,
) -> None:
    # Steps given no time at all (MeterClient.time_limit: the read is not started, and fails
    # as one lost on the line does): the job's third step (its ET36 read, after loading and
    # ET11) and a quarter of the others.  ET36 tells where ET45 is: a job that took a lost ET36
    # for read would never see the reads logged only to ET45, its value stuck at ET16's.
    sim = simulator_factory(
        profile="gen4-3phase", speed=600.0, mbus=("gas",), mbus_et16_compat=False
    )
    board = SubmeterBoard()
    job = MBusJob("house", board=board, store=lambda: None, check_interval=0.5)
    clock = [0.0]
    context = virtual_context(clock)
    first = sim.call(lambda: et16_values(sim, 1))[1]
    lost: list[str] = []

    def from_et45() -> bool:
        state = board.get("house", 1)
        return state is not None and state.value != first

    async def scenario() -> None:
        async with fast_client(sim.url) as client:
            chance = random.Random(5)
            steps = 0
            for _ in range(2000):
                if from_et45():
                    return
                if not job.wants_to_run(context):
                    clock[0] += 1.0  # the job's own retry and check intervals pass
                    await asyncio.sleep(0.01)  # the simulated meter's hours pass meanwhile
                    continue
                cut = steps == 2 or chance.random() < 0.25
                steps += 1
                try:
                    with client.time_limit(0.0 if cut else 30.0):
                        await job.step(client, context)
                except OutOfTimeError as error:
                    lost.append(str(error))
                    job.failed(error, context)

    asyncio.run(scenario())
    assert from_et45(), board.states("house")
    assert any("ET36" in what for what in lost), lost  # the fault really hit ET36
    assert any("ET45" in what for what in lost), lost
