"""Entry point of the ``mepgate`` command.

Exit codes (documented in docs/cli.md):
  0  success
  1  the meter or the link failed (no answer, wrong key, garbled line); the message says why
  2  wrong usage: a bad option, key, or configuration
  3  not available yet in this version
"""

from __future__ import annotations

import click

from mepgate import __version__
from mepgate.cli.backfill import backfill
from mepgate.cli.gateway import COMMANDS as GATEWAY_COMMANDS
from mepgate.cli.meter import COMMANDS as METER_COMMANDS
from mepgate.cli.simulate import simulate

EXIT_NOT_AVAILABLE = 3

_PENDING: dict[str, str] = {}


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="mepgate")
def cli() -> None:
    """Read Echelon/NES (OSGP) smart meters locally through their MEP port."""


def _pending(name: str, summary: str) -> click.Command:
    @click.command(
        name=name,
        help=f"{summary[0].upper()}{summary[1:]} (not yet available).",
        context_settings={"ignore_unknown_options": True, "allow_extra_args": True},
    )
    def command() -> None:
        click.echo(f"mepgate {name}: not yet available in mepgate {__version__}.", err=True)
        raise SystemExit(EXIT_NOT_AVAILABLE)

    return command


for _name, _summary in _PENDING.items():
    cli.add_command(_pending(_name, _summary))

for _command in (*GATEWAY_COMMANDS, *METER_COMMANDS):
    cli.add_command(_command)

cli.add_command(simulate)
cli.add_command(backfill)


def main() -> None:
    cli()
