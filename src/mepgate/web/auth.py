"""Authentication for the web pages: the admin password, sessions, CSRF tokens, login limits.

Design (see docs in the module's functions):

* One account, ``admin``.  Its password is hashed with scrypt (stdlib ``hashlib.scrypt``) and
  stored in ``<data_dir>/admin-password`` (mode 0600).  No password file means the gateway has
  not been set up yet: the pages lead to the first-run setup page.
* Sessions live in the server's memory, keyed by a random 256-bit token carried in an HttpOnly,
  SameSite=Strict cookie (``Secure`` when the request came over https).  Logging in replaces
  the session (no fixation); logging out deletes it, so a copied cookie stops working at once.
  A restart logs everybody out, which is the safe default for a gateway.
* Every form carries the session's CSRF token; a visitor without a session (the login and
  setup forms) gets an anonymous one first.  The token is compared in constant time.
* Failed logins are limited per client address (5 a minute): the sixth gets 429.

Time comes from an injected monotonic clock so tests can move it.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
from collections import OrderedDict, deque
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from mepgate.config import write_secret_file

Clock = Callable[[], float]

ADMIN_USER = "admin"
PASSWORD_FILE = "admin-password"
MIN_PASSWORD_LENGTH = 8

# scrypt cost: n=2**14, r=8, p=1 needs 16 MiB and ~50 ms on a Raspberry Pi 4, the common host
# (RFC 7914 section 2 recommends n=2**14 for interactive logins).
_SCRYPT_N = 2**14
_SCRYPT_R = 8
_SCRYPT_P = 1
_SCRYPT_MAXMEM = 64 * 1024 * 1024
_SALT_BYTES = 16
_HASH_BYTES = 32

SESSION_COOKIE = "mepgate_session"
SESSION_IDLE_S = 12 * 3600.0  # an admin session ends after 12 h without a request
# Bound on sessions kept in memory: anonymous sessions (one per visitor of a form page) are
# the first to go, so a flood of visitors cannot grow memory or log the admin out.
MAX_SESSIONS = 2048

LOGIN_FAILURES_ALLOWED = 5
LOGIN_WINDOW_S = 60.0
_MAX_TRACKED_CLIENTS = 4096


def hash_password(password: str, *, salt: bytes | None = None) -> str:
    """``scrypt$n$r$p$salt$hash`` (base64) for ``password``."""
    salt = salt if salt is not None else secrets.token_bytes(_SALT_BYTES)
    digest = _scrypt(password, salt, _SCRYPT_N, _SCRYPT_R, _SCRYPT_P)
    return "$".join(
        ["scrypt", str(_SCRYPT_N), str(_SCRYPT_R), str(_SCRYPT_P), _b64(salt), _b64(digest)]
    )


def verify_password(password: str, stored: str) -> bool:
    """Whether ``password`` matches a :func:`hash_password` string (constant-time compare)."""
    try:
        scheme, n, r, p, salt, digest = stored.strip().split("$")
        if scheme != "scrypt":
            return False
        expected = base64.b64decode(digest)
        actual = _scrypt(password, base64.b64decode(salt), int(n), int(r), int(p))
    except (ValueError, MemoryError):
        return False
    return hmac.compare_digest(actual, expected)


def _scrypt(password: str, salt: bytes, n: int, r: int, p: int) -> bytes:
    return hashlib.scrypt(
        password.encode("utf-8"), salt=salt, n=n, r=r, p=p, maxmem=_SCRYPT_MAXMEM, dklen=_HASH_BYTES
    )


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


class AdminPassword:
    """The admin password hash in ``<data_dir>/admin-password`` (0600)."""

    def __init__(self, data_dir: Path) -> None:
        self.path = data_dir / PASSWORD_FILE

    @property
    def is_set(self) -> bool:
        return self.path.exists()

    def set(self, password: str) -> None:
        write_secret_file(self.path, hash_password(password) + "\n")

    def check(self, password: str) -> bool:
        try:
            stored = self.path.read_text(encoding="utf-8")
        except OSError:
            return False
        return verify_password(password, stored)


def password_problem(password: str, repeated: str) -> str | None:
    """Why a new admin password cannot be used, or ``None``."""
    if len(password) < MIN_PASSWORD_LENGTH:
        return f"use at least {MIN_PASSWORD_LENGTH} characters"
    if password != repeated:
        return "the two passwords differ; type the same one twice"
    return None


@dataclass(slots=True)
class Session:
    id: str
    csrf: str
    user: str | None  # None: anonymous (holds a CSRF token for the login or setup form)
    expires: float

    @property
    def is_admin(self) -> bool:
        return self.user == ADMIN_USER

    def csrf_ok(self, token: str | None) -> bool:
        return token is not None and hmac.compare_digest(token.encode(), self.csrf.encode())


class SessionStore:
    """In-memory sessions with an idle timeout and a size bound."""

    def __init__(self, clock: Clock) -> None:
        self._clock = clock
        self._sessions: OrderedDict[str, Session] = OrderedDict()

    def create(self, user: str | None) -> Session:
        self._evict()
        session = Session(
            id=secrets.token_urlsafe(32),
            csrf=secrets.token_urlsafe(32),
            user=user,
            expires=self._clock() + SESSION_IDLE_S,
        )
        self._sessions[session.id] = session
        return session

    def get(self, session_id: str | None) -> Session | None:
        """The live session for a cookie value (its idle timer restarts), or ``None``."""
        if not session_id:
            return None
        session = self._sessions.get(session_id)
        if session is None:
            return None
        now = self._clock()
        if session.expires <= now:
            del self._sessions[session_id]
            return None
        session.expires = now + SESSION_IDLE_S
        self._sessions.move_to_end(session_id)
        return session

    def delete(self, session_id: str) -> None:
        self._sessions.pop(session_id, None)

    def delete_all(self) -> None:
        """End every session (after the admin password changes)."""
        self._sessions.clear()

    def __len__(self) -> int:
        return len(self._sessions)

    def _evict(self) -> None:
        now = self._clock()
        for key in [k for k, s in self._sessions.items() if s.expires <= now]:
            del self._sessions[key]
        while len(self._sessions) >= MAX_SESSIONS:
            anonymous = next((k for k, s in self._sessions.items() if s.user is None), None)
            victim = anonymous if anonymous is not None else next(iter(self._sessions))
            del self._sessions[victim]


class LoginLimiter:
    """At most :data:`LOGIN_FAILURES_ALLOWED` failed logins per client per minute."""

    def __init__(self, clock: Clock) -> None:
        self._clock = clock
        self._failures: OrderedDict[str, deque[float]] = OrderedDict()

    def retry_after(self, client: str) -> float | None:
        """Seconds until ``client`` may try again, or ``None`` if it may try now."""
        failures = self._recent(client)
        if len(failures) < LOGIN_FAILURES_ALLOWED:
            return None
        return max(failures[0] + LOGIN_WINDOW_S - self._clock(), 1.0)

    def failed(self, client: str) -> None:
        self._recent(client).append(self._clock())
        self._failures.move_to_end(client)
        while len(self._failures) > _MAX_TRACKED_CLIENTS:
            self._failures.popitem(last=False)

    def succeeded(self, client: str) -> None:
        self._failures.pop(client, None)

    def _recent(self, client: str) -> deque[float]:
        failures = self._failures.setdefault(client, deque())
        horizon = self._clock() - LOGIN_WINDOW_S
        while failures and failures[0] <= horizon:
            failures.popleft()
        return failures


class Auth:
    """Everything the pages need to know about who is asking."""

    def __init__(self, data_dir: Path, clock: Clock) -> None:
        self.password = AdminPassword(data_dir)
        self.sessions = SessionStore(clock)
        self.limiter = LoginLimiter(clock)
