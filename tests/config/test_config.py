"""Configuration: validation messages, environment overrides, secret files."""

from __future__ import annotations

import logging
import stat
import tomllib
from pathlib import Path

import pytest

from mepgate.config import ConfigError, load_settings, meter_key, save_settings
from mepgate.config.secrets import write_secret_file

GOOD = """
[[meter]]
name = "house"
port = "/dev/ttyUSB0"
key_file = "mbk.txt"
poll_interval = 2.0

[storage]
url = "sqlite:///tmp/x.db"

[web]
listen = "127.0.0.1:8099"
"""


def test_a_valid_file_loads(tmp_path: Path) -> None:
    path = tmp_path / "mepgate.toml"
    path.write_text(GOOD)
    settings = load_settings(path, env={})
    assert settings.meter[0].poll_interval == 2.0
    assert (settings.web.host, settings.web.port) == ("127.0.0.1", 8099)


def test_a_missing_file_gives_defaults(tmp_path: Path) -> None:
    settings = load_settings(tmp_path / "absent.toml", env={})
    assert settings.meter == []
    assert settings.web.listen == "127.0.0.1:8080"


@pytest.mark.parametrize(
    ("snippet", "expected"),
    [
        ('[[meter]]\nport = "/dev/ttyUSB0"\npoll_interval = 0', "meter.0.poll_interval"),
        ('[[meter]]\nport = "COMX"', "meter.0.port: give a serial device"),
        ('[[meter]]\nport = "tcp://host:99999"', "meter.0.port: a TCP port is a number from 1"),
        ('[[meter]]\nport = "/dev/x"\nbaud = 9601', "meter.0.baud"),
        ("[web]\nlisten = 'localhost'", "web.listen: use HOST:PORT"),
        ("[web]\nlisen = '1:2'", "web.lisen: unknown setting"),
        ("[storage]\nurl = 'mysql://x'", "storage.url: use sqlite:///"),
        ("[[meter]]\nname = 'a'", "meter.0.port: required"),
    ],
)
def test_errors_name_the_key_and_what_is_valid(tmp_path: Path, snippet: str, expected: str) -> None:
    path = tmp_path / "bad.toml"
    path.write_text(snippet)
    with pytest.raises(ConfigError, match=expected.replace(".", r"\.").replace("(", r"\(")):
        load_settings(path, env={})


def test_broken_toml_is_explained(tmp_path: Path) -> None:
    path = tmp_path / "broken.toml"
    path.write_text("[web\nlisten=")
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_settings(path, env={})


def test_secrets_are_never_echoed_in_errors(tmp_path: Path) -> None:
    path = tmp_path / "bad.toml"
    path.write_text('[mqtt]\nurl = "mqtt://b:1883"\npassword = "hunter2"\nqos = 7\n')
    with pytest.raises(ConfigError) as info:
        load_settings(path, env={"MEPGATE_KEY": "SECRETKEYSECRETKEY12"})
    assert "hunter2" not in str(info.value)
    assert "SECRETKEY" not in str(info.value)
    assert "mqtt.qos" in str(info.value)


def test_environment_overrides_the_file(tmp_path: Path) -> None:
    path = tmp_path / "mepgate.toml"
    path.write_text(GOOD)
    settings = load_settings(
        path,
        env={
            "MEPGATE_WEB_LISTEN": "0.0.0.0:9000",
            "MEPGATE_METER_PORT": "tcp://10.0.0.5:2000",
            "MEPGATE_KEY": "A1B2C3D4E5F6A7B8C9D0",
            "MEPGATE_MQTT_URL": "mqtt://broker:1883",
            "OTHER": "x",
        },
    )
    assert settings.web.port == 9000
    assert settings.meter[0].port == "tcp://10.0.0.5:2000"
    assert settings.mqtt is not None
    assert settings.mqtt.url == "mqtt://broker:1883"
    assert meter_key(settings.meter[0], tmp_path) == b"A1B2C3D4E5F6A7B8"  # not key_file


def test_key_and_key_file_together_are_refused(tmp_path: Path) -> None:
    path = tmp_path / "mepgate.toml"
    path.write_text(GOOD.replace('key_file = "mbk.txt"', 'key_file = "a"\nkey = "b"'))
    with pytest.raises(ConfigError, match="either key or key_file"):
        load_settings(path, env={})


def test_the_key_comes_from_its_file(tmp_path: Path) -> None:
    path = tmp_path / "mepgate.toml"
    path.write_text(GOOD)
    settings = load_settings(path, env={})
    with pytest.raises(ConfigError, match=r"key_file .* cannot be read"):
        meter_key(settings.meter[0], tmp_path)
    write_secret_file(tmp_path / "mbk.txt", "A1B2C3D4E5F6A7B8C9D0\n")
    assert meter_key(settings.meter[0], tmp_path) == b"A1B2C3D4E5F6A7B8"


def test_text_files_saved_as_utf_16_load_and_binary_ones_say_how_to_save_them(
    tmp_path: Path,
) -> None:
    path = tmp_path / "mepgate.toml"
    path.write_bytes(GOOD.encode("utf-16"))  # Notepad's "Unicode": UTF-16 with a BOM
    settings = load_settings(path, env={})
    (tmp_path / "mbk.txt").write_bytes("A1B2C3D4E5F6A7B8C9D0\n".encode("utf-16"))
    (tmp_path / "mbk.txt").chmod(0o600)
    assert meter_key(settings.meter[0], tmp_path) == b"A1B2C3D4E5F6A7B8"
    (tmp_path / "mbk.txt").write_bytes(b"\xff\xfe\x00\xd8garbage"[2:])  # no BOM, not UTF-8
    with pytest.raises(ConfigError, match=r"key_file .*mbk.txt is not text in UTF-8: save it"):
        meter_key(settings.meter[0], tmp_path)
    path.write_bytes(b"\x89PNG\r\n\x1a\n")
    with pytest.raises(ConfigError, match=r"configuration file .* is not text in UTF-8"):
        load_settings(path, env={})


def test_secret_files_are_created_0600_and_saved_config_too(tmp_path: Path) -> None:
    write_secret_file(tmp_path / "k.txt", "x")
    assert stat.S_IMODE((tmp_path / "k.txt").stat().st_mode) == 0o600
    path = tmp_path / "sub" / "mepgate.toml"
    path.parent.mkdir()
    (tmp_path / "mepgate.toml").write_text(
        GOOD + '\n[mqtt]\nurl = "mqtt://b:1883"\npassword = "pw"\n'
    )
    settings = load_settings(tmp_path / "mepgate.toml", env={})
    save_settings(settings, path)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    again = load_settings(path, env={})
    assert again == settings
    assert again.mqtt is not None
    assert again.mqtt.password is not None
    assert again.mqtt.password.get_secret_value() == "pw"
    assert "pw" not in repr(again)


@pytest.mark.parametrize(("old", "new"), [("auto", "auto"), ("always", "tls"), ("never", "rc4")])
def test_the_old_tls_spelling_loads_as_security_and_saving_writes_the_new_key(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, old: str, new: str
) -> None:
    path = tmp_path / "mepgate.toml"
    path.write_text(GOOD.replace("poll_interval = 2.0", f'poll_interval = 2.0\ntls = "{old}"'))
    with caplog.at_level(logging.WARNING):
        settings = load_settings(path, env={})
    assert settings.meter[0].security == new
    assert f'meter.0.tls: tls = "{old}" is the old spelling; write security = "{new}"' in (
        caplog.text
    )
    save_settings(settings, path)
    saved = tomllib.loads(path.read_text())["meter"][0]
    assert saved["security"] == new
    assert "tls" not in saved
    caplog.clear()
    with caplog.at_level(logging.WARNING):
        assert load_settings(path, env={}) == settings
    assert "old spelling" not in caplog.text


def test_the_old_tls_environment_variable_still_works(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "mepgate.toml"
    path.write_text(GOOD.replace("poll_interval = 2.0", 'poll_interval = 2.0\nsecurity = "tls"'))
    with caplog.at_level(logging.WARNING):
        settings = load_settings(path, env={"MEPGATE_METER_TLS": "never"})
    assert settings.meter[0].security == "rc4"  # the environment overrides the file
    assert "set MEPGATE_METER_SECURITY=rc4 instead" in caplog.text
    settings = load_settings(path, env={"MEPGATE_METER_SECURITY": "auto"})
    assert settings.meter[0].security == "auto"


@pytest.mark.parametrize(
    ("lines", "expected"),
    [
        (
            'tls = "sometimes"',
            r'meter\.0\.tls: the old spelling of security: use security = "auto"',
        ),
        ('tls = "always"\nsecurity = "tls"', r"meter\.0\.tls: the old spelling of security; set"),
        ('security = "always"', r"meter\.0\.security: Input should be 'auto', 'tls' or 'rc4'"),
    ],
)
def test_a_wrong_security_setting_names_the_key(tmp_path: Path, lines: str, expected: str) -> None:
    path = tmp_path / "mepgate.toml"
    path.write_text(GOOD.replace("poll_interval = 2.0", f"poll_interval = 2.0\n{lines}"))
    with pytest.raises(ConfigError, match=expected) as info:
        load_settings(path, env={})
    assert "sometimes" not in str(info.value)
