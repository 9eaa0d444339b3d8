"""The request and response values the API front-ends exchange with the HTTP server.

Keeping them plain lets `digitalocean.py`, `hetzner.py` and `telegram.py` be functions of a
request, with the socket handling in one place (`server.py`).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from urllib.parse import urlencode


class BadBody(ValueError):
    """The request body is not the JSON object the endpoint needs."""


@dataclass
class Request:
    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]
    """Header names lower-cased."""
    body: bytes
    base_url: str
    """Scheme and authority the client used, e.g. http://127.0.0.1:8080."""

    def arg(self, name: str, default: str | None = None) -> str | None:
        values = self.query.get(name)
        return values[0] if values else default

    def args(self, name: str) -> list[str]:
        return self.query.get(name, [])

    def bearer(self) -> str | None:
        scheme, _, token = self.headers.get("authorization", "").partition(" ")
        return token.strip() if scheme.lower() == "bearer" and token.strip() else None

    def json(self) -> dict:
        """The body as a JSON object; an empty body is {}."""
        if not self.body.strip():
            return {}
        try:
            data = json.loads(self.body)
        except ValueError as exc:
            raise BadBody(f"invalid JSON: {exc}") from None
        if not isinstance(data, dict):
            raise BadBody("the body must be a JSON object")
        return data

    def url_with(self, **params: object) -> str:
        """This request's absolute URL with some query parameters replaced (for page links)."""
        query = {k: list(v) for k, v in self.query.items()}
        for key, value in params.items():
            query[key] = [str(value)]
        return f"{self.base_url}{self.path}?{urlencode(query, doseq=True)}"


@dataclass
class Response:
    status: int
    body: dict | list | bytes | None = None
    headers: dict[str, str] = field(default_factory=dict)
    account: str | None = None
    """The account the request was made as, for the request log only."""

    def payload(self) -> bytes:
        if self.body is None:
            return b""
        if isinstance(self.body, bytes):
            return self.body
        return json.dumps(self.body).encode()


def page_bounds(page: int, per_page: int, total: int) -> tuple[int, int, int]:
    """(start, end, last_page) of a 1-based page; last_page is at least 1."""
    last = max(1, -(-total // per_page))
    start = (page - 1) * per_page
    return start, min(start + per_page, total), last


def positive_int(text: str | None, default: int) -> int:
    """Parse a page or per_page query value; ValueError if it is not a positive integer."""
    if text is None or text == "":
        return default
    value = int(text)
    if value < 1:
        raise ValueError(text)
    return value
