"""Files that hold secrets: created with mode 0600, replaced atomically, never half-written."""

from __future__ import annotations

import os
import stat
from pathlib import Path

SECRET_MODE = 0o600


def write_secret_file(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` readable and writable by the owner only.

    The content goes to a new 0600 file next to ``path`` first and is then renamed over it,
    so a crash leaves either the old file or the new one, and the secret is never readable
    by others, not even for a moment.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, SECRET_MODE)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, path)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise
    os.chmod(path, SECRET_MODE)


def too_open(path: Path) -> bool:
    """Whether a secret file can be read by group or others."""
    return bool(path.stat().st_mode & (stat.S_IRWXG | stat.S_IRWXO))
