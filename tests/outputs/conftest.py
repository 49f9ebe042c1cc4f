"""``broker``: a private Mosquitto started for the test on a free port (never the machine's
own on 1883).  When it cannot be started the test fails: these tests never skip."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from .support import BrokerStartError, Mosquitto


@pytest.fixture
def broker(tmp_path: Path) -> Iterator[Mosquitto]:
    directory = tmp_path / "broker"
    directory.mkdir()
    try:
        mosquitto = Mosquitto(directory)
        mosquitto.start()
    except BrokerStartError as exc:
        pytest.fail(f"cannot start the test MQTT broker: {exc}")
    try:
        yield mosquitto
    finally:
        mosquitto.stop()
