"""Reading a page's form the way a browser would submit it (inputs, checked boxes, selects)."""

from __future__ import annotations

from html.parser import HTMLParser


class _FormParser(HTMLParser):
    def __init__(self, form_id: str | None) -> None:
        super().__init__()
        self.form_id = form_id
        self.inside = False
        self.fields: dict[str, str] = {}
        self._select: str | None = None
        self._first_option: str | None = None
        self._pending_option: tuple[str | None, bool] | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k: v or "" for k, v in attrs}
        if tag == "form":
            self.inside = self.form_id is None or a.get("id") == self.form_id
        if not self.inside:
            return
        if tag == "input" and "name" in a:
            kind = a.get("type", "text")
            if kind == "checkbox":
                if "checked" in a:
                    self.fields[a["name"]] = a.get("value", "on")
            else:
                self.fields[a["name"]] = a.get("value", "")
        elif tag == "select":
            self._select = a.get("name")
            self._first_option = None
        elif tag == "option" and self._select is not None:
            value = a.get("value")
            self._pending_option = (value, "selected" in a)

    def handle_data(self, data: str) -> None:
        pending = self._pending_option
        if pending is not None and self._select is not None:
            value, selected = pending
            text = value if value is not None else data.strip()
            if self._first_option is None:
                self._first_option = text
                self.fields.setdefault(self._select, text)
            if selected:
                self.fields[self._select] = text
            self._pending_option = None

    def handle_endtag(self, tag: str) -> None:
        if tag == "select":
            self._select = None
        if tag == "form" and self.inside:
            self.inside = False


def form_fields(html: str, form_id: str | None = None) -> dict[str, str]:
    parser = _FormParser(form_id)
    parser.feed(html)
    return parser.fields
