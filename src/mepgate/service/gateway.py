"""The gateway: one poller per configured meter, batched storage, live fan-out, outputs.

:class:`Gateway` implements :class:`~mepgate.service.view.GatewayView`, what the web app and
the metrics renderer see.  Data flow::

    MeterPoller (one per [[meter]], concurrent) --valid reading--> hub.publish (live, at once)
                                               \\--> pending batch --every 2 s--> store.ingest

The gateway wires the parts and applies settings; each job has its own module:

* :mod:`~mepgate.service.settings_check` -- what pydantic cannot check (keys, time zone);
* :mod:`~mepgate.service.writer` -- the batch writer and the retention sweeper;
* :mod:`~mepgate.service.outputs` -- running the outputs (MQTT, ...): the gateway runs each for
  as long as it runs, restarts it after :meth:`Gateway.apply_settings` (so it reads the new
  ``view.settings``) or ten seconds after it fails, and cancels it on :meth:`Gateway.stop`;
* :mod:`~mepgate.service.console` -- the web console's requests;
* :mod:`~mepgate.service.simulated_ports` -- what it needs of the ``sim:`` meters it is given.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
from collections.abc import Sequence
from pathlib import Path
from zoneinfo import ZoneInfo

from mepgate.c1218.keys import Password
from mepgate.client import Backoff, LinkStatistics, LinkTiming, MepSession, MeterClient, Security
from mepgate.client.optical import OpticalSession, OpticalTiming
from mepgate.client.session import Session
from mepgate.config import MeterConfig, MeterSecret, Settings, is_simulated, save_settings
from mepgate.errors import LocalProtocolError
from mepgate.proto import ReadRequest, WriteRequest
from mepgate.reading import TIER_REFRESH_S, Reading
from mepgate.service.backfill import COMPARE_OFFSET_S, BackfillJob
from mepgate.service.clock import Clock, system_now
from mepgate.service.console import console_exchange
from mepgate.service.events import EVENTS_INTERVAL_S, EventsJob
from mepgate.service.hub import ReadingHub
from mepgate.service.jobs import MeterJob
from mepgate.service.outputs import OUTPUT_STOP_TIMEOUT, Output, OutputSupervisor
from mepgate.service.poller import (
    BASELINE_EVIDENCE,
    REBASE_AFTER,
    REBASE_AFTER_S,
    MeterPoller,
    RetryPolicy,
)
from mepgate.service.self_reads import SELF_READ_INTERVAL_S, SelfReadJob
from mepgate.service.settings_check import check_settings
from mepgate.service.simulated_ports import SimulatedPorts
from mepgate.service.submeters import CHECK_INTERVAL_S as MBUS_CHECK_INTERVAL_S
from mepgate.service.submeters import MBusJob
from mepgate.service.validate import DEFAULT_LIMITS, Limits, Story, baseline_doubt
from mepgate.service.view import ConsoleReply, MeterStatus
from mepgate.service.writer import BATCH_INTERVAL, SWEEP_INTERVAL, BatchWriter, sweep_retention
from mepgate.store import AsyncStore, StoreError, open_store
from mepgate.store.url import parse_url
from mepgate.transport import EnableLine
from mepgate.urls import mask_url

log = logging.getLogger(__name__)

CLIENT_BACKOFF = Backoff(initial=0.5, maximum=2.0, attempts=1)
"""The client's own reconnect attempt within a request; the poller's RetryPolicy does the rest,
so the state the meter page shows is the real one."""


STORY_STATE = "baseline-story"
"""The store's name (:meth:`~mepgate.store.Store.state`) for a poller's evidence for a new
baseline, so that a restart continues gathering it instead of starting over."""


def default_store_url(data_dir: Path) -> str:
    return f"sqlite:///{data_dir.resolve() / 'mepgate.db'}"


class Gateway:
    """Polls the configured meters, stores and publishes their readings.

    ``data_dir`` holds the SQLite database when ``storage.url`` is not set.  ``config_path`` is
    where :meth:`apply_settings` saves (``None``: not saved).  ``simulated`` runs the meters
    whose port is ``sim:PROFILE`` (``None``: such ports are refused); the gateway closes it when
    it stops.  ``clock`` is the gateway's wall clock (readings, the store, the web pages'
    "now"): the computer's, or a :class:`~mepgate.service.clock.SpedClock` for demos and
    tests.  ``timing`` (MEP meters), ``optical_timing`` (optical ones), ``retry``,
    ``tier_refresh``, ``rebase_after(_s)``, ``mbus_check_interval``, ``events_interval`` and
    ``self_read_interval`` (how often BT26 is checked) are for tests and benchmarks (defaults:
    the guides' timing; retries 1 s doubling to 60 s; the poller's defaults; ET14 every
    minute; the event log every 60 s; the jobs' defaults).

    Each meter's ``interface`` chooses its session: :class:`MepSession` over the MEP port, or
    :class:`OpticalSession` (ANSI C12.18) over the infrared port; the :class:`MeterClient` on
    top, and everything downstream of it, is the same for both.
    """

    def __init__(
        self,
        settings: Settings,
        *,
        data_dir: Path,
        config_path: Path | None = None,
        outputs: Sequence[Output] = (),
        simulated: SimulatedPorts | None = None,
        timing: LinkTiming | None = None,
        optical_timing: OpticalTiming | None = None,
        retry: RetryPolicy | None = None,
        limits: Limits = DEFAULT_LIMITS,
        batch_interval: float = BATCH_INTERVAL,
        sweep_interval: float = SWEEP_INTERVAL,
        tier_refresh: float = TIER_REFRESH_S,
        rebase_after: int = REBASE_AFTER,
        rebase_after_s: float = REBASE_AFTER_S,
        mbus_check_interval: float = MBUS_CHECK_INTERVAL_S,
        events_interval: float = EVENTS_INTERVAL_S,
        self_read_interval: float = SELF_READ_INTERVAL_S,
        clock: Clock = system_now,
    ) -> None:
        self._settings = settings
        self._clock = clock
        self.data_dir = data_dir
        self.config_path = config_path
        self._timing = timing
        self._optical_timing = optical_timing
        self._retry = retry
        self._limits = limits
        self._sweep_interval = sweep_interval
        self._tier_refresh = tier_refresh
        self._rebase = (rebase_after, rebase_after_s)
        self._mbus_check_interval = mbus_check_interval
        self._events_interval = events_interval
        self._self_read_interval = self_read_interval
        self._hub = ReadingHub()
        self._store: AsyncStore | None = None
        self._store_url: str | None = None
        self._keys: dict[str, MeterSecret] = {}
        self._pollers: dict[str, tuple[MeterPoller, asyncio.Task[None]]] = {}
        self._writer = BatchWriter(
            lambda: self._store, url=lambda: self._store_url or "", interval=batch_interval
        )
        self._outputs = OutputSupervisor(outputs, self)
        self._apply_lock = asyncio.Lock()
        self._tasks: list[asyncio.Task[None]] = []
        self._simulated = simulated
        self._started = False

    def __repr__(self) -> str:
        return f"Gateway(meters={[m.name for m in self._settings.meter]})"

    @property
    def dropped(self) -> int:
        """Readings lost because the database stayed unreachable too long."""
        return self._writer.dropped

    @property
    def batches(self) -> int:
        """Store transactions committed."""
        return self._writer.batches

    # -- GatewayView ----------------------------------------------------------------------------
    @property
    def hub(self) -> ReadingHub:
        return self._hub

    def now(self) -> dt.datetime:
        """The gateway's clock (UTC): what readings are stamped with."""
        return self._clock()

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
            poller.status(stored=self._writer.stored(name))
            for name, (poller, _) in self._pollers.items()
        ]

    async def console(self, meter: str, request: ReadRequest | WriteRequest) -> ConsoleReply:
        pollers = {name: poller for name, (poller, _) in self._pollers.items()}
        writes = self._settings.web.console_writes
        return await console_exchange(pollers, meter, request, writes=writes)

    async def apply_settings(self, settings: Settings) -> None:
        async with self._apply_lock:
            base = self.config_path.parent if self.config_path else Path.cwd()
            keys = await asyncio.to_thread(check_settings, settings, base, self._simulated)
            if self.config_path is not None:
                await asyncio.to_thread(save_settings, settings, self.config_path)
                log.info("configuration saved to %s", self.config_path)
            old, self._settings = self._settings, settings
            if not self._started:
                self._keys = keys
                return
            await self._outputs.stop()
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
            self._outputs.start()

    # -- lifecycle ------------------------------------------------------------------------------
    async def start(self) -> None:
        """Open the store, start a poller per meter, the batch writer, the sweeper, outputs.

        Raises :class:`ConfigError` (a key file unreadable, an unknown time zone) or
        :class:`~mepgate.store.StoreError` (the database cannot be opened) before anything runs.
        """
        base = self.config_path.parent if self.config_path else Path.cwd()
        self._keys = await asyncio.to_thread(check_settings, self._settings, base, self._simulated)
        await self._open_store()
        self._started = True
        for meter in self._settings.meter:
            await self._start_poller(meter)
        self._tasks = [
            asyncio.create_task(self._writer.run(), name="mepgate-batches"),
            asyncio.create_task(
                sweep_retention(lambda: self._store, self._sweep_interval), name="mepgate-sweep"
            ),
        ]
        self._outputs.start()

    async def stop(self) -> None:
        """Stop polling, store what was read (the last batch), close the store."""
        await self._outputs.stop()
        for name in list(self._pollers):
            await self._stop_poller(name)
        tasks, self._tasks = self._tasks, []
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        if self._store is not None:
            await self._writer.flush()
            await self._store.close()
            self._store = None
        if self._simulated is not None:
            await self._simulated.close()
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
            try:
                self.data_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
            except OSError as error:
                raise StoreError(
                    f"cannot create the data directory {self.data_dir}: "
                    f"{error.strerror or error}; choose a writable place with --data-dir, or "
                    "set [storage] url"
                ) from None
        store = await asyncio.to_thread(
            open_store,
            url,
            retention=settings.storage.retention,
            local_tz=ZoneInfo(settings.storage.timezone),
            clock=self._clock,
        )
        self._store, self._store_url = AsyncStore(store), url
        where = parse_url(url).path or mask_url(url)  # a SQLite file, or a masked server URL
        log.info("storing readings in %s", where)

    async def _reopen_store(self) -> None:
        await self._writer.flush()
        if self._store is not None:
            await self._store.close()
        await self._open_store()

    def _received(self, reading: Reading) -> None:
        self._hub.publish(reading)
        self._writer.add(reading)

    # -- pollers --------------------------------------------------------------------------------
    async def _start_poller(self, meter: MeterConfig) -> None:
        stored = await self.store.recent(meter.name, BASELINE_EVIDENCE)
        previous, earlier = (stored[-1], stored[:-1]) if stored else (None, [])
        port = meter.port
        if is_simulated(port) and self._simulated is not None:  # check_settings made sure
            # A simulated meter continues only from a reading fit to be its baseline.
            continue_from = previous
            now = self._clock()
            if previous is not None and baseline_doubt(previous, earlier, now, self._limits):
                continue_from = None
            port = await self._simulated.url_for(
                meter.name, port, continue_from=continue_from, interface=meter.interface
            )
        key = self._keys[meter.name]
        story = Story.from_json(
            await self.store.state(meter.name, STORY_STATE), meter.name, self._limits
        )

        def keep(story: Story) -> None:
            self._writer.set_state(meter.name, STORY_STATE, story.to_json())

        optical: list[OpticalSession] = []

        def connect() -> MeterClient:
            session: Session
            if isinstance(key, Password):  # interface = "optical" (check_settings made sure)
                # One session object per meter, opened again on each reconnect: it remembers
                # the meter's hold-off and lockout, so a reconnect does not knock on a meter
                # that ignores the optical port for minutes (each knock would be wasted).
                if not optical:
                    optical.append(
                        OpticalSession(port, key, baud=meter.baud, timing=self._optical_timing)
                    )
                session = optical[0]
                session.stats = LinkStatistics()  # the poller added up the last connection's
            else:
                session = MepSession(
                    port,
                    key,
                    baud=meter.baud,
                    enable=EnableLine(meter.enable_line),
                    encrypt=meter.encrypt,
                    security=Security(meter.security),
                    timing=self._timing,
                )
            return MeterClient(session, backoff=CLIENT_BACKOFF)

        poller = MeterPoller(
            meter,
            connect=connect,
            on_reading=self._received,
            previous=previous,
            earlier=earlier,
            story=story,
            on_story=keep,
            retry=self._retry,
            limits=self._limits,
            tier_refresh=self._tier_refresh,
            rebase_after=self._rebase[0],
            rebase_after_s=self._rebase[1],
            jobs=self._jobs_for(meter),
            now=self._clock,
        )
        task = asyncio.create_task(poller.run(), name=f"mepgate-poll-{meter.name}")
        self._pollers[meter.name] = (poller, task)

    def _jobs_for(self, meter: MeterConfig) -> list[MeterJob]:
        """The reads a meter's poller does beside the live values, in the order they take
        turns (:mod:`mepgate.service.jobs`)."""
        # Hours are compared where a live reading lies within two poll intervals of their
        # ends: poll intervals are real seconds, the edge is on the gateway's (sped) clock.
        speed = float(getattr(self._clock, "speed", 1.0))
        jobs: list[MeterJob] = [
            BackfillJob(
                meter.name,
                lambda: self._store,
                compare_edge_s=max(5.0, 2 * meter.poll_interval) * speed,
                compare_offset_s=COMPARE_OFFSET_S * speed,
            ),
        ]
        jobs.append(
            MBusJob(
                meter.name,
                board=self._hub.submeters,
                store=lambda: self._store,
                check_interval=self._mbus_check_interval,
            )
        )
        jobs.append(
            EventsJob(
                meter.name,
                store=lambda: self._store,
                on_events=self._hub.publish_events,
                interval=self._events_interval,
            )
        )
        jobs.append(
            SelfReadJob(meter.name, lambda: self._store, interval_s=self._self_read_interval)
        )
        return jobs

    async def _stop_poller(self, name: str) -> None:
        _, task = self._pollers.pop(name)
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


__all__ = [
    "BATCH_INTERVAL",
    "OUTPUT_STOP_TIMEOUT",
    "Gateway",
    "Output",
    "check_settings",
    "default_store_url",
]
