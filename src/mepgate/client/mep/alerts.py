"""Servicing the meter's alert sequence so that it stops alerting.

MEP guide, "Alert Sequence": on ``00 00`` read the alert flags of our MEP client entry in ET13
and act on each: a scheduled read request is answered by EP39 "Post MEP Data" with scheduled
read data, an M-Bus change by EP39 with the "Clear M-Bus Alert" flag, an on-demand request by
reading ET15 ("Reading and Processing On-Demand Requests"), a delta data alert by EP39 with
"Clear Delta Data Alert" (the post types: :class:`~mepgate.proto.procedures.MepPostType`).
The alert flags byte is the ninth of the client's ET13 entry
(:func:`~mepgate.tables.mep.mep_client_config_offset` + 8).
"""

from __future__ import annotations

from dataclasses import dataclass

from mepgate.client.session import TableAccess
from mepgate.proto.procedures import EP39_POST_MEP_DATA, MepPostType, ep39_parameters
from mepgate.tables.dimensions import Dimensions
from mepgate.tables.ids import TableId
from mepgate.tables.mep import mep_client_config_offset

ALERT_FLAGS_OFFSET_IN_ENTRY = 8
"""ET13 MEP client entry: seven schedule bytes, the baud rate, then "Alert Flags"."""


@dataclass(frozen=True, slots=True)
class AlertFlags:
    """ET13 "Alert Flags" of one MEP client (bits 0, 1, 3, 4)."""

    scheduled_read_request: bool
    on_demand_request: bool
    mbus_change: bool
    delta_data_alert: bool

    @classmethod
    def from_byte(cls, value: int) -> AlertFlags:
        return cls(
            scheduled_read_request=bool(value & 0x01),
            on_demand_request=bool(value & 0x02),
            mbus_change=bool(value & 0x08),
            delta_data_alert=bool(value & 0x10),
        )

    @property
    def any(self) -> bool:
        return (
            self.scheduled_read_request
            or self.on_demand_request
            or self.mbus_change
            or self.delta_data_alert
        )


def alert_flags_offset(dims: Dimensions, client: int = 1) -> int:
    """Offset in ET13 of MEP client ``client``'s alert flags byte."""
    return mep_client_config_offset(dims, client) + ALERT_FLAGS_OFFSET_IN_ENTRY


async def service_alerts(client: TableAccess, mep_client: int) -> AlertFlags:
    """Read ET13's alert flags of MEP client ``mep_client`` and do what each asks."""
    async with client.housekeeping():
        dims = await client.dimensions()
        offset = alert_flags_offset(dims, mep_client)
        flags = AlertFlags.from_byte((await client.read(TableId.ET13, offset=offset, count=1))[0])
        if flags.scheduled_read_request:
            await client.call(EP39_POST_MEP_DATA, ep39_parameters(MepPostType.SCHEDULED_READ_DATA))
        if flags.mbus_change:
            await client.call(EP39_POST_MEP_DATA, ep39_parameters(MepPostType.CLEAR_MBUS_ALERT))
        if flags.delta_data_alert:
            await client.call(
                EP39_POST_MEP_DATA, ep39_parameters(MepPostType.CLEAR_DELTA_DATA_ALERT)
            )
        if flags.on_demand_request:
            await client.read_table(TableId.ET15)
    return flags
