"""Storage URLs: parsing, and no password in any message or repr."""

from __future__ import annotations

from pathlib import Path

import pytest

from mepgate.store import StoreError, StoreUrlError, open_store
from mepgate.store.url import parse_url
from mepgate.urls import mask_url

SECRET = "hunter2-very-secret"


def test_sqlite_urls_name_an_absolute_file() -> None:
    assert parse_url("sqlite:///var/lib/m.db").path == Path("/var/lib/m.db")
    assert parse_url("sqlite:////var/lib/m.db").path == Path("/var/lib/m.db")
    assert parse_url("postgresql://u@h/db").engine == "postgresql"
    assert parse_url("postgres://u@h/db").engine == "postgresql"


@pytest.mark.parametrize("url", ["mepgate.db", "sqlite://", "sqlite:///", "mysql://u@h/db"])
def test_bad_urls_say_what_would_work(url: str) -> None:
    with pytest.raises(StoreUrlError, match="sqlite:///"):
        parse_url(url)


def test_passwords_are_masked() -> None:
    assert mask_url(f"postgresql://me:{SECRET}@db.lan:5432/m") == (
        "postgresql://me:***@db.lan:5432/m"
    )
    assert SECRET not in mask_url(f"postgresql://me@db.lan/m?sslmode=require&password={SECRET}")
    assert mask_url("postgresql://me@db.lan/m") == "postgresql://me@db.lan/m"
    assert SECRET not in repr(parse_url(f"postgresql://me:{SECRET}@db.lan/m"))


def test_connection_failure_never_shows_the_password() -> None:
    url = f"postgresql://postgres:{SECRET}@127.0.0.1:1/test?connect_timeout=2"
    with pytest.raises(StoreError) as caught:
        open_store(url)
    assert SECRET not in str(caught.value)
    assert "127.0.0.1" in str(caught.value)
    assert caught.value.__cause__ is None


def test_postgres_store_repr_is_masked(postgres_url: str) -> None:
    url = postgres_url.replace("postgres@", f"postgres:{SECRET}@")  # trust auth ignores it
    with open_store(url) as store:
        assert SECRET not in repr(store)
        assert "***" in repr(store)


def test_a_file_that_is_not_a_database_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "mepgate.db"
    path.write_bytes(b"this is not SQLite" * 100)
    with pytest.raises(StoreError, match="not a usable SQLite database"):
        open_store(f"sqlite:///{path}")
