"""Test support for the web app: a :class:`GatewayView` made of real parts, and a live server.

:class:`LocalGateway` has a real :class:`ReadingHub`, a real store (SQLite or PostgreSQL) and a
simulated meter model (:func:`mepgate.simulator.model.build_meter`) whose ground truth becomes
the readings; its console answers reads from the model's tables and decodes them with the
real table registry; ``apply_settings`` saves with the real ``save_settings``.  It stands in
for :class:`mepgate.service.gateway.Gateway` where a test needs to control the readings.

:class:`LiveServer` runs an app in a real uvicorn on a free loopback port, in a thread with its
own event loop, for the browser tests.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import socket
import threading
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AbstractAsyncContextManager
from pathlib import Path

import uvicorn
from fastapi import FastAPI

from mepgate.config import MeterConfig, Settings, load_settings, save_settings
from mepgate.proto import ReadRequest, WriteRequest
from mepgate.reading import Reading
from mepgate.service.hub import ReadingHub
from mepgate.service.view import (
    ConsoleError,
    ConsoleReply,
    LinkFailure,
    MeterIdentity,
    MeterStatus,
)
from mepgate.simulator.meter import SimulatedMeter
from mepgate.simulator.model import build_meter, ground_truth, model_of
from mepgate.simulator.model.snapshot import GroundTruth
from mepgate.store import AsyncStore, open_store
from mepgate.tables.identity import BT01
from mepgate.tables.registry import CODECS, decode_table, to_json
from mepgate.web import close_streams

SIM_PROFILE = "gen4-3phase"
HISTORY_DAYS = 2
HISTORY_STEP_S = 120


def reading_of(meter: str, truth: GroundTruth, at: dt.datetime) -> Reading:
    """The reading a poller would make of the model's state (units converted as BT28 shows)."""
    phases = truth.phases
    values: dict[str, float] = {}
    for number, phase in enumerate(phases, start=1):
        values[f"active_power_import_l{number}_w"] = float(phase.forward_active_power_w)
        values[f"active_power_export_l{number}_w"] = float(phase.reverse_active_power_w)
        values[f"voltage_l{number}_v"] = phase.voltage_mv / 1000
        values[f"current_l{number}_a"] = phase.current_ma / 1000
        values[f"power_factor_l{number}"] = phase.power_factor_milli / 1000
    return Reading(
        meter=meter,
        at=at,
        forward_active_energy_wh=float(truth.forward_active_energy_wh),
        reverse_active_energy_wh=float(truth.reverse_active_energy_wh),
        active_power_import_w=float(truth.electrical.forward_active_power_w),
        active_power_export_w=float(truth.electrical.reverse_active_power_w),
        frequency_hz=truth.frequency_mhz / 1000,
        reactive_power_var=float(truth.electrical.reactive_power_var),
        current_tier=truth.current_tier,
        **values,
    )


class LocalGateway:
    """A :class:`~mepgate.service.view.GatewayView` over a simulated meter model."""

    def __init__(
        self,
        settings: Settings,
        *,
        store_url: str,
        config_path: Path,
        seed: int = 1,
    ) -> None:
        self._settings = settings
        self.config_path = config_path
        self._hub = ReadingHub()
        self._store = AsyncStore(open_store(store_url))
        self.started = time.monotonic()
        self.now = dt.datetime.now(dt.UTC).replace(microsecond=0)
        # One meter for the past and the present: its simulated clock reads HISTORY_DAYS ago at
        # front-end time 0 and "now" at front-end time ``self.offset``.
        self.offset = HISTORY_DAYS * 86400
        self.meter: SimulatedMeter = build_meter(
            SIM_PROFILE, seed=seed, start=self.now - dt.timedelta(seconds=self.offset)
        )
        self.applied: list[Settings] = []
        self.console_requests: list[str] = []

    # -- GatewayView ---------------------------------------------------------------------------
    @property
    def hub(self) -> ReadingHub:
        return self._hub

    @property
    def settings(self) -> Settings:
        return self._settings

    @property
    def store(self) -> AsyncStore:
        return self._store

    def meters(self) -> list[MeterStatus]:
        model = model_of(self.meter)
        bt01 = BT01.decode(model.table(0x0001) or b"")
        utility = (model.table(0x0803) or b"").split(b"\0")[0].decode("ascii", "replace")
        statuses = []
        for config in self._settings.meter:
            latest = self._hub.latest(config.name)
            statuses.append(
                MeterStatus(
                    name=config.name,
                    port=config.port,
                    connected=latest is not None,
                    identity=MeterIdentity(
                        manufacturer=bt01.manufacturer,
                        model=bt01.model,
                        firmware=bt01.firmware,
                        serial_number=utility,
                        utility_serial_number=utility,
                        generation=4,
                    ),
                    meter_clock=model.meter_clock,
                    last_reading_at=latest.at if latest else None,
                    readings_stored=3,
                    readings_rejected=1,
                    rejection_reasons={"energy-decreased": 1},
                    link={"requests": 42, "retries": 2, "timeouts": 1, "digest_errors": 0},
                    last_errors=(
                        LinkFailure(
                            at=self.now,
                            message="no answer within 500 ms",
                            diagnosis="no-answer",
                            advice="check the wiring (TX, RX, ground) and the ENABLE line",
                        ),
                    ),
                )
            )
        return statuses

    async def console(self, meter: str, request: ReadRequest | WriteRequest) -> ConsoleReply:
        self.console_requests.append(request.to_bytes().hex())
        if meter not in {m.name for m in self._settings.meter}:
            raise ConsoleError(f"no meter named {meter!r}")
        if not isinstance(request, ReadRequest):
            raise ConsoleError("this test gateway only reads")
        model = model_of(self.meter)
        data = model.table(request.table_id)
        if data is None:
            return ConsoleReply(code=0x02, meaning="service not supported (unknown table)")
        if request.offset is not None:
            data = data[request.offset : request.offset + request.count]
        decoded: dict[str, object] | None = None
        if request.offset is None and request.table_id in CODECS:
            value = to_json(decode_table(request.table_id, data, model.dims))
            decoded = dict(value) if isinstance(value, dict) else {"value": value}
        return ConsoleReply(code=0, meaning="ok", data_hex=data.hex(), decoded=decoded)

    async def apply_settings(self, settings: Settings) -> None:
        save_settings(settings, self.config_path)
        self._settings = settings
        self.applied.append(settings)

    # -- test helpers --------------------------------------------------------------------------
    def reading_now(self, name: str | None = None) -> Reading:
        name = name or self._settings.meter[0].name
        elapsed = time.monotonic() - self.started
        truth = ground_truth(self.meter, self.offset + elapsed)
        return reading_of(name, truth, self.now + dt.timedelta(seconds=elapsed))

    async def fill_history(self, step_s: int = HISTORY_STEP_S) -> None:
        """The meter's readings over the past ``HISTORY_DAYS`` into the store (call first:
        the model only moves forward)."""
        name = self._settings.meter[0].name
        start = self.now - dt.timedelta(seconds=self.offset)
        readings = [
            reading_of(name, ground_truth(self.meter, float(t)), start + dt.timedelta(seconds=t))
            for t in range(0, self.offset, step_s)
        ]
        await self._store.ingest(readings)

    def publish_now(self) -> Reading:
        reading = self.reading_now()
        self._hub.publish(reading)
        return reading

    async def pump(self, interval: float = 0.25) -> None:
        """Publish (and store) a fresh reading every ``interval`` seconds until cancelled."""
        while True:
            reading = self.publish_now()
            await self._store.ingest([reading])
            await asyncio.sleep(interval)

    async def close(self) -> None:
        await self._store.close()


def default_settings(store_url: str, **web: object) -> Settings:
    return Settings.model_validate(
        {
            "meter": [MeterConfig(name="house", port="tcp://127.0.0.1:7777")],
            "storage": {"url": store_url},
            "web": web,
        }
    )


@contextlib.asynccontextmanager
async def local_gateway(
    config_path: Path, *, store_url: str, history: bool = True
) -> AsyncIterator[LocalGateway]:
    """A running :class:`LocalGateway` with the settings saved at ``config_path`` (or
    defaults), its history filled, publishing live readings."""
    if config_path.exists():
        settings = load_settings(config_path, env={})
    else:
        settings = default_settings(store_url)
    gateway = LocalGateway(settings, store_url=store_url, config_path=config_path)
    if history and settings.meter:
        await gateway.fill_history()
    task = asyncio.create_task(gateway.pump()) if settings.meter else None
    try:
        yield gateway
    finally:
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        await gateway.close()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


ViewFactory = Callable[[], AbstractAsyncContextManager[object]]
AppFactory = Callable[[object], FastAPI]


class LiveServer:
    """An app in a real uvicorn on 127.0.0.1, started and stopped from the test's thread.

    ``view_factory()`` is an async context manager giving the gateway (entered on the server's
    loop); ``app_factory(view)`` builds the app around it.
    """

    def __init__(
        self,
        view_factory: Callable[[], AbstractAsyncContextManager[object]],
        app_factory: Callable[[object], FastAPI],
    ) -> None:
        self._view_factory = view_factory
        self._app_factory = app_factory
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.view: object | None = None
        self.app: FastAPI | None = None
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None
        self._ready = threading.Event()
        self._error: BaseException | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    def start(self, timeout: float = 20.0) -> LiveServer:
        self._thread = threading.Thread(target=self._run, name="live-server", daemon=True)
        self._thread.start()
        if not self._ready.wait(timeout) or self._error is not None:
            raise RuntimeError(f"the live server did not start: {self._error!r}")
        return self

    def stop(self) -> None:
        if self._server is not None and self._loop is not None and self.app is not None:
            self._loop.call_soon_threadsafe(close_streams, self.app)
            self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(timeout=20)
            assert not self._thread.is_alive(), "the live server did not stop"

    def call(self, coroutine: Awaitable[object]) -> object:
        """Run ``coroutine`` on the server's loop and return its result."""
        assert self._loop is not None

        async def wrap() -> object:
            return await coroutine

        return asyncio.run_coroutine_threadsafe(wrap(), self._loop).result(timeout=20)

    def _run(self) -> None:
        try:
            asyncio.run(self._serve())
        except BaseException as error:
            self._error = error
            self._ready.set()

    async def _serve(self) -> None:
        self._loop = asyncio.get_running_loop()
        async with self._view_factory() as view:
            self.view = view
            self.app = self._app_factory(view)
            config = uvicorn.Config(
                self.app,
                host="127.0.0.1",
                port=self.port,
                log_level="warning",
                timeout_graceful_shutdown=1,
                lifespan="on",
            )
            self._server = uvicorn.Server(config)
            serving = asyncio.create_task(self._server.serve())
            while not self._server.started:
                if serving.done():
                    await serving
                    return
                await asyncio.sleep(0.02)
            self._ready.set()
            await serving

    def __enter__(self) -> LiveServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
