"""The meter model: the :class:`~mepgate.simulator.meter.ModelStore` a simulated meter reads.

It keeps simulated time (advanced by the meter, never backwards), integrates the installation's
power into the registers, records load profile intervals and events, raises alert conditions
and runs procedures.  Every table is produced by the :mod:`mepgate.tables` encoders from the
current state, so a client decodes exactly what this model believes.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Callable

from mepgate.proto import AccessLevel, ProcedureCall, ProcedureResponse, ProcedureResult
from mepgate.proto.codes import ResponseCode
from mepgate.proto.procedures import (
    BT08_PROCEDURE_RESPONSE,
    EP16_CHANGE_CLOCK_BY_DELTA,
    EP39_POST_MEP_DATA,
    ET59_MEP_PROCEDURE_RESPONSE,
)
from mepgate.simulator.model import nameplate
from mepgate.simulator.model.events import EventId, EventLog
from mepgate.simulator.model.happenings import Happening, Happenings, OutageTruth
from mepgate.simulator.model.load_profile import (
    CHANNEL_NAMES,
    STATUS_CLOCK_BACKWARD,
    STATUS_CLOCK_FORWARD,
    STATUS_POWER_FAIL,
    LoadProfileRecorder,
    LoadProfileShape,
)
from mepgate.simulator.model.mbus import build_devices
from mepgate.simulator.model.mep_port import MepPort
from mepgate.simulator.model.optical_port import (
    ET55_LOCKOUT_MINUTES,
    ET55_LOCKOUT_THRESHOLD,
    ET55_OPTICAL_FLAGS,
    OpticalSettings,
    et51_default,
    et55_optical_default,
    optical_settings,
)
from mepgate.simulator.model.physics import STEP_US, Electrical, LoadShape, electrical_at
from mepgate.simulator.model.present import bt28_value
from mepgate.simulator.model.profiles import SimProfile
from mepgate.simulator.model.registers import WUS_PER_WH, CumulativeRegisters, tier_at
from mepgate.simulator.model.self_reads import DEFAULT_SCHEDULE, SelfReadRecorder
from mepgate.simulator.model.snapshot import GroundTruth
from mepgate.simulator.static_store import MAK_WRITABLE_DEFAULT
from mepgate.tables import (
    clock,
    dimensions,
    events,
    identity,
    load_profile,
    mep,
    registers,
    self_reads,
)
from mepgate.tables.dimensions import Dimensions, PresentRegisterSelection
from mepgate.tables.errors import TableDecodeError
from mepgate.tables.ids import TableId
from mepgate.tables.registers import GUIDE_PRESENT_VALUE_SOURCES, SUMMATION_FIELDS
from mepgate.tables.registry import decode_table
from mepgate.tables.status import BT03
from mepgate.tables.timestamps import LTimeDate, STimeDate

_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
MBUS_READ_INTERVAL_S = 3600
"""The M-Bus devices' billing read period (ET13 "hourly")."""
DEFAULT_MBUS = ("water",)
"""The M-Bus devices a simulated meter has when nothing says otherwise."""
REBOOT_OUTAGE_S = 3
"""How long the simulated supply dip of a reboot lasts (BT23 "Power Outage Duration")."""
_LOCAL_UTC_OFFSET_S = 3600  # the meter's standard time (CET); the model applies no DST
_ACTIVE = ("forward_active_wus", "reverse_active_wus")
_EP16_DELTA_SIZE = 4  # EP16 parameter: INT32 seconds, LSB first (assumption; see run_procedure)


def _us(when: dt.datetime) -> int:
    """Microseconds since the epoch; a naive ``when`` is taken as UTC."""
    aware = when if when.tzinfo is not None else when.replace(tzinfo=dt.UTC)
    delta = aware - _EPOCH
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


def _datetime(us: int) -> dt.datetime:
    return _EPOCH + dt.timedelta(microseconds=us)


class MeterModel:
    """A simulated meter's tables over seeded, evolving state."""

    def __init__(
        self,
        profile: SimProfile,
        *,
        seed: int,
        start: dt.datetime,
        scheduled_read_interval_min: int | None = None,
        mbus: tuple[str, ...] = DEFAULT_MBUS,
        mbus_stops: dict[int, float] | None = None,
        mbus_et16_compat: bool = True,
        self_read: str = DEFAULT_SCHEDULE,
        load_profile: LoadProfileShape | None = None,
    ) -> None:
        self.profile = profile
        shape = load_profile or LoadProfileShape()
        self.dims = shape.dims(profile.meter.dims)
        if self_read == "off":  # a meter that keeps no self-reads (BT26 not served)
            register = dataclasses.replace(self.dims.register, number_of_self_reads=0)
            self.dims = dataclasses.replace(self.dims, register=register)
        self.seed = seed
        self.shape = LoadShape.draw(
            seed, phases=profile.meter.phases, utc_offset_s=_LOCAL_UTC_OFFSET_S
        )
        self.registers = CumulativeRegisters()
        self._preset_history(seed)
        self.events = EventLog(self.dims)
        self.happenings = Happenings()  # scheduled outages, tamper attempts, clock sets
        self.load_profile = LoadProfileRecorder(self.dims)
        stops = {
            slot: start + dt.timedelta(seconds=after) for slot, after in (mbus_stops or {}).items()
        }
        self.mep = MepPort(
            self.dims,
            devices=build_devices(mbus, seed=seed, stops=stops),
            et16_compat=mbus_et16_compat,
        )
        self.idt_version = 1
        self.utility = nameplate.et03(seed)
        self.system = nameplate.et04(profile, seed, idt_version=self.idt_version)
        self.meter_config = nameplate.et55(self.dims)
        # Optical-port settings the table decoders leave out: raw bytes (optical_port module).
        self._et51 = bytearray(et51_default(2 if self.dims.generation >= 4 else 1))
        self._et55_extra: dict[int, int] = {ET55_LOCKOUT_THRESHOLD: 0, ET55_LOCKOUT_MINUTES: 0}
        if self.dims.generation >= 4:
            flags = self._et55_a() + ET55_OPTICAL_FLAGS
            self._et55_extra.update(
                {flags + i: byte for i, byte in enumerate(et55_optical_default())}
            )
        self.scheduled_read_interval_s = (
            scheduled_read_interval_min * 60 if scheduled_read_interval_min else None
        )
        self._start_us = _us(start)  # scheduled happenings count from here
        self._sim_us = _us(start - shape.history)  # the profile's history is lived through first
        self._offset_us = 0
        self._values_cache: Electrical | None = None
        self._responses: dict[int, bytes] = {}
        self._last_bt07 = bytes(3)
        meter_us = self._sim_us
        self._next_lp_us = self._next_multiple(meter_us, self.load_profile.interval_s)
        self._next_mbus_us = self._next_multiple(meter_us, MBUS_READ_INTERVAL_S)
        self._read_mbus(meter_us)  # a newly commissioned device's first read (into ET16)
        self._next_schedule_us = (
            self._next_multiple(meter_us, self.scheduled_read_interval_s)
            if self.scheduled_read_interval_s
            else None
        )
        self.self_reads = SelfReadRecorder(
            self.dims.register,
            schedule=self_read,
            local_offset=dt.timedelta(seconds=_LOCAL_UTC_OFFSET_S),
            start=self.meter_clock,
            hour=self.system.self_read_hour,
            minute=self.system.self_read_minute,
        )
        self._tables: dict[int, Callable[[], bytes]] = self._table_encoders()
        if not shape.present:
            for table in (TableId.BT60, TableId.BT61, TableId.BT62, TableId.BT63, TableId.BT64):
                del self._tables[table]
        if shape.history:
            self.advance(start)  # the profile (and the registers) as if installed that long ago

    def __repr__(self) -> str:
        return f"MeterModel(profile={self.profile.name!r}, seed={self.seed})"

    # -- time ----------------------------------------------------------------------------------
    @property
    def meter_us(self) -> int:
        return self._sim_us + self._offset_us

    @property
    def meter_clock(self) -> dt.datetime:
        """The meter's UTC clock (BT52)."""
        return _datetime(self.meter_us)

    @staticmethod
    def _next_multiple(us: int, period_s: int) -> int:
        period = period_s * 1_000_000
        return (us // period + 1) * period

    def values(self) -> Electrical:
        """The electrical values of the current step (cached per step)."""
        step = self.meter_us // STEP_US
        if self._values_cache is None or self._values_cache.step != step:
            self._values_cache = electrical_at(self.shape, step)
        return self._values_cache

    def _tier(self, meter_us: int) -> int:
        return tier_at((meter_us // 1_000_000 + _LOCAL_UTC_OFFSET_S) % 86_400)

    def advance(self, when: dt.datetime) -> None:
        """Integrate up to simulated time ``when``, one constant-power step at a time."""
        target = _us(when)
        while self._sim_us < target:
            meter = self.meter_us
            step_end = (meter // STEP_US + 1) * STEP_US
            duration = min(step_end - meter, target - self._sim_us)
            happening = self.happenings.next_us()
            if happening is not None and happening > self._sim_us:
                duration = min(duration, happening - self._sim_us)
            if not self.happenings.power_off:  # an outage: the registers stand still
                self.registers.integrate(self.values(), duration, self._tier(meter))
            self._sim_us += duration
            self._on_meter_time()

    def _on_meter_time(self) -> None:
        self._happen()
        now = self.meter_us
        while now >= self._next_lp_us:
            if self.happenings.power_off:  # every interval an outage overlaps is flagged
                self.load_profile.flag(STATUS_POWER_FAIL)
            snapshot = self.registers.total.energies_wh()
            self.load_profile.record(
                _datetime(self._next_lp_us), tuple(snapshot[n] for n in CHANNEL_NAMES)
            )
            self._next_lp_us += self.load_profile.interval_s * 1_000_000
        if now >= self._next_mbus_us:
            self._read_mbus(now)
            self._next_mbus_us = self._next_multiple(now, MBUS_READ_INTERVAL_S)
        if self._next_schedule_us is not None and now >= self._next_schedule_us:
            self.mep.alerts.scheduled_read_request = True
            self._next_schedule_us = self._next_multiple(now, self.scheduled_read_interval_s or 0)
        if self.self_reads.due(_datetime(now)):
            self._take_self_read(_datetime(now))

    def _take_self_read(self, when: dt.datetime) -> None:
        """BT26: BT23 as it is at ``when`` (:mod:`.self_reads`)."""
        wh = {name: getattr(self.registers.total, name) // WUS_PER_WH for name in _ACTIVE}
        tiers = {
            name: tuple(getattr(t, name) // WUS_PER_WH for t in self.registers.tiers)
            for name in _ACTIVE
        }
        self.self_reads.take(
            when,
            self._bt23(),
            forward_wh=wh["forward_active_wus"],
            reverse_wh=wh["reverse_active_wus"],
            tier_forward_wh=tiers["forward_active_wus"],
            tier_reverse_wh=tiers["reverse_active_wus"],
        )

    def _read_mbus(self, meter_us: int) -> None:
        when = _datetime(meter_us)
        self.mep.read_mbus_devices(when, when + dt.timedelta(seconds=_LOCAL_UTC_OFFSET_S))

    def stop_mbus_device(self, slot: int) -> None:
        """M-Bus device ``slot`` (1..4) stops answering from now on (its next read fails)."""
        self.mep.devices[slot - 1].stops_at = self.meter_clock

    # -- ModelStore: events ------------------------------------------------------------------
    def alert_pending(self) -> bool:
        return self.mep.alerts.pending

    def reboot(self, when: dt.datetime) -> None:
        """A short supply dip ending at ``when``: outage counters, two events, an LP flag."""
        self.advance(when)
        counters = self.registers.counters
        counters["power_outage_count"] += 1
        counters["power_outage_duration_s"] += REBOOT_OUTAGE_S
        up = self.meter_clock
        down = up - dt.timedelta(seconds=REBOOT_OUTAGE_S)
        self.events.log(down, EventId.PRIMARY_POWER_DOWN)
        self.events.log(up, EventId.PRIMARY_POWER_UP)
        self.happenings.outages.append(OutageTruth(down, up))
        self.load_profile.flag(STATUS_POWER_FAIL)

    # -- scheduled happenings (simulator/model/happenings.py) ---------------------------------
    def schedule(self, happening: Happening, at: dt.datetime | None = None) -> None:
        """Make ``happening`` happen at simulated time ``at`` (default: ``happening.at_s``
        simulated seconds after the model's start)."""
        when = _us(at) if at is not None else self._start_us + round(happening.at_s * 1e6)
        self.happenings.add(when, happening)

    def _happen(self) -> None:
        """What is due at the current simulated time: the end of an outage, then the
        scheduled happenings."""
        h = self.happenings
        if h.power_off_until_us is not None and self._sim_us >= h.power_off_until_us:
            h.power_off_until_us = None
            up = self.meter_clock.replace(microsecond=0)  # as logged (LTIME_DATE: seconds)
            self.events.log(up, EventId.PRIMARY_POWER_UP)
            self.load_profile.flag(STATUS_POWER_FAIL)  # the interval the power came back in
            h.outages[-1] = OutageTruth(h.outages[-1].start, up)
        for _, happening in h.pop_due(self._sim_us):
            if happening.kind == "outage" and not h.power_off:
                down = self.meter_clock.replace(microsecond=0)
                duration_us = round(happening.value_s * 1e6)
                h.power_off_until_us = self._sim_us + duration_us
                h.outages.append(OutageTruth(down, None))
                counters = self.registers.counters
                counters["power_outage_count"] += 1
                counters["power_outage_duration_s"] += round(happening.value_s)
                self.events.log(down, EventId.PRIMARY_POWER_DOWN)
                self.load_profile.flag(STATUS_POWER_FAIL)
            elif happening.kind == "tamper":
                self.events.log(self.meter_clock, EventId.TAMPER_ATTEMPT)
            elif happening.kind == "clock":
                self._set_clock(round(happening.value_s), by_mep=False)

    def reconfigure(self) -> None:
        """Change BT21's number of present values (BT27/BT28 follow) and bump the IDT version.

        Toggles between the profile's full count and its reconfigured count.
        """
        register = self.dims.register
        full = self.profile.meter.dims.register.number_of_present_values
        count = (
            self.profile.reconfigured_present_values
            if register.number_of_present_values == full
            else full
        )
        selection = self.dims.present_selection
        self.dims = dataclasses.replace(
            self.dims,
            register=dataclasses.replace(register, number_of_present_values=count),
            present_selection=PresentRegisterSelection(
                present_demand_sources=selection.present_demand_sources if selection else (),
                present_value_sources=GUIDE_PRESENT_VALUE_SOURCES[:count],
            ),
        )
        self.idt_version = (self.idt_version + 1) & 0xFF
        self.events.log(self.meter_clock, EventId.CONFIGURATION_CHANGED, argument=count)

    def post_on_demand_request(self, data: bytes) -> None:
        """The head end queues ``data`` for the MEP client in ET15: an on-demand alert."""
        self.mep.post_on_demand_request(data)

    # -- TableStore ----------------------------------------------------------------------------
    def table(self, table_id: int) -> bytes | None:
        encoder = self._tables.get(table_id)
        return None if encoder is None else encoder()

    def note_read(self, table_id: int) -> None:
        """A client read ``table_id``: reading ET15 services the on-demand request."""
        if table_id == TableId.ET15:
            self.mep.on_demand_read()

    def mak_writable(self, table_id: int) -> bool:
        return table_id in MAK_WRITABLE_DEFAULT

    def write(self, table_id: int, offset: int, data: bytes) -> ResponseCode:
        """Patch the table's bytes, decode them with the client's decoder, keep the result."""
        if table_id == TableId.ET51:  # no decoder: kept as bytes (optical_port module)
            if offset + len(data) > len(self._et51):
                return ResponseCode.TABLE_OPERATION_NOT_POSSIBLE
            self._et51[offset : offset + len(data)] = data
            return ResponseCode.OK
        current = self.table(table_id)
        apply = self._writers().get(table_id)
        if current is None or apply is None:
            # MAK-writable in Table C.1 but not modelled here (e.g. BT33 display lists).
            return ResponseCode.OPERATION_NOT_POSSIBLE
        if offset + len(data) > len(current):
            return ResponseCode.TABLE_OPERATION_NOT_POSSIBLE
        patched = current[:offset] + data + current[offset + len(data) :]
        try:
            apply(decode_table(table_id, patched, self.dims))
        except TableDecodeError:
            return ResponseCode.TABLE_OPERATION_NOT_POSSIBLE
        if table_id == TableId.ET55:
            for where in self._et55_extra:
                self._et55_extra[where] = patched[where]
        return ResponseCode.OK

    # -- the optical port --------------------------------------------------------------------
    def optical_settings(self) -> OpticalSettings:
        """The optical port's timers, lockout and off switch as the tables now say."""
        return optical_settings(
            generation=self.dims.generation,
            firmware=self.profile.meter.firmware,
            et51=bytes(self._et51),
            et55=self.table(TableId.ET55),
            et55_a=self._et55_a(),
        )

    def _et55_a(self) -> int:
        """ET55's offset "A" (its "Step Tariff Source")."""
        return dimensions.et55_layout(self.dims.register, self.dims.generation).offset_of(
            "step_tariff_source"
        )

    def _et55_bytes(self) -> bytes:
        encoded = bytearray(dimensions.ET55.encode(self.meter_config, self.dims))
        end = max(self._et55_extra) + 1
        if len(encoded) < end:
            encoded += bytes(end - len(encoded))
        for where, byte in self._et55_extra.items():
            encoded[where] = byte
        return bytes(encoded)

    def run_procedure(self, call: ProcedureCall, level: AccessLevel) -> ProcedureResponse:
        self._last_bt07 = call.to_bytes()
        if call.number == EP39_POST_MEP_DATA:
            result = self.mep.post_mep_data(call.parameters, self.meter_clock)
        elif call.number == EP16_CHANGE_CLOCK_BY_DELTA:
            result = self._change_clock(call.parameters)
        else:
            result = ProcedureResult.UNRECOGNIZED_PROCEDURE
        return ProcedureResponse(number=call.number, psn=call.psn, result=result)

    def procedure_response_table(self) -> int:
        """ET59 when ET50's "ET59 Response" flag is set, else BT08 (MEP guide, "Calling
        Procedures")."""
        return ET59_MEP_PROCEDURE_RESPONSE if self.mep.et59_response else BT08_PROCEDURE_RESPONSE

    def store_procedure_response(self, table_id: int, response: ProcedureResponse) -> None:
        self._responses[table_id] = response.to_bytes()

    # -- procedures ----------------------------------------------------------------------------
    def _change_clock(self, parameters: bytes) -> ProcedureResult:
        """EP16 "Change System Clock By Delta": the guide does not lay out its parameters in
        this edition; taken as one INT32 of seconds, LSB first."""
        if len(parameters) != _EP16_DELTA_SIZE:
            return ProcedureResult.INVALID_PARAMETER
        self._set_clock(int.from_bytes(parameters, "little", signed=True), by_mep=True)
        return ProcedureResult.COMPLETED

    def _set_clock(self, delta_s: int, *, by_mep: bool) -> None:
        old = self.meter_clock
        self._offset_us += delta_s * 1_000_000
        self.events.log(old, EventId.TIME_CHANGED_OLD_TIME, by_mep=by_mep)
        self.events.log(self.meter_clock, EventId.TIME_CHANGED_NEW_TIME, by_mep=by_mep)
        self.load_profile.flag(STATUS_CLOCK_FORWARD if delta_s >= 0 else STATUS_CLOCK_BACKWARD)
        self._on_meter_time()  # a forward jump may close load profile intervals

    # -- snapshot ------------------------------------------------------------------------------
    def snapshot(self) -> GroundTruth:
        """The ground truth at the last simulated time the model was advanced to."""
        total = self.registers.total
        alerts = self.mep.alerts
        return GroundTruth(
            simulated_time=_datetime(self._sim_us),
            meter_clock=self.meter_clock,
            electrical=self.values(),
            current_tier=self._tier(self.meter_us),
            forward_active_energy_wh=total.forward_active_wus // WUS_PER_WH,
            reverse_active_energy_wh=total.reverse_active_wus // WUS_PER_WH,
            forward_active_energy_exact_wh=total.forward_active_wus / WUS_PER_WH,
            reverse_active_energy_exact_wh=total.reverse_active_wus / WUS_PER_WH,
            tier_forward_active_energy_wh=tuple(
                t.forward_active_wus // WUS_PER_WH for t in self.registers.tiers
            ),
            tier_reverse_active_energy_wh=tuple(
                t.reverse_active_wus // WUS_PER_WH for t in self.registers.tiers
            ),
            power_outage_count=self.registers.counters["power_outage_count"],
            power_outage_duration_s=self.registers.counters["power_outage_duration_s"],
            idt_version=self.idt_version,
            number_of_present_values=self.dims.register.number_of_present_values,
            alerts=dataclasses.replace(alerts),
            water_volume_l=next(
                (d.reported for d in self.mep.devices.values() if d.medium == "water"), 0
            ),
            mbus=tuple(d.truth() for d in self.mep.devices.values()),
            mep_baud_rate_bps=self.mep.baud_rate_bps,
            load_profile_intervals=sum(len(b) for b in self.load_profile.blocks),
            self_reads=tuple(self.self_reads.taken),
        )

    # -- tables ------------------------------------------------------------------------------
    def _preset_history(self, seed: int) -> None:
        """Years of past consumption, spread over the tiers so that tiers sum to the total."""
        shares = (0.3, 0.4, 0.2, 0.1)
        forward = 8_000_000 + seed % 9_000_000
        reverse = 2_000_000 + seed % 3_000_000
        for name, wh in (
            ("forward_active_energy_wh", forward),
            ("reverse_active_energy_wh", reverse),
        ):
            parts = [int(wh * share) for share in shares]
            parts[0] += wh - sum(parts)
            for tier, part in enumerate(parts):
                self.registers.preset(name, part, tier=tier)
            self.registers.preset(name, wh)

    def _bt23(self) -> registers.CurrentRegisterData:
        reg = self.dims.register
        unit = self.dims.energy_register_unit
        empty_time = STimeDate(year=2000, month=0, day=0, hour=0, minute=0)
        demand = registers.DemandRecord(
            event_times=(empty_time,) * reg.number_of_occurrences,
            cumulative_demand=0,
            continuous_cumulative_demand=0,
            demands=(0,) * reg.number_of_occurrences,
        )

        def block(tier: int | None) -> registers.DataBlock:
            return registers.DataBlock(
                summations=self.registers.summations(
                    reg.number_of_summations, tier=tier, energy_register_unit=unit
                ),
                demands=(demand,) * reg.number_of_demands,
                coincidents=((0,) * reg.number_of_occurrences,) * reg.number_of_coincident_values,
            )

        return registers.CurrentRegisterData(
            nbr_demand_resets=0 if reg.demand_reset_counter else None,
            total=block(None),
            tiers=tuple(block(t) for t in range(reg.number_of_tiers)),
        )

    def _bt52(self) -> clock.ClockState:
        now = self.meter_clock
        return clock.ClockState(
            clock_calendar=LTimeDate.from_datetime(now),
            day_of_week=(now.weekday() + 1) % 7,
            dst_in_effect=False,
            gmt=True,
            time_zone_applied=False,
            dst_applied=False,
        )

    def _bt55(self) -> clock.LocalClockState:
        local = self.meter_clock + dt.timedelta(seconds=_LOCAL_UTC_OFFSET_S)
        return clock.LocalClockState(
            clock_calendar=LTimeDate.from_datetime(local),
            day_of_week=(local.weekday() + 1) % 7,
            dst_in_effect=False,
            gmt=False,
            time_zone_applied=True,
            dst_applied=False,
            current_tier=self._tier(self.meter_us),
            tier_drive=0,
            special_schedule_active=0,
            season=0,
        )

    def _table_encoders(self) -> dict[int, Callable[[], bytes]]:
        p = self.profile

        def dims() -> Dimensions:  # looked up per read: reconfiguration replaces them
            return self.dims

        encoders: dict[int, Callable[[], bytes]] = {
            TableId.BT00: lambda: identity.BT00.encode(nameplate.bt00(p)),
            TableId.BT01: lambda: identity.BT01.encode(nameplate.bt01(p)),
            TableId.BT03: lambda: BT03.encode(nameplate.bt03(dims()), dims()),
            TableId.BT07: lambda: self._last_bt07,
            TableId.BT08: lambda: self._responses.get(TableId.BT08, bytes(4)),
            TableId.BT21: lambda: dimensions.BT21.encode(dims().register),
            TableId.BT22: lambda: dimensions.BT22.encode(nameplate.bt22(dims()), dims()),
            TableId.BT23: lambda: registers.BT23.encode(self._bt23(), dims()),
            TableId.BT27: lambda: dimensions.BT27.encode(self._selection(), dims()),
            TableId.BT28: lambda: registers.BT28.encode(bt28_value(self.values(), dims()), dims()),
            TableId.BT52: lambda: clock.BT52.encode(self._bt52()),
            TableId.BT55: lambda: clock.BT55.encode(self._bt55()),
            TableId.BT60: lambda: load_profile.BT60.encode(self.load_profile.actual),
            TableId.BT61: lambda: load_profile.BT61.encode(self.load_profile.actual),
            TableId.BT62: lambda: load_profile.BT62.encode(self.load_profile.bt62(), dims()),
            TableId.BT63: lambda: load_profile.BT63.encode(self.load_profile.bt63(), dims()),
            TableId.BT64: self.load_profile.bt64_bytes,
            TableId.BT71: lambda: events.BT71.encode(self.events.actual),
            TableId.BT74: lambda: events.BT74.encode(self.events.table(), dims()),
            TableId.ET03: lambda: identity.ET03.encode(self.utility),
            TableId.ET04: lambda: identity.ET04.encode(
                dataclasses.replace(self.system, idt_version=self.idt_version)
            ),
            TableId.ET11: lambda: dimensions.ET11.encode(dims().mfg),
            TableId.ET13: lambda: mep.ET13.encode(self.mep.et13(), dims()),
            TableId.ET14: lambda: mep.ET14.encode(self.mep.et14(), dims()),
            TableId.ET15: self.mep.et15_bytes,
            TableId.ET16: lambda: mep.ET16.encode(self.mep.et16(), dims()),
            TableId.ET36: self.mep.log.et36_bytes,
            TableId.ET45: self.mep.log.et45_bytes,
            TableId.ET50: lambda: mep.ET50.encode(self.mep.inbound, dims()),
            TableId.ET51: lambda: bytes(self._et51),
            TableId.ET55: self._et55_bytes,
            TableId.ET59: lambda: self._responses.get(TableId.ET59, bytes(4)),
        }
        if self.self_reads.enabled:
            encoders[TableId.BT26] = lambda: self_reads.BT26.encode(self.self_reads.table(), dims())
        return encoders

    def _selection(self) -> PresentRegisterSelection:
        if self.dims.present_selection is None:  # pragma: no cover - every profile has one
            raise TableDecodeError("the profile has no BT27 present register selection")
        return self.dims.present_selection

    def _writers(self) -> dict[int, Callable[[object], None]]:
        return {
            TableId.BT23: self._write_bt23,
            TableId.ET03: self._write_et03,
            TableId.ET04: self._write_et04,
            TableId.ET13: self._write_et13,
            TableId.ET50: self._write_et50,
            TableId.ET55: self._write_et55,
        }

    def _write_bt23(self, value: object) -> None:
        if not isinstance(value, registers.CurrentRegisterData):
            return
        unit = self.dims.energy_register_unit
        count = self.dims.register.number_of_summations
        blocks: list[tuple[int | None, registers.DataBlock | None]] = [(None, value.total)]
        blocks += list(enumerate(value.tiers or ()))
        for tier, block in blocks:
            if block is None:
                continue
            before = self.registers.summations(count, tier=tier, energy_register_unit=unit)
            written = block.summations or ()
            for name, old, raw in zip(SUMMATION_FIELDS, before, written, strict=False):
                if raw != old:  # unchanged registers keep their sub-Wh remainder
                    energy = name.endswith(("_wh", "_varh", "_vah"))
                    self.registers.preset(name, raw * unit if energy else raw, tier=tier)

    def _write_et03(self, value: object) -> None:
        if isinstance(value, identity.UtilityInformation):
            self.utility = value

    def _write_et04(self, value: object) -> None:
        if isinstance(value, identity.SystemInformation):
            self.system = value  # the IDT version stays the meter's own

    def _write_et13(self, value: object) -> None:
        if isinstance(value, mep.DeviceConfiguration):
            self.mep.config = value  # alert flags are the meter's own (merged on read)

    def _write_et50(self, value: object) -> None:
        if isinstance(value, mep.MepInboundDataSpace):
            self.mep.inbound = value

    def _write_et55(self, value: object) -> None:
        if isinstance(value, dimensions.MeterConfiguration):
            self.dims = dataclasses.replace(
                self.dims, energy_register_unit=value.energy_register_unit
            )
            self.meter_config = value
