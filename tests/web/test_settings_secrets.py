"""Saving settings from /setup and /config: the environment's and the command line's values are
never written to the file, and a stored secret goes only to the host it was entered for."""

from __future__ import annotations

from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from pydantic import SecretStr

from mepgate.config import MqttConfig, Settings, load_settings, override_settings
from mepgate.web import create_app
from mepgate.web.settings_form import MASK

from ..support.gateway import FakeGateway
from .conftest import TEST_KEY, csrf_of
from .forms import form_fields
from .support import reconfigure

ENV_KEY = "EnvKey1EnvKey2EnvKey"
ENV_MQTT_PASSWORD = "env-mqtt-pw-7Qx"
MQTT_PASSWORD = "mqtt-pw-Zq9!x"
URL_PASSWORD = "url-pw-Hh4"
DB_PASSWORD = "db-pw-K7m2"


@pytest.fixture
def store_url(sqlite_url: str) -> str:
    return sqlite_url


def file_config(gateway: FakeGateway, data_dir: Path, extra: str = "") -> Path:
    """``mepgate.toml`` as the admin wrote it: one meter with a key file."""
    (data_dir / "house.key").write_text(TEST_KEY + "\n")
    (data_dir / "house.key").chmod(0o600)
    path = gateway.config_path
    path.write_text(
        "[[meter]]\n"
        'name = "house"\n'
        'port = "tcp://127.0.0.1:7777"\n'
        f'key_file = "{data_dir / "house.key"}"\n\n'
        f'[storage]\nurl = "{gateway.settings.storage.url}"\n\n'
        '[web]\nlisten = "127.0.0.1:8099"\n\n'
        '[mqtt]\nurl = "mqtt://broker.local:1883"\nusername = "ha"\n' + extra,
        encoding="utf-8",
    )
    return path


ENV = {
    "MEPGATE_KEY": ENV_KEY,
    "MEPGATE_MQTT_PASSWORD": ENV_MQTT_PASSWORD,
    "MEPGATE_WEB_LISTEN": "0.0.0.0:9000",
}
# For the setup page: on loopback (the network needs the setup token: test_security.py).
SETUP_ENV = {**ENV, "MEPGATE_WEB_LISTEN": "127.0.0.2:9000"}


def test_config_page_never_writes_the_environments_values(
    admin: TestClient, gateway: FakeGateway, data_dir: Path
) -> None:
    path = file_config(gateway, data_dir)
    reconfigure(gateway, load_settings(path, env=ENV))
    page = admin.get("/config")
    assert "set by MEPGATE_KEY" in page.text
    assert "set by MEPGATE_MQTT_PASSWORD" in page.text
    assert "set by MEPGATE_WEB_LISTEN" in page.text
    assert ENV_KEY not in page.text
    assert ENV_MQTT_PASSWORD not in page.text
    fields = form_fields(page.text, "config-form")
    assert fields["meter.0.key"] == MASK
    fields["meter.0.poll_interval"] = "2.5"
    fields["web.listen"] = "0.0.0.0:7000"  # read-only on the page: a forged post changes nothing
    fields["meter.0.key"] = TEST_KEY[::-1]
    response = admin.post("/config", data=fields, follow_redirects=False)
    assert response.status_code == 303, response.text
    text = path.read_text()
    assert ENV_KEY not in text
    assert ENV_MQTT_PASSWORD not in text
    assert "0.0.0.0" not in text
    saved = load_settings(path, env={})
    assert saved.meter[0].key is None
    assert saved.meter[0].key_file == data_dir / "house.key"  # not replaced
    assert saved.meter[0].poll_interval == 2.5  # what the admin changed is saved
    assert saved.web.listen == "127.0.0.1:8099"
    assert saved.mqtt is not None
    assert saved.mqtt.password is None
    running = gateway.settings  # the gateway goes on with the environment's values
    assert running.web.listen == "0.0.0.0:9000"
    assert running.meter[0].key is not None
    assert running.meter[0].key.get_secret_value() == ENV_KEY
    # A second save still knows what the environment set.
    fields = form_fields(admin.get("/config").text, "config-form")
    assert admin.post("/config", data=fields, follow_redirects=False).status_code == 303
    assert ENV_KEY not in path.read_text()


def test_setup_page_never_writes_the_environments_key(gateway: FakeGateway, data_dir: Path) -> None:
    path = file_config(gateway, data_dir)
    reconfigure(
        gateway,
        override_settings(
            load_settings(path, env=SETUP_ENV), {"mqtt.url": ("--mqtt", "mqtt://other:1883")}
        ),
    )
    with TestClient(create_app(gateway, data_dir=data_dir)) as client:
        page = client.get("/setup")
        assert "set by MEPGATE_KEY" in page.text
        done = client.post(
            "/setup",
            data={
                "csrf_token": csrf_of(page.text),
                "password": "a fine password",
                "password_repeat": "a fine password",
                "meter_name": "house",
                "meter_port": "tcp://127.0.0.1:7777",
                "meter_key": "",
            },
            follow_redirects=False,
        )
        assert done.status_code == 303, done.text
    text = path.read_text()
    assert ENV_KEY not in text
    assert ENV_MQTT_PASSWORD not in text
    assert "127.0.0.2" not in text
    assert "other" not in text
    saved = load_settings(path, env={})
    assert saved.meter[0].key_file == data_dir / "house.key"
    assert saved.web.listen == "127.0.0.1:8099"
    assert saved.mqtt is not None
    assert saved.mqtt.url == "mqtt://broker.local:1883"


def test_setup_of_another_meter_keeps_the_environments_key_out_of_the_file(
    gateway: FakeGateway, data_dir: Path
) -> None:
    """The new meter goes first; the environment's key stays with its own meter, unsaved."""
    path = file_config(gateway, data_dir)
    reconfigure(gateway, load_settings(path, env=SETUP_ENV))
    with TestClient(create_app(gateway, data_dir=data_dir)) as client:
        page = client.get("/setup")
        done = client.post(
            "/setup",
            data={
                "csrf_token": csrf_of(page.text),
                "password": "a fine password",
                "password_repeat": "a fine password",
                "meter_name": "shed",
                "meter_port": "/dev/ttyUSB3",
                "meter_key": TEST_KEY,
            },
            follow_redirects=False,
        )
        assert done.status_code == 303, done.text
    assert ENV_KEY not in path.read_text()
    saved = load_settings(path, env={})
    assert [m.name for m in saved.meter] == ["shed", "house"]
    assert saved.meter[1].key_file == data_dir / "house.key"


# -- secrets stay with their host -----------------------------------------------------------------
@pytest.fixture
def with_secrets(gateway: FakeGateway, data_dir: Path) -> FakeGateway:
    key_file = data_dir / "house.key"
    key_file.write_text(TEST_KEY + "\n")
    key_file.chmod(0o600)
    settings = gateway.settings
    reconfigure(
        gateway,
        settings.model_copy(
            update={
                "meter": [settings.meter[0].model_copy(update={"key_file": key_file})],
                "mqtt": MqttConfig(
                    url="mqtt://broker.local:1883",
                    username="ha",
                    password=SecretStr(MQTT_PASSWORD),
                ),
            }
        ),
    )
    return gateway


def post(admin: TestClient, **changes: str) -> tuple[int, str]:
    fields = form_fields(admin.get("/config").text, "config-form")
    fields.update(changes)
    response = admin.post("/config", data=fields, follow_redirects=False)
    return response.status_code, response.text


def test_a_new_broker_host_needs_the_password_typed_again(
    admin: TestClient, with_secrets: FakeGateway
) -> None:
    before = with_secrets.settings
    status, page = post(admin, **{"mqtt.url": "mqtt://attacker.example:1883"})
    assert status == 422
    assert "type the password again" in page
    assert MQTT_PASSWORD not in page
    assert with_secrets.settings == before  # nothing applied: nothing sent anywhere
    assert with_secrets.applied == []
    status, _ = post(
        admin, **{"mqtt.url": "mqtts://broker2.local:8883", "mqtt.password": "typed-again"}
    )
    assert status == 303
    mqtt = with_secrets.mqtt
    assert mqtt.url == "mqtts://broker2.local:8883"
    assert mqtt.password is not None
    assert mqtt.password.get_secret_value() == "typed-again"


def test_the_same_broker_host_keeps_its_password(
    admin: TestClient, with_secrets: FakeGateway
) -> None:
    status, _ = post(admin, **{"mqtt.url": "mqtts://BROKER.local:8883"})
    assert status == 303
    assert with_secrets.mqtt.password is not None
    assert with_secrets.mqtt.password.get_secret_value() == MQTT_PASSWORD


def test_a_meter_port_on_another_host_needs_the_key_typed_again(
    admin: TestClient, with_secrets: FakeGateway, data_dir: Path
) -> None:
    before = with_secrets.settings
    for port in ("tcp://attacker.example:7777", "rfc2217://10.1.1.1:4001"):
        status, page = post(admin, **{"meter.0.port": port})
        assert status == 422, port
        assert "type the key again" in page
        assert with_secrets.settings == before
    status, _ = post(admin, **{"meter.0.port": "tcp://127.0.0.1:7778"})  # same host
    assert status == 303
    status, _ = post(admin, **{"meter.0.port": "tcp://10.1.1.1:4001", "meter.0.key": TEST_KEY})
    assert status == 303
    assert with_secrets.settings.meter[0].port == "tcp://10.1.1.1:4001"
    assert with_secrets.settings.meter[0].key_file == data_dir / "house.key"


def test_setup_keeps_a_configured_key_only_for_the_same_host(
    gateway: FakeGateway, data_dir: Path
) -> None:
    key_file = data_dir / "house.key"
    key_file.write_text(TEST_KEY + "\n")
    meter = gateway.settings.meter[0].model_copy(update={"key_file": key_file})
    reconfigure(gateway, gateway.settings.model_copy(update={"meter": [meter]}))
    with TestClient(create_app(gateway, data_dir=data_dir)) as client:
        page = client.get("/setup")
        fields = {
            "csrf_token": csrf_of(page.text),
            "password": "a fine password",
            "password_repeat": "a fine password",
            "meter_name": "house",
            "meter_port": "tcp://attacker.example:7777",
            "meter_key": "",
        }
        refused = client.post("/setup", data=fields)
        assert refused.status_code == 422
        assert "type the key again" in refused.text
        assert gateway.applied == []
        fields["meter_port"] = "tcp://127.0.0.1:2000"
        assert client.post("/setup", data=fields, follow_redirects=False).status_code == 303
    assert gateway.settings.meter[0].key_file == key_file


def test_passwords_inside_urls_are_masked_and_stay_with_their_host(
    admin: TestClient, gateway: FakeGateway
) -> None:
    settings = gateway.settings
    reconfigure(
        gateway,
        Settings.model_validate(
            {
                "meter": [m.model_dump() for m in settings.meter],
                "storage": {"url": f"postgresql://mepgate:{DB_PASSWORD}@db.local/mepgate"},
                "mqtt": {"url": f"mqtt://ha:{URL_PASSWORD}@broker.local:1883"},
            }
        ),
    )
    page = admin.get("/config").text
    assert URL_PASSWORD not in page
    assert DB_PASSWORD not in page
    fields = form_fields(page, "config-form")
    assert fields["mqtt.url"] == "mqtt://ha:***@broker.local:1883"
    assert post(admin)[0] == 303  # posted back unchanged: kept
    assert gateway.mqtt.url == f"mqtt://ha:{URL_PASSWORD}@broker.local:1883"
    # The same host, another port or database: the password stays.
    status, _ = post(
        admin,
        **{
            "mqtt.url": "mqtt://ha:***@broker.local:1884",
            "storage.url": "postgresql://mepgate:***@db.local/other",
        },
    )
    assert status == 303
    assert gateway.mqtt.url == f"mqtt://ha:{URL_PASSWORD}@broker.local:1884"
    assert gateway.settings.storage.url == f"postgresql://mepgate:{DB_PASSWORD}@db.local/other"
    before = gateway.settings
    for name, url in (
        ("mqtt.url", "mqtt://ha:***@attacker.example:1883"),
        ("storage.url", "postgresql://mepgate:***@attacker.example/mepgate"),
    ):
        status, page = post(admin, **{name: url})
        assert status == 422, name
        assert "type the password in the URL again" in page
        assert gateway.settings == before


def test_a_key_from_the_environment_does_not_follow_a_port_to_another_host(
    admin: TestClient, gateway: FakeGateway, data_dir: Path
) -> None:
    path = file_config(gateway, data_dir)
    reconfigure(gateway, load_settings(path, env=ENV))
    before = gateway.settings
    status, page = post(admin, **{"meter.0.port": "tcp://attacker.example:7777"})
    assert status == 422
    assert "it comes from MEPGATE_KEY" in page
    assert ENV_KEY not in page
    assert gateway.settings == before
    status, page = post(admin, **{"mqtt.url": "mqtt://attacker.example:1883"})
    assert status == 422
    assert "it comes from MEPGATE_MQTT_PASSWORD" in page
    assert gateway.settings == before
