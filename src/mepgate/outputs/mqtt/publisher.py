"""The MQTT publisher: readings from the hub to a broker, with Home Assistant discovery,
availability through a last will, and durable store-and-forward of energy messages.

How the gateway starts it (``mepgate serve`` / ``mepgate demo --mqtt URL``)::

    from mepgate.outputs.mqtt import MqttPublisher

    if settings.mqtt is not None:
        publisher = MqttPublisher(view, settings.mqtt, data_dir=data_dir)
        task_group.create_task(publisher.run())   # runs until cancelled

``run()`` never returns by itself and never raises for broker trouble: it reconnects with
backoff (at once up to a minute apart; a refused password waits the full minute) and logs
each failure once, with the broker URL masked.  Cancel the task to stop: it publishes
``offline`` and disconnects cleanly.  It only *reads* the gateway: it subscribes to
``view.hub`` (a bounded queue that drops the oldest reading if the publisher lags, so the
poller is never held up) and calls ``view.meters()`` for identities and link statistics.
Energy messages go to ``<data_dir>/mqtt-outbox.sqlite3`` first (see
:mod:`mepgate.outputs.queue` for the delivery guarantee).

Intervals are measured on the readings' own timestamps (``Reading.at``), so a meter clock
and a test feeding simulated time agree; diagnostics (reading age) follow the wall clock.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import json
import logging
import ssl
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiomqtt

from mepgate.config.settings import MqttConfig
from mepgate.outputs import submeters
from mepgate.outputs.compat import dabbler_messages
from mepgate.outputs.discovery import (
    ENTITIES,
    diagnostics_payload,
    discovery_configs,
    event_payload,
    present_entities,
    reading_payload,
    web_url,
)
from mepgate.outputs.mqtt.connection import (
    KEEPALIVE_S,
    Backoff,
    broker_of,
    client_for,
    refusal_reason,
    tls_context,
)
from mepgate.outputs.mqtt.topics import OFFLINE, ONLINE, Topics
from mepgate.outputs.queue import Outbox, OutboxError
from mepgate.reading import Reading
from mepgate.service.view import GatewayView

log = logging.getLogger(__name__)

OUTBOX_FILE = "mqtt-outbox.sqlite3"
#: Messages taken from the outbox per look-up while draining it.
_DRAIN_BATCH = 100
#: How long a clean shutdown waits for the broker to take the ``offline`` message.
_GOODBYE_TIMEOUT_S = 2.0


def _still_cancelled() -> None:
    """Re-raise a cancellation that an error while disconnecting replaced.

    aiomqtt's ``__aexit__`` may raise ``MqttError`` (disconnect timed out) while the task is
    being cancelled; catching that must not turn the cancellation into a reconnect loop.
    """
    task = asyncio.current_task()
    if task is not None and task.cancelling():
        raise asyncio.CancelledError


async def _first_failure(*jobs: Coroutine[Any, Any, None]) -> None:
    """Run ``jobs`` until one fails; cancel the rest and raise its error.

    Not a TaskGroup: on Python 3.11 a TaskGroup whose child fails can leave the parent task's
    ``cancelling()`` count raised, which :func:`_still_cancelled` would mistake for a shutdown.
    """
    tasks = [asyncio.create_task(job) for job in jobs]
    try:
        done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_EXCEPTION)
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
    for task in done:
        if not task.cancelled() and (error := task.exception()) is not None:
            raise error


_ENERGY_KEYS = frozenset(e.key for e in ENTITIES if e.group == "energy")


def _energy_keys(keys: tuple[str, ...]) -> frozenset[str]:
    return _ENERGY_KEYS.intersection(keys)


def _json(payload: object) -> bytes:
    return json.dumps(payload, separators=(",", ":")).encode()


@dataclass(slots=True)
class PublisherStats:
    connected: bool = False
    connections: int = 0
    failures: int = 0
    live_published: int = 0
    queued_published: int = 0
    last_error: str | None = None


@dataclass(slots=True)
class _MeterState:
    last_power_at: dt.datetime | None = None
    last_power: tuple[float, float] | None = None
    last_energy_at: dt.datetime | None = None
    present: tuple[str, ...] = ()


def _untrusted_certificate(error: BaseException) -> bool:
    """Whether ``error`` (or what caused it) is a failed TLS certificate verification."""
    seen: BaseException | None = error
    while seen is not None:
        if isinstance(seen, ssl.SSLCertVerificationError):
            return True
        seen = seen.__cause__ or seen.__context__
    return False


class MqttPublisher:
    """Publishes one gateway to one broker; see the module docstring for how to start it."""

    def __init__(
        self,
        view: GatewayView,
        config: MqttConfig,
        *,
        data_dir: Path,
        reconnect_initial: float = 1.0,
        reconnect_max: float = 60.0,
        diagnostics_interval: float | None = None,
        clock: Callable[[], dt.datetime] | None = None,
        keepalive: int = KEEPALIVE_S,
        timeout: float = 10.0,
    ) -> None:
        """``keepalive`` (MQTT keep-alive, s) and ``timeout`` (connecting and each
        acknowledgement, s) are shortened by tests only."""
        self._view = view
        self._config = config
        self._topics = Topics.of(config)
        self._broker = broker_of(config)  # fails early on an unusable [mqtt] section
        if self._broker.tls:
            tls_context(config)  # and on CA or certificate files that cannot be loaded
        self._outbox_path = data_dir / OUTBOX_FILE
        self._backoff = Backoff(reconnect_initial, reconnect_max)
        self._keepalive = keepalive
        self._timeout = timeout
        # Diagnostics (link quality, reading age, counters) as often as the power values: at
        # the energy pace (a minute) a reading age says nothing, and the first minute showed
        # the link quality of the first frames only.
        self._diagnostics_interval = diagnostics_interval or config.power_interval
        self._diagnostics_due = False
        self._clock = clock or (lambda: dt.datetime.now(dt.UTC))
        self.stats = PublisherStats()
        self._outbox: Outbox | None = None
        self._meters: dict[str, _MeterState] = {}
        self._live: dict[str, tuple[bytes, int, bool]] = {}  # topic -> payload, qos, retain
        self._live_dirty: set[str] = set()
        self._live_event = asyncio.Event()
        self._outbox_event = asyncio.Event()
        self._maintain_event = asyncio.Event()
        # Cleared while a meter's entities changed and discovery has not caught up: the states
        # wait, so that Home Assistant never reads a state whose entity it does not have yet, or
        # a state without the key of an entity it still has (a value the meter stopped
        # reporting).
        self._discovery_current = asyncio.Event()
        self._discovery_current.set()
        self._entity_changes = 0  # counts those changes: discovery is current for one of them
        self._published_configs: dict[str, bytes] = {}
        self._published_availability: dict[str, str] = {}
        self._submeter_entities: frozenset[tuple[str, int, str, str]] = frozenset()

    def __repr__(self) -> str:
        return f"MqttPublisher({self._broker.display!r})"

    @property
    def outbox(self) -> Outbox | None:
        """The durable queue while :meth:`run` runs (for statistics)."""
        return self._outbox

    async def run(self) -> None:
        """Publish until cancelled."""
        self._outbox = await asyncio.to_thread(
            Outbox.open, self._outbox_path, max_messages=self._config.queue_max_messages
        )
        stop_listening = self._view.hub.submeters.listen(self._maintain_event.set)
        try:
            async with asyncio.TaskGroup() as tasks:
                tasks.create_task(self._collect())
                tasks.create_task(self._collect_events())
                tasks.create_task(self._connect_forever())
        finally:
            stop_listening()
            outbox, self._outbox = self._outbox, None
            await asyncio.to_thread(outbox.close)

    # -- readings in ---------------------------------------------------------------------

    async def _collect(self) -> None:
        async with self._view.hub.subscribe() as queue:
            while True:
                reading = await queue.get()
                await self._take(reading)

    async def _collect_events(self) -> None:
        """Each new event of a meter's log to ``<base>/<meter>/event``, through the outbox
        (delivered once the broker is back, in order), not retained: an event happens once."""
        async with self._view.hub.subscribe_events() as queue:
            while True:
                event = await queue.get()
                topic = self._topics.states(event.meter).event
                if topic is not None:
                    await self._enqueue(topic, event_payload(event), retain=False)

    async def _take(self, reading: Reading) -> None:
        state = self._meters.setdefault(reading.meter, _MeterState())
        config = self._config
        present = tuple(e.key for e in present_entities(reading))
        if present != state.present:
            if not state.present:  # the meter's first reading: its link statistics are news
                self._diagnostics_due = True
            if _energy_keys(present) != _energy_keys(state.present):
                # The retained energy state is what an entity announced now reads first: it
                # must carry the new keys (and no longer the removed ones) at once.
                state.last_energy_at = None
            state.present = present
            self._entity_changes += 1
            self._discovery_current.clear()
            self._maintain_event.set()
        if self._power_due(state, reading):
            state.last_power_at = reading.at
            state.last_power = (
                reading.active_power_import_w or 0.0,
                reading.active_power_export_w or 0.0,
            )
            topics = self._topics.states(reading.meter)
            self._set_live(topics.power, _json(reading_payload(reading, "power")), config.qos)
            if config.compat_dabbler:
                prefix = self._topics.dabbler_prefix(reading.meter, len(self._view.meters()))
                averages = self._view.hub.averages(reading)
                for suffix, payload in dabbler_messages(reading, averages=averages).items():
                    # The old firmware published these with QoS 0 and without retain.
                    self._set_live(f"{prefix}/{suffix}", _json(payload), 0, retain=False)
            self._live_event.set()
        if state.last_energy_at is None or (
            (reading.at - state.last_energy_at).total_seconds() >= config.energy_interval
        ):
            state.last_energy_at = reading.at
            await self._enqueue(
                self._topics.states(reading.meter).energy, reading_payload(reading, "energy")
            )

    def _power_due(self, state: _MeterState, reading: Reading) -> bool:
        if state.last_power_at is None or state.last_power is None:
            return True
        if (reading.at - state.last_power_at).total_seconds() >= self._config.power_interval:
            return True
        threshold = self._config.power_threshold_w
        if threshold <= 0:
            return False
        now = (reading.active_power_import_w or 0.0, reading.active_power_export_w or 0.0)
        return any(abs(a - b) >= threshold for a, b in zip(now, state.last_power, strict=True))

    def _set_live(self, topic: str, payload: bytes, qos: int, *, retain: bool = True) -> None:
        self._live[topic] = (payload, qos, retain)
        self._live_dirty.add(topic)

    async def _enqueue(self, topic: str, payload: object, *, retain: bool = True) -> None:
        outbox = self._outbox
        if outbox is None:
            return
        try:
            await asyncio.to_thread(
                outbox.append, topic, _json(payload), qos=self._config.qos, retain=retain
            )
        except OutboxError as exc:
            log.error("MQTT energy message not queued: %s", exc)
            return
        self._outbox_event.set()

    # -- broker out ----------------------------------------------------------------------

    async def _connect_forever(self) -> None:
        status = self._topics.status
        will = aiomqtt.Will(status.topic, status.offline, qos=1, retain=True)
        while True:
            try:
                client = client_for(
                    self._config,
                    self._broker,
                    will,
                    keepalive=self._keepalive,
                    timeout=self._timeout,
                )
                async with client:
                    await self._session(client)
            except* (aiomqtt.MqttError, OSError, OutboxError) as group:
                _still_cancelled()
                self._connection_failed(group.exceptions[0])
            self.stats.connected = False
            await asyncio.sleep(self._backoff.next())

    def _connection_failed(self, error: BaseException) -> None:
        self.stats.failures += 1
        reason = refusal_reason(error) if isinstance(error, aiomqtt.MqttError) else None
        if reason is not None:
            self._backoff.give_up_for_now()
            message = (
                f"the broker {self._broker.display} refused the connection ({reason}): "
                "check [mqtt] username and password"
            )
        elif _untrusted_certificate(error):
            message = (
                f"the broker {self._broker.display} presented a TLS certificate that is not "
                f"trusted ({error}): set [mqtt] ca_file to the CA that signed it"
            )
        else:
            message = f"MQTT broker {self._broker.display} unreachable or gone: {error}"
        if message != self.stats.last_error:
            log.warning("%s; retrying with backoff", message)
        self.stats.last_error = message

    async def _session(self, client: aiomqtt.Client) -> None:
        self._backoff.reset()
        self.stats.connected = True
        self.stats.connections += 1
        self.stats.last_error = None
        log.info("connected to MQTT broker %s", self._broker.display)
        status = self._topics.status
        self._published_configs.clear()
        self._published_availability.clear()
        self._live_dirty.update(self._live)
        try:
            await client.publish(status.topic, status.online, qos=1, retain=True)
            if self._config.discovery:
                await client.subscribe(self._topics.home_assistant_status, qos=1)
            self._maintain_event.set()
            self._live_event.set()
            self._outbox_event.set()
            await _first_failure(
                self._send_live(client),
                self._drain(client),
                self._maintain(client),
                self._listen(client),
            )
        except asyncio.CancelledError:
            with contextlib.suppress(aiomqtt.MqttError, TimeoutError):
                await client.publish(
                    status.topic, status.offline, qos=1, retain=True, timeout=_GOODBYE_TIMEOUT_S
                )
            raise

    async def _send_live(self, client: aiomqtt.Client) -> None:
        while True:
            await self._live_event.wait()
            await self._discovery_current.wait()
            self._live_event.clear()
            while self._live_dirty:
                topic = self._live_dirty.pop()
                payload, qos, retain = self._live[topic]
                try:
                    await client.publish(topic, payload, qos=qos, retain=retain)
                except BaseException:
                    self._live_dirty.add(topic)  # send it again after reconnecting
                    raise
                self.stats.live_published += 1

    async def _drain(self, client: aiomqtt.Client) -> None:
        """Deliver the outbox in order; a message leaves it only once acknowledged."""
        outbox = self._outbox
        if outbox is None:
            return
        while True:
            self._outbox_event.clear()
            batch = await asyncio.to_thread(outbox.peek, _DRAIN_BATCH)
            if not batch:
                await self._outbox_event.wait()
                continue
            await self._discovery_current.wait()  # as the live states (see __init__)
            for message in batch:
                await client.publish(
                    message.topic, message.payload, qos=message.qos, retain=message.retain
                )
                await asyncio.to_thread(outbox.delivered, message.id)
                self.stats.queued_published += 1

    async def _listen(self, client: aiomqtt.Client) -> None:
        async for message in client.messages:
            if message.topic.matches(self._topics.home_assistant_status) and message.payload in (
                b"online",
                "online",
            ):
                log.info("Home Assistant came online: announcing the entities again")
                self._published_configs.clear()
                self._maintain_event.set()

    async def _maintain(self, client: aiomqtt.Client) -> None:
        """Availability per meter and discovery (on demand and every power interval),
        diagnostics (every diagnostics interval)."""
        loop = asyncio.get_running_loop()
        next_diagnostics = loop.time()
        while True:
            self._maintain_event.clear()
            self._take_submeters()
            changes = self._entity_changes
            await self._publish_availability(client)
            await self._announce(client)
            if changes == self._entity_changes:  # else a newer change waits for the next round
                self._discovery_current.set()
            if self._diagnostics_due or loop.time() >= next_diagnostics:
                self._diagnostics_due = False
                next_diagnostics = loop.time() + self._diagnostics_interval
                now = self._clock()
                for status in self._view.meters():
                    topic = self._topics.states(status.name).diagnostics
                    payload = _json(diagnostics_payload(status, now))
                    await client.publish(topic, payload, qos=self._config.qos, retain=True)
            with contextlib.suppress(TimeoutError):
                # Availability and identities are looked at every power interval at least.
                async with asyncio.timeout(
                    min(self._config.power_interval, max(0.0, next_diagnostics - loop.time()))
                ):
                    await self._maintain_event.wait()

    async def _publish_availability(self, client: aiomqtt.Client) -> None:
        wanted: dict[str, str] = {}
        for status in self._view.meters():
            availability = self._topics.meter_availability(status.name)
            wanted[availability.topic] = ONLINE if status.connected else OFFLINE
        now = self._clock()
        for state in self._view.hub.submeters.states():
            availability = submeters.availability(self._topics.base, state)
            wanted[availability.topic] = ONLINE if state.available(now) else OFFLINE
        for topic, value in wanted.items():
            if self._published_availability.get(topic) != value:
                await client.publish(topic, value, qos=1, retain=True)
                self._published_availability[topic] = value

    def _take_submeters(self) -> None:
        """The sub-meters' states to the live topics; a new (or changed) sub-meter entity
        holds the states back until discovery has announced it, as for the meters'."""
        states = [s for s in self._view.hub.submeters.states() if s.value is not None]
        entities = frozenset((s.meter, s.slot, s.medium, s.unit) for s in states)
        if entities != self._submeter_entities:
            self._submeter_entities = entities
            self._entity_changes += 1
            self._discovery_current.clear()
        for state in states:
            topic = submeters.state_topic(self._topics.base, state)
            payload = _json(submeters.state_payload(state))
            if self._live.get(topic, (b"", 0, True))[0] != payload:
                self._set_live(topic, payload, self._config.qos)
                self._live_event.set()

    async def _announce(self, client: aiomqtt.Client) -> None:
        """Publish changed discovery configs; remove (empty retained payload) stale ones."""
        outbox = self._outbox
        if outbox is None:
            return
        config = self._config
        statuses = self._view.meters()
        configured = {s.name for s in statuses}
        wanted: dict[str, tuple[str, bytes]] = {}
        complete: set[str] = set()  # meters whose full entity set is known
        for status in statuses:
            reading = self._view.hub.latest(status.name)
            if not config.discovery or status.identity is None or reading is None:
                continue
            complete.add(status.name)
            configs = discovery_configs(
                status,
                reading,
                self._topics.states(status.name),
                prefix=config.discovery_prefix,
                qos=config.qos,
                disabled=config.disabled_entities,
                configuration_url=web_url(self._view.settings.web),
            )
            configs.update(
                submeters.discovery_configs(
                    status,
                    self._view.hub.submeters.states(status.name),
                    base=self._topics.base,
                    gateway=self._topics.status,
                    prefix=config.discovery_prefix,
                    qos=config.qos,
                    configuration_url=web_url(self._view.settings.web),
                )
            )
            for topic, config_payload in configs.items():
                wanted[topic] = (status.name, _json(config_payload))
        announced = await asyncio.to_thread(outbox.announced)
        for topic, (meter, payload) in wanted.items():
            if self._published_configs.get(topic) != payload:
                await client.publish(topic, payload, qos=1, retain=True)
                self._published_configs[topic] = payload
                if announced.get(topic) != meter:
                    await asyncio.to_thread(outbox.set_announced, topic, meter)
        for topic, meter in announced.items():
            if topic in wanted:
                continue
            if config.discovery and meter in configured and meter not in complete:
                continue  # not identified yet: keep its entities until we know better
            await client.publish(topic, b"", qos=1, retain=True)
            self._published_configs.pop(topic, None)
            await asyncio.to_thread(outbox.set_announced, topic, None)
