"""Every asset comes from the gateway: no page, stylesheet or the API docs references another host
(the docs used Swagger UI from a CDN and were blank offline); the favicon is the package's; the
navigation before the first-run setup offers "Set up", not pages that need its password.
(The docs page loading in Chromium with no network is in test_browser_pages.py.)
"""

from __future__ import annotations

import re
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import urljoin, urlsplit

import pytest
from fastapi.testclient import TestClient

from mepgate.config import MeterConfig
from mepgate.web import create_app

from ..support.gateway import FakeGateway
from .conftest import csrf_of
from .support import reconfigure

PAGES = ("/", "/history", "/meter", "/console", "/config", "/login", "/api/v1/docs")
CSS_URL = re.compile(r"url\(\s*['\"]?([^'\")]+)")
# What an asset may name without being fetched: inline data, and XML namespaces in SVG/CSS.
NOT_FETCHED = ("data:", "http://www.w3.org/")
HOST = "testserver"  # the TestClient's: the gateway's own address


@pytest.fixture
def store_url(sqlite_url: str) -> str:
    return sqlite_url


class References(HTMLParser):
    """Every URL an HTML page makes the browser load or offers as a link."""

    def __init__(self) -> None:
        super().__init__()
        self.urls: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        for name, value in attrs:
            if name in ("src", "href", "action", "poster", "data") and value:
                self.urls.append(value)
            if name == "srcset" and value:
                self.urls += [part.split()[0] for part in value.split(",") if part.strip()]
            if name == "style" and value:
                self.urls += CSS_URL.findall(value)


def references(html: str) -> list[str]:
    parser = References()
    parser.feed(html)
    return parser.urls + CSS_URL.findall(html)


def external(url: str, gateway: str) -> bool:
    """``url`` names a host other than ``gateway`` (the host the pages were asked from)."""
    if url.startswith(NOT_FETCHED):
        return False
    parts = urlsplit(url)
    return parts.netloc not in ("", gateway) or parts.scheme not in ("", "http", "https")


def local(url: str, gateway: str) -> str:
    parts = urlsplit(url)
    return parts.path if parts.netloc == gateway else url


def test_no_page_or_asset_names_a_host_outside_the_gateway(
    admin: TestClient, gateway: FakeGateway
) -> None:
    token = csrf_of(admin.get("/console").text)
    reply = admin.post("/console", data={"csrf_token": token, "meter": "house", "table": "BT01"})
    pages = {path: admin.get(path) for path in PAGES}
    pages["/console (a reply)"] = reply
    seen: dict[str, list[str]] = {}
    assets: set[str] = set()
    for path, response in pages.items():
        assert response.status_code == 200, path
        urls = references(response.text)
        seen[path] = urls
        paths = [local(u, HOST) for u in urls]
        assets |= {u for u in paths if u.startswith("/static/") or u == "/favicon.ico"}
    # Stylesheets and scripts are assets too: what they name must be local as well.
    for asset in sorted(assets):
        response = admin.get(asset)
        assert response.status_code == 200, asset
        if asset.endswith(".css"):
            seen[asset] = [urljoin(asset, u) for u in CSS_URL.findall(response.text)]
    outside = {path: [u for u in urls if external(u, HOST)] for path, urls in seen.items()}
    assert not any(outside.values()), outside
    docs = [local(u, HOST) for u in seen["/api/v1/docs"]]
    assert "/static/vendor/swagger-ui/swagger-ui-bundle.js" in docs
    assert sum(len(urls) for urls in seen.values()) > 40  # the pages were really read


def test_the_swagger_ui_start_asks_no_validator_outside() -> None:
    static = Path(__file__).parents[2] / "src" / "mepgate" / "web" / "static"
    start = (static / "docs.js").read_text()
    assert "validatorUrl: null" in start  # Swagger UI's default sends the schema elsewhere
    assert (static / "vendor" / "swagger-ui" / "LICENSE").exists()


def test_the_favicon_is_served_from_the_package(client: TestClient) -> None:
    icon = client.get("/favicon.ico")
    assert icon.status_code == 200
    assert icon.headers["content-type"] == "image/vnd.microsoft.icon"
    assert icon.content[:4] == b"\0\0\1\0"  # an ICO file's header
    assert '<link rel="icon" href="/favicon.ico">' in client.get("/").text


def test_before_the_setup_the_navigation_offers_set_up_not_config(
    gateway: FakeGateway, data_dir: Path
) -> None:
    # ``mepgate demo``: a simulated meter, no admin password yet.
    demo = MeterConfig(name="demo", port="sim:gen4-3phase")
    reconfigure(gateway, gateway.settings.model_copy(update={"meter": [demo]}))
    with TestClient(create_app(gateway, data_dir=data_dir)) as client:
        nav = _nav(client.get("/").text)
    assert 'href="/setup"' in nav
    assert 'href="/config"' not in nav
    assert 'href="/console"' not in nav


def test_after_the_setup_the_navigation_offers_config_and_console(client: TestClient) -> None:
    nav = _nav(client.get("/").text)
    assert 'href="/config"' in nav
    assert 'href="/console"' in nav
    assert 'href="/setup"' not in nav


def _nav(html: str) -> str:
    return html[html.index("<nav>") : html.index("</nav>")]
