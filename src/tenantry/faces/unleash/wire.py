"""What Express does around Unleash's routes, for the unleash face's apps.

Unleash 8.2 is an Express app: before a route sees a request, runs of slashes in its path are
collapsed (Unleash's `normalizeUrlPath`) and a trailing slash is optional (Express routes are
not `strict`), so `/api/admin/user/` is `/api/admin/user`, never a redirect; a HEAD is the GET
of the same path, answered with the GET's headers and no body; and every JSON answer says
`application/json; charset=utf-8`. `UnleashWire` does the same in front of the face's routes
(no rule is decided here: the request is routed as Unleash would route it)."""

from __future__ import annotations

import re

from starlette.types import ASGIApp, Message, Receive, Scope, Send

JSON = b"application/json"
JSON_UTF8 = b"application/json; charset=utf-8"
_SLASHES = re.compile(r"/{2,}")
_RAW_SLASHES = re.compile(rb"/{2,}")


def route_path(path: str) -> str:
    """The path as Express matches it: runs of slashes collapsed, one trailing slash dropped."""
    path = _SLASHES.sub("/", path)
    return path[:-1] if len(path) > 1 and path.endswith("/") else path


def _raw_route_path(raw: bytes) -> bytes:
    raw = _RAW_SLASHES.sub(b"/", raw)
    return raw[:-1] if len(raw) > 1 and raw.endswith(b"/") else raw


def with_charset(headers: list[tuple[bytes, bytes]]) -> list[tuple[bytes, bytes]]:
    """`headers` with a bare JSON content type given Express's charset."""
    return [
        (name, JSON_UTF8 if name == b"content-type" and value == JSON else value)
        for name, value in headers
    ]


class UnleashWire:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        head = scope["method"] == "HEAD"
        path = route_path(scope["path"])
        if head or path != scope["path"]:
            scope = dict(scope)
            scope["path"] = path
            if isinstance(scope.get("raw_path"), bytes):
                scope["raw_path"] = _raw_route_path(scope["raw_path"])
            if head:
                scope["method"] = "GET"

        async def send_as_express(message: Message) -> None:
            if message["type"] == "http.response.start":
                message = {**message, "headers": with_charset(list(message.get("headers", ())))}
            elif head and message["type"] == "http.response.body":
                message = {**message, "body": b""}
            await send(message)

        await self.app(scope, receive, send_as_express)
