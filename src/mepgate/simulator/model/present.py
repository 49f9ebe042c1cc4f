"""BT28's present values and present demands, named as :mod:`mepgate.tables.sources` names them.

The meter is direct-connected (CT/VT ratio 1), so "post CT/VT" values equal the plain ones; the
"average" values are the present ones (the model has no averaging window).  A single-phase
meter reports zeros for L2/L3, as the guide's single-phase meters do.
"""

from __future__ import annotations

import cmath
import math

from mepgate.simulator.model.physics import Electrical, PhaseValues
from mepgate.tables.dimensions import Dimensions
from mepgate.tables.registers import (
    PresentDemand,
    PresentRegisterData,
    PresentValues,
    present_values_in_order,
)
from mepgate.tables.sources import source_field
from mepgate.tables.timestamps import TimeOfDay

_PHASE_NAMES = ("l1", "l2", "l3")
_QUADRANTS = ("q1", "q2", "q3", "q4")
_PHASE_ANGLE_RAD = (0.0, -2 * math.pi / 3, 2 * math.pi / 3)
_VOLTAGE_ANGLE_CENTIDEG = 12_000


def _phase_values(n: str, p: PhaseValues) -> dict[str, int]:
    forward, reverse = p.forward_active_power_w, p.reverse_active_power_w
    values = {
        f"rms_current_{n}_ma": p.current_ma,
        f"rms_current_{n}_post_ct_ma": p.current_ma,
        f"average_rms_current_{n}_ma": p.current_ma,
        f"rms_voltage_{n}_mv": p.voltage_mv,
        f"continuous_rms_voltage_{n}_mv": p.voltage_mv,
        f"average_rms_voltage_{n}_mv": p.voltage_mv,
        f"power_factor_{n}_milli": p.power_factor_milli,
        f"sin_phase_angle_{n}_milli": round(1000 * p.reactive_power_var / p.apparent_power_va)
        if p.apparent_power_va
        else 0,
        f"forward_active_power_{n}_w": forward,
        f"reverse_active_power_{n}_w": reverse,
        f"forward_active_power_{n}_post_ct_vt_w": forward,
        f"reverse_active_power_{n}_post_ct_vt_w": reverse,
        f"average_forward_active_power_{n}_w": forward,
        f"average_reverse_active_power_{n}_w": reverse,
        f"import_reactive_power_{n}_var": max(p.reactive_power_var, 0),
        f"export_reactive_power_{n}_var": max(-p.reactive_power_var, 0),
    }
    for q, name in enumerate(_QUADRANTS, start=1):
        values[f"apparent_power_{name}_{n}_va"] = p.apparent_power_va if p.quadrant == q else 0
    return values


def _neutral_current_ma(e: Electrical) -> int:
    if len(e.phases) == 1:
        return e.phases[0].current_ma
    total = sum(
        cmath.rect(p.current_ma, angle - math.atan2(p.reactive_power_var, p.active_power_w))
        for p, angle in zip(e.phases, _PHASE_ANGLE_RAD, strict=False)
    )
    return round(abs(total))


def named_present_values(e: Electrical) -> dict[str, int]:
    """Every present value the model knows, by source field name."""
    forward, reverse = e.forward_active_power_w, e.reverse_active_power_w
    reactive = e.reactive_power_var
    values = {
        "forward_active_power_w": forward,
        "reverse_active_power_w": reverse,
        "forward_active_power_post_ct_vt_w": forward,
        "reverse_active_power_post_ct_vt_w": reverse,
        "average_forward_active_power_w": forward,
        "average_reverse_active_power_w": reverse,
        "import_reactive_power_var": max(reactive, 0),
        "export_reactive_power_var": max(-reactive, 0),
        "import_reactive_power_post_ct_vt_var": max(reactive, 0),
        "export_reactive_power_post_ct_vt_var": max(-reactive, 0),
        "frequency_mhz": e.frequency_mhz,
        "apparent_power_va": e.apparent_power_va,
        "neutral_current_ma": _neutral_current_ma(e),
    }
    for q, name in enumerate(_QUADRANTS, start=1):
        values[f"{name}_reactive_power_var"] = abs(reactive) if e.quadrant == q else 0
        values[f"apparent_power_{name}_va"] = e.apparent_power_va if e.quadrant == q else 0
    for n, p in zip(_PHASE_NAMES, e.phases, strict=False):
        values.update(_phase_values(n, p))
    if len(e.phases) == 3:
        for pair in ("l1_l2", "l2_l3", "l3_l1"):
            values[f"voltage_angle_{pair}_centideg"] = _VOLTAGE_ANGLE_CENTIDEG
    return values


_PRESENT_VALUE_FIELDS = frozenset(PresentValues.__dataclass_fields__)


def bt28_value(e: Electrical, dims: Dimensions) -> PresentRegisterData:
    """BT28 for the values ``e``, in the order BT27 (``dims.present_selection``) gives."""
    named = named_present_values(e)
    readings = PresentValues(**{k: v for k, v in named.items() if k in _PRESENT_VALUE_FIELDS})
    selection = dims.present_selection
    demand_sources = selection.present_demand_sources if selection is not None else ()
    remaining = TimeOfDay(hour=0, minute=0, second=0) if dims.register.time_remaining else None
    demands = tuple(
        PresentDemand(time_remaining=remaining, value=named.get(source_field(s), 0))
        for s in demand_sources[: dims.register.number_of_present_demands]
    )
    return PresentRegisterData(
        present_demands=demands, present_values=present_values_in_order(readings, dims)
    )
