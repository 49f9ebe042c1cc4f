"""Fixtures of the gateway tests.

``storage_url``: the test runs twice, on SQLite in its tmp dir and on the local PostgreSQL
(``MEPGATE_TEST_POSTGRES``, default ``postgresql://postgres@127.0.0.1:5432/test``) in a fresh
schema dropped afterwards.  A PostgreSQL server that cannot be reached fails the tests, never
skips them.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

POSTGRES_BASE = os.environ.get("MEPGATE_TEST_POSTGRES", "postgresql://postgres@127.0.0.1:5432/test")


@pytest.fixture(params=["sqlite", "postgresql"])
def storage_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path}/gateway.db"
        return
    schema = f"mepgate_gw_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(POSTGRES_BASE, autocommit=True) as conn:
        conn.execute(f'CREATE SCHEMA "{schema}"')
    try:
        yield f"{POSTGRES_BASE}?options=-csearch_path%3D{schema}"
    finally:
        with psycopg.connect(POSTGRES_BASE, autocommit=True) as conn:
            conn.execute(f'DROP SCHEMA "{schema}" CASCADE')
