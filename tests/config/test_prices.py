"""``[prices]``: loaded from TOML (``import`` is a Python keyword, the file spells it so),
validated with the key named, overridable from the environment and saved as written."""

from __future__ import annotations

from pathlib import Path

import pytest

from mepgate.config import ConfigError, Settings, load_settings, save_settings


def load(tmp_path: Path, text: str, env: dict[str, str] | None = None) -> Settings:
    path = tmp_path / "mepgate.toml"
    path.write_text(text)
    return load_settings(path, env=env or {})


def test_prices_load_and_save_with_the_files_spelling(tmp_path: Path) -> None:
    settings = load(
        tmp_path, '[prices]\ncurrency = "DKK"\nimport = 2.0\ntier1 = 1.5\nexport = 0.6\n'
    )
    prices = settings.prices
    assert prices is not None
    assert (prices.import_price, prices.tier1, prices.tier2, prices.export) == (2.0, 1.5, None, 0.6)
    assert prices.import_price_of(1) == 1.5
    assert prices.import_price_of(2) == 2.0
    out = tmp_path / "saved.toml"
    save_settings(settings, out)
    text = out.read_text()
    assert "import = 2.0" in text
    assert "import_price" not in text
    assert load_settings(out, env={}).prices == prices
    assert load(tmp_path, "").prices is None  # optional: no section, no costs


def test_the_environment_overrides_a_price_and_saving_keeps_the_files(tmp_path: Path) -> None:
    settings = load(tmp_path, "[prices]\nimport = 2.0\n", env={"MEPGATE_PRICES_TIER2": "3.5"})
    assert settings.prices is not None
    assert settings.prices.tier2 == 3.5
    save_settings(settings, tmp_path / "saved.toml")
    assert "tier2" not in (tmp_path / "saved.toml").read_text()


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('[prices]\ncurrency = "DKK"\n', "prices: give the price of an imported kWh"),
        ("[prices]\ntier1 = 5000\n", "prices.tier1: a price per kWh from -1000 to 1000"),
        ('[prices]\nimport = 1\ncurrency = "D K"\n', "prices.currency: use 1-8 characters"),
        ('[prices]\nimport = "cheap"\n', "prices.import: Input should be a valid number"),
        ("[prices]\nimport = 1\ntier5 = 2\n", "prices.tier5: unknown setting"),
    ],
)
def test_a_wrong_price_is_named_with_what_is_valid(tmp_path: Path, text: str, message: str) -> None:
    with pytest.raises(ConfigError) as error:
        load(tmp_path, text)
    assert message in str(error.value)
    assert "cheap" not in str(error.value)  # the value is never repeated
