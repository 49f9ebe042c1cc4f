"""``doctor``: try the link step by step and say, in plain language, what is wrong."""

from __future__ import annotations

from dataclasses import dataclass, field

from mepgate.client.client import MeterClient
from mepgate.client.diagnosis import Diagnosis
from mepgate.client.errors import MeterLinkError, MeterRefusedError
from mepgate.client.planning import IDT_VERSION_OFFSET
from mepgate.client.stats import LinkStatistics
from mepgate.tables.identity import BT01
from mepgate.tables.ids import TableId
from mepgate.transport import PortUnavailableError


@dataclass(slots=True)
class DoctorReport:
    diagnosis: Diagnosis
    detail: str = ""
    security: str = ""
    stats: LinkStatistics = field(default_factory=LinkStatistics)
    meter: str = ""

    @property
    def ok(self) -> bool:
        return self.diagnosis is Diagnosis.OK


async def run_doctor(client: MeterClient) -> DoctorReport:
    """Open the port, read one byte of ET04, then BT01; diagnose whatever fails."""
    try:
        await client.connect()
    except PortUnavailableError as error:
        return DoctorReport(Diagnosis(error.reason), str(error), stats=client.stats)
    try:
        await client.read(TableId.ET04, offset=IDT_VERSION_OFFSET, count=1)
        info = BT01.decode(await client.read_table(TableId.BT01))
    except MeterLinkError as error:
        return DoctorReport(error.diagnosis, error.detail, stats=client.stats)
    except PortUnavailableError as error:
        return DoctorReport(Diagnosis(error.reason), str(error), stats=client.stats)
    except MeterRefusedError as error:
        return DoctorReport(Diagnosis.OK, str(error), stats=client.stats)
    finally:
        await client.close()
    meter = f"{info.manufacturer} {info.model} firmware {info.firmware}"
    return DoctorReport(Diagnosis.OK, security=client.security, stats=client.stats, meter=meter)
