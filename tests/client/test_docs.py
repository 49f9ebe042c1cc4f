"""docs/cli.md stays in step with the command line: every meter command and every visible
option is documented, and the documented exit codes are the ones the code uses."""

from __future__ import annotations

from pathlib import Path

import click
import pytest

from mepgate.cli.main import EXIT_NOT_AVAILABLE, cli
from mepgate.cli.meter import COMMANDS
from mepgate.cli.meter_options import EXIT_METER, EXIT_OK, EXIT_USAGE, KEY_ENV, PORT_ENV

DOCS = Path(__file__).resolve().parents[2] / "docs"
CLI_MD = (DOCS / "cli.md").read_text(encoding="utf-8")


@pytest.mark.parametrize("command", COMMANDS, ids=lambda c: str(c.name))
def test_every_meter_command_and_option_is_documented(command: click.Command) -> None:
    assert f"## {command.name}" in CLI_MD
    for param in command.params:
        if isinstance(param, click.Option) and not param.hidden:
            assert any(f"`{opt}" in CLI_MD for opt in param.opts), (command.name, param.opts)


def test_every_command_is_listed_and_exit_codes_match() -> None:
    for name in cli.commands:
        assert f"`{name}" in CLI_MD, name
    for code in (EXIT_OK, EXIT_METER, EXIT_USAGE, EXIT_NOT_AVAILABLE):
        assert f"| {code} |" in CLI_MD
    assert KEY_ENV in CLI_MD
    assert PORT_ENV in CLI_MD


def test_troubleshooting_covers_every_symptom() -> None:
    text = (DOCS / "troubleshooting.md").read_text(encoding="utf-8")
    for heading in (
        "No answer at all",
        "Own bytes echoed back",
        "Garbage, never a frame",
        "Authentication failure (0x0B)",
        "Repeated 0x0C",
        "Values look wrong / old firmware",
        "TLS-required Gen 4 meters",
        "Port disabled by the grid company",
    ):
        assert f"## {heading}" in text, heading
