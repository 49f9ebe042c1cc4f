"""What a period's energy cost (:func:`mepgate.web.energy_costs.cost_of`): tier prices with the
import price as fallback, an export price, and unknown energy never priced as zero."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest

from mepgate.config import PricesConfig
from mepgate.store import EnergyDelta
from mepgate.web.energy_costs import cost_of

SINCE = dt.datetime(2024, 3, 1, tzinfo=dt.UTC)


def delta(forward: float, reverse: float, tiers: tuple[float | None, ...]) -> EnergyDelta:
    return EnergyDelta(forward, reverse, SINCE, tier_forward_wh=tiers, tier_reverse_wh=())


def prices(**given: Any) -> PricesConfig:
    return PricesConfig.model_validate(given)


def test_tier_prices_with_the_import_price_for_the_others() -> None:
    cost = cost_of(
        delta(10_000, 2_000, (4_000, 3_000, 2_000, 1_000)),
        prices(tier1=1.0, tier2=2.0, **{"import": 3.0}, export=0.5),
    )
    assert cost.tiers == (4.0, 6.0, 6.0, 3.0)
    assert cost.import_cost == pytest.approx(19.0)
    assert cost.export_credit == pytest.approx(1.0)
    assert cost.net == pytest.approx(18.0)


def test_a_meter_with_fewer_tiers_is_priced_when_its_tiers_add_up() -> None:
    cost = cost_of(delta(10_001, 0, (6_000, 4_000, None, None)), prices(tier1=1.0, tier2=2.0))
    assert cost.import_cost == pytest.approx(14.0)
    assert cost.export_credit is None
    assert cost.net == pytest.approx(14.0)


def test_unknown_or_unpriced_energy_makes_the_cost_unknown() -> None:
    # Tier 2's registers unknown while the total holds more than tier 1: not a guess.
    assert cost_of(delta(10_000, 0, (6_000, None)), prices(tier1=1.0)).import_cost is None
    # A tier with its own price but no registers.
    assert cost_of(delta(10_000, 0, (10_000, None)), prices(tier2=1.0)).import_cost is None
    # Energy in a tier that has no price and no import price to fall back on.
    unpriced = cost_of(delta(10_000, 0, (6_000, 4_000)), prices(tier1=1.0))
    assert unpriced.import_cost is None
    assert unpriced.net is None
    # A tier without a price that counted nothing costs nothing.
    assert cost_of(delta(6_000, 0, (6_000, 0.0)), prices(tier1=1.0)).import_cost == 6.0


def test_a_flat_price_prices_the_total_whatever_the_tiers() -> None:
    cost = cost_of(delta(10_000, 1_000, ()), prices(**{"import": 2.5}, export=-0.1))
    assert cost.import_cost == pytest.approx(25.0)
    assert cost.export_credit == pytest.approx(-0.1)  # negative prices exist (you pay to export)
    assert cost.net == pytest.approx(25.1)
