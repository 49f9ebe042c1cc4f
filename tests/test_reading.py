"""The quantities derived from a reading, defined once in :mod:`mepgate.reading`."""

from __future__ import annotations

import datetime as dt
from typing import Any

from mepgate.reading import NET_POWER_FIELDS, Reading, merge_reactive_power, net_power

AT = dt.datetime(2025, 3, 1, 12, 0, tzinfo=dt.UTC)


def reading(**values: Any) -> Reading:
    return Reading(
        meter="house",
        at=AT,
        forward_active_energy_wh=1000.0,
        reverse_active_energy_wh=10.0,
        **values,
    )


def test_net_power_is_import_minus_export_and_unknown_without_both() -> None:
    assert net_power(500.0, 120.0) == 380.0
    assert net_power(0.0, 750.0) == -750.0
    assert net_power(500.0, None) is None  # an export the meter does not report is not 0
    assert net_power(None, 120.0) is None


def test_net_powers_total_and_per_phase_follow_the_same_rule() -> None:
    r = reading(
        active_power_import_w=500.0,
        active_power_export_w=120.0,
        active_power_import_l1_w=300.0,
        active_power_export_l1_w=0.0,
        active_power_import_l2_w=0.0,
        active_power_export_l2_w=120.0,
        active_power_import_l3_w=200.0,  # no L3 export reported
    )
    assert r.net_power_w == 380.0
    assert r.net_powers() == {
        "net_power_w": 380.0,
        "net_power_l1_w": 300.0,
        "net_power_l2_w": -120.0,
        "net_power_l3_w": None,
    }
    assert tuple(r.net_powers()) == NET_POWER_FIELDS
    assert reading().net_powers() == dict.fromkeys(NET_POWER_FIELDS)


def test_reactive_power_merges_into_one_signed_value_and_splits_back() -> None:
    assert merge_reactive_power(300, 50) == 250.0  # BT28: import 300 var, export 50 var
    assert merge_reactive_power(0, 40) == -40.0
    assert merge_reactive_power(300, None) == 300.0
    assert merge_reactive_power(None, 40) is None
    inductive = reading(reactive_power_var=250.0)
    assert (inductive.reactive_power_import_var, inductive.reactive_power_export_var) == (250, 0)
    capacitive = reading(reactive_power_var=-40.0)
    assert (capacitive.reactive_power_import_var, capacitive.reactive_power_export_var) == (0, 40)
    unknown = reading()
    assert (unknown.reactive_power_import_var, unknown.reactive_power_export_var) == (None, None)
    for signed in (250.0, -40.0, 0.0):
        r = reading(reactive_power_var=signed)
        assert merge_reactive_power(r.reactive_power_import_var, r.reactive_power_export_var) == (
            signed
        )
