"""A stand-in gateway process for the last-will test: one simulated meter, the real publisher.

Usage: ``python -m tests.outputs.gateway_process BROKER_URL DATA_DIR`` (from the repository).
Runs until killed.
"""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

from mepgate.config.settings import MqttConfig
from mepgate.outputs.mqtt import MqttPublisher

from ..support.gateway import FakeGateway, SimMeter


async def main(url: str, data_dir: Path) -> None:
    config = MqttConfig(url=url)
    sim = SimMeter.build()
    gateway = FakeGateway(config, [sim.status()])
    publisher = MqttPublisher(gateway, config, data_dir=data_dir, diagnostics_interval=0.5)
    task = asyncio.create_task(publisher.run())
    second = 0
    while not task.done():
        gateway.hub.publish(sim.reading(second)[0])
        second += 1
        await asyncio.sleep(0.1)
    task.result()


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], Path(sys.argv[2])))
