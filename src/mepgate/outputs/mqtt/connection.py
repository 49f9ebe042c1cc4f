"""Broker settings from the ``[mqtt]`` configuration: address, TLS, credentials, backoff.

The password never leaves this module except into the MQTT client: reprs, log lines and
errors show the broker URL through :func:`mepgate.store.url.mask_url`.
"""

from __future__ import annotations

import asyncio
import logging
import random
import ssl
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Self, TypeVar, cast
from urllib.parse import unquote, urlsplit

import aiomqtt
import paho.mqtt.client as paho

from mepgate.config.secrets import too_open
from mepgate.config.settings import MqttConfig
from mepgate.errors import MepgateError
from mepgate.urls import mask_url

log = logging.getLogger(__name__)
DEFAULT_PORTS = {"mqtt": 1883, "mqtts": 8883}
#: CONNACK return codes that no retry will cure, so the reconnect waits the maximum: MQTT 3.1.1
#: §3.2.2.3 (4, 5) and the MQTT 5 reason codes paho maps them to (134, 135).
REFUSED_FOR_GOOD = {
    4: "bad user name or password",
    5: "not authorised",
    134: "bad user name or password",
    135: "not authorised",
}
KEEPALIVE_S = 30  # the broker publishes the last will within 1.5 keep-alives of silence


class MqttConfigError(MepgateError):
    """The ``[mqtt]`` configuration cannot be used as it is (the message says what to fix)."""


@dataclass(frozen=True, slots=True)
class Broker:
    host: str
    port: int
    tls: bool
    username: str | None
    password: str | None = field(repr=False)
    url: str = field(repr=False)

    def __repr__(self) -> str:
        return f"Broker({self.display!r})"

    @property
    def display(self) -> str:
        """The URL, safe to print."""
        return mask_url(self.url)


def broker_of(config: MqttConfig) -> Broker:
    """Host, port, TLS and credentials: ``[mqtt]`` keys win over user info in the URL."""
    try:
        parts = urlsplit(config.url)
        port = parts.port
    except ValueError as exc:
        raise MqttConfigError(
            f"[mqtt] url {mask_url(config.url)!r} is not a valid URL: use mqtt://host:1883 "
            "or mqtts://host:8883"
        ) from exc
    scheme = parts.scheme.lower()
    if scheme not in DEFAULT_PORTS or not parts.hostname:
        raise MqttConfigError(
            f"[mqtt] url {mask_url(config.url)!r}: use mqtt://host:1883 or mqtts://host:8883"
        )
    password: str | None = None
    if config.password is not None:
        password = config.password.get_secret_value()
    elif config.password_file is not None:
        path = config.password_file
        try:
            password = path.read_text(encoding="utf-8").strip()
            if too_open(path):
                log.warning("[mqtt] password_file %s is readable by others; run: chmod 600 %s",
                            path, path)  # fmt: skip
        except OSError as exc:
            raise MqttConfigError(
                f"[mqtt] password_file {path} cannot be read "
                f"({exc.strerror}); create it with mode 0600 or fix the path"
            ) from None
    elif parts.password is not None:
        password = unquote(parts.password)
    username = config.username or (unquote(parts.username) if parts.username else None)
    return Broker(
        host=parts.hostname,
        port=port or DEFAULT_PORTS[scheme],
        tls=scheme == "mqtts",
        username=username,
        password=password,
        url=config.url,
    )


def tls_context(config: MqttConfig) -> ssl.SSLContext:
    """Verifying TLS context: the system's CAs or ``ca_file``; a client certificate if given."""
    try:
        context = ssl.create_default_context(cafile=str(config.ca_file) if config.ca_file else None)
        if config.cert_file is not None:
            context.load_cert_chain(
                str(config.cert_file), str(config.key_file) if config.key_file else None
            )
    except (OSError, ssl.SSLError) as exc:
        raise MqttConfigError(
            f"[mqtt] TLS files cannot be loaded ({exc}); check ca_file, cert_file and key_file"
        ) from None
    return context


def client_for(
    config: MqttConfig,
    broker: Broker,
    will: aiomqtt.Will,
    *,
    keepalive: int = KEEPALIVE_S,
    timeout: float = 10.0,
) -> aiomqtt.Client:
    """A client for one connection attempt (aiomqtt clients are not reusable)."""
    return Client(
        broker.host,
        broker.port,
        username=broker.username,
        password=broker.password,
        identifier=config.client_id,
        will=will,
        keepalive=keepalive,
        timeout=timeout,
        tls_context=tls_context(config) if broker.tls else None,
    )


# -- aiomqtt after a broken connection ---------------------------------------------------------
#
# Two flaws of aiomqtt 2.x (up to 2.5.1, the newest) turn a stalled broker into errors and
# tracebacks in our log although nothing is wrong but the broker; :class:`Client` mends both.
# It uses aiomqtt's private ``_loop``, ``_client`` (the paho client) and ``_disconnected``,
# stable through 2.x (pyproject pins ``<3``); tests/outputs/test_mqtt.py's stalled-broker and
# broken-connection tests fail if that changes.


class _Registrations:
    """The event loop as the aiomqtt client sees it, registering only paho's open socket.

    aiomqtt asks for ``add_reader``/``add_writer`` of paho's socket by descriptor number in the
    loop's next round (``call_soon_threadsafe``: paho may call from the connecting thread).
    When the connection breaks in between (paho read the end of the stream in the same round,
    as when a stalled broker resumes), paho has closed that socket and asyncio registers a
    closed descriptor: "Exception in callback ...add_writer" and an ``OSError: [Errno 9] Bad
    file descriptor`` traceback, or a foreign socket that reuses the number.  A socket paho no
    longer has needs no watching: that registration is dropped."""

    def __init__(self, loop: asyncio.AbstractEventLoop, client: paho.Client) -> None:
        self._loop = loop
        self._client = client

    def __getattr__(self, name: str) -> Any:  # everything else is the loop's
        return getattr(self._loop, name)

    def _open(self, fd: int) -> bool:
        sock = self._client.socket()
        return sock is not None and sock.fileno() == fd

    def add_reader(self, fd: int, callback: Callable[..., object], *args: Any) -> None:
        if self._open(fd):
            self._loop.add_reader(fd, callback, *args)
        else:
            log.debug("MQTT socket %d closed before it was watched for reading", fd)

    def add_writer(self, fd: int, callback: Callable[..., object], *args: Any) -> None:
        if self._open(fd):
            self._loop.add_writer(fd, callback, *args)
        else:
            log.debug("MQTT socket %d closed before it was watched for writing", fd)


_T = TypeVar("_T")


def _retrieve(future: asyncio.Future[None]) -> None:
    if not future.cancelled():
        future.exception()


class Client(aiomqtt.Client):
    """aiomqtt's client, quiet and tidy after a broken connection.

    * Registrations of a socket paho already closed are dropped (:class:`_Registrations`).
    * An attempt that failed (no CONNACK in time: a stalled broker) leaves aiomqtt's
      connection open: its CONNECT, queued at the broker, would take the session (same client
      id) from the next attempt when the broker resumes, and the end of that zombie connection
      would be an exception nobody retrieves ("Future exception was never retrieved").  It is
      closed with a DISCONNECT (which also cancels its last will at the broker).
    * The end of a session is reported by the caller (its ``publish`` or message iteration
      raises :class:`aiomqtt.MqttError`); aiomqtt keeps the same error in a future that no
      one reads, which asyncio would log as an error once collected.  It counts as read.
    * aiomqtt waits for every acknowledgement with ``asyncio.wait_for``, which on Python 3.11
      returns normally when the acknowledgement and a cancellation of the waiting task come in
      the same round: the cancellation is lost, and a task told to stop goes on waiting for
      work that never comes (a publisher that never stops).  The lost cancellation is raised.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._loop = cast(asyncio.AbstractEventLoop, _Registrations(self._loop, self._client))

    async def __aenter__(self) -> Self:
        try:
            await super().__aenter__()
        except BaseException:
            self._client.disconnect()  # paho closes the socket once the DISCONNECT is out
            raise
        self._disconnected.add_done_callback(_retrieve)
        return self

    async def _wait_for(self, fut: Awaitable[_T], timeout: float | None) -> _T:
        task = asyncio.current_task()
        before = task.cancelling() if task is not None else 0
        result = await super()._wait_for(fut, timeout)
        if task is not None and task.cancelling() > before:
            raise asyncio.CancelledError  # asked to stop while waiting: see the class docstring
        return result


class Backoff:
    """Exponential reconnect delays with jitter, reset after a successful connection."""

    def __init__(
        self, initial: float = 1.0, maximum: float = 60.0, rng: random.Random | None = None
    ) -> None:
        self.initial = initial
        self.maximum = maximum
        self._rng = rng or random.Random()
        self._next = initial

    def reset(self) -> None:
        self._next = self.initial

    def give_up_for_now(self) -> None:
        """After a refusal no retry will cure (bad password): wait the maximum from now on."""
        self._next = self.maximum

    def next(self) -> float:
        delay = self._next
        self._next = min(self.maximum, self._next * 2)
        return delay * self._rng.uniform(0.8, 1.0)


def refusal_reason(error: aiomqtt.MqttError) -> str | None:
    """Why the broker refused us for good, when it did (wrong credentials, not authorised)."""
    if isinstance(error, aiomqtt.MqttCodeError):
        rc = error.rc
        value = getattr(rc, "value", rc)
        if isinstance(value, int) and value in REFUSED_FOR_GOOD:
            return REFUSED_FOR_GOOD[value]
        if "not authori" in str(error).lower() or "bad user" in str(error).lower():
            return str(error)
    return None
