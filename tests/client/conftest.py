"""A simulated meter for client tests: tables built from a Gen 3 / Gen 4 profile with the real
encoders, served by the real front ends (TCP and pty) of :class:`RunningSimulator`.

``ProfileModel`` is a small :class:`~mepgate.simulator.meter.ModelStore`: fixed identity,
BT28 values that are the ground truth tests compare against, ET13 alert flags that EP39 / an
ET15 read clear (as the meter model does), and a reconfiguration that drops present values
from BT21/BT27 and bumps ET04's IDT version.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import time
from collections.abc import Callable, Iterator

import pytest

from mepgate.client.alerts import Ep39Type, alert_flags_offset
from mepgate.proto import AccessLevel, ProcedureCall, ProcedureResponse, ProcedureResult
from mepgate.proto.procedures import EP39_POST_MEP_DATA
from mepgate.simulator.meter import DEFAULT_MAK, DEFAULT_MBK, SimClock, SimulatedMeter
from mepgate.simulator.serve import RunningSimulator
from mepgate.simulator.static_store import StaticStore
from mepgate.simulator.timing import WireTiming
from mepgate.tables.dimensions import (
    Dimensions,
    PresentRegisterSelection,
    encode_bt21,
    encode_bt27,
    encode_et11,
    energy_register_unit_offset,
)
from mepgate.tables.identity import (
    ET04_LAYOUT,
    ManufacturerInformation,
    UtilityInformation,
    encode_bt01,
    encode_et03,
)
from mepgate.tables.ids import TableId
from mepgate.tables.profiles import MeterProfile, gen3_3phase, gen4_3phase
from mepgate.tables.registers import PresentValues, bt28_layout, decode_bt28

SIM_KEYS = {AccessLevel.BASIC: DEFAULT_MBK, AccessLevel.ADVANCED: DEFAULT_MAK}
MBK_TEXT = DEFAULT_MBK.decode()
PROFILES: dict[str, Callable[[], MeterProfile]] = {"gen3": gen3_3phase, "gen4": gen4_3phase}
IDT_OFFSET = ET04_LAYOUT.offset_of("idt_version")
ET04_SIZE = 140


def present_values_for(dims: Dimensions, salt: int = 0) -> tuple[int, ...]:
    """Distinct, signed-looking values: any corrupted byte shows as a different value."""
    n = dims.register.number_of_present_values
    return tuple((i * 7919 + 1000 + salt) * (-1 if i % 5 == 4 else 1) for i in range(n))


class ProfileModel(StaticStore):
    def __init__(self, profile: MeterProfile) -> None:
        self.profile = profile
        self.dims = profile.dims
        self.idt_version = 7
        self.reboots = 0
        self.alert_flags = 0
        self.ep39_posts: list[int] = []
        super().__init__(self._tables())

    # -- tables ------------------------------------------------------------------------------
    def _tables(self) -> dict[int, bytes]:
        dims = self.dims
        et04 = bytearray(ET04_SIZE)
        et04[IDT_OFFSET] = self.idt_version
        et55 = bytearray(energy_register_unit_offset(dims.register, dims.generation) + 2)
        et55[energy_register_unit_offset(dims.register, dims.generation)] = 1
        mfg = dims.mfg
        et13 = bytearray(mfg.number_of_devices * (mfg.config_entry_size or 0))
        et13[alert_flags_offset(dims)] = self.alert_flags
        return {
            TableId.BT01: encode_bt01(
                ManufacturerInformation(
                    manufacturer="ELON",
                    model="83331-3I",
                    firmware_version=0x40,
                    firmware_revision=0x18,
                )
            ),
            TableId.ET03: encode_et03(UtilityInformation(utility_serial_number="MEPGATE-0001")),
            TableId.ET04: bytes(et04),
            TableId.BT21: encode_bt21(dims.register),
            TableId.ET11: encode_et11(dims.mfg),
            TableId.BT27: encode_bt27(self.selection(), dims),
            TableId.ET55: bytes(et55),
            TableId.BT28: self.bt28_bytes(),
            TableId.ET13: bytes(et13),
            TableId.ET15: bytes(40),
        }

    def selection(self) -> PresentRegisterSelection:
        assert self.dims.present_selection is not None
        return self.dims.present_selection

    def bt28_bytes(self) -> bytes:
        layout = bt28_layout(self.dims)
        raw = bytearray(layout.size)
        values = bytearray()
        for v in present_values_for(self.dims):
            values += v.to_bytes(4, "little", signed=True)
        start = layout.offset_of("present_values")
        raw[start : start + len(values)] = values
        return bytes(raw)

    def truth(self) -> PresentValues:
        return decode_bt28(self.bt28_bytes(), self.dims).readings

    # -- ModelStore ----------------------------------------------------------------------------
    def advance(self, when: dt.datetime) -> None:
        pass

    def alert_pending(self) -> bool:
        return self.alert_flags != 0

    def raise_alert(self, flags: int) -> None:
        self.alert_flags |= flags
        self._refresh()

    def reboot(self, when: dt.datetime) -> None:
        self.reboots += 1

    def reconfigure(self) -> None:
        """Drop the last ten present values (as a changed BT27 selection would)."""
        register = dataclasses.replace(
            self.dims.register,
            number_of_present_values=self.dims.register.number_of_present_values - 10,
        )
        selection = PresentRegisterSelection(
            present_demand_sources=self.selection().present_demand_sources,
            present_value_sources=self.selection().present_value_sources[:-10],
        )
        self.dims = dataclasses.replace(self.dims, register=register, present_selection=selection)
        self.idt_version += 1
        self._refresh()

    def _refresh(self) -> None:
        for table_id, data in self._tables().items():
            self.tables[table_id] = bytearray(data)

    def table(self, table_id: int) -> bytes | None:
        if table_id == TableId.ET15 and self.alert_flags & 0x02:
            self.alert_flags &= ~0x02  # reading ET15 services the on-demand request
            self._refresh()
        return super().table(table_id)

    def run_procedure(self, call: ProcedureCall, level: AccessLevel) -> ProcedureResponse:
        if call.number == EP39_POST_MEP_DATA and call.parameters:
            post = call.parameters[0]
            self.ep39_posts.append(post)
            if post in (Ep39Type.SCHEDULED_READ_DATA, Ep39Type.SCHEDULED_READ_DATA_WITH_ALARMS):
                self.alert_flags &= ~0x01
            elif post == Ep39Type.CLEAR_MBUS_ALERT:
                self.alert_flags &= ~0x08
            self._refresh()
            return ProcedureResponse(
                number=call.number, psn=call.psn, result=ProcedureResult.COMPLETED
            )
        return super().run_procedure(call, level)


def profile_meter(
    profile: str, *, tls_required: bool = False
) -> tuple[SimulatedMeter, ProfileModel]:
    model = ProfileModel(PROFILES[profile]())
    meter = SimulatedMeter(
        model=model,
        clock=SimClock(origin=time.monotonic(), start=dt.datetime(2026, 1, 1, tzinfo=dt.UTC)),
        keys=SIM_KEYS,
        sequence=777,
        tls_required=tls_required,
    )
    return meter, model


@dataclasses.dataclass
class Sim:
    running: RunningSimulator
    model: ProfileModel

    def port(self, kind: str) -> str:
        where = self.running.url if kind == "tcp" else self.running.device
        assert where is not None
        return where


StartSim = Callable[..., Sim]


@pytest.fixture
def start_sim() -> Iterator[StartSim]:
    started: list[RunningSimulator] = []

    def start(
        profile: str = "gen4",
        *,
        tls_required: bool = False,
        faults: str = "",
        timing: WireTiming | None = None,
        seed: int = 1,
    ) -> Sim:
        meter, model = profile_meter(profile, tls_required=tls_required)
        running = RunningSimulator(
            meter,
            keys=SIM_KEYS,
            timing=timing or WireTiming(enabled=False),
            faults=faults,
            seed=seed,
        )
        running.start()
        started.append(running)
        return Sim(running, model)

    yield start
    for running in started:
        running.stop()
