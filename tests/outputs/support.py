"""Test support for the outputs: a real Mosquitto broker and an MQTT recorder.

The gateway the outputs read is the tests' one fake (:mod:`tests.support.gateway`), fed by hand
with the simulator's readings; :func:`~tests.support.wait.until` waits."""

from __future__ import annotations

import asyncio
import contextlib
import json
import shutil
import socket
import ssl
import subprocess
import time
from collections.abc import AsyncIterator, Coroutine, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import aiomqtt

from mepgate.outputs.mqtt.connection import Client

from ..support.gateway import free_port
from ..support.wait import until

REPO = Path(__file__).resolve().parents[2]
_T = TypeVar("_T")

# -- broker ------------------------------------------------------------------------------------


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
                async with Client(  # mepgate's: aiomqtt's may lose a cancellation (Python 3.11)
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


def run_value(scenario: Coroutine[Any, Any, _T]) -> _T:
    """:func:`run` for a scenario that returns what it recorded."""
    return asyncio.run(asyncio.wait_for(scenario, SCENARIO_TIMEOUT_S))


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


# -- Home Assistant's verdict ------------------------------------------------------------------

#: The Python of the virtual environment with the ``homeassistant`` package (``scripts/test``
#: creates it; Home Assistant's pins conflict with ours, so it is not ``.venv``).
HA_PYTHON = REPO / ".venv-ha" / "bin" / "python"
HA_VALIDATOR = Path(__file__).with_name("ha_discovery_validator.py")
#: The oldest release mepgate supports: the last one that runs on Python 3.11.
HA_RELEASE = "2024.1."


def home_assistant_verdicts(
    messages: Iterable[Received], *, prefix: str = "homeassistant"
) -> list[dict[str, Any]]:
    """Home Assistant's own verdict on each discovery message, in order (see
    :mod:`tests.outputs.ha_discovery_validator` for what it checks)."""
    if not HA_PYTHON.exists():
        raise AssertionError(f"{HA_PYTHON} is missing: run scripts/test (it creates .venv-ha)")
    request = {
        "prefix": prefix,
        "messages": [{"topic": m.topic, "payload": m.payload.decode()} for m in messages],
    }
    result = subprocess.run(
        [str(HA_PYTHON), str(HA_VALIDATOR)],
        input=json.dumps(request),
        capture_output=True,
        text=True,
        timeout=300,  # a hang guard: importing Home Assistant takes a second or two
        check=False,
    )
    assert result.returncode == 0, result.stderr
    answer = json.loads(result.stdout)
    assert answer["version"].startswith(HA_RELEASE), answer["version"]
    verdicts: list[dict[str, Any]] = answer["verdicts"]
    assert len(verdicts) == len(request["messages"])
    return verdicts
