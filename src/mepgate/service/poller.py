"""Polling one meter: identity once, then partial reads of just the values the outputs need.

A session (one connected :class:`~mepgate.client.MeterClient`):

1. identity and dimensions once: BT01 (maker, model, firmware), ET03 (utility serial number),
   BT21/BT27/ET11/ET55 through :meth:`MeterClient.dimensions`, ET04's inactive phases (a
   single-phase meter's L2/L3 are left out of the reads, so their values are ``None``) and the
   clock (BT52);
2. then, every ``poll_interval`` seconds (the meter's pace is the floor: a cycle that takes
   longer starts the next one at once, which keeps its slot; further than one interval behind,
   slots are skipped rather than caught up in a burst), a partial read of BT28 holding
   :data:`PRESENT_FIELDS` and a partial read of BT23's first two summations (forward and
   reverse active energy: what the old firmware read too, FIELD-NOTES.md), turned into a
   :class:`~mepgate.reading.Reading` in SI units;
3. BT52 (clock) and BT55 (current tier) once every :data:`CLOCK_INTERVAL`;
4. the same two summations of every BT23 tier block once every
   :data:`~mepgate.reading.TIER_REFRESH_S` (and at the start of a session), in the same
   planned read as the total (:meth:`MeterClient.read_energy_totals`), carried by every
   reading in between.  Only the current tier counts, and the tier registers feed the minute-paced
   energy messages; reading them each cycle would cost one to four requests per second
   (ranges 200 bytes apart are not merged at 9600 Bd) and slow the live values.

Readings are stamped with this computer's clock: a meter's clock may be years off (2000 after
a battery failure, 2255 from a corrupt write), and a stored timestamp decides what the history
shows and what retention deletes.  The meter's clock is read all the same; its offset is kept
(:attr:`MeterPoller.clock_offset`, :meth:`MeterPoller.gateway_time` for the meter's own
timestamps: load profile, events), shown (``MeterStatus.clock_offset_s``) and logged as a
warning beyond :data:`CLOCK_OFFSET_WARNING_S`.

Each reading is validated (:mod:`mepgate.service.validate`) against the last accepted one, the
*baseline*; a failed one is counted by reason, logged (at most once per
:data:`REJECTION_LOG_INTERVAL`, with the reason and the values) and dropped.  The baseline is
chosen from evidence, never taken on trust:

* the newest stored reading is the baseline after a restart unless it is implausible on its own
  or stamped in the future (:func:`~mepgate.service.validate.baseline_doubt`); the stored data
  is the evidence, so the decision is the same after every restart;
* with no baseline, a reading starts one only if its totals agree with its tier registers
  (:func:`~mepgate.service.validate.baseline_findings`);
* readings that fail only against the baseline but agree with each other for
  :data:`REBASE_AFTER` readings and :data:`REBASE_AFTER_S` seconds (a replaced meter, reset
  registers, a clock set back, a bad baseline) become the new baseline, with a warning in the
  log; stored, the new baseline is the one the next start continues from.

A poll that fails on a noisy or briefly silent line is skipped (logged and counted) and the
next poll goes on in the same session: starting a session again costs the identity and
dimension reads, several seconds on such a line.  After :data:`MISSED_POLLS_BEFORE_RESTART`
such polls in a row, and on any other failure, the session ends; the poller retries
with exponential backoff (:class:`RetryPolicy`), except after a wrong key
(:class:`~mepgate.client.AuthenticationError`): retrying cannot help and each try costs the
meter an authentication failure, so the poller stops and says why.

A :class:`MeterPoller` also lends its client to the web console (:meth:`MeterPoller.exchange`)
between two poll cycles: the meter serves one request at a time.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
import time
from collections import Counter, deque
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import TypeVar

from mepgate.client import (
    DASHBOARD_FIELDS,
    AuthenticationError,
    Diagnosis,
    EnergyTotals,
    HeldOffError,
    LinkStatistics,
    LockedOutError,
    MeterClient,
    MeterLinkError,
    MeterRefusedError,
    NoAnswerError,
    NoisyLineError,
    TlsSessionError,
)
from mepgate.config import ConfigError, MeterConfig
from mepgate.errors import MepgateError
from mepgate.reading import (
    PHASES,
    TIER_REFRESH_S,
    TIERS,
    Reading,
    merge_reactive_power,
    tier_energy_field,
)
from mepgate.service.jobs import (
    MAX_LIVE_GAP_S,
    JobContext,
    JobStatus,
    MeterJob,
    StepTimes,
    room_for_step,
    step_time_limit,
)
from mepgate.service.validate import (
    DEFAULT_LIMITS,
    Finding,
    Limits,
    Rejection,
    Story,
    baseline_doubt,
    baseline_findings,
    check,
    describe,
)
from mepgate.service.view import LinkFailure, MeterIdentity, MeterStatus
from mepgate.tables.clock import BT52, BT55
from mepgate.tables.errors import TableDecodeError
from mepgate.tables.identity import BT01, ET03, ET04, SystemInformation
from mepgate.tables.ids import TableId
from mepgate.tables.registers import PresentValues, RegisterTotals
from mepgate.transport import PortUnavailableError

log = logging.getLogger(__name__)
T = TypeVar("T")

PRESENT_FIELDS: tuple[str, ...] = (
    *DASHBOARD_FIELDS,
    "power_factor_l1_milli",
    "power_factor_l2_milli",
    "power_factor_l3_milli",
    "import_reactive_power_var",
    "export_reactive_power_var",
)
"""The BT28 values a reading carries: the dashboard's, plus power factors and reactive power.
On a meter with the guide's BT27 order they all lie in one range, read with one request."""

ENERGY_SUMMATIONS = 2
"""BT23 summations read, of the total block each cycle and of the tier blocks every
:data:`~mepgate.reading.TIER_REFRESH_S`: 0 forward and 1 reverse active energy (MEP
guide, BT23)."""
CLOCK_INTERVAL = 60.0
"""Seconds between reads of BT52 (clock) and BT55 (tier): both change slowly, each read costs
a request the live values could have had."""
CLOCK_RESYNC_S = 2.0
"""Re-base the meter-time estimate only when BT52 disagrees by more than this: BT52 has whole
seconds, so smaller differences are its rounding, and re-basing would make time jitter."""
CLOCK_OFFSET_WARNING_S = 60.0
"""A meter clock further than this from this computer's is logged as a warning: readings do
not depend on it, but the meter's own timestamps (load profile, events, its display) do."""
MAX_ERRORS_KEPT = 10
MISSED_POLLS_BEFORE_RESTART = 3
HOLD_OFF_MARGIN_S = 1.0
"""Knock this long after the end of an optical hold-off or lockout the meter announced."""
"""Polls in a row that may fail on a noisy or silent line before the session is started again
(a meter that stays silent is then reconnected and diagnosed afresh)."""
TRANSIENT_POLL_ERRORS = (NoisyLineError, NoAnswerError)
STEPS_REMEMBERED_FOR_POLLS = 5
"""The time a poll takes, for fitting job steps around it, is the longest of this many."""
"""Failures of one poll that leave the session sound: frames were lost or damaged, and the next
exchange may well go through."""
REBASE_AFTER = 5
REBASE_AFTER_S = 2 * TIER_REFRESH_S
"""Readings that fail only against the baseline become the new baseline once this many of them,
spanning at least this many seconds, agree with each other (every one plausible after the one
before).  A glitch is one reading, or a few that contradict each other; a replaced meter, reset
registers or a bad baseline give a consistent story.  Two tier refreshes: the story includes
the tier registers read twice."""
REJECTION_LOG_INTERVAL = 60.0
"""Seconds between log lines about rejected readings of one meter: the first rejection is
logged at once, a persistent one once a minute with the count, not once per reading."""
BASELINE_EVIDENCE = 2
"""Stored readings the gateway hands a poller: the newest (the baseline) and the one before
it, which vouches for it (:func:`~mepgate.service.validate.baseline_doubt`)."""
_MILLI = 1000.0
_RESYNC = dt.timedelta(seconds=CLOCK_RESYNC_S)
_ENERGY_REASONS = frozenset({Rejection.ENERGY_DECREASED, Rejection.ENERGY_JUMP, Rejection.TIER_SUM})


class PollerState(StrEnum):
    """Where a poller is: shown as ``MeterStatus.state``."""

    STARTING = "starting"  # connecting, reading identity and dimensions
    POLLING = "polling"
    RETRYING = "retrying"  # the last session failed; waiting for ``next_retry_at``
    STOPPED = "stopped"  # given up (wrong key) or shut down; see ``last_errors``


@dataclass(frozen=True, slots=True, kw_only=True)
class RetryPolicy:
    """Delays between sessions: ``initial`` doubling up to ``maximum``."""

    initial: float = 1.0
    maximum: float = 60.0

    def delay(self, failures: int) -> float:
        exponent = min(max(failures - 1, 0), 64)
        return float(min(self.initial * 2.0**exponent, self.maximum))


# -- pure parts ---------------------------------------------------------------------------------
def _scaled(value: int | None, divisor: float = 1.0) -> float | None:
    return None if value is None else value / divisor


def _tier_energies(tiers: Sequence[RegisterTotals]) -> dict[str, float | None]:
    """Reading fields of BT23's tier blocks (tier 0 first); tiers beyond :data:`TIERS` are
    left out."""
    out: dict[str, float | None] = {}
    for number, totals in zip(TIERS, tiers, strict=False):
        out[tier_energy_field("forward", number)] = _scaled(totals.forward_active_energy_wh)
        out[tier_energy_field("reverse", number)] = _scaled(totals.reverse_active_energy_wh)
    return out


def reading_from(
    meter: str,
    at: dt.datetime,
    present: PresentValues,
    energy: RegisterTotals,
    tier: int | None = None,
    tiers: Sequence[RegisterTotals] = (),
) -> Reading:
    """A :class:`Reading` in SI units from decoded BT28 values and BT23 totals.

    ``tier`` is BT55's 0-based current tier; the reading carries it 1-based, as the meter's
    display shows it.  ``tiers`` are BT23's tier blocks, tier 0 first (reading fields
    ``*_tier1_wh``...).  Reactive power is signed: import (inductive) minus export.
    """
    if energy.forward_active_energy_wh is None or energy.reverse_active_energy_wh is None:
        raise TableDecodeError("BT23 holds no forward/reverse active energy summations")
    p = present
    return Reading(
        meter=meter,
        at=at,
        forward_active_energy_wh=float(energy.forward_active_energy_wh),
        reverse_active_energy_wh=float(energy.reverse_active_energy_wh),
        active_power_import_w=_scaled(p.forward_active_power_w),
        active_power_export_w=_scaled(p.reverse_active_power_w),
        active_power_import_l1_w=_scaled(p.forward_active_power_l1_w),
        active_power_import_l2_w=_scaled(p.forward_active_power_l2_w),
        active_power_import_l3_w=_scaled(p.forward_active_power_l3_w),
        active_power_export_l1_w=_scaled(p.reverse_active_power_l1_w),
        active_power_export_l2_w=_scaled(p.reverse_active_power_l2_w),
        active_power_export_l3_w=_scaled(p.reverse_active_power_l3_w),
        voltage_l1_v=_scaled(p.rms_voltage_l1_mv, _MILLI),
        voltage_l2_v=_scaled(p.rms_voltage_l2_mv, _MILLI),
        voltage_l3_v=_scaled(p.rms_voltage_l3_mv, _MILLI),
        current_l1_a=_scaled(p.rms_current_l1_ma, _MILLI),
        current_l2_a=_scaled(p.rms_current_l2_ma, _MILLI),
        current_l3_a=_scaled(p.rms_current_l3_ma, _MILLI),
        power_factor_l1=_scaled(p.power_factor_l1_milli, _MILLI),
        power_factor_l2=_scaled(p.power_factor_l2_milli, _MILLI),
        power_factor_l3=_scaled(p.power_factor_l3_milli, _MILLI),
        frequency_hz=_scaled(p.frequency_mhz, _MILLI),
        reactive_power_var=merge_reactive_power(
            _scaled(p.import_reactive_power_var), _scaled(p.export_reactive_power_var)
        ),
        current_tier=None if tier is None else tier + 1,
        **_tier_energies(tiers),
    )


def absent_phases(system: SystemInformation) -> frozenset[str]:
    """The phases (``"l1"``.. of :data:`~mepgate.reading.PHASES`) whose values a meter does not
    measure, from ET04 "Inactive Voltage Phases" / "Inactive Current Phases" (MEP guide, ET04
    System Information, offset 62): a single-phase meter marks L2 and L3 not present.

    A phase is left out when its voltage is marked not present, or its current is (the current
    flags count only with "Separate Voltage and Current Inactive Phases" set; otherwise the
    voltage flags stand for both): without either, the phase has no power or power factor
    either, and the meter shows zeros that are not measurements.
    """
    voltage = (system.inactive_voltage_l1, system.inactive_voltage_l2, system.inactive_voltage_l3)
    current = (
        (system.inactive_current_l1, system.inactive_current_l2, system.inactive_current_l3)
        if system.separate_voltage_current_phases
        else voltage
    )
    return frozenset(phase for phase, v, i in zip(PHASES, voltage, current, strict=True) if v or i)


def present_fields(absent: frozenset[str] = frozenset()) -> tuple[str, ...]:
    """:data:`PRESENT_FIELDS` without the values of the ``absent`` phases: not read, so the
    reading has ``None`` for them (a value the meter does not have is never zero)."""
    return tuple(
        name for name in PRESENT_FIELDS if not any(f"_{phase}_" in name for phase in absent)
    )


def describe_failure(error: BaseException, at: dt.datetime) -> LinkFailure:
    """What the meter page shows for a failure: message, diagnosis and advice (no secrets:
    the client's and the config's messages never carry key material)."""
    if isinstance(error, MeterLinkError):
        return LinkFailure(
            at=at,
            message=error.detail or type(error).__name__,
            diagnosis=error.diagnosis.value,
            advice=error.diagnosis.advice(error.interface),
        )
    if isinstance(error, PortUnavailableError):
        diagnosis = Diagnosis(error.reason)
        return LinkFailure(
            at=at, message=str(error), diagnosis=diagnosis.value, advice=diagnosis.advice()
        )
    if isinstance(error, MeterRefusedError):
        advice = (
            "the meter answers and accepts the key, but refused this request; if it persists "
            "the key may lack the access level, or the firmware lacks the table"
        )
        return LinkFailure(at=at, message=str(error), diagnosis="refused", advice=advice)
    if isinstance(error, TableDecodeError):
        advice = "the meter's tables do not match their dimensions; the poller re-reads them"
        return LinkFailure(at=at, message=str(error), diagnosis="decode-error", advice=advice)
    if isinstance(error, ConfigError):
        advice = "fix the meter's configuration (the setup or config page, or the TOML file)"
        return LinkFailure(at=at, message=str(error), diagnosis="config", advice=advice)
    return LinkFailure(
        at=at,
        message=f"{type(error).__name__}: {error}",
        diagnosis="internal-error",
        advice="an unexpected error; the poller retries. Please report it with the log",
    )


def _utc_now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


# -- the poller ---------------------------------------------------------------------------------
class MeterPoller:
    """Polls one meter until cancelled; :meth:`status` tells how it goes.

    ``connect`` makes a fresh (not yet connected) client for each session; ``on_reading``
    receives every reading that passed validation.  ``previous`` is the meter's newest stored
    reading, so energy is checked across gateway restarts too, and ``earlier`` the readings
    stored before it, oldest first (the evidence for or against it as the baseline).
    ``story`` is the evidence for a new baseline gathered before a restart, ``on_story`` is told
    each time it changes (the gateway keeps it in the store).  ``now``,
    ``monotonic`` and ``sleep`` are the poller's clocks (tests pass virtual ones);
    ``tier_refresh``, ``clock_interval``, ``rebase_after`` and ``rebase_after_s`` default to
    :data:`~mepgate.reading.TIER_REFRESH_S`, :data:`CLOCK_INTERVAL`, :data:`REBASE_AFTER` and
    :data:`REBASE_AFTER_S`.
    """

    def __init__(
        self,
        config: MeterConfig,
        *,
        connect: Callable[[], MeterClient],
        on_reading: Callable[[Reading], None],
        previous: Reading | None = None,
        earlier: Sequence[Reading] = (),
        story: Story | None = None,
        on_story: Callable[[Story], None] | None = None,
        retry: RetryPolicy | None = None,
        limits: Limits = DEFAULT_LIMITS,
        now: Callable[[], dt.datetime] = _utc_now,
        monotonic: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        tier_refresh: float = TIER_REFRESH_S,
        clock_interval: float = CLOCK_INTERVAL,
        rebase_after: int = REBASE_AFTER,
        rebase_after_s: float = REBASE_AFTER_S,
        missed_polls_before_restart: int = MISSED_POLLS_BEFORE_RESTART,
        jobs: Sequence[MeterJob] = (),
    ) -> None:
        self.config = config
        self._connect = connect
        self._on_reading = on_reading
        self._retry = retry or RetryPolicy()
        self._limits = limits
        self._now = now
        self._monotonic = monotonic
        self._sleep = sleep
        self._tier_refresh = tier_refresh
        self._clock_interval = clock_interval
        self._rebase_after = rebase_after
        self._rebase_after_s = rebase_after_s
        self._missed_limit = missed_polls_before_restart
        self.state = PollerState.STARTING
        self.identity: MeterIdentity | None = None
        self.meter_clock: dt.datetime | None = None
        self.last_reading_at: dt.datetime | None = None
        self.next_retry_at: dt.datetime | None = None
        self.readings_accepted = 0
        self.readings_rejected = 0
        self.rejected_in_a_row = 0
        self.last_rejection: str | None = None
        self.rebaselines = 0  # times readings that disagreed with the baseline replaced it
        self.rejections: Counter[str] = Counter()
        self.errors: deque[LinkFailure] = deque(maxlen=MAX_ERRORS_KEPT)
        self._past_links = LinkStatistics()
        self._client: MeterClient | None = None
        self._lock = asyncio.Lock()  # one request in flight: the poll cycle or the console
        self._clock_offset: dt.timedelta | None = None  # meter time minus our time
        self._offset_warned: dt.timedelta | None = None  # the offset last logged as a warning
        self._clock_due = 0.0
        self._fields = PRESENT_FIELDS
        self._tier: int | None = None
        self._tiers: tuple[RegisterTotals, ...] = ()  # BT23 tier blocks, read every tier_refresh
        self._tiers_due = 0.0
        self._story = story if story is not None else Story(limits)
        self._on_story = on_story
        if self._story.length:
            log.info(
                "meter %s: %d reading(s) since %s disagreed with the baseline before the "
                "restart; the evidence for a new one continues from there",
                self.name,
                self._story.length,
                _summary(self._story.first) if self._story.first else "?",
            )
        self._streak_logged = False  # a warning about the current rejections went to the log
        self._rejection_log_due = 0.0
        self._unlogged_rejections = 0
        self._last_at: dt.datetime | None = None
        self._polled_in_session = False
        self.missed_polls = 0
        """Polls that failed on a noisy or silent line and were skipped in a session."""
        self._previous = self._stored_baseline(previous, earlier)
        self.jobs: tuple[MeterJob, ...] = tuple(jobs)
        self._sessions = 0
        self._next_job = 0
        self._step_times = StepTimes()
        self._poll_times: deque[float] = deque(maxlen=STEPS_REMEMBERED_FOR_POLLS)

    @property
    def name(self) -> str:
        return self.config.name

    @property
    def connected(self) -> bool:
        return self._client is not None and self.state is PollerState.POLLING

    def link_statistics(self) -> dict[str, int]:
        totals = self._past_links.as_dict()
        if self._client is not None:
            for key, value in self._client.stats.as_dict().items():
                totals[key] += value
        totals["missed_polls"] = self.missed_polls
        return totals

    @property
    def clock_offset(self) -> dt.timedelta | None:
        """The meter's clock minus this computer's (BT52, re-read every
        :data:`CLOCK_INTERVAL`); ``None`` until read."""
        return self._clock_offset

    def gateway_time(self, meter_time: dt.datetime) -> dt.datetime:
        """A time the meter stamped (load profile intervals, events) on this computer's clock,
        which the readings use: the meter's time less its clock offset."""
        return meter_time - (self._clock_offset or dt.timedelta(0))

    def status(self, *, stored: int = 0) -> MeterStatus:
        offset = self._clock_offset
        return MeterStatus(
            name=self.name,
            port=self.config.port,
            connected=self.connected,
            identity=self.identity,
            meter_clock=self.meter_clock,
            last_reading_at=self.last_reading_at,
            readings_stored=stored,
            readings_rejected=self.readings_rejected,
            rejection_reasons=dict(self.rejections),
            link=self.link_statistics(),
            last_errors=tuple(self.errors),
            state=self.state.value,
            next_retry_at=self.next_retry_at if self.state is PollerState.RETRYING else None,
            last_rejection=self.last_rejection,
            rejected_in_a_row=self.rejected_in_a_row,
            clock_offset_s=None if offset is None else offset.total_seconds(),
            jobs=self.job_statuses(),
        )

    def job_statuses(self) -> tuple[JobStatus, ...]:
        """Each job's state (:mod:`mepgate.service.jobs`); a job that cannot tell is named
        as failed rather than hiding the others."""
        statuses = []
        for job in self.jobs:
            try:
                statuses.append(job.status())
            except Exception as error:  # a bug in one job must not hide the meter's status
                log.exception("meter %s: job %s could not tell its status", self.name, job.name)
                statuses.append(
                    JobStatus(name=job.name, state="failed", last_error=f"internal error: {error}")
                )
        return tuple(statuses)

    def job_context(self) -> JobContext:
        """What a job step knows (:class:`~mepgate.service.jobs.JobContext`)."""
        return JobContext(
            meter=self.name,
            session=self._sessions,
            identity=self.identity,
            clock_offset=self._clock_offset,
            now=self._now,
            monotonic=self._monotonic,
            gateway_time=self.gateway_time,
        )

    # -- the console's access ---------------------------------------------------------------
    async def exchange(self, operation: Callable[[MeterClient], Awaitable[T]]) -> T:
        """Run ``operation`` on the connected client between two poll cycles."""
        async with self._lock:
            if self._client is None or self.state is not PollerState.POLLING:
                last = f" Last error: {self.errors[-1].message}" if self.errors else ""
                raise PortUnavailableError(
                    f"meter {self.name!r} is not connected (state: {self.state.value}).{last}"
                )
            return await operation(self._client)

    # -- running ------------------------------------------------------------------------------
    async def run(self) -> None:
        """Poll until cancelled, or until the key is found wrong."""
        failures = 0
        told: float | None = None  # how long the meter said it will not answer
        try:
            while True:
                self.state = PollerState.STARTING
                self.next_retry_at = None
                try:
                    await self._session()
                except AuthenticationError as error:
                    self._failed(error)
                    log.error(
                        "meter %s: the key is wrong; not retrying until the configuration "
                        "changes. %s",
                        self.name,
                        error.diagnosis.advice(),
                    )
                    self.state = PollerState.STOPPED
                    return
                except (HeldOffError, LockedOutError) as error:
                    # The meter said how long it ignores the optical port: knock when it ends,
                    # not before (a knock meanwhile is wasted) and not minutes after.
                    self._failed(error)
                    failures = 1
                    if error.seconds_left:
                        told = error.seconds_left + HOLD_OFF_MARGIN_S
                except (MepgateError, OSError) as error:
                    self._failed(error)
                    failures = 1 if self._polled_in_session else failures + 1
                    if isinstance(error, TlsSessionError):
                        failures = 1 << 16  # TLS failing is nearly always the key: wait longest
                except Exception as error:  # a bug: keep the gateway alive, say so in the log
                    log.exception("meter %s: unexpected error in the poller", self.name)
                    self._failed(error)
                    failures += 1
                delay = self._retry.delay(failures) if told is None else told
                told = None
                self.state = PollerState.RETRYING
                self.next_retry_at = self._now() + dt.timedelta(seconds=delay)
                await self._sleep(delay)
        finally:
            self.state = PollerState.STOPPED
            self.next_retry_at = None

    def _failed(self, error: BaseException) -> None:
        entry = describe_failure(error, self._now())
        repeated = bool(self.errors) and self.errors[-1].message == entry.message
        log.log(
            logging.DEBUG if repeated else logging.WARNING,
            "meter %s: %s (%s)",
            self.name,
            entry.message,
            entry.diagnosis,
        )
        self.errors.append(entry)

    async def _session(self) -> None:
        self._polled_in_session = False
        self._sessions += 1
        client = self._connect()
        try:
            await client.connect()
            self._client = client
            async with self._lock:
                await self._identify(client)
            self.state = PollerState.POLLING
            log.info("meter %s: polling every %g s", self.name, self.config.poll_interval)
            await self._poll(client)
        finally:
            self._client = None
            for key, value in client.stats.as_dict().items():
                setattr(self._past_links, key, getattr(self._past_links, key) + value)
            with contextlib.suppress(MepgateError, OSError):
                await client.close()

    async def _identify(self, client: MeterClient) -> None:
        bt01 = BT01.decode(await client.read_table(TableId.BT01))
        utility_serial: str | None = None
        with contextlib.suppress(MeterRefusedError, TableDecodeError):
            et03 = ET03.decode(await client.read_table(TableId.ET03))
            utility_serial = et03.utility_serial_number
        dims = await client.dimensions()
        self.identity = MeterIdentity(
            manufacturer=bt01.manufacturer.strip(),
            model=bt01.model.strip(),
            firmware=bt01.firmware,
            serial_number=(utility_serial or "").strip(),
            utility_serial_number=utility_serial.strip() if utility_serial else None,
            generation=dims.generation,
        )
        self._fields = present_fields(await self._absent_phases(client))
        await self._read_clock(client)
        self._tiers_due = self._monotonic()  # the session's first reading carries them

    async def _absent_phases(self, client: MeterClient) -> frozenset[str]:
        """The phases ET04 marks not present (:func:`absent_phases`); none when ET04 cannot be
        read or decoded (every phase is read, as before)."""
        try:
            system = ET04.decode(await client.read_table(TableId.ET04))
        except (MeterRefusedError, TableDecodeError):
            return frozenset()
        absent = absent_phases(system)
        if absent:
            log.info(
                "meter %s: ET04 marks phase(s) %s not present; their values are not read",
                self.name,
                ", ".join(sorted(p.upper() for p in absent)),
            )
        return absent

    async def _read_clock(self, client: MeterClient) -> None:
        self._clock_due = self._monotonic() + self._clock_interval
        with contextlib.suppress(MeterRefusedError, TableDecodeError):
            state = BT55.decode(await client.read_table(TableId.BT55))
            self._tier = state.current_tier
        try:
            clock = BT52.decode(await client.read_table(TableId.BT52))
        except (MeterRefusedError, TableDecodeError):
            return  # the offset stays as last read (readings never depend on it)
        meter_time = clock.clock_calendar.to_datetime(dt.UTC)
        if meter_time is None:
            return
        # BT52 shows whole seconds: the meter's time is half a second later on average.
        meter_time += dt.timedelta(seconds=0.5)
        self.meter_clock = meter_time
        offset = meter_time - self._now()
        if (
            self._clock_offset is None
            or abs((offset - self._clock_offset).total_seconds()) > CLOCK_RESYNC_S
        ):
            self._clock_offset = offset  # kept steady within BT52's rounding
        self._check_offset(offset)

    def _check_offset(self, offset: dt.timedelta) -> None:
        """Warn when the meter's clock is off by more than :data:`CLOCK_OFFSET_WARNING_S`, again
        when it moves by that much more, and say when it is right again."""
        limit = dt.timedelta(seconds=CLOCK_OFFSET_WARNING_S)
        warned = self._offset_warned
        if abs(offset) > limit and (warned is None or abs(offset - warned) > limit):
            self._offset_warned = offset
            log.warning(
                "meter %s: its clock is %s %s this computer's (meter: %s UTC); readings are "
                "stamped with this computer's clock, and the offset is kept for the meter's own "
                "timestamps (load profile, events). Set the meter's clock, or this computer's "
                "if it is the wrong one",
                self.name,
                _duration(abs(offset)),
                "ahead of" if offset > dt.timedelta(0) else "behind",
                self.meter_clock.strftime("%Y-%m-%d %H:%M:%S") if self.meter_clock else "?",
            )
        elif warned is not None and abs(offset) <= limit:
            self._offset_warned = None
            log.info("meter %s: its clock agrees with this computer's again", self.name)

    async def _poll(self, client: MeterClient) -> None:
        interval = self.config.poll_interval
        due = self._monotonic()
        missed = 0
        while True:
            started = self._monotonic()
            try:
                async with self._lock:
                    if self._monotonic() >= self._clock_due:
                        await self._read_clock(client)
                    reading = await self._read_values(client)
            except TRANSIENT_POLL_ERRORS as error:
                missed += 1
                if missed >= self._missed_limit:
                    raise
                self._failed(error)
                self.missed_polls += 1
            else:
                missed = 0
                self._consider(reading)
                self._polled_in_session = True
                self._poll_times.append(self._monotonic() - started)
            due += interval
            now = self._monotonic()
            due = _on_schedule(due, now, interval)
            if self.jobs:
                await self._run_jobs(client, last_reading_at=now, poll_due=due)
                now = self._monotonic()
                due = _on_schedule(due, now, interval)
            await self._sleep(due - now)

    async def _run_jobs(
        self, client: MeterClient, *, last_reading_at: float, poll_due: float
    ) -> None:
        """Let the jobs take steps, in turn, while the next live reading can still come in time
        (:func:`~mepgate.service.jobs.room_for_step`).

        A job whose step does not fit now waits for the next round, first in line, while the
        others' steps that do fit go on (a long step does not hold up short ones).  A job whose
        step could never fit the window (longer than the live gap less a poll) still gets one
        step right after a poll, when no other step ran: it is slow, never starved.
        """
        poll_estimate = max(self._poll_times, default=0.0)
        window = max(self.config.poll_interval, MAX_LIVE_GAP_S) - poll_estimate
        count = len(self.jobs)
        ran = 0
        waiting: int | None = None  # the first job that did not fit: first in the next round
        asked = 0
        while asked < count:
            index = self._next_job % count
            job = self.jobs[index]
            self._next_job += 1
            asked += 1
            context = self.job_context()
            if not job.wants_to_run(context):
                continue
            estimate = self._step_times.estimate(job.name)
            if not room_for_step(
                now=self._monotonic(),
                last_reading_at=last_reading_at,
                poll_due=poll_due,
                poll_interval=self.config.poll_interval,
                poll_estimate=poll_estimate,
                step_estimate=estimate,
            ) and not (ran == 0 and estimate >= window):
                if waiting is None:
                    waiting = index
                continue
            ran += 1
            asked = 0
            started = self._monotonic()
            try:
                async with self._lock:
                    limit = step_time_limit(
                        now=self._monotonic(),
                        last_reading_at=last_reading_at,
                        poll_interval=self.config.poll_interval,
                        poll_estimate=poll_estimate,
                    )
                    with client.time_limit(limit):
                        await job.step(client, context)
            except (MeterRefusedError, TableDecodeError) as error:
                job.failed(error, context)
            except (MeterLinkError, PortUnavailableError) as error:
                # Only the polls judge the link: a job's read that failed on it (a noisy line,
                # silence, a verdict drawn from one long read) is the job's failure, and the
                # next poll, at once, says whether the link itself is gone -- a job must never
                # end a session, let alone stop the poller over a key the polls just used.
                job.failed(error, context)
                break
            except (MepgateError, ValueError) as error:
                job.failed(error, context)
            except Exception as error:  # a bug in a job: polling goes on, the log says so
                log.exception("meter %s: unexpected error in job %s", self.name, job.name)
                job.failed(error, context)
            finally:
                took = self._monotonic() - started
                self._step_times.add(job.name, took)
                log.debug("meter %s: job %s took a step of %.2f s", self.name, job.name, took)
        if waiting is not None:
            self._next_job = waiting

    async def _read_values(self, client: MeterClient) -> Reading:
        energy = await self._read_energy(client)
        present = await client.read_present(self._fields)
        return reading_from(
            self.name, self._timestamp(), present, energy.total, self._tier, self._tiers
        )

    async def _read_energy(self, client: MeterClient) -> EnergyTotals:
        """BT23's totals, with the tier registers when they are due."""
        if self._monotonic() >= self._tiers_due:
            self._tiers_due = self._monotonic() + self._tier_refresh
            try:
                totals = await client.read_energy_totals(ENERGY_SUMMATIONS, tiers=True)
            except (MeterRefusedError, TableDecodeError):
                self._tiers = ()  # readings carry no tier registers rather than stale ones
            else:
                self._tiers = totals.tiers
                return totals
        return await client.read_energy_totals(ENERGY_SUMMATIONS)

    def _timestamp(self) -> dt.datetime:
        """This computer's time now; never at or before the previous reading as long as the
        difference is a small step of the clock (a restart within a second, an NTP step)."""
        at = self._now()
        last = self._last_at or (self._previous.at if self._previous is not None else None)
        if last is not None and dt.timedelta(0) <= last - at <= _RESYNC:
            at = last + dt.timedelta(milliseconds=1)
        self._last_at = at
        return at

    # -- the baseline ---------------------------------------------------------------------------
    def _stored_baseline(
        self, newest: Reading | None, earlier: Sequence[Reading]
    ) -> Reading | None:
        """``newest`` (the newest stored reading) as the baseline, unless the evidence speaks
        against it (:func:`~mepgate.service.validate.baseline_doubt`)."""
        if newest is None:
            return None
        doubt = baseline_doubt(newest, earlier, self._now(), self._limits)
        if doubt is None:
            return newest
        log.warning(
            "meter %s: the newest stored reading (%s) is not the baseline: %s. The next "
            "plausible reading starts a new one",
            self.name,
            _summary(newest),
            doubt,
        )
        return None

    def _consider(self, reading: Reading) -> None:
        findings = check(reading, None, self._limits)
        if findings:  # implausible on its own: a glitch, whatever the baseline says
            self._reject(reading, findings)
            return
        if self._previous is None:
            findings = baseline_findings(reading, self._limits)
        else:
            findings = check(reading, self._previous, self._limits)
        if not findings:
            self._accept(reading)
        elif self._corroborated(reading):
            self._rebase(reading, findings)
        else:
            self._reject(reading, findings)

    def _corroborated(self, reading: Reading) -> bool:
        """Whether ``reading``, rejected against the baseline, ends a :class:`Story` long enough
        to replace it: :data:`REBASE_AFTER` readings over :data:`REBASE_AFTER_S` seconds."""
        self._story.add(reading)
        if self._on_story is not None:
            self._on_story(self._story)
        story = self._story
        return story.length >= self._rebase_after and story.span_s >= self._rebase_after_s

    def _rebase(self, reading: Reading, findings: Sequence[Finding]) -> None:
        self.rebaselines += 1
        log.warning(
            "meter %s: new baseline. %d readings over %s agree with each other but not with "
            "the %s (%s); continuing from %s. A replaced meter, reset registers, a clock set "
            "back, or a bad baseline",
            self.name,
            self._story.length,
            _duration(dt.timedelta(seconds=self._story.span_s)),
            "last accepted reading" if self._previous is not None else "tier registers",
            describe(findings),
            _summary(reading),
        )
        self._accept(reading)

    def _accept(self, reading: Reading) -> None:
        if self.rejected_in_a_row and self._streak_logged:
            log.info(
                "meter %s: readings accepted again after %d rejected",
                self.name,
                self.rejected_in_a_row,
            )
        self.rejected_in_a_row = 0
        self._streak_logged = False
        if self._story.length:
            self._story.clear()
            if self._on_story is not None:
                self._on_story(self._story)
        self._previous = reading
        self.readings_accepted += 1
        self.last_reading_at = reading.at
        self._on_reading(reading)

    def _reject(self, reading: Reading, findings: Sequence[Finding]) -> None:
        self.readings_rejected += 1
        self.rejected_in_a_row += 1
        reasons = set(dict.fromkeys(f.reason for f in findings))
        self.rejections.update(r.value for r in reasons)
        self.last_rejection = f"{describe(findings)} (reading {_summary(reading)})"
        if self.rejected_in_a_row == 1 and reasons & _ENERGY_REASONS:
            # Re-read the tier registers next cycle: a glitch in them would otherwise be
            # carried, and rejected, for a whole refresh interval.
            self._tiers_due = self._monotonic()
        self._unlogged_rejections += 1
        now = self._monotonic()
        if now < self._rejection_log_due:
            return
        self._rejection_log_due = now + REJECTION_LOG_INTERVAL
        log.warning(
            "meter %s: reading rejected (%d in a row, %d since the last such message): %s",
            self.name,
            self.rejected_in_a_row,
            self._unlogged_rejections,
            self.last_rejection,
        )
        self._unlogged_rejections = 0
        self._streak_logged = True


def _on_schedule(due: float, now: float, interval: float) -> float:
    """When the next poll is due, given the schedule's ``due`` and the time ``now``.

    Polls keep to a schedule of one every ``interval``: a poll that ran late (a reply lost on
    a noisy line, a meter that paused) does not cost its slot -- the next one starts at once
    and the schedule holds.  The poller stays at most one interval behind: slots further back
    are skipped, so the meter never gets a burst of polls to catch up, and on a line slower
    than the interval polls simply follow each other (the meter's pace is the floor)."""
    return max(due, now - interval)


def _summary(reading: Reading) -> str:
    """A reading's time and main values, in words, for the log and the meter page."""
    parts = [
        reading.at.astimezone(dt.UTC).strftime("%Y-%m-%d %H:%M:%S UTC"),
        f"forward {reading.forward_active_energy_wh:,.0f} Wh",
        f"reverse {reading.reverse_active_energy_wh:,.0f} Wh",
    ]
    net = reading.net_power_w
    if net is not None:
        parts.append(f"net {net:,.0f} W")
    return ", ".join(parts)


def _duration(span: dt.timedelta) -> str:
    """``span`` in the largest units that say it: "3 s", "4 min 10 s", "2 h 5 min",
    "255 days", "31.2 years"."""
    seconds = round(abs(span.total_seconds()))
    if seconds < 60:
        return f"{seconds} s"
    if seconds < 3600:
        return f"{seconds // 60} min {seconds % 60} s"
    if seconds < 86_400:
        return f"{seconds // 3600} h {seconds % 3600 // 60} min"
    days = seconds / 86_400
    return f"{days:,.0f} days" if days < 365 else f"{days / 365.25:,.1f} years"
