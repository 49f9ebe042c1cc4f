"""Meter commands: ``info``, ``read``, ``watch``, ``dump``, ``call``, ``doctor``."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import os
from pathlib import Path

import click
from rich.console import Console
from rich.live import Live
from rich.progress import (
    BarColumn,
    DownloadColumn,
    Progress,
    TextColumn,
    TimeRemainingColumn,
)
from rich.table import Table

from mepgate.cli.meter_options import EXIT_METER, MeterOptions, meter_options, run
from mepgate.client import DASHBOARD_FIELDS, MeterClient
from mepgate.client.doctor import run_doctor
from mepgate.client.errors import MeterRefusedError
from mepgate.config.secrets import write_secret_file
from mepgate.errors import LocalProtocolError
from mepgate.proto.procedures import procedure_name, procedure_number
from mepgate.tables import registry
from mepgate.tables.clock import BT52
from mepgate.tables.errors import TableDecodeError, UnknownTableError
from mepgate.tables.identity import BT01, ET03, ET04
from mepgate.tables.ids import TableId, describe, parse_table_id, table_name
from mepgate.tables.registers import PresentValues

JsonDict = dict[str, registry.JsonValue]


def _table_arg(text: str) -> int:
    try:
        return parse_table_id(text)
    except UnknownTableError as error:
        raise click.BadParameter(str(error)) from None


def _decoded(table_id: int, data: bytes, client: MeterClient) -> registry.JsonValue:
    dims = client.known_dimensions
    return registry.to_json(registry.decode_table(table_id, data, dims), dims)


def readable(value: registry.JsonValue) -> registry.JsonValue:
    """A decoded table for people: timestamps as their ISO text, and runs of empty records
    (all zero, no time set: BT23's unused demand blocks) left out with a count."""
    if isinstance(value, dict):
        if "iso" in value and "year" in value:
            return value["iso"] or "not set"
        return {key: readable(item) for key, item in value.items()}
    if isinstance(value, list):
        kept = [readable(item) for item in value if not _empty(item)]
        if len(kept) < len(value) and not all(isinstance(v, int) for v in value):
            kept.append(f"({len(value) - len(kept)} empty entries not shown)")
            return kept
        return [readable(item) for item in value]
    return value


def _empty(value: registry.JsonValue) -> bool:
    if isinstance(value, dict):
        if "iso" in value and "year" in value:
            return value["iso"] is None
        return all(_empty(item) for item in value.values())
    if isinstance(value, list):
        return all(_empty(item) for item in value)
    return value in (0, None, "")


# -- info ---------------------------------------------------------------------------------------
async def _info(meter: MeterOptions, as_json: bool) -> None:
    async with meter.client() as client:
        bt01 = BT01.decode(await client.read_table(TableId.BT01))
        et03 = ET03.decode(await client.read_table(TableId.ET03))
        et04 = ET04.decode(await client.read_table(TableId.ET04))
        dims = await client.dimensions()
        clock = None
        try:
            clock = BT52.decode(await client.read_table(TableId.BT52))
        except (MeterRefusedError, TableDecodeError):
            clock = None
    info: JsonDict = {
        "manufacturer": bt01.manufacturer,
        "model": bt01.model,
        "firmware": bt01.firmware,
        "generation": dims.generation,
        "utility_serial_number": et03.utility_serial_number,
        "program_id": et04.program_id.hex(),
        "idt_version": et04.idt_version,
        "present_values": dims.register.number_of_present_values,
        "tiers": dims.register.number_of_tiers,
        "energy_register_unit_wh": dims.energy_register_unit,
        "security": client.security,
        "clock": _clock_text(clock.clock_calendar.to_datetime(dt.UTC)) if clock else None,
    }
    if as_json:
        click.echo(json.dumps(info, indent=2))
        return
    table = Table(title=f"Meter on {meter.port}", show_header=False)
    for name, value in info.items():
        table.add_row(name.replace("_", " "), "" if value is None else str(value))
    Console().print(table)


def _clock_text(at: dt.datetime | None) -> str | None:
    """The meter's clock (BT52, UTC) as ISO text, to the second; None when it is not set."""
    return None if at is None else at.replace(microsecond=0).isoformat()


@click.command()
@meter_options
@click.option("--json", "as_json", is_flag=True, help="JSON instead of a table.")
def info(meter: MeterOptions, as_json: bool) -> None:
    """Identify the meter: make, model, firmware, serial number, dimensions."""
    run(_info(meter, as_json))


# -- read ---------------------------------------------------------------------------------------
async def _read(
    meter: MeterOptions, table_id: int, offset: int | None, count: int | None, mode: str
) -> None:
    if (offset is None) != (count is None):
        raise LocalProtocolError("a partial read needs both --offset and --count")
    async with meter.client() as client:
        if table_id in registry.CODECS:
            await client.full_dimensions()  # they size the table (and decode it)
        data = await client.read(table_id, offset=offset, count=count)
        decoded: registry.JsonValue = None
        if mode != "raw" and offset is None and table_id in registry.CODECS:
            try:
                decoded = _decoded(table_id, data, client)
            except TableDecodeError as error:
                decoded = {"error": str(error)}
    if mode == "raw":
        click.echo(data.hex())
    elif mode == "json":
        out: JsonDict = {"table": table_name(table_id), "id": table_id, "length": len(data)}
        if offset is not None:
            out["offset"] = offset
        out["hex"] = data.hex()
        out["decoded"] = decoded
        click.echo(json.dumps(out, indent=2))
    else:
        click.echo(f"{describe(table_id)}: {len(data)} bytes")
        for start in range(0, len(data), 16):
            click.echo(f"  {(offset or 0) + start:06x}  {data[start : start + 16].hex(' ')}")
        if decoded is not None:
            click.echo(json.dumps(readable(decoded), indent=2))


@click.command()
@meter_options
@click.argument("table")
@click.option("--offset", type=click.IntRange(0, 0xFFFFFF), help="Partial read: first byte.")
@click.option("--count", type=click.IntRange(1, 0xFFFF), help="Partial read: byte count.")
@click.option("--json", "as_json", is_flag=True, help="JSON with the decoded fields.")
@click.option("--raw", is_flag=True, help="Only the table bytes, in hex.")
def read(
    meter: MeterOptions,
    table: str,
    offset: int | None,
    count: int | None,
    as_json: bool,
    raw: bool,
) -> None:
    """Read TABLE (BT28, ET13, 28, 0x001C or 2061), whole or --offset/--count bytes."""
    if as_json and raw:
        raise click.UsageError("choose one of --json and --raw")
    mode = "json" if as_json else "raw" if raw else "text"
    run(_read(meter, _table_arg(table), offset, count, mode))


# -- watch --------------------------------------------------------------------------------------
def _phase_table(values: PresentValues, updates: int) -> Table:
    table = Table(title=f"Live values (update {updates})")
    for column in ("phase", "voltage V", "current A", "import W", "export W"):
        table.add_column(column, justify="right")
    for phase in (1, 2, 3):
        table.add_row(
            f"L{phase}",
            _scaled(getattr(values, f"rms_voltage_l{phase}_mv"), 1000),
            _scaled(getattr(values, f"rms_current_l{phase}_ma"), 1000),
            _scaled(getattr(values, f"forward_active_power_l{phase}_w"), 1),
            _scaled(getattr(values, f"reverse_active_power_l{phase}_w"), 1),
        )
    table.add_row(
        "total",
        "",
        _scaled(values.frequency_mhz, 1000) + " Hz" if values.frequency_mhz else "",
        _scaled(values.forward_active_power_w, 1),
        _scaled(values.reverse_active_power_w, 1),
    )
    return table


def _scaled(value: int | None, divisor: int) -> str:
    if value is None:
        return "-"
    return f"{value / divisor:.3f}" if divisor != 1 else str(value)


async def _watch(meter: MeterOptions, count: int | None, interval: float) -> None:
    async with meter.client() as client:
        updates = 0
        with Live(Table(), refresh_per_second=8, transient=False) as live:
            while count is None or updates < count:
                values = await client.read_present(DASHBOARD_FIELDS)
                updates += 1
                live.update(_phase_table(values, updates))
                if interval:
                    await asyncio.sleep(interval)


@click.command()
@meter_options
@click.option("--count", type=click.IntRange(1), help="Stop after this many updates.")
@click.option("--interval", type=float, default=0.0, help="Pause between updates (s).")
def watch(meter: MeterOptions, count: int | None, interval: float) -> None:
    """Live per-phase voltage, current and power (partial BT28 reads)."""
    run(_watch(meter, count, interval))


# -- dump ---------------------------------------------------------------------------------------
UNKNOWN_SIZE_GUESS = 64
"""Bytes a table of unknown size is counted as in dump's estimate (most such tables are small)."""


async def _dump(
    meter: MeterOptions, output: Path, tables: tuple[int, ...], skip: tuple[int, ...]
) -> None:
    result: JsonDict = {}
    async with meter.client() as client:
        dims = await client.full_dimensions()
        wanted = [t for t in (tables or tuple(TableId)) if t not in skip]
        sizes = {t: registry.table_size(t, dims) or UNKNOWN_SIZE_GUESS for t in wanted}
        columns = (
            TextColumn("{task.description}"),
            BarColumn(),
            DownloadColumn(),
            TimeRemainingColumn(),
        )
        with Progress(*columns, transient=True) as progress:
            task = progress.add_task("reading", total=sum(sizes.values()))
            done = 0
            for table_id in wanted:
                progress.update(task, description=f"reading {table_name(table_id)}")

                def advance(read: int, base: int = done) -> None:
                    progress.update(task, completed=base + read)

                try:
                    data = await client.read_table(table_id, progress=advance)
                except MeterRefusedError:
                    data = None  # not on this meter, or not for this key
                done += sizes[table_id]
                progress.update(task, completed=done)
                if data is None:
                    continue
                entry: JsonDict = {"id": int(table_id), "hex": data.hex()}
                if table_id in registry.CODECS:
                    try:
                        entry["decoded"] = _decoded(table_id, data, client)
                    except TableDecodeError as error:
                        entry["decode_error"] = str(error)
                result[TableId(table_id).name] = entry
    # It holds the meter's serial number: readable by its owner only, like the key files.
    write_secret_file(output, json.dumps(result, indent=2) + "\n")
    click.echo(f"{len(result)} tables written to {output}", err=True)


def _writable(output: Path) -> None:
    """Fail before minutes of reading, not after: can a file be created next to ``output``?"""
    probe = output.with_name(f".{output.name}.{os.getpid()}.probe")
    try:
        os.close(os.open(probe, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
        probe.unlink()
    except OSError as error:
        raise click.UsageError(
            f"cannot write {output}: {error.strerror or error}; choose another -o file"
        ) from None


def _tables_option(text: str | None) -> tuple[int, ...]:
    if not text:
        return ()
    try:
        return tuple(parse_table_id(name.strip()) for name in text.split(",") if name.strip())
    except UnknownTableError as error:
        raise click.BadParameter(str(error)) from None


@click.command()
@meter_options
@click.option(
    "-o",
    "--output",
    type=click.Path(dir_okay=False, path_type=Path),
    required=True,
    help="JSON file to write (overwritten; created readable by you only).",
)
@click.option("--tables", help="Only these tables, e.g. BT01,BT28,ET13 (default: all).")
@click.option("--skip", help="Leave these tables out, e.g. BT64 (the load profile is large).")
def dump(meter: MeterOptions, output: Path, tables: str | None, skip: str | None) -> None:
    """Every table this key may read (or --tables / --skip), to a JSON file."""
    _writable(output)
    run(_dump(meter, output, _tables_option(tables), _tables_option(skip)))


# -- call ---------------------------------------------------------------------------------------
async def _call(meter: MeterOptions, number: int, parameters: bytes) -> int:
    async with meter.client() as client:
        response = await client.call(number, parameters)
    click.echo(
        f"{procedure_name(number)}: result {response.result} ({response.describe()})"
        + (f", data {response.data.hex()}" if response.data else "")
    )
    return 0 if response.result == 0 else EXIT_METER


@click.command()
@meter_options
@click.argument("procedure")
@click.argument("params", required=False, default="")
def call(meter: MeterOptions, procedure: str, params: str) -> None:
    """Call PROCEDURE (EP39, BP10, 2087) with PARAMS given in hex."""
    try:
        number = procedure_number(procedure)
        parameters = bytes.fromhex(params)
    except (LocalProtocolError, ValueError) as error:
        raise click.BadParameter(str(error)) from None
    run(_call(meter, number, parameters))


# -- doctor -------------------------------------------------------------------------------------
async def _doctor(meter: MeterOptions) -> int:
    report = await run_doctor(meter.client())
    status = "ok" if report.ok else "problem"
    where = f"{meter.port} (optical port)" if meter.interface == "optical" else meter.port
    click.echo(f"link to {where}: {status} ({report.diagnosis.value})")
    if report.meter:
        click.echo(f"meter: {report.meter}; security: {report.security}")
    click.echo(report.advice)
    if report.detail:
        click.echo(f"detail: {report.detail}")
    stats = report.stats
    click.echo(
        f"frames sent {stats.frames_sent}, replies {stats.replies}, "
        f"lost {report.lost} ({report.loss_rate:.1%}), "
        f"damaged {stats.damaged_replies} ({report.damage_rate:.1%}), "
        f"echoed {stats.echoed_frames}, garbage bytes {stats.garbage_bytes}, "
        + (
            f"NAKs {stats.naks}, resends {stats.resends}, duplicates {stats.duplicates}, "
            f"skipped bytes {stats.skipped_bytes}, busy {stats.busy_answers}, "
            f"sessions {stats.sessions}"
            if meter.interface == "optical"
            else f"0x0B {stats.auth_failures}, 0x0C {stats.sequence_resyncs}"
            + (f", late {stats.late_replies}" if stats.late_replies else "")
        )
    )
    return 0 if report.ok else EXIT_METER


@click.command()
@meter_options
def doctor(meter: MeterOptions) -> None:
    """Check the link and say in plain words what is wrong (wiring, port, baud, key)."""
    run(_doctor(meter))


COMMANDS = (info, read, watch, dump, call, doctor)
