"""HTTP hardening around the whole app (an ASGI middleware): who the client is, which requests
are refused outright, and the security headers of every response.

* **Client address.**  The server (uvicorn) runs with its own proxy-header handling off, so
  ``X-Forwarded-For`` from anyone is ignored.  Only a request whose socket peer is one of
  ``[web] trusted_proxies`` has its client taken from ``X-Forwarded-For`` (the nearest address
  that is not itself a trusted proxy: the one the trusted proxy saw) and its scheme from
  ``X-Forwarded-Proto``.  The login limits and the log see that address.
* **Cross-site state changes.**  A POST (PUT, PATCH, DELETE) that the browser marks
  ``Sec-Fetch-Site: cross-site`` is refused with 403 before any route runs; the forms' CSRF
  tokens and SameSite=Strict cookies refuse the rest.
* **Headers.**  A Content-Security-Policy that allows scripts, styles and connections from
  this origin only (no inline script or style, so an injected ``<script>`` does not run),
  ``frame-ancestors 'none'`` and ``X-Frame-Options: DENY`` (no clickjacking), ``nosniff`` and
  ``Referrer-Policy: no-referrer`` (a setup link's token never leaves in a Referer).  A route
  may set its own CSP (the API docs page does).
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable, Iterable, Sequence

from starlette.types import ASGIApp, Message, Receive, Scope, Send

IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

CONTENT_SECURITY_POLICY = "; ".join(
    [
        "default-src 'self'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self' data:",
        "connect-src 'self'",
        "object-src 'none'",
        "base-uri 'none'",
        "form-action 'self'",
        "frame-ancestors 'none'",
    ]
)
SECURITY_HEADERS: dict[str, str] = {
    "content-security-policy": CONTENT_SECURITY_POLICY,
    "x-frame-options": "DENY",
    "x-content-type-options": "nosniff",
    "referrer-policy": "no-referrer",
}
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
PROXY_HEADERS = ("forwarded", "x-forwarded-for", "x-forwarded-host", "x-real-ip")
"""Headers a reverse proxy adds; a browser talking to the gateway directly sends none."""


def parse_networks(values: Iterable[str]) -> list[IPNetwork]:
    """``["127.0.0.1", "10.0.0.0/8", "::1"]`` as networks (raises ValueError naming a bad one)."""
    return [ipaddress.ip_network(value.strip(), strict=False) for value in values]


def is_trusted(host: str, trusted: Sequence[IPNetwork]) -> bool:
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return False
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    return any(address in network for network in trusted)


def forwarded_client(header: str, trusted: Sequence[IPNetwork]) -> str | None:
    """The client an ``X-Forwarded-For`` value names, read from the right: each proxy appends
    the address it saw, so the first address that is not a trusted proxy is the client (what
    is further left, the client could have written itself)."""
    hops = [hop.strip() for hop in header.split(",") if hop.strip()]
    for hop in reversed(hops):
        if not is_trusted(hop, trusted):
            return hop
    return hops[0] if hops else None


class SecurityMiddleware:
    """See the module's description; ``trusted_proxies()`` is read at each request, so a
    changed ``[web] trusted_proxies`` applies at once."""

    def __init__(self, app: ASGIApp, trusted_proxies: Callable[[], Sequence[IPNetwork]]) -> None:
        self.app = app
        self.trusted_proxies = trusted_proxies

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        headers = _headers(scope)
        scope = self._resolve_client(scope, headers)
        if scope["type"] == "websocket":
            await self.app(scope, receive, send)
            return
        if scope["method"] not in SAFE_METHODS and headers.get("sec-fetch-site") == "cross-site":
            await _refuse_cross_site(send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                present = {name.lower() for name, _ in message.get("headers", [])}
                extra = [
                    (name.encode("latin-1"), value.encode("latin-1"))
                    for name, value in SECURITY_HEADERS.items()
                    if name.encode("latin-1") not in present
                ]
                message = {**message, "headers": [*message.get("headers", []), *extra]}
            await send(message)

        await self.app(scope, receive, send_with_headers)

    def _resolve_client(self, scope: Scope, headers: dict[str, str]) -> Scope:
        client = scope.get("client")
        if not client:
            return scope
        trusted = self.trusted_proxies()
        if not trusted or not is_trusted(client[0], trusted):
            return scope
        scope = dict(scope)
        forwarded_for = headers.get("x-forwarded-for")
        if forwarded_for:
            host = forwarded_client(forwarded_for, trusted)
            if host is not None:
                scope["client"] = (host, 0)
        proto = headers.get("x-forwarded-proto", "").split(",")[-1].strip().lower()
        if scope["type"] == "http" and proto in ("http", "https"):
            scope["scheme"] = proto
        elif scope["type"] == "websocket" and proto in ("http", "https", "ws", "wss"):
            scope["scheme"] = "wss" if proto in ("https", "wss") else "ws"
        return scope


def _headers(scope: Scope) -> dict[str, str]:
    """The request's headers (a repeated header's values joined by commas, as HTTP allows)."""
    joined: dict[str, str] = {}
    for raw_name, raw_value in scope.get("headers", []):
        name = raw_name.decode("latin-1").lower()
        value = raw_value.decode("latin-1")
        joined[name] = f"{joined[name]}, {value}" if name in joined else value
    return joined


async def _refuse_cross_site(send: Send) -> None:
    body = b"cross-site requests that change state are refused\n"
    await send(
        {
            "type": "http.response.start",
            "status": 403,
            "headers": [
                (b"content-type", b"text/plain; charset=utf-8"),
                (b"content-length", str(len(body)).encode()),
                *((k.encode(), v.encode()) for k, v in SECURITY_HEADERS.items()),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})
