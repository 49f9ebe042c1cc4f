"""The web side: a FastAPI app factory with the JSON API, live dashboard and admin pages.

>>> app = create_app(gateway, data_dir=Path("/var/lib/mepgate"))   # doctest: +SKIP
"""

from mepgate.web.app import create_app

__all__ = ["create_app"]
