"""``/api/v1/stream`` over a real uvicorn: the energy totals are asked of the store once per
meter per period and shared by every open stream."""

from __future__ import annotations

import contextlib
import gc
import json
import logging
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI

from mepgate.web import create_app
from mepgate.web.energy_totals import ENERGY_EVERY_S

from ..support.gateway import FakeGateway
from .support import HISTORY_STEP_S, LiveServer, default_settings, web_gateway

MAX_LINES = 200  # an event never arriving fails the test instead of reading keep-alives forever


def next_energy(lines: Iterator[str]) -> dict[str, object]:
    """Read the stream up to its next ``energy`` event; return the event's data."""
    event = None
    for _, line in zip(range(MAX_LINES), lines, strict=False):
        if line.startswith("event: "):
            event = line.removeprefix("event: ")
        elif line.startswith("data: ") and event == "energy":
            data: dict[str, object] = json.loads(line.removeprefix("data: "))
            return data
    raise AssertionError("no energy event")


def test_streams_share_the_energy_totals_of_one_query_per_period(
    sqlite_url: str, data_dir: Path
) -> None:
    now = [0.0]  # the app's clock: it moves only when the test says

    @contextlib.asynccontextmanager
    async def view() -> AsyncIterator[FakeGateway]:
        gateway = web_gateway(
            default_settings(sqlite_url), store_url=sqlite_url, config_path=data_dir / "m.toml"
        )
        await gateway.fill_history(HISTORY_STEP_S)
        gateway.publish_now()
        try:
            yield gateway
        finally:
            await gateway.close()

    def app(gateway: object) -> FastAPI:
        assert isinstance(gateway, FakeGateway)
        return create_app(gateway, data_dir=data_dir, clock=lambda: now[0])

    async def publish(gateway: FakeGateway) -> None:
        gateway.publish_now()

    with (
        LiveServer(view, app) as server,
        httpx.Client(base_url=server.url, timeout=20) as http,
        http.stream("GET", "/api/v1/stream") as first,
        http.stream("GET", "/api/v1/stream") as second,
    ):
        assert server.app is not None
        assert isinstance(server.view, FakeGateway)
        shared = server.app.state.web.energy
        one, two = first.iter_lines(), second.iter_lines()
        # Each stream starts with the newest reading and the energy totals: one query for both.
        assert next_energy(one) == next_energy(two)
        assert shared.queries == 1
        # A period later the next reading brings new totals: asked once more, sent to both.
        now[0] += ENERGY_EVERY_S
        server.call(publish(server.view))
        assert next_energy(one) == next_energy(two)
        assert shared.queries == 2


def test_a_closed_stream_leaves_no_task_behind(
    sqlite_url: str, data_dir: Path, caplog: pytest.LogCaptureFixture
) -> None:
    # Closing a browser tab logged "ERROR asyncio: Task was destroyed but it is pending!": the
    # stream's wait for the next reading was left pending when the stream ended.
    @contextlib.asynccontextmanager
    async def view() -> AsyncIterator[FakeGateway]:
        gateway = web_gateway(
            default_settings(sqlite_url), store_url=sqlite_url, config_path=data_dir / "m.toml"
        )
        gateway.publish_now()
        try:
            yield gateway
        finally:
            await gateway.close()

    def app(gateway: object) -> FastAPI:
        assert isinstance(gateway, FakeGateway)
        return create_app(gateway, data_dir=data_dir)

    async def subscribers(gateway: FakeGateway) -> int:
        return gateway.hub.subscribers

    async def collect() -> None:
        gc.collect()

    caplog.set_level(logging.WARNING)
    with LiveServer(view, app) as server:
        gateway = server.view
        assert isinstance(gateway, FakeGateway)
        for _ in range(3):  # three tabs opened and closed
            with (
                httpx.Client(base_url=server.url, timeout=20) as http,
                http.stream("GET", "/api/v1/stream") as stream,
            ):
                lines = stream.iter_lines()
                read = zip(range(MAX_LINES), lines, strict=False)
                assert any(line == "event: reading" for _, line in read)
                assert server.call(subscribers(gateway)) == 1
        for _ in range(500):  # the server notices each closed connection (hang guard)
            if server.call(subscribers(gateway)) == 0:
                break
            time.sleep(0.01)
        assert server.call(subscribers(gateway)) == 0
        server.call(collect())
    pending = [r for r in caplog.records if "destroyed but it is pending" in r.getMessage()]
    assert pending == []
    assert [r for r in caplog.records if r.levelno >= logging.ERROR] == []
