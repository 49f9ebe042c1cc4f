"""Environment and command-line overrides are never written back: saving writes the file's own
value of every overridden key (a secret in the environment never lands in ``mepgate.toml``)."""

from __future__ import annotations

import tomllib
from pathlib import Path

from pydantic import SecretStr

from mepgate.config import load_settings, override_settings, save_settings

ENV_KEY = "EnvKey1EnvKey2EnvKey"
ENV_MQTT_PASSWORD = "env-mqtt-pw-7Qx"
FILE = """
[[meter]]
name = "house"
port = "/dev/ttyUSB0"
key_file = "mbk.txt"
poll_interval = 2.0

[[meter]]
name = "garage"
port = "/dev/ttyUSB1"
key_file = "garage.txt"

[web]
listen = "127.0.0.1:8099"

[mqtt]
url = "mqtt://broker.local:1883"
username = "ha"
password_file = "mqtt-password"
"""
ENV = {
    "MEPGATE_KEY": ENV_KEY,
    "MEPGATE_MQTT_PASSWORD": ENV_MQTT_PASSWORD,
    "MEPGATE_WEB_LISTEN": "0.0.0.0:9000",
    "MEPGATE_METER_POLL_INTERVAL": "5",
}


def config(tmp_path: Path, text: str = FILE) -> Path:
    path = tmp_path / "mepgate.toml"
    path.write_text(text, encoding="utf-8")
    return path


def saved(path: Path) -> dict[str, object]:
    return tomllib.loads(path.read_text(encoding="utf-8"))


def test_saving_writes_the_files_own_values_for_environment_overrides(tmp_path: Path) -> None:
    path = config(tmp_path)
    settings = load_settings(path, env=ENV)
    assert settings.meter[0].key is not None  # in effect while the gateway runs
    assert settings.web.listen == "0.0.0.0:9000"
    assert settings.overridden("meter.0.key") is not None
    assert settings.overridden("meter.0.key").source == "MEPGATE_KEY"  # type: ignore[union-attr]
    save_settings(settings, path)
    text = path.read_text(encoding="utf-8")
    assert ENV_KEY not in text
    assert ENV_MQTT_PASSWORD not in text
    assert "0.0.0.0" not in text
    again = load_settings(path, env={})
    assert again.meter[0].key is None
    assert again.meter[0].key_file == Path("mbk.txt")  # not replaced by the environment's key
    assert again.meter[0].poll_interval == 2.0
    assert again.web.listen == "127.0.0.1:8099"
    assert again.mqtt is not None
    assert again.mqtt.password is None
    assert again.mqtt.password_file == Path("mqtt-password")
    assert load_settings(path, env=ENV) == settings  # and the environment still applies


def test_keys_the_file_lacks_stay_out_of_it(tmp_path: Path) -> None:
    """A deployment configured by environment variables: the file has (almost) nothing."""
    path = config(tmp_path, '[storage]\ntimezone = "UTC"\n')
    env = {
        "MEPGATE_METER_PORT": "tcp://10.0.0.5:2000",
        "MEPGATE_KEY": ENV_KEY,
        "MEPGATE_MQTT_URL": "mqtt://broker.local:1883",
        "MEPGATE_MQTT_PASSWORD": ENV_MQTT_PASSWORD,
    }
    settings = load_settings(path, env=env)
    renamed = settings.model_copy(
        update={"meter": [settings.meter[0].model_copy(update={"name": "house"})]}
    )
    save_settings(renamed, path)
    data = saved(path)
    assert ENV_KEY not in path.read_text()
    assert ENV_MQTT_PASSWORD not in path.read_text()
    meters = data["meter"]
    assert isinstance(meters, list)
    assert meters[0]["name"] == "house"  # given on the setup page: the file's own
    assert not {"port", "key", "key_file"} & set(meters[0])
    assert "mqtt" not in data  # a section whose url is not the file's is not the file's
    again = load_settings(path, env=env)
    assert again.meter[0].name == "house"
    assert again.meter[0].port == "tcp://10.0.0.5:2000"


def test_command_line_options_are_never_saved(tmp_path: Path) -> None:
    path = config(tmp_path)
    settings = override_settings(
        load_settings(path, env={}),
        {"web.listen": ("--listen", "0.0.0.0:8181"), "mqtt.url": ("--mqtt", "mqtt://other:1883")},
    )
    assert settings.web.listen == "0.0.0.0:8181"
    assert settings.overridden("web.listen").source == "--listen"  # type: ignore[union-attr]
    save_settings(settings, path)
    again = load_settings(path, env={})
    assert again.web.listen == "127.0.0.1:8099"
    assert again.mqtt is not None
    assert again.mqtt.url == "mqtt://broker.local:1883"


def test_command_line_options_on_top_of_the_environment_keep_the_files_value(
    tmp_path: Path,
) -> None:
    path = config(tmp_path)
    settings = override_settings(
        load_settings(path, env={"MEPGATE_WEB_LISTEN": "0.0.0.0:9000"}),
        {"web.listen": ("--listen", "0.0.0.0:8181")},
    )
    save_settings(settings, path)
    assert load_settings(path, env={}).web.listen == "127.0.0.1:8099"


def test_the_demos_listen_option_is_not_saved(tmp_path: Path) -> None:
    """``mepgate demo --listen``: no file yet, so the default stays the default."""
    from mepgate.config import MeterConfig, Settings  # noqa: PLC0415

    demo = Settings(meter=[MeterConfig(name="demo", port="sim:gen4-3phase")])
    settings = override_settings(demo, {"web.listen": ("--listen", "0.0.0.0:8181")})
    path = tmp_path / "mepgate.toml"
    save_settings(settings, path)
    assert "0.0.0.0" not in path.read_text()
    assert load_settings(path, env={}).web.listen == "127.0.0.1:8080"


def test_a_value_changed_since_is_saved(tmp_path: Path) -> None:
    path = config(tmp_path)
    settings = load_settings(path, env=ENV)
    changed = settings.model_copy(
        update={
            "meter": [
                settings.meter[0].model_copy(update={"poll_interval": 3.0}),
                settings.meter[1],
            ]
        }
    )
    save_settings(changed, path)
    assert load_settings(path, env={}).meter[0].poll_interval == 3.0


def test_overrides_follow_their_meter_when_the_list_changes(tmp_path: Path) -> None:
    """The setup page puts the meter it sets up first: the environment's key stays with the
    meter it was given for, and is not written for it at its new place."""
    path = config(tmp_path)
    settings = load_settings(path, env=ENV)
    house, garage = settings.meter
    shed = garage.model_copy(update={"name": "shed", "key_file": None, "key": SecretStr("x" * 20)})
    reordered = settings.model_copy(update={"meter": [shed, house, garage]})
    save_settings(reordered.keeping_overrides_of(settings, [None, 0, 1]), path)
    text = path.read_text()
    assert ENV_KEY not in text
    again = load_settings(path, env={})
    assert [m.name for m in again.meter] == ["shed", "house", "garage"]
    assert again.meter[1].key_file == Path("mbk.txt")
    assert again.meter[1].poll_interval == 2.0
    assert again.meter[0].key is not None  # the new meter's own (inline) key is its own


def test_removing_the_overridden_meter_saves_the_others_own_values(tmp_path: Path) -> None:
    path = config(tmp_path)
    settings = load_settings(path, env=ENV)
    garage = settings.meter[1]
    save_settings(
        settings.model_copy(update={"meter": [garage]}).keeping_overrides_of(settings, [1]), path
    )
    again = load_settings(path, env={})
    assert [m.name for m in again.meter] == ["garage"]
    assert again.meter[0].key_file == Path("garage.txt")
    assert ENV_KEY not in path.read_text()


def test_settings_equal_by_value_whatever_their_overrides(tmp_path: Path) -> None:
    path = config(tmp_path)
    from_env = load_settings(path, env={"MEPGATE_WEB_LISTEN": "127.0.0.1:8099"})
    assert from_env.overrides
    assert from_env == load_settings(path, env={})
    assert ENV_KEY not in repr(load_settings(path, env=ENV).overrides)
