"""What the energy of a period cost, from the configured ``[prices]`` (:class:`PricesConfig`).

Imported energy is priced per TOU tier (``tier1`` .. ``tier4``, each falling back to
``import``); exported energy earns ``export``.  A tier's energy comes from the meter's tier
registers; when they are unknown for a tier that has a price of its own, the import cost is
unknown too (``None``: the page shows a dash, never a guess).  Without tier prices the total
import register is priced at ``import`` whatever the tiers say.
"""

from __future__ import annotations

from dataclasses import dataclass

from mepgate.config import PricesConfig
from mepgate.config.settings import PRICE_TIERS
from mepgate.store import EnergyDelta

WH_PER_KWH = 1000.0


@dataclass(frozen=True, slots=True)
class Cost:
    """``import_cost`` (what the imported energy cost), ``export_credit`` (what the exported
    energy earned, ``None`` without an export price) and ``net`` (the first minus the second);
    ``tiers``: the cost of each tier's imported energy, tier 1 first (``None``: unknown)."""

    import_cost: float | None
    export_credit: float | None
    net: float | None
    tiers: tuple[float | None, ...]


def _tier_energy(delta: EnergyDelta, tier: int) -> float | None:
    values = delta.tier_forward_wh
    return values[tier - 1] if tier - 1 < len(values) else None


ROUNDING_WH = 1.0
"""Each register counts whole watt-hours: the tiers' sum may trail the total by this per tier."""


def _tiered(delta: EnergyDelta, prices: PricesConfig, costs: list[float | None]) -> float | None:
    """The import cost as the sum of the tiers' costs, or ``None`` if some energy is unpriced
    or of an unknown tier.  A tier whose registers are unknown counts as nothing only when the
    known tiers add up to the total (a meter with fewer tiers)."""
    total, known = 0.0, 0.0
    missing = False
    for tier, cost in zip(PRICE_TIERS, costs, strict=True):
        energy = _tier_energy(delta, tier)
        if energy is None:
            missing = True
            if prices.tier(tier) is not None:
                return None  # a price of its own, for energy not known
        elif cost is None and energy:
            return None  # energy without any price
        else:
            known += energy
            total += cost or 0.0
    if missing and abs(delta.forward_wh - known) > ROUNDING_WH * len(PRICE_TIERS):
        return None
    return total


def cost_of(delta: EnergyDelta, prices: PricesConfig) -> Cost:
    tiers: list[float | None] = []
    for tier in PRICE_TIERS:
        price, energy = prices.import_price_of(tier), _tier_energy(delta, tier)
        tiers.append(None if price is None or energy is None else energy / WH_PER_KWH * price)
    own_prices = any(prices.tier(t) is not None for t in PRICE_TIERS)
    import_cost: float | None
    if not own_prices:
        assert prices.import_price is not None  # PricesConfig requires one price at least
        import_cost = delta.forward_wh / WH_PER_KWH * prices.import_price
    else:
        import_cost = _tiered(delta, prices, tiers)
    export_credit = None if prices.export is None else delta.reverse_wh / WH_PER_KWH * prices.export
    net = None if import_cost is None else import_cost - (export_credit or 0.0)
    return Cost(import_cost=import_cost, export_credit=export_credit, net=net, tiers=tuple(tiers))
