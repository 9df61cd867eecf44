"""The hot path: the few GETs that clients make on every page ("who am I": GET /v1/users/self,
/api/v1/user, /api/admin/user), answered without FastAPI's routing and dependency injection,
and from a per-process cache of whole answers.

Only a GET of exactly those paths with no query string, no body and an Authorization header
takes this path; anything else (and anything a hot endpoint declines, e.g. HTTP Basic on
ece) goes to the face's normal route, so validation, input guards and error bodies stay
exactly the face's. An answer is cached under the path and the SHA-256 of the Authorization
value (never the value itself; the one header that faces/credentials.py reads: a request with
several takes the normal route, which refuses it), tagged like every entry of
identity/cache.py: it is dropped when anything it derives from changes (any worker, any host),
when its caller's own data changes, and at its deadlines (the token's expiry, an invite or an
elevation running out).
"""

from __future__ import annotations

import hashlib
import logging
import zlib
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, replace
from datetime import datetime

from fastapi import FastAPI, Request
from fastapi.responses import Response
from starlette.types import ASGIApp, Receive, Scope, Send

from tenantry.audit.log import current_request
from tenantry.clock import utcnow
from tenantry.db.engine import Database
from tenantry.directory import whoami
from tenantry.directory.whoami import CallerView
from tenantry.errors import DomainError
from tenantry.faces.credentials import AmbiguousCredential, raw_authorization
from tenantry.faces.http import ErrorRenderer, request_context, security, status_for
from tenantry.identity.cache import AuthCache
from tenantry.identity.principals import Principal
from tenantry.identity.usage import CallerUse, touch

log = logging.getLogger("tenantry.http")
Headers = tuple[tuple[bytes, bytes], ...]


@dataclass(slots=True, frozen=True)
class HotAnswer:
    """A 200 JSON answer, who it was for, and until when it holds by itself."""

    body: bytes
    caller: CallerUse  # only what recording the token's use needs of the caller
    valid_until: datetime | None = None
    headers: Headers = ()
    scopes: tuple[str, ...] = ()  # what it derives from (Principal.scopes of the whole caller)
    zdict: bytes | None = None  # kept in the cache: `body` deflated with this dictionary

    def content(self) -> bytes:
        if self.zdict is None:
            return self.body
        return zlib.decompressobj(zdict=self.zdict).decompress(self.body)

    def deadline(self) -> datetime | None:
        token = self.caller.token
        ends = [t for t in (self.valid_until, token.expires_at if token else None) if t]
        return min(ends, default=None)


# A hot endpoint answers, or returns None to hand the request to the face's normal route.
HotEndpoint = Callable[[Request], Awaitable[HotAnswer | None]]
HotRoute = tuple[HotEndpoint, FastAPI]  # the endpoint, and the face whose errors it renders
# A face's own view of its caller, from what was loaded with them: the JSON body, and until
# when it holds by itself.
Body = Callable[[Request, Principal, CallerView], tuple[bytes, datetime | None]]


async def answer(
    request: Request, secret: str | None, body: Body, headers: Headers = ()
) -> HotAnswer | None:
    """What a hot endpoint does once it has looked for its face's credential: without one,
    None (the normal route answers); with one, the caller and their view (directory.whoami:
    one statement on PostgreSQL), and the face's body of them."""
    if secret is None:
        return None
    database: Database = request.app.state.database
    if not database.generation.reliable:
        await database.generation.ensure_started()
    caller, found = await whoami.load(database, secret, security(request).policy)
    await touch(database, caller)
    data, until = body(request, caller, found)
    # A copy of exactly its length: orjson's bytes keep the capacity of its output buffer
    # (about 8 KiB for a 1 KiB body), which a cache of 100 000 answers would keep too.
    return HotAnswer(bytes(memoryview(data)), CallerUse.of(caller), until, headers, caller.scopes)


class HotPathMiddleware:
    def __init__(
        self,
        app: ASGIApp,
        routes: Mapping[str, HotRoute],
        cache: AuthCache,
        database: Database,
    ) -> None:
        self.app = app
        self.routes = routes
        self.cache = cache
        self.database = database
        # Cached bodies are deflated with the first body of their path as the dictionary:
        # answers of one path share their keys, role names and mostly organization ids, so
        # a 550-byte body keeps ~100 bytes and 100 000 cached callers ~45 MB less
        # (docs/performance.md, memory); inflating one costs ~2 µs per hit.
        self._zdicts: dict[str, bytes] = {}

    async def answer_from_cache(self, scope: Scope, send: Send) -> bool:
        """Send the cached answer of a hot GET, if there is one; False otherwise. Called by
        TenantryApp before Starlette's middleware stack, which would cost a cached answer
        about a tenth of its CPU (the error middlewares and the request-context wrapper of
        every send); so it does their part itself: the request id and the audit context."""
        key = _cache_key(scope, self.routes)
        now = utcnow()
        cached: HotAnswer | None = None if key is None else self.cache.get(key, now)
        if cached is None:
            return False
        request_id, info = request_context(scope)
        context = current_request.set(info)
        try:
            await touch(self.database, cached.caller, now=now)  # never raises
        finally:
            current_request.reset(context)
        await _send(send, cached, (b"x-request-id", request_id.encode()))
        return True

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """A hot GET the cache could not answer (answer_from_cache, in front of the stack,
        sends the cached ones): answered here, and its answer cached."""
        key = _cache_key(scope, self.routes)
        if key is None:
            await self.app(scope, receive, send)
            return
        mark = self.cache.mark()
        endpoint, face = self.routes[scope["path"]]
        request = Request(scope, receive)
        answer = await _answer(request, endpoint, face)
        if answer is None:
            await self.app(scope, receive, send)
        elif isinstance(answer, HotAnswer):
            token = answer.caller.token
            if token is not None and self.cache.enabled:
                # What it derives from is named once, to the cache; the entry need not keep it.
                zdict = self._zdicts.setdefault(scope["path"], answer.body)
                deflate = zlib.compressobj(zlib.Z_DEFAULT_COMPRESSION, zdict=zdict)
                packed = deflate.compress(answer.body) + deflate.flush()
                kept = replace(answer, body=packed, scopes=(), zdict=zdict)
                self.cache.put(key, kept, mark, answer.deadline(), answer.scopes)
            await _send(send, answer)
        else:
            await answer(scope, receive, send)


def _cache_key(scope: Scope, routes: Mapping[str, HotRoute]) -> bytes | None:
    """The cache key of a request the hot path takes (a hot GET without a query string or a
    body, carrying a credential), else None."""
    if scope["type"] != "http" or scope["method"] != "GET" or scope["query_string"]:
        return None
    if scope["path"] not in routes:
        return None
    credential = _credential(scope)
    if credential is None:
        return None
    # One bytes object (a cached answer's key is kept as long as the answer): the SHA-256 of
    # the path and the credential, never the credential itself.
    return hashlib.sha256(scope["path"].encode() + b"\0" + credential).digest()


def _credential(scope: Scope) -> bytes | None:
    """The Authorization value of a request without a body (None: not for the hot path).

    Read by the one reader that every face's credential parsing uses, so that the cache key
    and the caller always come from the same header. Several Authorization headers are not
    for the cache either: the face's own route refuses them in its error body."""
    headers = scope["headers"]
    for name, value in headers:
        if (name == b"content-length" and value != b"0") or name == b"transfer-encoding":
            return None
    try:
        return raw_authorization(headers)
    except AmbiguousCredential:
        return None


async def _send(send: Send, answer: HotAnswer, *extra: tuple[bytes, bytes]) -> None:
    body = answer.content()
    # A face may name its own JSON content type among its headers (Unleash: with a charset).
    typed = any(name == b"content-type" for name, _ in answer.headers)
    headers = [
        *(() if typed else ((b"content-type", b"application/json"),)),
        (b"content-length", b"%d" % len(body)),
        *answer.headers,
        *extra,
    ]
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    await send({"type": "http.response.body", "body": body})


async def _answer(
    request: Request, endpoint: HotEndpoint, face: FastAPI
) -> HotAnswer | Response | None:
    render: ErrorRenderer = face.state.render_error
    try:
        return await endpoint(request)
    except DomainError as exc:
        return render(request, status_for(exc, face.state.error_table), exc)
    except Exception as exc:
        log.exception("unhandled error", exc_info=exc)
        return render(request, 500, DomainError("internal error"))
