"""Plumbing every face shares: request context, body limits, the per-request transaction,
credential parsing and the hook through which a face's error table renders domain errors."""

from __future__ import annotations

import functools
import itertools
import logging
import re
import secrets
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from contextlib import asynccontextmanager
from typing import Annotated, Any
from urllib.parse import parse_qsl

import orjson
from fastapi import APIRouter, Depends, FastAPI, Request
from fastapi.datastructures import DefaultPlaceholder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import Response
from fastapi.routing import APIRoute
from fastapi.telemetry import TelemetryConfig
from sqlalchemy.exc import DataError, IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import JSONResponse as StarletteJSONResponse
from starlette.routing import Match
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from tenantry.audit.log import RequestInfo, current_request
from tenantry.clock import utcnow
from tenantry.db.engine import Database
from tenantry.directory import whoami
from tenantry.errors import (
    Conflict,
    DomainError,
    FieldError,
    Forbidden,
    Invalid,
    NotFound,
    PayloadTooLarge,
    RateLimited,
    Unauthenticated,
    Unavailable,
)
from tenantry.faces.credentials import scheme_and_value
from tenantry.identity.cache import AuthCache
from tenantry.identity.principals import Principal, authenticate
from tenantry.identity.security import Security
from tenantry.identity.tokens import MAX_SECRET_LENGTH, digest
from tenantry.identity.usage import touch

log = logging.getLogger("tenantry.http")
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


class JSONResponse(StarletteJSONResponse):
    """orjson rendering; a JSONResponse subclass so OpenAPI documents bodies as JSON."""

    def render(self, content: Any) -> bytes:
        return orjson.dumps(content)


class RawJSON(Response):
    """A body that is JSON already (e.g. from the view cache)."""

    media_type = "application/json"


Endpoint = Callable[..., Awaitable[Any]]


def _rendered_directly(endpoint: Endpoint, status_code: int) -> Endpoint:
    """`endpoint`, answering a returned dict or list with a JSONResponse itself."""
    if getattr(endpoint, "renders_directly", False):
        return endpoint

    @functools.wraps(endpoint)  # FastAPI reads the signature (and globals) through __wrapped__
    async def direct(*args: Any, **kwargs: Any) -> Any:
        content = await endpoint(*args, **kwargs)
        if isinstance(content, Response):
            return content
        return JSONResponse(content, status_code=status_code)

    direct.renders_directly = True  # type: ignore[attr-defined]
    return direct


class JSONRoute(APIRoute):
    """A route whose dict or list result goes straight to orjson. FastAPI would first copy it
    through `jsonable_encoder`, which walks every value in Python: 0.9 ms for a 20-member
    page, against 7 µs for orjson. Renderers return plain JSON types, so the copy is never
    needed (and a stray non-JSON value fails loudly in orjson rather than being guessed at)."""

    def __init__(self, path: str, endpoint: Endpoint, **kwargs: Any) -> None:
        if isinstance(kwargs.get("response_class"), DefaultPlaceholder):  # JSON by default
            endpoint = _rendered_directly(endpoint, kwargs.get("status_code") or 200)
        super().__init__(path, endpoint, **kwargs)  # a route naming its own class keeps it


def face_router(**kwargs: Any) -> APIRouter:
    """An APIRouter for a face's routes (see JSONRoute)."""
    return APIRouter(route_class=JSONRoute, **kwargs)


# --- request context -------------------------------------------------------------------------


class RequestContextMiddleware:
    """Gives each request an id (echoing a sane X-Request-Id) and records the client address."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request_id, info = request_context(scope)
        token = current_request.set(info)
        scope.setdefault("state", {})["request_id"] = request_id

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                message.setdefault("headers", []).append((b"x-request-id", request_id.encode()))
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        finally:
            current_request.reset(token)


def request_context(scope: Scope) -> tuple[str, RequestInfo]:
    """The request's id, and what the audit log records of the request (the id and the
    client's address)."""
    request_id = _request_id(scope)
    client = scope.get("client")
    return request_id, RequestInfo(request_id, client[0] if client else None)


def _request_id(scope: Scope) -> str:
    """The request's id: a sane X-Request-Id it carries, else a new one."""
    for name, value in scope.get("headers", ()):
        if name == b"x-request-id" and 0 < len(value) <= 64 and value.isascii():
            text: str = value.decode()
            if text.replace("-", "").isalnum():
                return text
    return f"{_PROCESS_TAG}{next(_REQUEST_NUMBERS) & 0xFFFFFFFF:08x}"


# Request ids: a random tag per process and a counter (unique without a system call each).
_PROCESS_TAG = secrets.token_hex(4)
_REQUEST_NUMBERS = itertools.count(1)


def request_id(request: Request) -> str:
    return str(request.scope.get("state", {}).get("request_id", ""))


# A JSON \u0000 escape: an odd run of backslashes followed by u0000.
_JSON_NUL = re.compile(rb"(?<!\\)(?:\\\\)*\\u0000")


class InputGuardMiddleware:
    """Refuses, before any parsing: bodies above the limit (by Content-Length up front or
    while streaming), and NUL characters in the path, query string or JSON body, which
    PostgreSQL cannot store and no directory field needs. Either way nothing is written."""

    def __init__(self, app: ASGIApp, max_bytes: int, on_reject: RejectRenderer) -> None:
        self.app = app
        self.max_bytes = max_bytes
        self.on_reject = on_reject

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        for name, value in scope.get("headers", ()):
            if name == b"content-length" and (not value.isdigit() or int(value) > self.max_bytes):
                await self.on_reject(scope, receive, send, _too_large(self.max_bytes))
                return
        if "\x00" in scope.get("path", ""):
            nul = Invalid(NUL_MESSAGE, [FieldError("path", "invalid", NUL_MESSAGE)])
            await self.on_reject(scope, receive, send, nul)
            return
        query = scope.get("query_string", b"")
        if b"%00" in query:
            await self.on_reject(scope, receive, send, _nul_in_query(query))
            return
        seen = 0
        tail = b""

        async def guarded() -> Message:
            nonlocal seen, tail
            message = await receive()
            chunk = message.get("body", b"")
            seen += len(chunk)
            if seen > self.max_bytes:
                raise _too_large(self.max_bytes)
            if _JSON_NUL.search(tail + chunk):
                raise Invalid(NUL_MESSAGE)
            tail = (tail + chunk)[-64:]
            return message

        await self.app(scope, guarded, send)


NUL_MESSAGE = "NUL characters are not allowed"
RejectRenderer = Callable[[Scope, Receive, Send, DomainError], Awaitable[None]]


def _nul_in_query(query: bytes) -> Invalid:
    pairs = parse_qsl(query.decode("latin-1"), keep_blank_values=True)
    names = sorted({k.replace("\x00", "") or "query" for k, v in pairs if "\x00" in k + v})
    fields = [FieldError(name, "invalid", NUL_MESSAGE) for name in names or ["query"]]
    return Invalid(NUL_MESSAGE, fields)


def _too_large(max_bytes: int) -> PayloadTooLarge:
    return PayloadTooLarge(f"request body larger than {max_bytes} bytes")


# --- transaction and credentials --------------------------------------------------------------


def security(request: Request) -> Security:
    sec: Security = request.app.state.security
    return sec


def client_ip(request: Request) -> str | None:
    return request.client.host if request.client else None


def database(request: Request) -> Database:
    db: Database = request.app.state.database
    return db


async def db_session(request: Request) -> AsyncIterator[AsyncSession]:
    """One transaction per request, committed before the response is sent."""
    db = database(request)
    if request.method in SAFE_METHODS:
        async with db.transaction(write=False) as session:
            yield session
        return
    # Writes first (db/priority.py): this worker's new reads wait while it runs.
    with db.priority.held():
        async with db.transaction(write=True) as session:
            yield session


Db = Annotated[AsyncSession, Depends(db_session, scope="function")]


def bearer_secret(request: Request) -> str | None:
    """The token of `Authorization: Bearer <token>`, None for anything else; more than one
    Authorization header is refused (faces/credentials.py)."""
    scheme, value = scheme_and_value(request.scope)
    return value if scheme == "bearer" and value else None


# --- errors ----------------------------------------------------------------------------------

ErrorRenderer = Callable[[Request, int, DomainError], Response]

DEFAULT_STATUS: Mapping[type[DomainError], int] = {
    Invalid: 400,
    Unauthenticated: 401,
    Forbidden: 403,
    NotFound: 404,
    Conflict: 409,
    PayloadTooLarge: 413,
    RateLimited: 429,
    Unavailable: 503,
}


def status_for(exc: DomainError, table: Mapping[type[DomainError], int]) -> int:
    for cls in type(exc).__mro__:
        if cls in table:
            return table[cls]
    return 400


def validation_to_invalid(exc: RequestValidationError) -> Invalid:
    fields = []
    for err in exc.errors():
        loc = [str(part) for part in err.get("loc", ()) if part not in ("body", "query", "path")]
        fields.append(
            FieldError(
                ".".join(loc) or "body",
                str(err.get("type", "invalid")),
                str(err.get("msg", "invalid")),
            )
        )
    if any(f.code == "json_invalid" for f in fields):
        return Invalid("request body is not valid JSON", fields)
    return Invalid(
        "invalid request: " + "; ".join(f"{f.field}: {f.message}" for f in fields), fields
    )


_METHODS = ("DELETE", "GET", "HEAD", "OPTIONS", "PATCH", "POST", "PUT")


def allowed_methods(request: Request) -> str:
    """Every method some route of the app serves at the request's path: each asked of the
    app's routes (Starlette's own Allow names only the first route that matched the path)."""
    routes = request.app.router.routes
    return ", ".join(
        method
        for method in _METHODS
        if any(r.matches({**request.scope, "method": method})[0] is Match.FULL for r in routes)
    )


def install_error_handlers(
    app: FastAPI, render: ErrorRenderer, table: Mapping[type[DomainError], int]
) -> None:
    """Route every failure of the face through its own error renderer."""

    async def domain(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, DomainError)
        response = render(request, status_for(exc, table), exc)
        if isinstance(exc, RateLimited):
            response.headers["retry-after"] = str(exc.retry_after)
        return response

    async def validation(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, RequestValidationError)
        return render(request, table[Invalid], validation_to_invalid(exc))

    async def http(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, StarletteHTTPException)
        if isinstance(exc.__cause__, DomainError):
            # FastAPI wraps errors raised while reading the body (our input guard's) in a
            # generic 400; answer with the guard's own error and status instead.
            return await domain(request, exc.__cause__)
        err_cls: type[DomainError] = NotFound if exc.status_code == 404 else Invalid
        message = "no such route" if exc.status_code == 404 else str(exc.detail)
        response = render(request, exc.status_code, err_cls(message))
        if exc.status_code == 405:  # RFC 9110 15.5.6: a 405 says which methods the path has
            response.headers["allow"] = allowed_methods(request)
        return response

    async def integrity(request: Request, exc: Exception) -> Response:
        log.info("integrity error mapped to 409: %s", type(exc).__name__)
        return render(request, table[Conflict], Conflict("conflicting change, please retry"))

    async def bad_value(request: Request, exc: Exception) -> Response:
        # The database refused a value (a NUL character, a string longer than its column, a
        # number out of range): the client's input, and the transaction has rolled back.
        log.info("database refused a value: %s", type(getattr(exc, "orig", exc)).__name__)
        return render(request, table[Invalid], Invalid("a value is not acceptable"))

    async def crash(request: Request, exc: Exception) -> Response:
        log.exception("unhandled error", exc_info=exc)
        return render(request, 500, DomainError("internal error"))

    handlers: dict[Any, Callable[[Request, Exception], Awaitable[Response]]] = {
        DomainError: domain,
        RequestValidationError: validation,
        StarletteHTTPException: http,
        IntegrityError: integrity,
        DataError: bad_value,
        Exception: crash,
    }
    for exc_type, handler in handlers.items():
        app.add_exception_handler(exc_type, handler)


def telemetry(enabled: bool) -> TelemetryConfig:
    """FastAPI's native OpenTelemetry: off unless asked for, because even unconfigured it
    looks up the global providers on every request (a measurable share of a cached GET)."""
    return {"tracing": enabled, "metrics": enabled, "logs": enabled}


def make_face_app(
    title: str,
    description: str,
    render: ErrorRenderer,
    table: Mapping[type[DomainError], int],
    max_body_bytes: int,
) -> FastAPI:
    """A face is a FastAPI sub-application: its own OpenAPI document, docs and error body."""
    app = FastAPI(
        title=title,
        description=description,
        version="0.1.0",
        default_response_class=JSONResponse,
        # The outer app owns OpenTelemetry (TENANTRY_OPENTELEMETRY); a face traced by it skips
        # its own, and an untraced one should not look for providers on every request.
        telemetry=telemetry(False),
    )
    install_error_handlers(app, render, table)
    app.state.render_error = render
    app.state.error_table = table

    async def reject(scope: Scope, receive: Receive, send: Send, exc: DomainError) -> None:
        response = render(Request(scope, receive), status_for(exc, table), exc)
        await response(scope, receive, send)

    app.add_middleware(InputGuardMiddleware, max_bytes=max_body_bytes, on_reject=reject)
    return app


async def bearer_principal(request: Request, db: Db) -> Principal:
    """The caller behind `Authorization: Bearer <token>`; 401 when absent or not valid."""
    secret = bearer_secret(request)
    if secret is None:
        raise Unauthenticated("missing bearer token")
    return await principal_from_secret(request, db, secret)


async def principal_from_secret(request: Request, db: AsyncSession, secret: str) -> Principal:
    """Authenticate a token secret however the face received it (Bearer, ApiKey, a raw
    Authorization value, a session cookie) and record its use.

    A writing request authenticates inside its own transaction (what it loads, it may change).
    A reading request asks the per-process cache first; on a miss it loads the caller in a
    short transaction of its own, so that a request never holds two pooled connections at
    once (twenty requests each waiting for a second connection would starve the pool)."""
    if request.method not in SAFE_METHODS:
        principal = await whoami.authenticate_to_write(db, secret, security(request).policy)
        await touch(database(request), principal, db)
        return principal
    return await reading_principal(request, secret)


async def reading_principal(request: Request, secret: str) -> Principal:
    """The caller of a safe (read-only) request, from the cache when it can be.

    This runs on every GET: keep it to dictionary look-ups on a hit (see bench/)."""
    if len(secret) > MAX_SECRET_LENGTH:
        raise Unauthenticated("invalid or expired token")
    state, now, key = request.app.state, utcnow(), digest(secret)
    store: AuthCache = state.auth_cache
    db: Database = state.database
    principal = store.principal(key, now)
    if principal is None:
        if not db.generation.reliable:
            await db.generation.ensure_started()
        mark = store.mark()
        async with db.transaction(write=False) as session:
            principal = await authenticate(session, secret, security(request).policy)
            # Detached now, the principal's rows outlive the session (a rollback would
            # otherwise expire them) and can be shared by later requests.
            session.expunge_all()
        store.remember_principal(key, principal, mark)
    await touch(db, principal, now=now)
    return principal


@asynccontextmanager
async def read_transaction(request: Request) -> AsyncIterator[AsyncSession]:
    """A read-only transaction for work a cached answer could not spare."""
    async with database(request).transaction(write=False) as session:
        yield session


BearerCaller = Annotated[Principal, Depends(bearer_principal)]
