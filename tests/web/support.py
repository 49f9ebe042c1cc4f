"""Test support for the web app: the gateway the web tests inject, and a live server.

:func:`web_gateway` is the tests' one :class:`~tests.support.gateway.FakeGateway` (a real hub, a
real SQLite or PostgreSQL store, settings saved by the real ``save_settings``) over a simulated
meter installed :data:`HISTORY_DAYS` ago, with a status of every kind of field for the meter
pages.

:class:`LiveServer` runs an app in a real uvicorn on a free loopback port, in a thread with its
own event loop, for the browser tests.
"""

from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt
import threading
from collections.abc import Awaitable, Callable
from contextlib import AbstractAsyncContextManager
from pathlib import Path

import uvicorn
from fastapi import FastAPI

from mepgate.config import MeterConfig, Settings
from mepgate.service.view import LinkFailure, MeterStatus
from mepgate.web import close_streams

from ..support.gateway import FakeGateway, SimMeter, free_port

HISTORY_DAYS = 2
HISTORY_STEP_S = 120


def statuses_of(settings: Settings, sim: SimMeter) -> list[MeterStatus]:
    """A status per configured meter, polling: the ``sim``'s identity, a past link error with
    its diagnosis and advice, and counters on every line of the meter page."""
    status = sim.status(
        state="polling",
        link={"requests": 42, "retries": 2, "timeouts": 1, "digest_errors": 0},
        meter_clock=sim.now,
        readings_stored=3,
        readings_rejected=1,
        rejection_reasons={"energy-decreased": 1},
        last_errors=(
            LinkFailure(
                at=sim.now,
                message="no answer within 500 ms",
                diagnosis="no-answer",
                advice="check the wiring (TX, RX, ground) and the ENABLE line",
            ),
        ),
    )
    return [dataclasses.replace(status, name=m.name, port=m.port) for m in settings.meter]


def web_gateway(
    settings: Settings, *, store_url: str, config_path: Path, seed: int = 1
) -> FakeGateway:
    """The gateway of the web tests (call ``fill_history`` and ``publish_now`` on it next)."""
    sim = SimMeter.installed_ago(dt.timedelta(days=HISTORY_DAYS), seed=seed)
    return FakeGateway(
        settings,
        statuses_of(settings, sim),
        store_url=store_url,
        config_path=config_path,
        sim=sim,
    )


def reconfigure(gateway: FakeGateway, settings: Settings) -> None:
    """Give ``gateway`` new settings and a status per meter they configure (a gateway's
    pollers follow the configured meters)."""
    assert gateway.sim is not None
    gateway.settings = settings
    gateway.statuses = statuses_of(settings, gateway.sim)


def default_settings(store_url: str, **web: object) -> Settings:
    return Settings.model_validate(
        {
            "meter": [MeterConfig(name="house", port="tcp://127.0.0.1:7777")],
            "storage": {"url": store_url},
            "web": web,
        }
    )


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
                proxy_headers=False,  # as mepgate serve runs it (mepgate.web.security)
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
