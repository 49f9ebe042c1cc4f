"""The setup and config pages choose a meter's interface (mep / optical): an optical meter's
key is checked as an optical password, MEP-only settings are refused next to their fields, and
a key kept across a change of interface must be typed again."""

from __future__ import annotations

import re
import stat
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from mepgate.config import load_settings
from mepgate.web import create_app

from ..support.gateway import FakeGateway
from .conftest import TEST_KEY, csrf_of
from .forms import form_fields
from .support import reconfigure

OPTICAL_PASSWORD = "Rk7#pQ2!mZ9@wX4$tL6%"  # 20 characters, as a grid company hands them out
BARE_HEX = "41" * 20  # the 20 characters "converted to hex": refused


@pytest.fixture
def store_url(sqlite_url: str) -> str:
    return sqlite_url


def _invalid_field(html: str, name: str) -> str:
    """The error text next to field ``name``, or '' when the field is not marked invalid."""
    pattern = rf'<label class="field [^"]*invalid" id="field-{re.escape(name.replace(".", "-"))}">'
    match = re.search(pattern + r'.*?<small class="error">([^<]*)</small>', html, re.S)
    return match[1] if match else ""


def _setup_fields(client: TestClient, **changes: str) -> dict[str, str]:
    page = client.get("/setup").text
    fields = form_fields(page)
    fields.update(
        {
            "csrf_token": csrf_of(page),
            "password": "a fine password",
            "password_repeat": "a fine password",
            "meter_name": "flat",
            "meter_port": "/dev/ttyUSB0",
        }
    )
    fields.update(changes)
    return fields


def test_setup_offers_the_interface_and_saves_an_optical_meter(
    gateway: FakeGateway, data_dir: Path
) -> None:
    reconfigure(gateway, gateway.settings.model_copy(update={"meter": []}))
    with TestClient(create_app(gateway, data_dir=data_dir)) as client:
        page = client.get("/setup").text
        select = re.search(r'<select name="meter_interface".*?</select>', page, re.S)
        assert select is not None
        assert re.findall(r'<option value="([^"]+)"', select[0]) == ["mep", "optical"]
        assert form_fields(page)["meter_interface"] == "mep"
        fields = _setup_fields(client, meter_interface="optical", meter_key=OPTICAL_PASSWORD)
        done = client.post("/setup", data=fields, follow_redirects=False)
        assert done.status_code == 303, done.text
    key_file = data_dir / "flat.key"
    assert key_file.read_text().strip() == OPTICAL_PASSWORD
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    saved = load_settings(gateway.config_path, env={})
    assert saved.meter[0].interface == "optical"
    assert saved.meter[0].key_file == key_file
    text = gateway.config_path.read_text()
    assert OPTICAL_PASSWORD not in text
    assert "security" not in text
    assert "enable_line" not in text


def test_setup_checks_an_optical_password_as_one(gateway: FakeGateway, data_dir: Path) -> None:
    reconfigure(gateway, gateway.settings.model_copy(update={"meter": []}))
    with TestClient(create_app(gateway, data_dir=data_dir)) as client:
        bad = client.post(
            "/setup", data=_setup_fields(client, meter_interface="optical", meter_key=BARE_HEX)
        )
        assert bad.status_code == 422
        assert "Optical password:" in bad.text
        assert "hex:" in bad.text  # how to write a binary password
        assert BARE_HEX not in bad.text
        unknown = client.post(
            "/setup",
            data=_setup_fields(client, meter_interface="infrared", meter_key=OPTICAL_PASSWORD),
        )
        assert unknown.status_code == 422
        assert "Interface:" in unknown.text
        assert OPTICAL_PASSWORD not in unknown.text
    assert gateway.applied == []


def test_config_switches_a_meter_to_optical_with_its_password(
    admin: TestClient, gateway: FakeGateway, data_dir: Path
) -> None:
    page = admin.get("/config").text
    fields = form_fields(page, "config-form")
    assert fields["meter.0.interface"] == "mep"
    assert fields["meter.new.interface"] == "mep"
    fields["meter.0.interface"] = "optical"
    fields["meter.0.key"] = OPTICAL_PASSWORD
    saved = admin.post("/config", data=fields, follow_redirects=False)
    assert saved.status_code == 303, saved.text
    meter = gateway.settings.meter[0]
    assert meter.interface == "optical"
    assert meter.key_file == data_dir / "house.key"
    assert (data_dir / "house.key").read_text().strip() == OPTICAL_PASSWORD
    assert OPTICAL_PASSWORD not in admin.get("/config").text
    assert form_fields(admin.get("/config").text, "config-form")["meter.0.interface"] == "optical"


def test_config_refuses_mep_settings_for_an_optical_meter_next_to_them(
    admin: TestClient, gateway: FakeGateway
) -> None:
    before = gateway.settings
    fields = form_fields(admin.get("/config").text, "config-form")
    fields.update(
        {
            "meter.0.interface": "optical",
            "meter.0.key": OPTICAL_PASSWORD,
            "meter.0.security": "tls",
            "meter.0.enable_line": "dtr",
        }
    )
    response = admin.post("/config", data=fields)
    assert response.status_code == 422
    for name in ("meter.0.security", "meter.0.enable_line"):
        assert "only for the MEP port" in _invalid_field(response.text, name), name
    assert _invalid_field(response.text, "meter.0.encrypt") == ""
    assert OPTICAL_PASSWORD not in response.text
    assert gateway.settings == before
    assert gateway.applied == []


def test_config_checks_the_key_of_an_optical_meter_as_a_password(
    admin: TestClient, gateway: FakeGateway
) -> None:
    fields = form_fields(admin.get("/config").text, "config-form")
    fields.update(
        {
            "meter.new.name": "flat",
            "meter.new.port": "/dev/ttyUSB1",
            "meter.new.interface": "optical",
            "meter.new.key": BARE_HEX,
        }
    )
    response = admin.post("/config", data=fields)
    assert response.status_code == 422
    assert "hex:" in _invalid_field(response.text, "meter.new.key")
    assert BARE_HEX not in response.text
    assert gateway.applied == []


def test_a_kept_key_does_not_follow_a_change_of_interface(
    admin: TestClient, gateway: FakeGateway, data_dir: Path
) -> None:
    fields = form_fields(admin.get("/config").text, "config-form")
    fields["meter.0.key"] = TEST_KEY  # the MBK, into a 0600 file
    assert admin.post("/config", data=fields, follow_redirects=False).status_code == 303
    fields = form_fields(admin.get("/config").text, "config-form")
    fields["meter.0.interface"] = "optical"  # the key stays masked: it is the MBK
    response = admin.post("/config", data=fields)
    assert response.status_code == 422
    assert "the interface changed" in _invalid_field(response.text, "meter.0.key")
    assert gateway.settings.meter[0].interface == "mep"
