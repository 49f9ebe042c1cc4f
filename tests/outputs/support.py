"""Test support for the outputs: a real Mosquitto broker, a gateway view fed by hand, readings
from the simulator's ground truth, and an MQTT recorder."""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import json
import shutil
import socket
import ssl
import subprocess
import time
from collections.abc import AsyncIterator, Callable, Coroutine, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiomqtt

from mepgate.config import Settings
from mepgate.config.settings import MqttConfig
from mepgate.proto import ReadRequest, WriteRequest
from mepgate.reading import PHASES, TIERS, Reading, tier_energy_field
from mepgate.service.hub import ReadingHub
from mepgate.service.view import ConsoleReply, MeterIdentity, MeterStatus
from mepgate.simulator.meter import SimulatedMeter
from mepgate.simulator.model import GroundTruth, build_meter, ground_truth, model_of
from mepgate.store import AsyncStore

SIM_START = dt.datetime(2025, 3, 1, 11, 0, tzinfo=dt.UTC)


# -- broker ------------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class BrokerStartError(RuntimeError):
    """Mosquitto could not be started: the test must fail, not skip."""


class Mosquitto:
    """A private Mosquitto on a free port, with persistence (sessions survive a restart)."""

    def __init__(self, directory: Path, *, listener: str = "", access: str = "") -> None:
        """``listener``: extra options of the listener (TLS files); ``access``: what replaces
        ``allow_anonymous true`` (a password file)."""
        binary = shutil.which("mosquitto") or (
            "/usr/sbin/mosquitto" if Path("/usr/sbin/mosquitto").exists() else None
        )
        if binary is None:
            raise BrokerStartError("mosquitto is not installed: run scripts/test (it installs it)")
        self.binary = binary
        self.directory = directory
        self.port = free_port()
        self.config = directory / "mosquitto.conf"
        self.config.write_text(
            f"listener {self.port} 127.0.0.1\n"
            f"{listener}"
            f"{access or 'allow_anonymous true'}\n"
            "persistence true\n"
            f"persistence_location {directory}/\n"
            f"log_dest file {directory}/mosquitto.log\n"
            "log_type all\n"
        )
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"mqtt://127.0.0.1:{self.port}"

    def start(self, timeout: float = 10.0) -> None:
        self.process = subprocess.Popen(
            [self.binary, "-c", str(self.config)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                _, err = self.process.communicate()
                raise BrokerStartError(f"mosquitto exited at start: {err.decode(errors='replace')}")
            with (
                contextlib.suppress(OSError),
                socket.create_connection(("127.0.0.1", self.port), timeout=0.2),
            ):
                return
            time.sleep(0.02)
        self.stop()
        raise BrokerStartError(f"mosquitto did not listen on port {self.port} within {timeout} s")

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()  # SIGTERM: mosquitto saves its persistence file
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.process = None


# -- a gateway view fed by the test ------------------------------------------------------------


@dataclass
class FakeGateway:
    """A :class:`~mepgate.service.view.GatewayView` whose meters the test sets."""

    config: MqttConfig
    statuses: list[MeterStatus] = field(default_factory=list)
    _hub: ReadingHub = field(default_factory=ReadingHub)

    @property
    def hub(self) -> ReadingHub:
        return self._hub

    @property
    def settings(self) -> Settings:
        return Settings(mqtt=self.config)

    @property
    def store(self) -> AsyncStore:
        raise NotImplementedError("the outputs do not use the store")

    def meters(self) -> list[MeterStatus]:
        return list(self.statuses)

    async def console(self, meter: str, request: ReadRequest | WriteRequest) -> ConsoleReply:
        raise NotImplementedError

    async def apply_settings(self, settings: Settings) -> None:
        raise NotImplementedError


# -- the simulator's ground truth as readings --------------------------------------------------


@dataclass
class SimMeter:
    """A simulated meter (the real model) and the readings a perfect poller would make."""

    name: str
    meter: SimulatedMeter

    @classmethod
    def build(cls, name: str = "house", profile: str = "gen4-3phase", seed: int = 7) -> SimMeter:
        return cls(name, build_meter(profile, seed=seed, start=SIM_START))

    def truth(self, seconds: float) -> GroundTruth:
        return ground_truth(self.meter, seconds)

    def reading(self, seconds: float) -> tuple[Reading, GroundTruth]:
        truth = self.truth(seconds)
        return reading_from_truth(self.name, truth), truth

    def identity(self) -> MeterIdentity:
        model = model_of(self.meter)
        return MeterIdentity(
            manufacturer="ELON",
            model=model.profile.model,
            firmware=model.profile.meter.firmware,
            serial_number=model.utility.utility_serial_number,
            utility_serial_number=model.utility.utility_serial_number,
            generation=model.profile.meter.dims.generation,
        )

    def status(self, *, connected: bool = True, link: dict[str, int] | None = None) -> MeterStatus:
        return MeterStatus(
            name=self.name,
            port="sim:gen4-3phase",
            connected=connected,
            identity=self.identity(),
            link=link or {"requests": 10, "frames_sent": 12, "resends": 2, "replies": 10},
        )


def reading_from_truth(meter: str, truth: GroundTruth) -> Reading:
    """What a poller decodes from BT23/BT28 of a meter in the state ``truth``."""
    values: dict[str, float | int | None] = {}
    for n, phase in enumerate(truth.phases):
        name = PHASES[n]
        values[f"active_power_import_{name}_w"] = float(phase.forward_active_power_w)
        values[f"active_power_export_{name}_w"] = float(phase.reverse_active_power_w)
        values[f"voltage_{name}_v"] = phase.voltage_mv / 1000
        values[f"current_{name}_a"] = phase.current_ma / 1000
        values[f"power_factor_{name}"] = phase.power_factor_milli / 1000
    for tier, forward, reverse in zip(
        TIERS,
        truth.tier_forward_active_energy_wh,
        truth.tier_reverse_active_energy_wh,
        strict=False,
    ):
        values[tier_energy_field("forward", tier)] = float(forward)
        values[tier_energy_field("reverse", tier)] = float(reverse)
    return Reading(
        meter=meter,
        at=truth.meter_clock,
        forward_active_energy_wh=float(truth.forward_active_energy_wh),
        reverse_active_energy_wh=float(truth.reverse_active_energy_wh),
        active_power_import_w=float(truth.electrical.forward_active_power_w),
        active_power_export_w=float(truth.electrical.reverse_active_power_w),
        frequency_hz=truth.frequency_mhz / 1000,
        reactive_power_var=float(truth.electrical.reactive_power_var),
        current_tier=truth.current_tier,
        **values,
    )


# -- recording what reaches the broker ---------------------------------------------------------


@dataclass(frozen=True)
class Received:
    topic: str
    payload: bytes
    retain: bool

    def json(self) -> object:
        return json.loads(self.payload)


class Recorder:
    """Subscribes (QoS 1, persistent session) and keeps every message, reconnecting when the
    broker goes away."""

    def __init__(
        self,
        port: int,
        topics: Iterable[str],
        *,
        identifier: str = "recorder",
        username: str | None = None,
        password: str | None = None,
        tls_context: ssl.SSLContext | None = None,
    ) -> None:
        self.port = port
        self.username = username
        self.password = password
        self.tls_context = tls_context
        self.topics = list(topics)
        self.identifier = identifier
        self.messages: list[Received] = []
        self.connected = asyncio.Event()

    async def run(self) -> None:
        while True:
            try:
                async with aiomqtt.Client(
                    "127.0.0.1",
                    self.port,
                    identifier=self.identifier,
                    clean_session=False,
                    tls_context=self.tls_context,
                    username=self.username,
                    password=self.password,
                ) as client:
                    for topic in self.topics:
                        await client.subscribe(topic, qos=1)
                    self.connected.set()
                    async for message in client.messages:
                        payload = message.payload
                        assert isinstance(payload, bytes | bytearray)
                        self.messages.append(
                            Received(str(message.topic), bytes(payload), bool(message.retain))
                        )
            except aiomqtt.MqttError:
                self.connected.clear()
                task = asyncio.current_task()
                if task is not None and task.cancelling():
                    raise asyncio.CancelledError from None  # a disconnect error hid it
                await asyncio.sleep(0.05)

    async def ready(self) -> None:
        await until(self.connected.is_set, what=f"MQTT recorder {self.identifier} connected")

    def on(self, topic: str, *, live_only: bool = False) -> list[Received]:
        return [
            m
            for m in self.messages
            if aiomqtt.Topic(m.topic).matches(topic) and not (live_only and m.retain)
        ]

    def last(self, topic: str) -> Received | None:
        found = self.on(topic)
        return found[-1] if found else None


#: No MQTT test may hang the suite: each scenario gets this long at most.
SCENARIO_TIMEOUT_S = 60.0


def run(scenario: Coroutine[Any, Any, None]) -> None:
    """``asyncio.run`` with :data:`SCENARIO_TIMEOUT_S` as the upper bound."""
    asyncio.run(asyncio.wait_for(scenario, SCENARIO_TIMEOUT_S))


async def until(
    condition: Callable[[], bool],
    *,
    what: str,
    tasks: Iterable[asyncio.Task[None]] = (),
    timeout: float = 10.0,
) -> None:
    """Wait for ``condition``; fail at once if a background task died, or after ``timeout``."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not condition():
        for task in tasks:
            if task.done():
                task.result()  # raises what killed it
                raise AssertionError(f"{task.get_name()} ended while waiting for {what}")
        if loop.time() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        await asyncio.sleep(0.01)


@contextlib.asynccontextmanager
async def running(
    *coroutines: Coroutine[Any, Any, None],
) -> AsyncIterator[list[asyncio.Task[None]]]:
    """Run background tasks for the duration of the block, then cancel them."""
    tasks = [asyncio.create_task(c) for c in coroutines]
    try:
        yield tasks
    finally:
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
