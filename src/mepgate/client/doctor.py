"""``doctor``: try the link step by step and say, in plain language, what is wrong.

1. open the port (a missing device, a refused or busy serial server);
2. read one byte of ET04, then BT01: whatever fails here is named from what the line did
   (:func:`~mepgate.client.diagnosis.diagnose`: silence, an echo, garbage, 0x0B, 0x0C);
3. then :data:`SAMPLE_EXCHANGES` more small reads, so that a line that loses or damages some
   frames is seen as such: a few exchanges prove little (one lost reply in 18 is "ok" by
   luck), fifty at 1 % or more lost or damaged do not happen on a good line.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from mepgate.client.client import MeterClient
from mepgate.client.diagnosis import Diagnosis
from mepgate.client.errors import MeterLinkError, MeterRefusedError
from mepgate.client.planning import IDT_VERSION_OFFSET
from mepgate.client.stats import LinkStatistics
from mepgate.errors import PortUnavailableError
from mepgate.tables.identity import BT01
from mepgate.tables.ids import TableId

SAMPLE_EXCHANGES = 50
"""Small reads after the first ones: at 10 % loss the chance of seeing none is 0.5 %."""
NOISY_RATE = 0.01
"""Lost or damaged frames per frame sent from which the line is called noisy."""


@dataclass(slots=True)
class DoctorReport:
    diagnosis: Diagnosis
    detail: str = ""
    security: str = ""
    stats: LinkStatistics = field(default_factory=LinkStatistics)
    meter: str = ""
    interface: str = "mep"

    @property
    def advice(self) -> str:
        """What the diagnosis means and what to do, in the interface's words."""
        return self.diagnosis.advice(self.interface)

    @property
    def ok(self) -> bool:
        return self.diagnosis is Diagnosis.OK

    @property
    def lost(self) -> int:
        """Sends that got no reply at all: timeouts, less those answered late (a read's
        first try waits a timeout learnt from the meter's answers; a slower answer is late,
        not lost)."""
        return max(0, self.stats.timeouts - self.stats.late_replies)

    @property
    def loss_rate(self) -> float:
        """Sends that got no reply, per frame sent."""
        return self.lost / max(self.stats.frames_sent, 1)

    @property
    def damage_rate(self) -> float:
        """Replies that failed their digest, per frame sent."""
        return self.stats.damaged_replies / max(self.stats.frames_sent, 1)


async def run_doctor(client: MeterClient, *, samples: int = SAMPLE_EXCHANGES) -> DoctorReport:
    """Open the port, read ET04's IDT byte, BT01, then ``samples`` small reads; diagnose."""
    report = await _run(client, samples)
    report.interface = getattr(client.session, "interface", "mep")
    if report.ok and report.stats.echoed_frames:
        report.detail = "the probe echoes what it sends; mepgate drops the echo"
    return report


async def _run(client: MeterClient, samples: int) -> DoctorReport:
    try:
        await client.connect()
    except PortUnavailableError as error:
        return DoctorReport(Diagnosis(error.reason), str(error), stats=client.stats)
    try:
        await client.read(TableId.ET04, offset=IDT_VERSION_OFFSET, count=1)
        info = BT01.decode(await client.read_table(TableId.BT01))
        for _ in range(samples):
            await client.read(TableId.ET04, offset=IDT_VERSION_OFFSET, count=1)
    except MeterLinkError as error:
        diagnosis = error.diagnosis
        if client.stats.replies and diagnosis in (Diagnosis.NO_ANSWER, Diagnosis.GARBLED):
            # It answered before: silence or garbage now is a line that loses frames.
            diagnosis = Diagnosis.NOISY
        report = DoctorReport(diagnosis, error.detail, stats=client.stats)
        if diagnosis is Diagnosis.NOISY:
            report.detail = f"{error.detail}; {_rates(report)}"
        return report
    except PortUnavailableError as error:
        return DoctorReport(Diagnosis(error.reason), str(error), stats=client.stats)
    except MeterRefusedError as error:
        return DoctorReport(Diagnosis.OK, str(error), stats=client.stats)
    finally:
        await client.close()
    meter = f"{info.manufacturer} {info.model} firmware {info.firmware}"
    report = DoctorReport(Diagnosis.OK, security=client.security, stats=client.stats, meter=meter)
    if report.loss_rate >= NOISY_RATE or report.damage_rate >= NOISY_RATE:
        report.diagnosis = Diagnosis.NOISY
        report.detail = (
            f"{_rates(report)}; readings still get through, but slower, and a worse line will "
            "stop them"
        )
    return report


def _rates(report: DoctorReport) -> str:
    return (
        f"{report.loss_rate:.0%} of requests got no answer in time and "
        f"{report.damage_rate:.0%} of replies arrived damaged"
    )
