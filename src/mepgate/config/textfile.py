"""Reading the small text files a user writes by hand: the configuration, a key file.

Editors save text in more than one encoding (Windows Notepad's "Unicode" is UTF-16 with a byte
order mark); a file that is not text names itself and says how to save it, instead of a
UnicodeDecodeError.
"""

from __future__ import annotations

import codecs
from pathlib import Path

from mepgate.errors import MepgateError

_BOMS = (
    (codecs.BOM_UTF8, "utf-8-sig"),
    (codecs.BOM_UTF16_LE, "utf-16"),
    (codecs.BOM_UTF16_BE, "utf-16"),
)


class TextFileError(MepgateError):
    """A file that cannot be read as text (its message says which and what to do)."""


def read_text(path: Path, what: str) -> str:
    """``path``'s text: UTF-8, or UTF-8/UTF-16 with a byte order mark.  Raises
    :class:`OSError` when the file cannot be read, :class:`TextFileError` when it is not text
    in those encodings (``what`` names the file in the message: "the key file")."""
    data = path.read_bytes()
    encoding = next((name for bom, name in _BOMS if data.startswith(bom)), "utf-8")
    try:
        return data.decode(encoding)
    except UnicodeDecodeError:
        raise TextFileError(
            f"{what} {path} is not text in UTF-8: save it as plain text (UTF-8) and try again"
        ) from None
