"""The HTML pages (one router per page), rendered with Jinja2; not part of the OpenAPI schema."""
