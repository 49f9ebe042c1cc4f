"""One :class:`~mepgate.service.view.GatewayView` for the tests, made of real parts, and the
simulated meters that feed it.

:class:`FakeGateway` stands in for :class:`mepgate.service.gateway.Gateway` where a test needs
to control the readings and the meters' statuses: a real :class:`ReadingHub`, a real store
(SQLite or PostgreSQL) when a test gives one, ``apply_settings`` saving with the real
``save_settings``, and a console that answers reads from a simulated meter's tables, decoded
by the real table registry.

:class:`SimMeter` is the simulator's meter model (:func:`mepgate.simulator.model.build_meter`)
with the readings a perfect poller would make of it (:func:`reading_from_truth`).
"""

from __future__ import annotations

import datetime as dt
import socket
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from mepgate.config import Settings, save_settings
from mepgate.config.settings import MqttConfig
from mepgate.proto import ReadRequest, WriteRequest
from mepgate.reading import PHASES, TIERS, Reading, tier_energy_field
from mepgate.service.hub import ReadingHub
from mepgate.service.view import ConsoleError, ConsoleReply, MeterIdentity, MeterStatus
from mepgate.simulator.meter import SimulatedMeter
from mepgate.simulator.model import GroundTruth, build_meter, ground_truth, model_of
from mepgate.store import AsyncStore, open_store
from mepgate.tables.identity import BT01
from mepgate.tables.registry import CODECS, decode_table, to_json

SIM_PROFILE = "gen4-3phase"
SIM_START = dt.datetime(2025, 3, 1, 11, 0, tzinfo=dt.UTC)
LINK = {"requests": 10, "frames_sent": 12, "resends": 2, "replies": 10}
"""The link statistics of :meth:`SimMeter.status` unless a test gives others."""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def reading_from_truth(meter: str, truth: GroundTruth, *, tiers: bool = True) -> Reading:
    """What a poller decodes from BT23/BT28 of a meter in the state ``truth`` (at its clock).

    ``tiers=False`` leaves the tier registers out (as before the first tier read)."""
    values: dict[str, float | int | None] = {}
    for n, phase in enumerate(truth.phases):
        name = PHASES[n]
        values[f"active_power_import_{name}_w"] = float(phase.forward_active_power_w)
        values[f"active_power_export_{name}_w"] = float(phase.reverse_active_power_w)
        values[f"voltage_{name}_v"] = phase.voltage_mv / 1000
        values[f"current_{name}_a"] = phase.current_ma / 1000
        values[f"power_factor_{name}"] = phase.power_factor_milli / 1000
    if tiers:
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


@dataclass
class SimMeter:
    """A simulated meter (the real model) and the readings a perfect poller would make.

    Its front-end time is seconds since ``start``; :meth:`reading_now` follows the test's
    monotonic clock from ``offset`` seconds on (the meter's "now" when it was built)."""

    name: str
    meter: SimulatedMeter
    start: dt.datetime
    offset: float = 0.0
    built: float = field(default_factory=time.monotonic)

    @classmethod
    def build(
        cls,
        name: str = "house",
        profile: str = SIM_PROFILE,
        seed: int = 7,
        start: dt.datetime = SIM_START,
    ) -> SimMeter:
        return cls(name, build_meter(profile, seed=seed, start=start), start)

    @classmethod
    def installed_ago(
        cls, history: dt.timedelta, name: str = "house", profile: str = SIM_PROFILE, seed: int = 1
    ) -> SimMeter:
        """A meter installed ``history`` ago (whole seconds) whose clock reads now."""
        now = dt.datetime.now(dt.UTC).replace(microsecond=0)
        sim = cls.build(name, profile, seed, start=now - history)
        sim.offset = history.total_seconds()
        return sim

    @property
    def now(self) -> dt.datetime:
        """The meter's time when it was built."""
        return self.start + dt.timedelta(seconds=self.offset)

    def truth(self, seconds: float) -> GroundTruth:
        return ground_truth(self.meter, seconds)

    def reading(self, seconds: float) -> tuple[Reading, GroundTruth]:
        truth = self.truth(seconds)
        return reading_from_truth(self.name, truth), truth

    def reading_now(self) -> Reading:
        return self.reading(self.offset + time.monotonic() - self.built)[0]

    def history(self, step_s: int) -> list[Reading]:
        """Readings every ``step_s`` seconds from ``start`` until :attr:`now` (call before any
        later reading: the model only moves forward)."""
        return [self.reading(float(t))[0] for t in range(0, int(self.offset), step_s)]

    def identity(self) -> MeterIdentity:
        """Who the meter says it is, from its BT01 and ET03 as a poller reads them."""
        model = model_of(self.meter)
        bt01 = BT01.decode(model.table(0x0001) or b"")
        utility = (model.table(0x0803) or b"").split(b"\0")[0].decode("ascii", "replace")
        return MeterIdentity(
            manufacturer=bt01.manufacturer,
            model=bt01.model,
            firmware=bt01.firmware,
            serial_number=utility,
            utility_serial_number=utility,
            generation=model.profile.meter.dims.generation,
        )

    def status(
        self,
        *,
        connected: bool = True,
        link: dict[str, int] | None = None,
        port: str = f"sim:{SIM_PROFILE}",
        **more: Any,
    ) -> MeterStatus:
        """The meter's status as its poller would report it (``more``: other fields)."""
        return MeterStatus(
            name=self.name,
            port=port,
            connected=connected,
            identity=self.identity(),
            link=LINK if link is None else link,
            **more,
        )


class FakeGateway:
    """A :class:`~mepgate.service.view.GatewayView` whose meters the test sets.

    ``settings`` may be just an ``[mqtt]`` section (what the outputs read).  ``statuses`` are
    what :meth:`meters` reports, each with the time of the hub's newest reading of its meter
    (as a poller reports it).  ``store_url``: a real store (without one, ``store`` raises: the
    outputs do not use it).  ``config_path``: where ``apply_settings`` saves (each applied
    settings is also kept in ``applied``).  ``sim``: the meter the console reads tables from.
    """

    def __init__(
        self,
        settings: Settings | MqttConfig,
        statuses: Iterable[MeterStatus] = (),
        *,
        store_url: str | None = None,
        config_path: Path | None = None,
        sim: SimMeter | None = None,
    ) -> None:
        self.settings = settings if isinstance(settings, Settings) else Settings(mqtt=settings)
        self.statuses = list(statuses)
        self.hub = ReadingHub()
        self._config_path = config_path
        self.sim = sim
        self.applied: list[Settings] = []
        self.console_requests: list[str] = []
        self._store = AsyncStore(open_store(store_url)) if store_url is not None else None

    # -- GatewayView (hub and settings are the attributes above) -------------------------------
    @property
    def store(self) -> AsyncStore:
        if self._store is None:
            raise NotImplementedError("this test's gateway has no store")
        return self._store

    def meters(self) -> list[MeterStatus]:
        statuses = []
        for status in self.statuses:
            latest = self.hub.latest(status.name)
            statuses.append(
                status if latest is None else replace(status, last_reading_at=latest.at)
            )
        return statuses

    async def console(self, meter: str, request: ReadRequest | WriteRequest) -> ConsoleReply:
        self.console_requests.append(request.to_bytes().hex())
        if meter not in {m.name for m in self.settings.meter}:
            raise ConsoleError(f"no meter named {meter!r}")
        if not isinstance(request, ReadRequest):
            raise ConsoleError("this test gateway only reads")
        assert self.sim is not None, "give the gateway a sim for its console"
        model = model_of(self.sim.meter)
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
        if self._config_path is not None:
            save_settings(settings, self._config_path)
        self.settings = settings
        self.applied.append(settings)

    # -- test helpers --------------------------------------------------------------------------
    @property
    def config_path(self) -> Path:
        """Where :meth:`apply_settings` saves."""
        assert self._config_path is not None, "this test's gateway saves no settings"
        return self._config_path

    @property
    def mqtt(self) -> MqttConfig:
        assert self.settings.mqtt is not None, "this test's gateway has no [mqtt] section"
        return self.settings.mqtt

    def publish(self, readings: Sequence[Reading]) -> None:
        for reading in readings:
            self.hub.publish(reading)

    def publish_now(self) -> Reading:
        """Publish the :attr:`sim`'s reading of this moment."""
        assert self.sim is not None
        reading = self.sim.reading_now()
        self.hub.publish(reading)
        return reading

    async def fill_history(self, step_s: int) -> None:
        """The :attr:`sim`'s history into the store (call first: the model only moves forward)."""
        assert self.sim is not None
        await self.store.ingest(self.sim.history(step_s))

    async def close(self) -> None:
        if self._store is not None:
            await self._store.close()
