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
* Failed logins slow the next ones down (:class:`LoginLimiter`): per client address (the
  socket's peer, or the address a configured trusted proxy names) and per account, with
  exponential back-off; a browser that logged in before carries a signed device cookie and is
  limited only by its own failures, so nobody can lock the admin out.  Passwords are checked
  off the event loop.
* Before the first admin password exists, ``/setup`` asks for a one-time token printed in the
  log (unless the server listens on loopback only): reaching the port is not proof enough.

Time comes from an injected monotonic clock so tests can move it.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import secrets
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

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

LOGIN_FAILURES_ALLOWED = 5  # from one address (or device) before it has to wait
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

    def set(self, password: str) -> str:
        """Store a new password; returns the stored line (device cookies are signed with a key
        derived from it)."""
        stored = hash_password(password)
        write_secret_file(self.path, stored + "\n")
        return stored

    def read(self) -> str | None:
        try:
            return self.path.read_text(encoding="utf-8").strip()
        except OSError:
            return None

    def check(self, password: str) -> bool:
        stored = self.read()
        return stored is not None and verify_password(password, stored)


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


@dataclass(slots=True)
class _Failures:
    count: int
    last: float


@dataclass(frozen=True, slots=True)
class Backoff:
    """After ``free`` failures in a row, each further attempt waits ``base * 2**(n - free)``
    seconds after the last failure (at most ``cap``).  An address, device or account without
    a failure for ``forget_after`` seconds starts afresh."""

    free: int
    base: float
    cap: float
    forget_after: float

    def wait(self, failures: int) -> float:
        if failures < self.free:
            return 0.0
        return float(min(self.base * 2 ** min(failures - self.free, 30), self.cap))


# Per client address: five tries, then a minute, two, four... up to an hour.
ADDRESS_BACKOFF = Backoff(free=LOGIN_FAILURES_ALLOWED, base=60.0, cap=3600.0, forget_after=86400.0)
# Per account, summed over every address: guessing from many addresses (an IPv6 prefix holds
# billions) is slowed down as a whole.  Browsers that logged in before carry a device cookie
# and are exempt, so a flood cannot lock the admin out (OWASP's "device cookies").
ACCOUNT_BACKOFF = Backoff(free=20, base=1.0, cap=300.0, forget_after=86400.0)
# Per device cookie: a stolen cookie gives no more tries than an address does.
DEVICE_BACKOFF = ADDRESS_BACKOFF


class LoginThrottle:
    """Failed logins counted per key (an address, the account, a device) with back-off.

    The bound on keys kept (least recently failed first out) keeps a flood from many
    addresses from growing memory.
    """

    def __init__(self, clock: Clock, backoff: Backoff) -> None:
        self._clock = clock
        self._backoff = backoff
        self._failures: OrderedDict[str, _Failures] = OrderedDict()

    def retry_after(self, key: str) -> float | None:
        """Seconds until ``key`` may try again, or ``None`` if it may try now."""
        entry = self._current(key)
        if entry is None:
            return None
        remaining = entry.last + self._backoff.wait(entry.count) - self._clock()
        return remaining if remaining > 0 else None

    def failed(self, key: str) -> None:
        entry = self._current(key) or _Failures(0, 0.0)
        entry.count += 1
        entry.last = self._clock()
        self._failures[key] = entry
        self._failures.move_to_end(key)
        while len(self._failures) > _MAX_TRACKED_CLIENTS:
            self._failures.popitem(last=False)

    def succeeded(self, key: str) -> None:
        self._failures.pop(key, None)

    def _current(self, key: str) -> _Failures | None:
        entry = self._failures.get(key)
        if entry is not None and self._clock() - entry.last > self._backoff.forget_after:
            del self._failures[key]
            return None
        return entry


_REASONS = {
    "address": "from your address",
    "account": "for this account from browsers not used here before",
    "device": "from this browser",
}


@dataclass(frozen=True, slots=True)
class Refusal:
    """Why a login attempt is not even checked, and for how long."""

    wait: float
    limit: Literal["address", "account", "device"]  # whose failures hold it back

    @property
    def reason(self) -> str:
        """For the person trying: "Too many failed logins {reason}"."""
        return _REASONS[self.limit]


class LoginLimiter:
    """Failed logins slow the next ones down: per address and per account, or per device.

    A browser without a device cookie is limited by its address and by the account's failures
    from everywhere; a browser with a valid device cookie (set by an earlier login) only by
    its own failures.  So neither a flood from one address nor one spread over many addresses
    (or arriving through one tunnel or proxy) locks out the admin's own browser.

    :meth:`attempt` counts the attempt as failed *before* the password is checked (scrypt
    takes a while, off the event loop): concurrent attempts cannot all slip through before
    the first failure is counted.  :meth:`succeeded` then clears the counts.
    """

    def __init__(self, clock: Clock) -> None:
        self.addresses = LoginThrottle(clock, ADDRESS_BACKOFF)
        self.account = LoginThrottle(clock, ACCOUNT_BACKOFF)
        self.devices = LoginThrottle(clock, DEVICE_BACKOFF)

    def refusal(self, address: str, device: str | None) -> Refusal | None:
        if device is not None:
            wait = self.devices.retry_after(device)
            return Refusal(wait, "device") if wait is not None else None
        wait = self.addresses.retry_after(address)
        if wait is not None:
            return Refusal(wait, "address")
        wait = self.account.retry_after(ADMIN_USER)
        if wait is not None:
            return Refusal(wait, "account")
        return None

    def attempt(self, address: str, device: str | None) -> None:
        self.account.failed(ADMIN_USER)
        if device is not None:
            self.devices.failed(device)
        else:
            self.addresses.failed(address)

    def succeeded(self, address: str, device: str | None) -> None:
        self.account.succeeded(ADMIN_USER)
        if device is not None:
            self.devices.succeeded(device)
        else:  # not on a device login: behind a tunnel others share the address
            self.addresses.succeeded(address)


DEVICE_COOKIE = "mepgate_device"
DEVICE_COOKIE_MAX_AGE = 400 * 86400  # the longest browsers keep a cookie (RFC 6265bis)
_DEVICE_LABEL = b"mepgate device cookie v1\0"


class Auth:
    """Everything the pages need to know about who is asking."""

    def __init__(self, data_dir: Path, clock: Clock) -> None:
        self.password = AdminPassword(data_dir)
        self.sessions = SessionStore(clock)
        self.limiter = LoginLimiter(clock)
        self._hashing: asyncio.Lock | None = None
        self._setup_token: str | None = None

    async def check_password(self, password: str) -> LoginCheck:
        """Whether ``password`` is the admin's, and if so a new device cookie for the browser.

        The file is read and scrypt runs in a worker thread (scrypt releases the GIL), one
        check at a time: the event loop, and with it the pollers, keeps running, and a flood
        of logins costs at most one core."""

        def check() -> LoginCheck:
            stored = self.password.read()
            if stored is None or not verify_password(password, stored):
                return LoginCheck(ok=False, device_cookie=None)
            return LoginCheck(ok=True, device_cookie=_new_device_cookie(stored))

        async with self._hashing_lock():
            return await asyncio.to_thread(check)

    async def set_password(self, password: str) -> str:
        """Hash (off the event loop) and store a new admin password; returns a device cookie
        for the browser that set it (the old ones are void: they named the old password)."""
        async with self._hashing_lock():
            stored = await asyncio.to_thread(self.password.set, password)
        return _new_device_cookie(stored)

    def _hashing_lock(self) -> asyncio.Lock:
        if self._hashing is None:
            self._hashing = asyncio.Lock()
        return self._hashing

    async def device_of(self, cookie: str | None) -> str | None:
        """The device a valid device cookie names, else ``None``.  Cookies are signed with a
        key derived from the stored password hash: changing the password voids them all."""
        if not cookie or "." not in cookie:
            return None
        stored = await asyncio.to_thread(self.password.read)
        if stored is None:
            return None
        nonce, _, mac = cookie.partition(".")
        if not hmac.compare_digest(mac.encode(), _device_mac(_device_key(stored), nonce).encode()):
            return None
        return nonce

    # -- the first-run setup token ---------------------------------------------------------------
    def setup_token(self) -> str:
        """The one-time token that proves access to the gateway's log (made once per process,
        until the setup is done)."""
        if self._setup_token is None:
            self._setup_token = secrets.token_urlsafe(24)
        return self._setup_token

    @property
    def setup_token_issued(self) -> bool:
        return self._setup_token is not None

    def setup_token_ok(self, token: str | None) -> bool:
        expected = self._setup_token
        if not token or expected is None:
            return False
        return hmac.compare_digest(token.encode(), expected.encode())

    def setup_done(self) -> None:
        """The token is used up: the admin password exists now."""
        self._setup_token = None


@dataclass(frozen=True, slots=True)
class LoginCheck:
    ok: bool
    device_cookie: str | None  # for DEVICE_COOKIE when ok: this browser logged in here


def _device_key(stored: str) -> bytes:
    return hashlib.sha256(_DEVICE_LABEL + stored.encode()).digest()


def _new_device_cookie(stored: str) -> str:
    nonce = secrets.token_urlsafe(16)
    return f"{nonce}.{_device_mac(_device_key(stored), nonce)}"


def _device_mac(key: bytes, nonce: str) -> str:
    digest = hmac.new(key, nonce.encode(), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest).decode("ascii").rstrip("=")
