"""URLs that may carry a password (storage, MQTT): a form safe to print, and scrubbing.

Every layer may use these: the configuration's reprs, the store's errors and the MQTT
output's log lines all mask the same way.
"""

from __future__ import annotations

import re
from urllib.parse import urlsplit

_PASSWORD_IN_QUERY = re.compile(r"(?i)(password=)[^&]*")


def mask_url(url: str) -> str:
    """The URL with any password replaced by ``***`` (for logs, reprs and errors)."""
    try:
        parts = urlsplit(url)
        netloc = parts.netloc
        if parts.password is not None:
            userinfo, _, hostinfo = netloc.rpartition("@")
            user = userinfo.split(":", 1)[0]
            netloc = f"{user}:***@{hostinfo}"
        masked = parts._replace(netloc=netloc).geturl()
    except ValueError:
        return "<unparseable URL>"
    return _PASSWORD_IN_QUERY.sub(r"\1***", masked)


def scrub(text: str, url: str) -> str:
    """``text`` with the URL's password (if any) removed, for wrapping driver errors."""
    try:
        password = urlsplit(url).password
    except ValueError:
        password = None
    return text.replace(password, "***") if password else text
