"""The web side: a FastAPI app factory with the JSON API, live dashboard and admin pages.

>>> app = create_app(gateway, data_dir=Path("/var/lib/mepgate"))   # doctest: +SKIP
"""

from mepgate.web.app import close_streams, create_app

__all__ = ["close_streams", "create_app"]
