"""Fixtures of the gateway tests.

``storage_url``: the test runs twice, on SQLite in its tmp dir and on the local PostgreSQL in a
fresh schema (the store tests' ``postgres_url`` fixture: ``MEPGATE_TEST_POSTGRES``; a server
that cannot be reached fails the tests, never skips them).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from ..store.conftest import postgres_url  # noqa: F401 -- the store tests' fixture, reused


@pytest.fixture(params=["sqlite", "postgresql"])
def storage_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path}/gateway.db"
    url: str = request.getfixturevalue("postgres_url")
    return url
