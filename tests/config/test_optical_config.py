"""``interface = "optical"`` in a ``[[meter]]``: its key is the optical password, the MEP-only
settings are refused, overrides work as for MEP meters, saving leaves the MEP settings out."""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest

from mepgate.c1218.keys import Password
from mepgate.config import ConfigError, load_settings, meter_key, save_settings
from mepgate.errors import LocalProtocolError
from mepgate.proto import MepKey

PASSWORD = "Rk7#pQ2!mZ9@wX4$tL6%"  # 20 characters, not all alphanumeric

OPTICAL = """
[[meter]]
name = "flat"
port = "/dev/ttyUSB0"
interface = "optical"
key_file = "optical.txt"
"""


def _load(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "mepgate.toml"
    path.write_text(text)
    return path


def test_the_interface_defaults_to_mep_and_a_mep_key_stays_a_mep_key(tmp_path: Path) -> None:
    path = _load(tmp_path, '[[meter]]\nport = "/dev/ttyUSB0"\nkey = "A1B2C3D4E5F6A7B8C9D0"\n')
    settings = load_settings(path, env={})
    assert settings.meter[0].interface == "mep"
    assert isinstance(meter_key(settings.meter[0], tmp_path), MepKey)


def test_an_optical_meters_key_file_holds_the_optical_password(tmp_path: Path) -> None:
    (tmp_path / "optical.txt").write_text(PASSWORD + "\n")
    settings = load_settings(_load(tmp_path, OPTICAL), env={})
    meter = settings.meter[0]
    assert meter.interface == "optical"
    secret = meter_key(meter, tmp_path)
    assert isinstance(secret, Password)
    assert secret.value == PASSWORD.encode("ascii")  # all 20 characters, sent as they are
    assert PASSWORD not in repr(secret)
    assert PASSWORD not in str(secret)


def test_the_hex_form_is_accepted_and_bare_hex_refused_with_advice(tmp_path: Path) -> None:
    raw = bytes(range(1, 21))
    (tmp_path / "optical.txt").write_text(f"hex:{raw.hex()}\n")
    settings = load_settings(_load(tmp_path, OPTICAL), env={})
    secret = meter_key(settings.meter[0], tmp_path)
    assert isinstance(secret, Password)
    assert secret.value == raw
    (tmp_path / "optical.txt").write_text(raw.hex() + "\n")
    with pytest.raises(LocalProtocolError, match="hex:") as caught:
        meter_key(settings.meter[0], tmp_path)
    assert raw.hex() not in str(caught.value)


def test_mepgate_key_overrides_an_optical_meters_password(tmp_path: Path) -> None:
    env = {"MEPGATE_KEY": PASSWORD}
    settings = load_settings(_load(tmp_path, OPTICAL), env=env)
    meter = settings.meter[0]
    assert meter.key_file is None
    secret = meter_key(meter, tmp_path)
    assert isinstance(secret, Password)
    assert secret.value == PASSWORD.encode()
    assert settings.overridden("meter.0.key") is not None


def test_the_environment_can_choose_the_interface(tmp_path: Path) -> None:
    path = _load(tmp_path, '[[meter]]\nport = "/dev/ttyUSB0"\n')
    settings = load_settings(path, env={"MEPGATE_METER_INTERFACE": "optical"})
    assert settings.meter[0].interface == "optical"
    assert settings.overridden("meter.0.interface") is not None


@pytest.mark.parametrize(
    ("line", "named"),
    [
        ('security = "tls"', "security"),
        ("encrypt = true", "encrypt"),
        ('enable_line = "dtr"', "enable_line"),
    ],
)
def test_mep_only_settings_on_an_optical_meter_are_refused_by_name(
    tmp_path: Path, line: str, named: str
) -> None:
    path = _load(tmp_path, OPTICAL + line + "\n")
    with pytest.raises(ConfigError) as caught:
        load_settings(path, env={})
    message = str(caught.value)
    assert "meter.0" in message
    assert f"{named}: only for the MEP port" in message
    assert 'interface = "mep"' in message  # what to do instead


def test_mep_settings_at_their_defaults_load_for_an_optical_meter(tmp_path: Path) -> None:
    # Files saved before optical meters existed wrote every default.
    path = _load(tmp_path, OPTICAL + 'security = "auto"\nencrypt = false\nenable_line = "none"\n')
    assert load_settings(path, env={}).meter[0].interface == "optical"


def test_an_unknown_interface_names_the_choices(tmp_path: Path) -> None:
    path = _load(tmp_path, '[[meter]]\nport = "/dev/ttyUSB0"\ninterface = "infrared"\n')
    with pytest.raises(ConfigError, match=r"meter\.0\.interface: .*'mep' or 'optical'"):
        load_settings(path, env={})


def test_saving_an_optical_meter_leaves_the_mep_settings_out(tmp_path: Path) -> None:
    path = _load(tmp_path, OPTICAL + '[[meter]]\nname = "house"\nport = "/dev/ttyUSB1"\n')
    settings = load_settings(path, env={})
    save_settings(settings, path)
    saved = tomllib.loads(path.read_text())
    flat, house = saved["meter"]
    assert flat["interface"] == "optical"
    assert not {"security", "encrypt", "enable_line"} & flat.keys()
    assert house["interface"] == "mep"
    assert house["security"] == "auto"
    assert load_settings(path, env={}) == settings
