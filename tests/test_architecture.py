"""The layering is enforced and documented truthfully.

* ``lint-imports`` (import-linter, contracts in pyproject.toml) keeps every package to the
  layers below it; a deliberately wrong import really breaks it (checked on a copy of the
  source, so the tree itself stays clean).
* docs/architecture.md lists the same layers as the contracts, and its table of which package
  imports which is the real graph (scripts/depgraph.py prints it).
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
DOC = ROOT / "docs" / "architecture.md"
LINT_IMPORTS = Path(sys.executable).parent / "lint-imports"


def contracts() -> list[dict[str, object]]:
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())
    found: list[dict[str, object]] = config["tool"]["importlinter"]["contracts"]
    return found


def lint_imports(source: Path, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(source)}
    return subprocess.run(
        [str(LINT_IMPORTS), "--no-cache", "--config", str(ROOT / "pyproject.toml")],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def test_the_tree_keeps_every_contract(tmp_path: Path) -> None:
    result = lint_imports(ROOT / "src", tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.count(" KEPT") == len(contracts())


@pytest.mark.parametrize(
    ("module", "line", "contract"),
    [
        # The gateway building its own simulators instead of having them injected.
        ("service/poller.py", "import mepgate.simulator.meter", "simulated meters"),
        # The store reaching up into the service layer (the old service <-> store cycle).
        ("store/sql.py", "import mepgate.service.hub", "layers below it"),
        # A clock in the protocol core.
        ("proto/digest.py", "import time", "no I/O, read no clock"),
        # I/O in the C12.18 core.
        ("c1218/buffer.py", "import serial", "no I/O, read no clock"),
        # The MEP request machine waiting by itself.
        ("client/mep/machine.py", "import asyncio", "decide without I/O"),
    ],
)
def test_a_wrong_import_breaks_a_contract(
    tmp_path: Path, module: str, line: str, contract: str
) -> None:
    copy = tmp_path / "src"
    shutil.copytree(ROOT / "src" / "mepgate", copy / "mepgate")
    target = copy / "mepgate" / module
    target.write_text(target.read_text() + f"\n{line}  # a deliberate mistake\n")
    result = lint_imports(copy, tmp_path)
    assert result.returncode != 0
    broken = result.stdout.split("Broken contracts", 1)[-1]
    assert contract in broken
    assert (
        line.rsplit(maxsplit=1)[-1].split(".", maxsplit=1)[0] in broken
    )  # the offending import is named


def doc_section(marker: str) -> str:
    match = re.search(rf"<!-- {marker} -->\n```text\n(.*?)```", DOC.read_text(), re.DOTALL)
    assert match, f"docs/architecture.md has no ```text block after <!-- {marker} -->"
    return match.group(1).strip()


def test_the_documented_layers_are_the_contracts_layers() -> None:
    (layers,) = [c["layers"] for c in contracts() if c["type"] == "layers"]
    assert isinstance(layers, list)
    expected = [layer.replace("mepgate.", "") for layer in layers]
    documented = [line.strip() for line in doc_section("layers").splitlines() if line.strip()]
    assert documented == expected


def test_the_documented_dependency_table_is_the_real_graph() -> None:
    printed = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "depgraph.py")],
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    ).stdout.strip()
    assert printed in DOC.read_text(), (
        "docs/architecture.md's dependency table is stale; paste the output of "
        "scripts/depgraph.py:\n" + printed
    )


def test_the_architecture_page_points_only_inside_the_project() -> None:
    text = DOC.read_text()
    assert "../shared" not in text
    for link in re.findall(r"\]\(([^)#]+)", text):
        if link.startswith(("http://", "https://")):
            continue
        assert (DOC.parent / link).resolve().is_relative_to(ROOT), link
        assert (DOC.parent / link).exists(), link
