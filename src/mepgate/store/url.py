"""Storage URLs: which engine, where, and a form that is safe to print."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from mepgate.urls import mask_url

from .errors import StoreUrlError


@dataclass(frozen=True, slots=True)
class StoreUrl:
    engine: str  # "sqlite" or "postgresql"
    url: str
    path: Path | None = None  # SQLite only

    def __repr__(self) -> str:
        return f"StoreUrl({mask_url(self.url)!r})"


def parse_url(url: str) -> StoreUrl:
    """Split a storage URL: ``sqlite:///path/to/mepgate.db`` or ``postgresql://user@host/db``.

    SQLite paths are always absolute (``sqlite:///data/m.db`` and ``sqlite:////data/m.db``
    both mean ``/data/m.db``); the gateway builds them from its data directory.  PostgreSQL
    URLs are libpq's, query parameters included (``?options=-csearch_path%3Dmepgate``).
    """
    scheme, sep, rest = url.partition("://")
    if not sep:
        raise StoreUrlError(
            f"storage URL {mask_url(url)!r} has no scheme: use sqlite:///path/to/mepgate.db"
            " or postgresql://user@host/db"
        )
    scheme = scheme.lower()
    if scheme == "sqlite":
        if not rest.startswith("/") or rest == "/":
            raise StoreUrlError(
                f"storage URL {mask_url(url)!r} needs a file path after sqlite:/// "
                "(for example sqlite:////var/lib/mepgate/mepgate.db)"
            )
        # sqlite:///data/mepgate.db and sqlite:////data/mepgate.db both mean /data/mepgate.db:
        # the gateway always passes absolute paths (the data directory).
        return StoreUrl("sqlite", url, Path("/" + rest.lstrip("/")))
    if scheme in ("postgresql", "postgres"):
        return StoreUrl("postgresql", url)
    raise StoreUrlError(
        f"storage URL {mask_url(url)!r}: unsupported engine {scheme!r};"
        " use sqlite:///path or postgresql://user@host/db"
    )
