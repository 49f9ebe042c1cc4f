"""The gateway: one poller per configured meter, batched storage, live fan-out, outputs.

:class:`Gateway` implements :class:`~mepgate.service.view.GatewayView`, what the web app and
the metrics renderer see.  Data flow::

    MeterPoller (one per [[meter]], concurrent) --valid reading--> hub.publish (live, at once)
                                               \\--> pending batch --every 2 s--> store.ingest

A batch is one transaction (raw rows and rollups together), so a crash loses at most the
batch in flight and the readings not yet batched; a database that is briefly unreachable
(PostgreSQL restarting) only delays the batch, which is kept and retried.  Retention runs every
hour (:meth:`~mepgate.store.Store.sweep`, in small transactions that interleave with ingest).

Outputs (MQTT, ...) plug in as :data:`Output` coroutine functions: the gateway runs each for
as long as it runs, restarts it after :meth:`Gateway.apply_settings` (so it reads the new
``view.settings``) or ten seconds after it fails, and cancels it on :meth:`Gateway.stop`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import Counter
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from mepgate.client import (
    Backoff,
    LinkTiming,
    MeterClient,
    MeterLinkError,
    MeterRefusedError,
    Security,
    mep_client,
)
from mepgate.config import ConfigError, MeterConfig, Settings, meter_key, save_settings
from mepgate.errors import LocalProtocolError, MepgateError
from mepgate.proto import MepKey, parse_key
from mepgate.proto.codes import ResponseCode, describe_response_code
from mepgate.proto.messages import ReadRequest, parse_request
from mepgate.reading import Reading
from mepgate.service.hub import ReadingHub
from mepgate.service.poller import MeterPoller, RetryPolicy
from mepgate.service.simulated import SIM_KEY_TEXT, SimulatedMeters, is_simulated
from mepgate.service.validate import DEFAULT_LIMITS, Limits
from mepgate.service.view import ConsoleError, ConsoleReply, GatewayView, MeterStatus
from mepgate.store import AsyncStore, StoreError, open_store
from mepgate.store.url import parse_url
from mepgate.tables import registry
from mepgate.tables.errors import TableDecodeError
from mepgate.transport import EnableLine, PortUnavailableError
from mepgate.urls import mask_url, scrub

log = logging.getLogger(__name__)

Output = Callable[[GatewayView], Awaitable[None]]
"""An output: ``async def run(view)`` that runs until cancelled (subscribe to ``view.hub``,
read ``view.settings``).  Failures are logged and the output restarted."""

BATCH_INTERVAL = 2.0
"""Seconds between store transactions: one commit per batch keeps SD-card writes few, and a
crash loses at most this much (plus the batch in flight)."""
SWEEP_INTERVAL = 3600.0
OUTPUT_STOP_TIMEOUT = 5.0  # seconds an output (MQTT) gets to say goodbye when we stop
FIRST_SWEEP_DELAY = 60.0  # not during startup, when the dashboard wants the database
MAX_PENDING = 200_000
"""Readings held while the database cannot be written (about 2 days of one meter at 1 Hz);
beyond that the oldest are dropped, and counted."""
OUTPUT_RESTART_DELAY = 10.0
CLIENT_BACKOFF = Backoff(initial=0.5, maximum=2.0, attempts=1)
"""The client's own reconnect attempt within a request; the poller's RetryPolicy does the rest,
so the state the meter page shows is the real one."""
_SECURITY = {"auto": Security.AUTO, "always": Security.TLS, "never": Security.RC4}


def default_store_url(data_dir: Path) -> str:
    return f"sqlite:///{data_dir.resolve() / 'mepgate.db'}"


def check_settings(settings: Settings, base: Path) -> dict[str, MepKey]:
    """Everything about ``settings`` that pydantic cannot check: keys readable, time zone known.

    Returns each meter's key.  Raises :class:`ConfigError` naming the key at fault.
    """
    try:
        ZoneInfo(settings.storage.timezone)
    except (ZoneInfoNotFoundError, ValueError):
        raise ConfigError(
            "storage.timezone: unknown time zone; use an IANA name such as Europe/Copenhagen"
        ) from None
    keys: dict[str, MepKey] = {}
    for meter in settings.meter:
        if is_simulated(meter.port) and meter.key is None and meter.key_file is None:
            keys[meter.name] = parse_key(SIM_KEY_TEXT)
            continue
        try:
            keys[meter.name] = meter_key(meter, base)
        except ConfigError:
            raise
        except LocalProtocolError as error:  # the key's text is malformed; never echo it
            raise ConfigError(f"meter {meter.name!r}: key: {error}") from None
    return keys


class Gateway:
    """Polls the configured meters, stores and publishes their readings.

    ``data_dir`` holds the SQLite database when ``storage.url`` is not set.  ``config_path`` is
    where :meth:`apply_settings` saves (``None``: not saved).  ``timing`` and ``retry`` are for
    tests and benchmarks (defaults: the MEP guide's timing; retries 1 s doubling to 60 s).
    """

    def __init__(
        self,
        settings: Settings,
        *,
        data_dir: Path,
        config_path: Path | None = None,
        outputs: Sequence[Output] = (),
        timing: LinkTiming | None = None,
        retry: RetryPolicy | None = None,
        limits: Limits = DEFAULT_LIMITS,
        batch_interval: float = BATCH_INTERVAL,
        sweep_interval: float = SWEEP_INTERVAL,
    ) -> None:
        self._settings = settings
        self.data_dir = data_dir
        self.config_path = config_path
        self._outputs = tuple(outputs)
        self._timing = timing
        self._retry = retry
        self._limits = limits
        self._batch_interval = batch_interval
        self._sweep_interval = sweep_interval
        self._hub = ReadingHub()
        self._store: AsyncStore | None = None
        self._store_url: str | None = None
        self._keys: dict[str, MepKey] = {}
        self._pollers: dict[str, tuple[MeterPoller, asyncio.Task[None]]] = {}
        self._pending: list[Reading] = []
        self._stored: Counter[str] = Counter()
        self.dropped = 0  # readings lost because the database stayed unreachable too long
        self.batches = 0  # store transactions committed
        self._flush_lock = asyncio.Lock()
        self._apply_lock = asyncio.Lock()
        self._tasks: list[asyncio.Task[None]] = []
        self._output_tasks: list[asyncio.Task[None]] = []
        self._simulators = SimulatedMeters()
        self._started = False

    def __repr__(self) -> str:
        return f"Gateway(meters={[m.name for m in self._settings.meter]})"

    # -- GatewayView ----------------------------------------------------------------------------
    @property
    def hub(self) -> ReadingHub:
        return self._hub

    @property
    def settings(self) -> Settings:
        return self._settings

    @property
    def store(self) -> AsyncStore:
        if self._store is None:
            raise LocalProtocolError("the gateway has not been started: await gateway.start()")
        return self._store

    def meters(self) -> list[MeterStatus]:
        return [
            poller.status(stored=self._stored[name]) for name, (poller, _) in self._pollers.items()
        ]

    async def console(self, meter: str, request_hex: str) -> ConsoleReply:
        entry = self._pollers.get(meter)
        if entry is None:
            known = ", ".join(self._pollers) or "none configured"
            raise ConsoleError(f"no meter called {meter!r}; meters: {known}")
        try:
            message = bytes.fromhex(request_hex.replace(" ", "").replace(":", ""))
            request = parse_request(message)
        except (ValueError, MepgateError) as error:
            raise ConsoleError(
                f"not a C12.18 request: {error}. Examples: 30 0017 0200 (read BT23), "
                "3F 001C 000020 0080 (read 128 bytes of BT28 at offset 32)"
            ) from None
        if not isinstance(request, ReadRequest) and not self._settings.web.console_writes:
            raise ConsoleError(
                "writes are disabled: set console_writes = true in the [web] section to allow "
                "table writes and procedure calls from the console"
            )
        poller, _ = entry

        async def send(client: MeterClient) -> ConsoleReply:
            if isinstance(request, ReadRequest):
                if request.offset is None:
                    data = await client.read_table(request.table_id)
                else:
                    data = await client.read(
                        request.table_id, offset=request.offset, count=request.count
                    )
                decoded: dict[str, object] | None = None
                if request.offset is None and request.table_id in registry.CODECS:
                    with contextlib.suppress(MepgateError):
                        dims = await client.dimensions()
                        value = registry.to_json(
                            registry.decode_table(request.table_id, data, dims), dims
                        )
                        decoded = (
                            {k: v for k, v in value.items()}
                            if isinstance(value, dict)
                            else {"value": value}
                        )
                return _reply(ResponseCode.OK, data, decoded)
            await client.write(request.table_id, request.data, offset=request.offset)
            return _reply(ResponseCode.OK)

        try:
            return await poller.exchange(send)
        except MeterRefusedError as error:
            return _reply(error.code)
        except (MeterLinkError, PortUnavailableError, TableDecodeError) as error:
            raise ConsoleError(str(error)) from None

    async def apply_settings(self, settings: Settings) -> None:
        async with self._apply_lock:
            base = self.config_path.parent if self.config_path else Path.cwd()
            keys = await asyncio.to_thread(check_settings, settings, base)
            if self.config_path is not None:
                await asyncio.to_thread(save_settings, settings, self.config_path)
                log.info("configuration saved to %s", self.config_path)
            old, self._settings = self._settings, settings
            if not self._started:
                self._keys = keys
                return
            await self._stop_outputs()
            if self._url_for(settings) != self._store_url or old.storage != settings.storage:
                await self._reopen_store()
            wanted = {meter.name: meter for meter in settings.meter}
            for name, (poller, _) in list(self._pollers.items()):
                meter = wanted.get(name)
                if (
                    meter is None
                    or meter != poller.config
                    or keys[name] != self._keys.get(name)
                    or poller.status().state == "stopped"
                ):
                    await self._stop_poller(name)
            self._keys = keys
            for meter in settings.meter:
                if meter.name not in self._pollers:
                    await self._start_poller(meter)
            self._start_outputs()

    # -- lifecycle ------------------------------------------------------------------------------
    async def start(self) -> None:
        """Open the store, start a poller per meter, the batch writer, the sweeper, outputs.

        Raises :class:`ConfigError` (a key file unreadable, an unknown time zone) or
        :class:`~mepgate.store.StoreError` (the database cannot be opened) before anything runs.
        """
        base = self.config_path.parent if self.config_path else Path.cwd()
        self._keys = await asyncio.to_thread(check_settings, self._settings, base)
        await self._open_store()
        self._started = True
        for meter in self._settings.meter:
            await self._start_poller(meter)
        self._tasks = [
            asyncio.create_task(self._write_batches(), name="mepgate-batches"),
            asyncio.create_task(self._sweep(), name="mepgate-sweep"),
        ]
        self._start_outputs()

    async def stop(self) -> None:
        """Stop polling, store what was read (the last batch), close the store."""
        await self._stop_outputs()
        for name in list(self._pollers):
            await self._stop_poller(name)
        tasks, self._tasks = self._tasks, []
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        if self._store is not None:
            await self._flush()
            await self._store.close()
            self._store = None
        await self._simulators.close()
        self._started = False

    async def __aenter__(self) -> Gateway:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    # -- store ----------------------------------------------------------------------------------
    def _url_for(self, settings: Settings) -> str:
        return settings.storage.url or default_store_url(self.data_dir)

    async def _open_store(self) -> None:
        settings = self._settings
        url = self._url_for(settings)
        if settings.storage.url is None:
            self.data_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        store = await asyncio.to_thread(
            open_store,
            url,
            retention=settings.storage.retention,
            local_tz=ZoneInfo(settings.storage.timezone),
        )
        self._store, self._store_url = AsyncStore(store), url
        where = parse_url(url).path or mask_url(url)  # a SQLite file, or a masked server URL
        log.info("storing readings in %s", where)

    async def _reopen_store(self) -> None:
        await self._flush()
        if self._store is not None:
            await self._store.close()
        await self._open_store()

    def _received(self, reading: Reading) -> None:
        self._hub.publish(reading)
        self._pending.append(reading)
        if len(self._pending) > MAX_PENDING:
            excess = len(self._pending) - MAX_PENDING
            del self._pending[:excess]
            self.dropped += excess

    async def _write_batches(self) -> None:
        while True:
            await asyncio.sleep(self._batch_interval)
            await self._flush()

    async def _flush(self) -> None:
        """Store the pending readings in one transaction; keep them if that fails."""
        async with self._flush_lock:
            batch, self._pending = self._pending, []
            if not batch or self._store is None:
                self._pending[:0] = batch
                return
            try:
                new = await self._store.ingest(batch)
            except Exception as error:  # any driver error: the database may come back
                self._pending[:0] = batch
                log.warning(
                    "storing %d readings failed, will retry: %s",
                    len(batch),
                    scrub(str(error), self._store_url or ""),
                )
                return
            self.batches += 1
            self._stored.update(reading.meter for reading in batch)
            log.debug(
                "stored batch %d: %d readings (%d new), last at %s",
                self.batches,
                len(batch),
                new,
                batch[-1].at.isoformat(),
            )

    async def _sweep(self) -> None:
        await asyncio.sleep(min(FIRST_SWEEP_DELAY, self._sweep_interval))
        while True:
            if self._store is not None:
                try:
                    removed = await self._store.sweep()
                except (StoreError, OSError) as error:
                    log.warning("retention sweep failed, will retry: %s", error)
                else:
                    log.debug("retention sweep removed %d rows", removed)
            await asyncio.sleep(self._sweep_interval)

    # -- pollers --------------------------------------------------------------------------------
    async def _start_poller(self, meter: MeterConfig) -> None:
        previous = await self.store.latest(meter.name)
        port = meter.port
        if is_simulated(port):
            port = await self._simulators.url_for(meter.name, port, continue_from=previous)
        key = self._keys[meter.name]

        def connect() -> MeterClient:
            return mep_client(
                port,
                key,
                baud=meter.baud,
                enable=EnableLine(meter.enable_line),
                encrypt=meter.encrypt,
                security=_SECURITY[meter.tls],
                timing=self._timing,
                backoff=CLIENT_BACKOFF,
            )

        poller = MeterPoller(
            meter,
            connect=connect,
            on_reading=self._received,
            previous=previous,
            retry=self._retry,
            limits=self._limits,
        )
        task = asyncio.create_task(poller.run(), name=f"mepgate-poll-{meter.name}")
        self._pollers[meter.name] = (poller, task)

    async def _stop_poller(self, name: str) -> None:
        _, task = self._pollers.pop(name)
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task

    # -- outputs --------------------------------------------------------------------------------
    def _start_outputs(self) -> None:
        self._output_tasks = [
            asyncio.create_task(self._supervise(output), name=f"mepgate-output-{index}")
            for index, output in enumerate(self._outputs)
        ]

    async def _supervise(self, output: Output) -> None:
        while True:
            try:
                await output(self)
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("output %s failed; restarting it", _name_of(output))
            else:
                return  # it finished by itself (e.g. not configured)
            await asyncio.sleep(OUTPUT_RESTART_DELAY)

    async def _stop_outputs(self) -> None:
        tasks, self._output_tasks = self._output_tasks, []
        for task in tasks:
            task.cancel()
        if not tasks:
            return
        # An output that does not end must not keep the readings from being stored.
        _, pending = await asyncio.wait(tasks, timeout=OUTPUT_STOP_TIMEOUT)
        for task in pending:
            log.warning(
                "output %s did not stop within %.0f s; leaving it behind",
                task.get_name(),
                OUTPUT_STOP_TIMEOUT,
            )


def _reply(code: int, data: bytes = b"", decoded: dict[str, object] | None = None) -> ConsoleReply:
    return ConsoleReply(
        code=code, meaning=describe_response_code(code), data_hex=data.hex(), decoded=decoded
    )


def _name_of(output: Output) -> str:
    return getattr(output, "__qualname__", None) or repr(output)


__all__ = [
    "BATCH_INTERVAL",
    "Gateway",
    "Output",
    "check_settings",
    "default_store_url",
]
