"""Config, console and meter pages through the real app; secrets never leave the gateway."""

from __future__ import annotations

import re
import stat
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from pydantic import SecretStr

from mepgate.config import MeterConfig, MqttConfig, load_settings
from mepgate.web.auth import AdminPassword
from mepgate.web.settings_form import MASK

from ..support.gateway import FakeGateway
from .conftest import ADMIN_PASSWORD, TEST_KEY, csrf_of
from .forms import form_fields
from .support import reconfigure

MQTT_PASSWORD = "mqtt-pw-Zq9!x"
DB_PASSWORD = "db-pw-K7m2"
INLINE_KEY = "Inl1neKeyInl1neKey99"
SECRETS = (TEST_KEY, MQTT_PASSWORD, DB_PASSWORD, INLINE_KEY, ADMIN_PASSWORD)


@pytest.fixture
def store_url(sqlite_url: str) -> str:
    return sqlite_url


@pytest.fixture
def secret_gateway(gateway: FakeGateway, data_dir: Path) -> FakeGateway:
    """The gateway configured with a secret of every kind."""
    key_file = data_dir / "garage.key"
    key_file.write_text(TEST_KEY + "\n")
    key_file.chmod(0o600)
    settings = gateway.settings.model_copy(
        update={
            "meter": [
                gateway.settings.meter[0].model_copy(update={"key": SecretStr(INLINE_KEY)}),
                MeterConfig(name="garage", port="/dev/ttyUSB1", key_file=key_file),
            ],
            "mqtt": MqttConfig(
                url="mqtt://broker.local:1883", username="ha", password=SecretStr(MQTT_PASSWORD)
            ),
            "storage": gateway.settings.storage.model_copy(
                update={"url": f"postgresql://mepgate:{DB_PASSWORD}@db.local/mepgate"}
            ),
        }
    )
    reconfigure(gateway, settings)
    return gateway


def assert_no_secret(text: str, where: str) -> None:
    for secret in SECRETS:
        assert secret not in text, f"a secret appears in {where}"


def test_config_page_masks_secrets_and_keeps_them_when_posted_back(
    admin: TestClient, secret_gateway: FakeGateway
) -> None:
    page = admin.get("/config")
    assert page.status_code == 200
    assert_no_secret(page.text, "/config")
    fields = form_fields(page.text, "config-form")
    assert fields["meter.0.key"] == MASK
    assert fields["meter.1.key"] == MASK
    assert fields["mqtt.password"] == MASK
    assert fields["storage.url"] == "postgresql://mepgate:***@db.local/mepgate"
    fields["web.listen"] = "127.0.0.1:8181"
    saved = admin.post("/config", data=fields, follow_redirects=False)
    assert saved.status_code == 303, saved.text
    new = secret_gateway.settings
    assert new.web.listen == "127.0.0.1:8181"
    assert new.meter[0].key is not None
    assert new.meter[0].key.get_secret_value() == INLINE_KEY
    assert new.meter[1].key_file == secret_gateway.config_path.parent / "garage.key"
    assert new.mqtt is not None
    assert new.mqtt.password is not None
    assert new.mqtt.password.get_secret_value() == MQTT_PASSWORD
    assert new.storage.url == f"postgresql://mepgate:{DB_PASSWORD}@db.local/mepgate"
    reloaded = load_settings(secret_gateway.config_path, env={})
    assert reloaded == new
    assert "Saved" in admin.get("/config?saved=true").text


def test_config_new_key_goes_to_a_0600_file(
    admin: TestClient, gateway: FakeGateway, data_dir: Path
) -> None:
    fields = form_fields(admin.get("/config").text, "config-form")
    fields["meter.0.key"] = TEST_KEY
    assert admin.post("/config", data=fields, follow_redirects=False).status_code == 303
    key_file = data_dir / "house.key"
    assert key_file.read_text().strip() == TEST_KEY
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    assert gateway.settings.meter[0].key_file == key_file
    assert TEST_KEY not in gateway.config_path.read_text()
    assert_no_secret(admin.get("/config").text, "/config after a key change")


def test_config_add_and_remove_a_meter(admin: TestClient, gateway: FakeGateway) -> None:
    fields = form_fields(admin.get("/config").text, "config-form")
    fields.update({"meter.new.name": "garage", "meter.new.port": "tcp://127.0.0.1:7001"})
    assert admin.post("/config", data=fields, follow_redirects=False).status_code == 303
    assert [m.name for m in gateway.settings.meter] == ["house", "garage"]
    fields = form_fields(admin.get("/config").text, "config-form")
    fields["meter.0.remove"] = "on"
    assert admin.post("/config", data=fields, follow_redirects=False).status_code == 303
    assert [m.name for m in gateway.settings.meter] == ["garage"]


def test_config_security_speaks_the_clients_words_and_saves_the_new_key(
    admin: TestClient, gateway: FakeGateway
) -> None:
    page = admin.get("/config").text
    fields = form_fields(page, "config-form")
    assert fields["meter.0.security"] == "auto"
    assert fields["meter.new.security"] == "auto"
    assert "meter.0.tls" not in fields
    options = re.search(r'<select[^>]*name="meter\.0\.security".*?</select>', page, re.S)
    assert options is not None
    assert re.findall(r"<option[^>]*>([^<]*)</option>", options[0]) == ["auto", "tls", "rc4"]
    fields["meter.0.security"] = "rc4"
    assert admin.post("/config", data=fields, follow_redirects=False).status_code == 303
    assert gateway.settings.meter[0].security == "rc4"
    saved = gateway.config_path.read_text()
    assert 'security = "rc4"' in saved
    assert "tls" not in saved


def test_config_errors_name_the_field_and_change_nothing(
    admin: TestClient, secret_gateway: FakeGateway
) -> None:
    before = secret_gateway.settings
    fields = form_fields(admin.get("/config").text, "config-form")
    fields["web.listen"] = "nowhere"
    fields["meter.0.port"] = "COMX"
    fields["meter.1.key"] = "too-short"
    response = admin.post("/config", data=fields)
    assert response.status_code == 422
    assert "use HOST:PORT" in response.text
    assert "tcp://host:port" in response.text
    assert "the key has 9 characters" in response.text
    assert "too-short" not in response.text
    assert_no_secret(response.text, "the config error page")
    assert secret_gateway.settings == before
    assert secret_gateway.applied == []


def test_config_refuses_an_unknown_disabled_entity_before_writing_anything(
    admin: TestClient, gateway: FakeGateway, data_dir: Path
) -> None:
    mqtt = MqttConfig(url="mqtt://broker.local:1883", disabled_entities=("tarif_tier",))
    reconfigure(gateway, gateway.settings.model_copy(update={"mqtt": mqtt}))
    before = gateway.settings
    fields = form_fields(admin.get("/config").text, "config-form")
    fields["meter.0.key"] = TEST_KEY
    response = admin.post("/config", data=fields)
    assert response.status_code == 422
    assert "mqtt.disabled_entities: no entity is called &#39;tarif_tier&#39;" in response.text
    assert "tariff_tier" in response.text
    assert_no_secret(response.text, "the config error page")
    assert gateway.settings == before
    assert gateway.applied == []
    assert not (data_dir / "house.key").exists()


def test_admin_password_change(admin: TestClient, data_dir: Path) -> None:
    fields = form_fields(admin.get("/config").text, "config-form")
    fields["admin.password"] = fields["admin.password_repeat"] = "a brand new one"
    assert admin.post("/config", data=fields, follow_redirects=False).status_code == 303
    assert admin.get("/config").status_code == 200  # this session continues
    assert AdminPassword(data_dir).check("a brand new one")
    assert not AdminPassword(data_dir).check(ADMIN_PASSWORD)


def test_console_reads_a_table_and_decodes_it(admin: TestClient, gateway: FakeGateway) -> None:
    page = admin.get("/console")
    token = csrf_of(page.text)
    reply = admin.post("/console", data={"csrf_token": token, "meter": "house", "table": "BT01"})
    assert reply.status_code == 200
    assert gateway.console_requests == ["3000010200"]
    assert "0x00" in reply.text
    assert "ELON" in reply.text  # decoded BT01 manufacturer
    assert "83334-3I" in reply.text
    partial = admin.post(
        "/console",
        data={"csrf_token": token, "meter": "house", "request_hex": "3F 0017 000000 000D"},
    )
    assert partial.status_code == 200
    assert gateway.console_requests[-1] == "3f0017000000000d"
    by_form = admin.post(
        "/console",
        data={"csrf_token": token, "meter": "house", "table": "BT23", "offset": "0", "count": "13"},
    )
    assert by_form.status_code == 200
    assert gateway.console_requests[-1] == "3f0017000000000d"


def test_console_refuses_writes_and_bad_input(admin: TestClient, gateway: FakeGateway) -> None:
    token = csrf_of(admin.get("/console").text)

    def send(**fields: str) -> str:
        response = admin.post("/console", data={"csrf_token": token, "meter": "house", **fields})
        assert response.status_code == 422
        text: str = response.text
        return text

    assert "writes are off" in send(request_hex="40 0017 0001 00")
    assert "not hex" in send(request_hex="zz")
    assert "not a valid C12.18 request" in send(request_hex="99")
    assert "needs a count" in send(table="BT28", offset="4")
    assert gateway.console_requests == []


def test_meter_page_shows_identity_link_and_diagnosis(client: TestClient) -> None:
    page = client.get("/meter").text
    for text in ("ELON", "83334-3I", "no-answer", "check the wiring", "requests", "Rejected"):
        assert text in page


def _pages_and_endpoints(client: TestClient) -> list[str]:
    schema = client.get("/api/v1/openapi.json").json()
    paths = ["/", "/history", "/meter", "/console", "/config", "/login", "/setup"]
    for path in schema["paths"]:
        if path.endswith("/stream"):
            continue  # an endless stream: checked in the browser tests
        paths.append(path.replace("{meter}", "house"))
    return [*paths, "/api/v1/openapi.json", "/api/v1/docs", "/static/app.css"]


def test_no_secret_in_any_page_or_response(
    admin: TestClient, secret_gateway: FakeGateway, data_dir: Path
) -> None:
    assert (data_dir / "garage.key").read_text().strip() == TEST_KEY
    checked = 0
    for path in _pages_and_endpoints(admin):
        response = admin.get(path)
        assert response.status_code < 500, path
        assert_no_secret(response.text, path)
        assert_no_secret(str(response.headers), f"headers of {path}")
        checked += 1
    token = csrf_of(admin.get("/console").text)
    console = admin.post("/console", data={"csrf_token": token, "meter": "house", "table": "ET13"})
    assert_no_secret(console.text, "a console reply")
    assert checked > 15
    assert re.search(r"scrypt\$", (data_dir / "admin-password").read_text())
