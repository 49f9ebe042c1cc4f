"""MQTT credentials and TLS against a real Mosquitto: a broker that requires a password
(``mosquitto_passwd``, ``allow_anonymous false``) and a TLS listener whose CA and server
certificate are made here with ``openssl``.  The right secrets connect and publish; wrong ones
are refused, retried without a crash, explained, and never logged."""

from __future__ import annotations

import getpass
import logging
import shutil
import ssl
import stat
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from mepgate.config.settings import MqttConfig
from mepgate.outputs.mqtt import MqttPublisher
from mepgate.outputs.mqtt.connection import MqttConfigError

from ..support.gateway import FakeGateway, SimMeter
from ..support.wait import until
from .support import BrokerStartError, Mosquitto, Recorder, run, running

USER = "gateway"
PASSWORD = "broker-pw-Xq7"  # distinctive: searched for in every log line and repr
WRONG_PASSWORD = "not-the-pw-Zk3"
TOOL_TIMEOUT_S = 30


def _tool(name: str) -> str:
    found = shutil.which(name) or next(
        (p for p in (f"/usr/bin/{name}", f"/usr/sbin/{name}") if Path(p).exists()), None
    )
    if found is None:
        pytest.fail(f"{name} is not installed: run scripts/test (it installs it)")
    return found


def _run(*args: str) -> None:
    subprocess.run(args, check=True, capture_output=True, timeout=TOOL_TIMEOUT_S)


def _secret_file(path: Path, text: str) -> Path:
    path.write_text(text + "\n", encoding="utf-8")
    path.chmod(0o600)
    return path


def _started(directory: Path, *, listener: str = "", access: str = "") -> Mosquitto:
    """A private broker that keeps running as this user: started as root, Mosquitto would
    switch to its own user, which cannot read the test's 0600 password and key files."""
    directory.mkdir()
    access = f"{access or 'allow_anonymous true'}\nuser {getpass.getuser()}"
    try:
        broker = Mosquitto(directory, listener=listener, access=access)
        broker.start()
    except BrokerStartError as exc:
        pytest.fail(f"cannot start the test MQTT broker: {exc}")
    return broker


@pytest.fixture
def password_broker(tmp_path: Path) -> Iterator[Mosquitto]:
    """Mosquitto that lets in only ``USER`` with ``PASSWORD``."""
    passwords = tmp_path / "mosquitto.passwd"
    _run(_tool("mosquitto_passwd"), "-c", "-b", str(passwords), USER, PASSWORD)
    passwords.chmod(0o600)
    broker = _started(
        tmp_path / "broker", access=f"allow_anonymous false\npassword_file {passwords}"
    )
    yield broker
    broker.stop()


@dataclass(frozen=True)
class Pki:
    ca: Path
    other_ca: Path  # a CA that did not sign the broker's certificate
    server_cert: Path
    server_key: Path


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    """A throwaway CA and a server certificate for 127.0.0.1 it signed (EC P-256, 1 day)."""
    d = tmp_path_factory.mktemp("pki")
    openssl = _tool("openssl")
    ec = ("-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes")
    for name in ("ca", "other-ca"):
        _run(openssl, "req", "-x509", *ec, "-keyout", str(d / f"{name}.key"),
             "-out", str(d / f"{name}.crt"), "-days", "1", "-subj", f"/CN=mepgate test {name}",
             "-addext", "basicConstraints=critical,CA:TRUE",
             "-addext", "keyUsage=critical,keyCertSign,cRLSign")  # fmt: skip
    _run(openssl, "req", *ec, "-keyout", str(d / "server.key"), "-out", str(d / "server.csr"),
         "-subj", "/CN=127.0.0.1")  # fmt: skip
    extensions = d / "server.ext"
    extensions.write_text(
        "subjectAltName=IP:127.0.0.1,DNS:localhost\nbasicConstraints=CA:FALSE\n"
        "keyUsage=critical,digitalSignature\nextendedKeyUsage=serverAuth\n"
        "authorityKeyIdentifier=keyid\nsubjectKeyIdentifier=hash\n"
    )
    _run(openssl, "x509", "-req", "-in", str(d / "server.csr"), "-CA", str(d / "ca.crt"),
         "-CAkey", str(d / "ca.key"), "-CAcreateserial", "-out", str(d / "server.crt"),
         "-days", "1", "-extfile", str(extensions))  # fmt: skip
    return Pki(d / "ca.crt", d / "other-ca.crt", d / "server.crt", d / "server.key")


@pytest.fixture
def tls_broker(tmp_path: Path, pki: Pki) -> Iterator[Mosquitto]:
    """Mosquitto whose only listener speaks TLS with the test CA's server certificate."""
    broker = _started(
        tmp_path / "broker",
        listener=f"cafile {pki.ca}\ncertfile {pki.server_cert}\nkeyfile {pki.server_key}\n",
    )
    yield broker
    broker.stop()


def _publisher(gateway: FakeGateway, data_dir: Path) -> MqttPublisher:
    return MqttPublisher(
        gateway, gateway.mqtt, data_dir=data_dir, reconnect_initial=0.05, reconnect_max=0.3
    )


async def _publishes(config: MqttConfig, data_dir: Path, recorder: Recorder) -> MqttPublisher:
    """Run a publisher until its meter's energy state reaches ``recorder``."""
    sim = SimMeter.build()
    gateway = FakeGateway(config, [sim.status()])
    publisher = _publisher(gateway, data_dir)
    async with running(recorder.run(), publisher.run()) as tasks:
        await recorder.ready()
        await until(lambda: gateway.hub.subscribers > 0, what="subscribed", tasks=tasks)
        reading, truth = sim.reading(0)
        gateway.hub.publish(reading)
        await until(
            lambda: recorder.last("mepgate/house/energy") is not None,
            what="the energy state at the broker",
            tasks=tasks,
        )
    energy = recorder.last("mepgate/house/energy")
    assert energy is not None
    state = energy.json()
    assert isinstance(state, dict)
    assert state["energy_import_wh"] == truth.forward_active_energy_wh
    return publisher


async def _keeps_failing(config: MqttConfig, data_dir: Path, failures: int = 3) -> MqttPublisher:
    """Run a publisher until it has failed ``failures`` times; it must still be running."""
    gateway = FakeGateway(config, [SimMeter.build().status()])
    publisher = _publisher(gateway, data_dir)
    async with running(publisher.run()) as tasks:
        await until(
            lambda: publisher.stats.failures >= failures, what="failed attempts", tasks=tasks
        )
        assert not tasks[0].done(), "the publisher crashed instead of retrying"
    assert publisher.stats.connections == 0
    return publisher


# -- user name and password ------------------------------------------------------------------


def test_password_file_logs_in_and_publishes(
    password_broker: Mosquitto, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    password_file = _secret_file(tmp_path / "mqtt-password", PASSWORD)
    config = MqttConfig(
        url=password_broker.url, username=USER, password_file=password_file
    )  # the password exists only in the file: logging in proves it was read
    recorder = Recorder(password_broker.port, ["mepgate/#"], username=USER, password=PASSWORD)
    with caplog.at_level(logging.DEBUG):
        publisher = run_and_return(_publishes(config, tmp_path, recorder))
    assert stat.S_IMODE(password_file.stat().st_mode) == 0o600
    assert "readable by others" not in caplog.text
    shown = caplog.text + repr(publisher) + repr(config) + str(config)
    assert PASSWORD not in shown


def test_a_password_file_readable_by_others_is_used_with_a_warning(
    password_broker: Mosquitto, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    password_file = _secret_file(tmp_path / "mqtt-password", PASSWORD)
    password_file.chmod(0o644)
    config = MqttConfig(url=password_broker.url, username=USER, password_file=password_file)
    recorder = Recorder(password_broker.port, ["mepgate/#"], username=USER, password=PASSWORD)
    with caplog.at_level(logging.WARNING):
        run_and_return(_publishes(config, tmp_path, recorder))
    assert f"chmod 600 {password_file}" in caplog.text
    assert PASSWORD not in caplog.text


def test_a_wrong_password_is_retried_without_crashing_and_never_logged(
    password_broker: Mosquitto, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    password_file = _secret_file(tmp_path / "mqtt-password", WRONG_PASSWORD)
    config = MqttConfig(url=password_broker.url, username=USER, password_file=password_file)
    with caplog.at_level(logging.DEBUG):
        publisher = run_and_return(_keeps_failing(config, tmp_path))
    error = publisher.stats.last_error or ""
    assert "refused" in error
    assert "username and password" in error  # what to fix
    shown = caplog.text + repr(publisher) + repr(config) + error
    assert WRONG_PASSWORD not in shown
    assert PASSWORD not in shown
    assert caplog.text.count("refused the connection") == 1  # said once, not per retry


# -- TLS ---------------------------------------------------------------------------------------


def _tls_url(broker: Mosquitto) -> str:
    return f"mqtts://127.0.0.1:{broker.port}"


def test_mqtts_with_the_ca_file_connects_and_publishes(
    tls_broker: Mosquitto, pki: Pki, tmp_path: Path
) -> None:
    config = MqttConfig(url=_tls_url(tls_broker), ca_file=pki.ca)
    context = ssl.create_default_context(cafile=str(pki.ca))
    recorder = Recorder(tls_broker.port, ["mepgate/#"], tls_context=context)
    run_and_return(_publishes(config, tmp_path, recorder))


@pytest.mark.parametrize("ca", ["system", "other"])
def test_mqtts_refuses_a_broker_its_ca_did_not_sign_and_says_why(
    tls_broker: Mosquitto, pki: Pki, tmp_path: Path, ca: str
) -> None:
    config = MqttConfig(url=_tls_url(tls_broker), ca_file=pki.other_ca if ca == "other" else None)
    publisher = run_and_return(_keeps_failing(config, tmp_path))
    error = (publisher.stats.last_error or "").lower()
    assert "certificate verify failed" in error
    assert "not trusted" in error
    assert "ca_file" in error  # what to fix


def test_an_unloadable_ca_file_is_refused_at_start_and_says_why(
    tls_broker: Mosquitto, tmp_path: Path
) -> None:
    garbage = tmp_path / "ca.pem"
    garbage.write_text("-----BEGIN CERTIFICATE-----\nnot a certificate\n")
    for ca_file in (garbage, tmp_path / "missing.pem"):
        config = MqttConfig(url=_tls_url(tls_broker), ca_file=ca_file)
        gateway = FakeGateway(config, [SimMeter.build().status()])
        with pytest.raises(MqttConfigError, match="ca_file"):
            _publisher(gateway, tmp_path)


def run_and_return(scenario: object) -> MqttPublisher:
    """:func:`support.run` (bounded) for a scenario that returns its publisher."""
    result: list[MqttPublisher] = []

    async def keep() -> None:
        result.append(await scenario)  # type: ignore[misc]

    run(keep())
    return result[0]
