"""Events end to end: outages injected in a simulated meter (real TCP) are read by the real
gateway's events job, stored (SQLite), shown on the events page and in the API, and published
to a real Mosquitto -- with start and end equal to the ground truth on the gateway's clock; a
restart on the same database reports no event twice."""

from __future__ import annotations

import asyncio
import datetime as dt
import time
from pathlib import Path

from fastapi.testclient import TestClient
from pydantic import SecretStr

from mepgate.client import LinkTiming
from mepgate.config import MeterConfig, Settings
from mepgate.config.settings import MqttConfig, StorageConfig
from mepgate.outputs.mqtt import MqttPublisher
from mepgate.service.gateway import Gateway
from mepgate.service.poller import RetryPolicy
from mepgate.service.view import GatewayView
from mepgate.simulator.meter import DEFAULT_MBK
from mepgate.simulator.model import model_of
from mepgate.simulator.model.happenings import Happening
from mepgate.web import create_app
from mepgate.web.auth import AdminPassword

from ..conftest import SimulatorFactory
from ..support.wait import until
from .support import Mosquitto, Recorder, run, running

EVENT_TOPIC = "mepgate/house/event"


def _gateway(settings: Settings, tmp_path: Path) -> Gateway:
    async def publish(view: GatewayView) -> None:
        assert view.settings.mqtt is not None
        await MqttPublisher(view, view.settings.mqtt, data_dir=tmp_path).run()

    return Gateway(
        settings,
        data_dir=tmp_path,
        timing=LinkTiming.fast(),
        retry=RetryPolicy(initial=0.1, maximum=0.4),
        batch_interval=0.3,
        events_interval=0.5,
        outputs=[publish],
    )


def _events_job_done(gateway: Gateway, since: dt.datetime) -> bool:
    """The events job ended a round after ``since`` (it read the header and what was new)."""
    for status in gateway.meters():
        for job in status.jobs:
            if job.name == "events" and job.last_success_at and job.last_success_at > since:
                return job.state == "idle"
    return False


def test_injected_outages_reach_the_api_the_page_and_mqtt_once(
    broker: Mosquitto, simulator_factory: SimulatorFactory, tmp_path: Path
) -> None:
    sim = simulator_factory(profile="gen4-3phase")  # real time: the clock offset is constant
    model = model_of(sim.meter)
    settings = Settings(
        meter=[
            MeterConfig(
                name="house", port=sim.url or "", key=SecretStr(DEFAULT_MBK.decode()),
                poll_interval=0.3,
            )
        ],
        storage=StorageConfig(url=f"sqlite:///{tmp_path / 'mepgate.db'}", timezone="UTC"),
        mqtt=MqttConfig(url=broker.url),
    )  # fmt: skip
    data_dir = tmp_path / "web"
    data_dir.mkdir()
    AdminPassword(data_dir).set("correct horse battery staple")
    recorder = Recorder(broker.port, [EVENT_TOPIC])

    async def first_run() -> None:
        async with running(recorder.run()):
            await recorder.ready()
            async with _gateway(settings, tmp_path) as gateway:
                started = dt.datetime.now(dt.UTC)
                await until(lambda: _events_job_done(gateway, started), what="a first round")
                at = sim.call(lambda: model.snapshot().simulated_time) + dt.timedelta(seconds=1)
                model.schedule(Happening("outage", value_s=3), at=at)
                await until(
                    lambda: len(recorder.on(EVENT_TOPIC)) >= 2,
                    what="power down and up on MQTT",
                    timeout=30,
                )
                status = gateway.meters()[0]
                assert status.clock_offset_s is not None
                with TestClient(create_app(gateway, data_dir=data_dir)) as client:
                    api = await asyncio.to_thread(client.get, "/api/v1/outages?meter=house")
                    events = await asyncio.to_thread(client.get, "/api/v1/events?meter=house")
                    page = await asyncio.to_thread(client.get, "/events")
                check(api.json(), events.json(), page.text, status.clock_offset_s)

    def check(outages: list[dict[str, object]], events: list[dict[str, object]], page: str,
              offset_s: float) -> None:  # fmt: skip
        (truth,) = model.happenings.outages
        assert truth.end is not None
        # The meter's clock minus the gateway's, as it really is (the simulator's clock runs
        # at real speed from its start): the ground truth on the gateway's clock.
        real_offset = sim.meter.clock.at(time.monotonic()) - dt.datetime.now(dt.UTC)
        (outage,) = outages
        start = dt.datetime.fromisoformat(str(outage["start"]))
        end = dt.datetime.fromisoformat(str(outage["end"]))
        # The meter's stamps less the offset the poller measured (stored to the millisecond) ...
        measured = dt.timedelta(seconds=offset_s)
        assert abs((start - (truth.start - measured)).total_seconds()) < 0.001
        assert abs((end - (truth.end - measured)).total_seconds()) < 0.001
        # ... which is the real one within BT52's one-second resolution.
        assert abs((start - (truth.start - real_offset)).total_seconds()) <= 1.5
        assert abs((end - (truth.end - real_offset)).total_seconds()) <= 1.5
        assert outage["duration_s"] == 3.0
        assert outage["meter"] == "house"
        assert [(e["code"], e["words"]) for e in events] == [
            (2, "power up (outage ended)"),
            (1, "power down (outage began)"),
        ]  # newest first
        assert dt.datetime.fromisoformat(str(events[1]["time"])) == start
        assert "power down (outage began)" in page
        assert 'class="outage"' in page
        assert "3 s" in page
        assert '<li data-meter="house" data-state="idle">' in page  # the events job's state
        assert "event log up to date" in page
        messages = [m.json() for m in recorder.on(EVENT_TOPIC)]
        assert [(m["code"], m["event_type"]) for m in messages] == [  # type: ignore[index]
            (1, "power_down"),
            (2, "power_up"),
        ]
        published = [dt.datetime.fromisoformat(m["time"]) for m in messages]  # type: ignore[index]
        assert published == [start, end]

    async def second_run() -> None:
        async with running(recorder.run()):
            await recorder.ready()
            async with _gateway(settings, tmp_path) as gateway:
                started = dt.datetime.now(dt.UTC)
                await until(lambda: _events_job_done(gateway, started), what="a round")
                await asyncio.sleep(1.0)  # room for a duplicate to arrive, were there one
                assert len(recorder.on(EVENT_TOPIC)) == 2  # nothing again after the restart
                at = sim.call(lambda: model.snapshot().simulated_time)
                model.schedule(Happening("tamper"), at=at + dt.timedelta(seconds=1))
                await until(lambda: len(recorder.on(EVENT_TOPIC)) >= 3, what="the tamper event")
                await asyncio.sleep(1.0)
                stored = await gateway.store.events("house")
        codes = [m.json()["code"] for m in recorder.on(EVENT_TOPIC)]  # type: ignore[index]
        assert codes == [1, 2, 47]
        assert [e.code for e in stored] == [47, 2, 1]

    run(first_run())
    run(second_run())
