"""``/getDashDataWS``: the Dabbler MEP module's JSON, for scripts and integrations written
against it (FIELD-NOTES: same field names; integers in Wh, W, mHz, mA and mV).

The mapping is :func:`mepgate.outputs.compat.dabbler_json`, shared with the MQTT compat
topics; so are the ``*_Avg_W`` fields, the means of the minute up to the reading that the
hub keeps (:meth:`~mepgate.service.hub.ReadingHub.averages`).
"""

from __future__ import annotations

from fastapi import APIRouter, HTTPException, status

from mepgate.outputs.compat import DASH_FIELDS, dabbler_json
from mepgate.web.deps import ReaderDep, ViewDep
from mepgate.web.routers.common import NOT_FOUND, UNAUTHORIZED, default_meter, latest_reading
from mepgate.web.schemas import DashDataOut

router = APIRouter(tags=["compatibility"], responses=UNAUTHORIZED)


@router.get("/getDashDataWS", responses=NOT_FOUND)
async def get_dash_data(view: ViewDep, _: ReaderDep, meter: str | None = None) -> DashDataOut:
    """The newest reading of ``meter`` (default: the first) in the old firmware's format."""
    name = default_meter(view, meter)
    reading = await latest_reading(view, name)
    if reading is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"meter {name!r} has no reading yet")
    identity = next((s.identity for s in view.meters() if s.name == name), None)
    averages = view.hub.averages(reading)
    data = dabbler_json(reading, identity=identity, averages=averages, fields=DASH_FIELDS)
    return DashDataOut.model_validate(data)
