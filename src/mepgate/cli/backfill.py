"""``mepgate backfill --status``: the load-profile back-fill of each meter, in words.

What the store holds (intervals stored, their span, those with status flags, intervals lost
to a profile that wrapped, hours in which the live readings and the profile disagree) and,
when the gateway runs, its live progress from ``/api/v1/health`` (open without login).
"""

from __future__ import annotations

import datetime as dt
import json
import sys
import urllib.error
import urllib.request
from collections import Counter
from pathlib import Path

import click

from mepgate.cli.gateway import user_config_file, user_data_dir
from mepgate.cli.meter_options import EXIT_USAGE
from mepgate.config import ConfigError, Settings, load_settings
from mepgate.service.backfill import STATE, Progress
from mepgate.service.gateway import default_store_url
from mepgate.store import StoreError, open_store

HEALTH_TIMEOUT_S = 3.0
EARLIEST = dt.datetime(1970, 1, 2, tzinfo=dt.UTC)


def _gateway_url(settings: Settings) -> str:
    host = settings.web.host
    host = "127.0.0.1" if host in ("0.0.0.0", "::", "") else host
    host = f"[{host}]" if ":" in host else host
    return f"http://{host}:{settings.web.port}"


def _live_jobs(url: str) -> tuple[dict[str, dict[str, object]], str | None]:
    """Each meter's back-fill job from the gateway's health, or why it could not be asked."""
    try:
        with urllib.request.urlopen(f"{url}/api/v1/health", timeout=HEALTH_TIMEOUT_S) as reply:
            health = json.load(reply)
    except (OSError, urllib.error.URLError, ValueError) as error:
        return {}, f"the gateway does not answer at {url} ({error}): live progress unknown"
    jobs: dict[str, dict[str, object]] = {}
    for meter in health.get("meters", []):
        for job in meter.get("jobs", []):
            if job.get("name") == "backfill":
                jobs[str(meter.get("name"))] = job
    return jobs, None


def _job_line(job: dict[str, object]) -> str:
    words = [str(job.get("state"))]
    progress = job.get("progress")
    if isinstance(progress, int | float):
        words.append(f"{progress * 100:.0f} %")
    if job.get("detail"):
        words.append(str(job["detail"]))
    if job.get("last_error"):
        words.append(f"last error: {job['last_error']}")
    if job.get("warning"):
        words.append(f"warning: {job['warning']}")
    return ", ".join(words)


@click.command()
@click.option("--status", is_flag=True, default=True, help="Show the back-fill (the default).")
@click.option(
    "--config",
    "config",
    type=click.Path(dir_okay=False, path_type=Path),
    help="The gateway's configuration (default: $XDG_CONFIG_HOME/mepgate/mepgate.toml).",
)
@click.option(
    "--data-dir",
    type=click.Path(file_okay=False, path_type=Path),
    help="Where the database lives when storage.url is not set.",
)
@click.option("--gateway", "gateway", metavar="URL", help="The running gateway's web address.")
@click.option("--meter", "only", metavar="NAME", help="Only this meter.")
def backfill(
    status: bool, config: Path | None, data_dir: Path | None, gateway: str | None, only: str | None
) -> None:
    """The load-profile back-fill of each meter: progress, stored, lost, disagreements."""
    path = config or user_config_file()
    try:
        settings = load_settings(path)
    except ConfigError as error:
        click.echo(f"error: {error}", err=True)
        sys.exit(EXIT_USAGE)
    url = settings.storage.url or default_store_url(data_dir or user_data_dir())
    try:
        store = open_store(url)
    except StoreError as error:
        click.echo(f"error: {error}", err=True)
        sys.exit(EXIT_USAGE)
    with store:
        # The configuration's meters; without one (a demo's data directory), the store's.
        known = [m.name for m in settings.meter] or store.meters()
        names = [name for name in known if only is None or name == only]
        if not names:
            click.echo(f"no meter {'named ' + only if only else 'configured'} in {path}", err=True)
            sys.exit(EXIT_USAGE)
        live, why = _live_jobs(gateway or _gateway_url(settings))
        if why:
            click.echo(why)
        now = dt.datetime.now(dt.UTC)
        for name in names:
            click.echo(f"meter {name}:")
            if name in live:
                click.echo(f"  gateway: back-fill {_job_line(live[name])}")
            progress = Progress.from_json(store.state(name, STATE))
            intervals = store.profile(name, EARLIEST, now + dt.timedelta(days=3650), 10**7)
            if intervals:
                flags = Counter(flag for i in intervals for flag in i.flags)
                flagged = ", ".join(f"{flag} {count}" for flag, count in flags.items()) or "none"
                click.echo(
                    f"  stored: {len(intervals)} intervals, ending "
                    f"{intervals[0].end:%Y-%m-%d %H:%M} .. {intervals[-1].end:%Y-%m-%d %H:%M} UTC;"
                    f" flagged: {flagged}"
                )
            else:
                click.echo("  stored: no load profile interval yet")
            if progress.lost:
                click.echo(
                    f"  lost: {progress.lost} intervals overwritten in the meter before they "
                    "could be read (the history has a hole there)"
                )
            click.echo(
                f"  compared with the live readings: {progress.compared} hours, "
                f"{progress.disagreements} disagreeing"
            )
            for d in progress.recent:
                click.echo(
                    f"    {d.get('hour')}: live {d.get('live_wh')} Wh, profile "
                    f"{d.get('profile_wh')} Wh (tolerance {d.get('tolerance_wh')} Wh)"
                )
