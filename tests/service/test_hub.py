from __future__ import annotations

import asyncio
import datetime as dt

from mepgate.reading import Reading
from mepgate.service.hub import SUBSCRIBER_QUEUE, ReadingHub


def reading(n: int, meter: str = "house") -> Reading:
    return Reading(
        meter=meter,
        at=dt.datetime(2026, 1, 1, tzinfo=dt.UTC) + dt.timedelta(seconds=n),
        forward_active_energy_wh=1000.0 + n,
        reverse_active_energy_wh=0.0,
        active_power_import_w=500.0,
        active_power_export_w=120.0,
    )


def test_subscribers_get_readings_and_slow_ones_lose_the_oldest() -> None:
    async def scenario() -> None:
        hub = ReadingHub()
        async with hub.subscribe() as fast, hub.subscribe() as slow:
            assert hub.subscribers == 2
            hub.publish(reading(0))
            assert (await fast.get()).forward_active_energy_wh == 1000.0
            for n in range(1, SUBSCRIBER_QUEUE + 5):
                hub.publish(reading(n))
            assert slow.qsize() == SUBSCRIBER_QUEUE
            first = await slow.get()
            assert first.forward_active_energy_wh == 1000.0 + 5  # 0..4 dropped
            assert hub.dropped >= 5
        assert hub.subscribers == 0
        assert hub.latest("house") == reading(SUBSCRIBER_QUEUE + 4)
        assert hub.latest("garage") is None

    asyncio.run(scenario())


def test_net_power_is_import_minus_export() -> None:
    assert reading(0).net_power_w == 380.0
    assert "forward_active_energy_wh" in reading(0).values()
