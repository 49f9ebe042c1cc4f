"""Long console reads share the link with live polling (:mod:`mepgate.service.console`).

The real :class:`~mepgate.service.gateway.Gateway` polls the simulator over TCP while the console
reads the load profile (BT64, 184 KB, about 400 replies): the read goes in pieces between the
poll cycles, so the stored readings keep coming (no gap over 2 s between their timestamps, at
9600 Bd with the guide's timing), its progress is known, and a cancel stops it.  Whole reads
give the meter's table byte for byte, decoded.
"""

from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt
import itertools
from collections.abc import Callable
from pathlib import Path

import pytest
from pydantic import SecretStr

from mepgate.client import LinkTiming
from mepgate.client.client import GROWN_TABLE_BYTES
from mepgate.config import MeterConfig, Settings, StorageConfig
from mepgate.proto import ReadRequest
from mepgate.proto.constants import MAX_READ_DATA
from mepgate.reading import Reading
from mepgate.service.console import ConsoleCancelled, ReadProgress, tracking
from mepgate.service.gateway import Gateway
from mepgate.service.poller import RetryPolicy
from mepgate.simulator.meter import DEFAULT_MBK
from mepgate.simulator.model import build_meter, model_of
from mepgate.simulator.model.profiles import SIM_PROFILES
from mepgate.simulator.serve import RunningSimulator
from mepgate.simulator.timing import WireTiming
from mepgate.store import SqlStore, open_store
from mepgate.tables import registry
from mepgate.tables.events import BT71
from mepgate.tables.ids import TableId
from mepgate.tables.load_profile import BT61
from mepgate.tables.registry import table_size

from ..conftest import FROZEN
from ..support.wait import until

SimulatorFactory = Callable[..., RunningSimulator]
PROFILE = "gen4-3phase"
MAX_GAP_S = 2.0
PIECES_WATCHED = 10  # replies of the long read during which the readings are checked
READ_HANG_GUARD_S = 120.0  # at 9600 Bd a piece takes about a second, between poll cycles


def gateway_on(url: str, tmp_path: Path, *, timing: LinkTiming | None, poll: float) -> Gateway:
    meter = MeterConfig(
        name="house", port=url, key=SecretStr(DEFAULT_MBK.decode()), poll_interval=poll
    )
    settings = Settings(
        meter=[meter], storage=StorageConfig(url=f"sqlite:///{tmp_path}/c.db", timezone="UTC")
    )
    return Gateway(
        settings,
        data_dir=tmp_path,
        timing=timing,
        retry=RetryPolicy(initial=0.1, maximum=0.4),
        batch_interval=0.3,
    )


def stored_times(tmp_path: Path) -> list[int]:
    """The stored readings' own timestamps (ms), oldest first."""
    with open_store(f"sqlite:///{tmp_path}/c.db") as store:
        assert isinstance(store, SqlStore)
        return [int(row[0]) for row in store._q("SELECT t_ms FROM raw ORDER BY t_ms")]


async def collect(gateway: Gateway, readings: list[Reading]) -> None:
    async with gateway.hub.subscribe() as queue:
        while True:
            readings.append(await queue.get())


def gaps_s(times_ms: list[int]) -> list[float]:
    return [(b - a) / 1000 for a, b in itertools.pairwise(times_ms)]


def test_a_long_read_leaves_polling_running_and_stops_when_cancelled(
    simulator_factory: SimulatorFactory, tmp_path: Path
) -> None:
    # The meter's real pace (9600 Bd, the guide's timing on both sides), polled every second.
    sim = simulator_factory(profile=PROFILE, seed=1, timing=WireTiming())
    progress = ReadProgress()
    published: list[Reading] = []
    window: list[dt.datetime] = []  # the readings' own times around the read

    async def scenario() -> None:
        gateway = gateway_on(sim.url or "", tmp_path, timing=None, poll=1.0)
        async with gateway:
            listener = asyncio.create_task(collect(gateway, published))
            await until(lambda: gateway.meters()[0].readings_stored >= 2, timeout=60)

            async def read() -> object:
                with tracking(progress):
                    return await gateway.console("house", ReadRequest(table_id=TableId.BT64))

            window.append(published[-1].at)
            reading = asyncio.create_task(read())
            await until(
                lambda: progress.pieces >= PIECES_WATCHED or reading.done(),
                what=f"{PIECES_WATCHED} pieces of the load profile",
                timeout=READ_HANG_GUARD_S,
            )
            assert not reading.done(), "the read ended early"
            progress.cancel()
            with pytest.raises(ConsoleCancelled, match="cancelled after"):
                await reading
            stopped_at = progress.done
            polled = gateway.meters()[0].readings_stored
            await until(lambda: gateway.meters()[0].readings_stored >= polled + 3)
            assert progress.done == stopped_at  # no piece after the cancel
            window.append(published[-1].at)
            listener.cancel()

    asyncio.run(scenario())
    assert progress.total == len(model_of(sim.meter).table(TableId.BT64) or b"")
    assert 0 < progress.done < progress.total
    start_ms, end_ms = (int(t.timestamp() * 1000) for t in window)
    during = [t for t in stored_times(tmp_path) if start_ms <= t <= end_ms]
    assert len(during) >= PIECES_WATCHED // 2, during
    assert max(gaps_s(during)) < MAX_GAP_S, gaps_s(during)


def test_whole_reads_in_pieces_give_the_meters_tables_decoded(
    simulator_factory: SimulatorFactory, tmp_path: Path
) -> None:
    sim = simulator_factory(profile=PROFILE, seed=3, speed=FROZEN)  # the tables stand still
    tables = model_of(sim.meter)
    load_profile = tables.table(TableId.BT64) or b""
    progress = ReadProgress()

    async def scenario() -> None:
        gateway = gateway_on(sim.url or "", tmp_path, timing=LinkTiming.fast(), poll=0.2)
        async with gateway:
            await until(lambda: gateway.meters()[0].connected)
            with tracking(progress):
                whole = await gateway.console("house", ReadRequest(table_id=TableId.BT64))
            assert bytes.fromhex(whole.data_hex) == load_profile
            assert whole.decoded is not None
            assert len(whole.decoded["blocks"]) > 1  # type: ignore[arg-type]
            # A partial read longer than one reply, and a table no decoder sizes.
            part = await gateway.console(
                "house", ReadRequest(table_id=TableId.BT64, offset=1000, count=2000)
            )
            assert bytes.fromhex(part.data_hex) == load_profile[1000:3000]
            unsized = await gateway.console("house", ReadRequest(table_id=0x080F))
            assert bytes.fromhex(unsized.data_hex) == tables.table(0x080F)
            small = await gateway.console("house", ReadRequest(table_id=TableId.BT01))
            assert small.decoded is not None
            assert small.decoded["manufacturer"] == "ELON"

    asyncio.run(scenario())
    assert progress.done == progress.total == len(load_profile)
    assert progress.pieces == -(-len(load_profile) // MAX_READ_DATA)  # a reply's worth each
    assert max(gaps_s(stored_times(tmp_path))) < MAX_GAP_S


@pytest.mark.parametrize("profile", sorted(SIM_PROFILES))
def test_the_size_the_dimensions_give_never_cuts_a_table_short(profile: str) -> None:
    # The console stops a whole read at this size: it must not be smaller than the table.
    tables = model_of(build_meter(profile, seed=1, start=dt.datetime(2025, 1, 1, tzinfo=dt.UTC)))
    dims = dataclasses.replace(
        tables.dims,
        load_profile=BT61.decode(tables.table(TableId.BT61) or b""),
        history=BT71.decode(tables.table(TableId.BT71) or b""),
    )
    sized = 0
    for table in registry.CODECS:
        data = tables.table(table)
        size = table_size(table, dims)
        if data is None or size is None:
            continue
        sized += 1
        # A table newer firmware grew (ET55) is read on past its layout, by a bounded margin.
        grown = 0 if registry.table_is_fixed_by_its_layout(table) else GROWN_TABLE_BYTES
        assert size + grown >= len(data), TableId(table).name
    assert sized > 10
