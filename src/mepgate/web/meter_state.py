"""One judgement of each meter, shared by ``/api/v1/health``, the dashboard and the meter page.

A meter has a *problem* while its poller is not polling, while it has no reading (or none
stored yet), or while its newest reading is older than :data:`STALE_INTERVALS` poll intervals
(readings rejected in a row say why); any problem makes the health ``degraded``.  *Warnings*
are shown but do not degrade: a meter clock more than :data:`CLOCK_WARNING_S` off, readings
being rejected while others are still accepted.  While a meter is not polling, its last error
is named in words with the advice and a link to where to fix it: the config page for a key or
a port, the meter page (the error history) otherwise, and the section of the troubleshooting
guide (``docs/troubleshooting.md``) that covers it.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from mepgate.config import Settings
from mepgate.service.view import MeterStatus

STALE_INTERVALS = 3
"""A reading older than this many poll intervals means the meter is not being read."""
CLOCK_WARNING_S = 60.0
"""A meter clock further off than this is worth a warning (time-of-use tiers, load profile)."""

# Diagnosis (``LinkFailure.diagnosis``) -> what it is called, and its troubleshooting section.
_DIAGNOSES: dict[str, tuple[str, str | None]] = {
    "no-answer": ("No answer from the meter", "No answer at all"),
    "echo": ("Our own bytes come back", "Own bytes echoed back"),
    "garbled": ("Garbage on the line, never a frame", "Garbage, never a frame"),
    "noisy": ("Noisy line: replies arrive damaged", "Garbage, never a frame"),
    "wrong-key": ("Wrong key", "Authentication failure (0x0B)"),
    "sequence-conflict": ("Another client on the port", "Repeated 0x0C (sequence conflicts)"),
    "port-unavailable": ("The port cannot be opened", "The port cannot be opened"),
    "tls-failed": ("TLS handshake failed", "TLS-required Gen 4 meters"),
    "refused": ("The meter refused a request", "Values look wrong / old firmware"),
    "decode-error": ("The tables do not fit their dimensions", "Values look wrong / old firmware"),
    "config": ("Configuration problem", None),
    "internal-error": ("Internal error (please report it)", None),
}
# Diagnoses fixed in the meter's configuration, and the field that fixes them.
_CONFIG_FIELDS = {
    "wrong-key": "key",
    "tls-failed": "key",
    "config": "key",
    "port-unavailable": "port",
}
TROUBLESHOOTING_GUIDE = "docs/troubleshooting.md"


@dataclass(frozen=True, slots=True, kw_only=True)
class Diagnosis:
    """A meter's last error while it is not polling, in words, with where to fix it."""

    code: str
    title: str
    message: str
    advice: str
    fix_href: str
    fix_text: str
    guide_section: str | None


@dataclass(frozen=True, slots=True, kw_only=True)
class MeterState:
    """A meter judged: each finding once, in words (``None``: nothing to say)."""

    name: str
    state: str
    not_polling: str | None  # the poller's state and its last error
    reading: str | None  # no reading yet, or the newest too old
    rejected: str | None  # readings rejected in a row and the newest reason
    clock: str | None  # the meter's clock too far off
    jobs: tuple[str, ...] = ()  # reads beside the live poll that failed or are not supported
    stale_after_s: float
    last_reading_age_s: float | None
    diagnosis: Diagnosis | None

    @property
    def problems(self) -> tuple[str, ...]:
        """Why the meter is not being read (each makes the health degraded)."""
        found = (self.not_polling, self.reading, self.rejected if self.reading else None)
        return tuple(text for text in found if text)

    @property
    def warnings(self) -> tuple[str, ...]:
        """Worth knowing while the readings still come."""
        found = (None if self.reading else self.rejected, self.clock, *self.jobs)
        return tuple(text for text in found if text)


def assess(status: MeterStatus, settings: Settings, now: dt.datetime) -> MeterState:
    """``status`` judged at ``now`` with the meter's configuration in ``settings``."""
    index, interval = _config_of(status.name, settings)
    stale_after = STALE_INTERVALS * interval
    age = (now - status.last_reading_at).total_seconds() if status.last_reading_at else None
    diagnosis = _diagnosis(status, index) if status.state != "polling" else None
    not_polling = None
    if status.state != "polling":
        why = f": {diagnosis.title} ({diagnosis.message})" if diagnosis is not None else ""
        not_polling = f"{_STATE_WORDS.get(status.state, status.state)}{why}"
    reading = None
    if age is None:
        reading = "no reading yet"
    elif status.readings_stored == 0:
        reading = "readings come, but none is stored yet"  # the first batch, or the database
    elif age > stale_after:
        reading = (
            f"the newest reading is {describe_seconds(age)} old, more than {STALE_INTERVALS} "
            f"poll intervals ({describe_seconds(stale_after)})"
        )
    rejected = None
    if status.rejected_in_a_row:
        reason = status.last_rejection or "no reason given"
        rejected = f"{status.rejected_in_a_row} readings rejected in a row, the newest: {reason}"
    offset = status.clock_offset_s
    clock = None
    if offset is not None and abs(offset) > CLOCK_WARNING_S:
        clock = f"the meter's clock is {describe_offset(offset)} the gateway's"
    jobs = tuple(
        f"{job.name}: {job.last_error or job.detail or job.state}"
        for job in status.jobs
        if job.state in ("failed", "unsupported")
    ) + tuple(f"{job.name}: {job.warning}" for job in status.jobs if job.warning)
    return MeterState(
        name=status.name,
        jobs=jobs,
        state=status.state,
        not_polling=not_polling,
        reading=reading,
        rejected=rejected,
        clock=clock,
        stale_after_s=stale_after,
        last_reading_age_s=age,
        diagnosis=diagnosis,
    )


_STATE_WORDS = {
    "starting": "connecting",
    "retrying": "retrying after a failure",
    "stopped": "stopped",
}


def _config_of(name: str, settings: Settings) -> tuple[int | None, float]:
    for index, meter in enumerate(settings.meter):
        if meter.name == name:
            return index, meter.poll_interval
    return None, 1.0


def _diagnosis(status: MeterStatus, index: int | None) -> Diagnosis | None:
    if not status.last_errors:
        return None
    error = status.last_errors[-1]
    title, section = _DIAGNOSES.get(error.diagnosis, (error.diagnosis, None))
    field = _CONFIG_FIELDS.get(error.diagnosis)
    if field is not None and index is not None:
        href = f"/config#field-meter-{index}-{field}"
        text = f"Fix the {field} on the config page"
    else:
        href, text = f"/meter#meter-{status.name}", "Details on the meter page"
    return Diagnosis(
        code=error.diagnosis,
        title=title,
        message=error.message,
        advice=error.advice,
        fix_href=href,
        fix_text=text,
        guide_section=section,
    )


def describe_seconds(seconds: float) -> str:
    """``42 s``, ``5 min 3 s``, ``3 h 20 min``, ``184 days``: as precise as it is useful."""
    whole = round(abs(seconds))
    if whole < 90:
        return f"{whole} s"
    minutes, secs = divmod(whole, 60)
    if minutes < 60:
        return f"{minutes} min {secs} s" if secs else f"{minutes} min"
    hours, minutes = divmod(minutes, 60)
    if hours < 48:
        return f"{hours} h {minutes} min" if minutes else f"{hours} h"
    return f"{hours // 24} days"


def describe_offset(offset_s: float) -> str:
    """A clock offset in words: ``3 s ahead of``, ``5 min behind``, ``in step with``."""
    if round(offset_s) == 0:
        return "in step with"
    return f"{describe_seconds(offset_s)} {'ahead of' if offset_s > 0 else 'behind'}"
