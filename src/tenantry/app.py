"""create_app(settings): the outer ASGI app that mounts every face."""

from __future__ import annotations

import gc
import logging
import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import orjson
from fastapi import FastAPI, Request
from fastapi.responses import Response
from starlette.routing import Mount, Route
from starlette.types import Receive, Scope, Send

from tenantry.config import Settings, load_settings
from tenantry.db.engine import Database
from tenantry.db.priority import WritePriority, WriteTrace
from tenantry.errors import NotFound
from tenantry.faces import astro, ece, scim, unleash
from tenantry.faces.astro import users as astro_users
from tenantry.faces.ece import users as ece_users
from tenantry.faces.hot import HotEndpoint, HotPathMiddleware
from tenantry.faces.http import (
    ErrorRenderer,
    JSONResponse,
    RequestContextMiddleware,
    telemetry,
)
from tenantry.faces.native import app as native
from tenantry.faces.unleash import me as unleash_me
from tenantry.identity.cache import AuthCache
from tenantry.identity.security import Security
from tenantry.identity.usage import recorder
from tenantry.mail import Mailer, make_mailer

log = logging.getLogger("tenantry")


class TenantryApp(FastAPI):
    """The application. A cached answer to a hot GET is sent before Starlette's middleware
    stack is entered (see HotPathMiddleware.answer_from_cache); everything else, including
    the hot GETs' first and uncached requests, goes through the stack."""

    front: HotPathMiddleware | None = None

    priority: WritePriority | None = None
    write_trace: WriteTrace | None = None  # TENANTRY_CACHE_STATS_DIR (the bench) only

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if self.priority is not None and self.priority.busy and _is_read(scope):
            await self.priority.wait()  # writes first: db/priority.py
        if self.front is not None and await self.front.answer_from_cache(scope, send):
            return
        if self.write_trace is not None and scope["type"] == "http" and not _is_read(scope):
            await self.write_trace.around(super().__call__, scope, receive, send)
            return
        await super().__call__(scope, receive, send)


def _is_read(scope: Scope) -> bool:
    return scope["type"] == "http" and scope["method"] in ("GET", "HEAD")


def _write_cache_stats(directory: Path, cache: AuthCache, trace: WriteTrace | None) -> None:
    """TENANTRY_CACHE_STATS_DIR: this worker's cache counters and the phases of its write
    requests (db/priority.py WriteTrace), as <pid>.json, when it stops."""
    stats = {**cache.stats(), "writes": trace.dump() if trace is not None else []}
    try:
        directory.mkdir(parents=True, exist_ok=True)
        (directory / f"{os.getpid()}.json").write_bytes(orjson.dumps(stats))
    except OSError:
        log.warning("could not write cache counters to %s", directory)


def create_app(
    settings: Settings | None = None,
    database: Database | None = None,
    mailer: Mailer | None = None,
) -> FastAPI:
    settings = settings or load_settings()
    mail = mailer if mailer is not None else make_mailer(settings)
    db = database or Database(settings)
    sec = Security.from_settings(settings, serving=True)
    cache = AuthCache(db.generation, settings.cache_entries, enabled=settings.cache == "on")
    usage = recorder(db)  # writes the token uses of reading requests (identity/usage.py)
    faces = {
        "astro": astro.build(settings.max_body_bytes),
        "native": native.build(settings.max_body_bytes),
        "ece": ece.build(settings.max_body_bytes),
        "scim": scim.build(settings.max_body_bytes),
    }
    unleash_apps = unleash.build(settings.max_body_bytes)
    unleash_root = unleash.build_root(settings.max_body_bytes)

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        # Everything built so far (models, routes, schemas) lives as long as the process:
        # keep it out of the cyclic collector's full passes, which otherwise walk it all.
        gc.collect()
        gc.freeze()
        usage.start()
        yield
        await usage.stop()  # what reading requests queued, written before the pool closes
        if settings.cache_stats_dir:
            _write_cache_stats(Path(settings.cache_stats_dir), cache, app.write_trace)
        await sec.close()
        if database is None:
            await db.dispose()

    app = TenantryApp(
        title="Tenantry",
        lifespan=lifespan,
        docs_url=None,
        redoc_url=None,
        openapi_url=None,
        telemetry=telemetry(settings.opentelemetry),
    )
    for face in (app, *faces.values(), *unleash_apps.values(), unleash_root):
        face.state.database = db
        face.state.security = sec
        face.state.auth_cache = cache
        face.state.usage = usage
        face.state.mailer = mail
        face.state.settings = settings

    @app.get("/healthz", include_in_schema=False)
    async def healthz() -> JSONResponse:
        """200 once the database answers; 503 otherwise (for load balancers)."""
        try:
            await db.ping()
        except Exception:
            log.warning("health check: database unreachable")
            return JSONResponse({"status": "unavailable"}, status_code=503)
        return JSONResponse({"status": "ok"})

    mounts = [(prefix, faces["astro"]) for prefix in astro.PREFIXES]
    mounts.append((native.PREFIX, faces["native"]))
    mounts.append((ece.PREFIX, faces["ece"]))
    mounts.append((scim.PREFIX, faces["scim"]))
    mounts.extend(unleash_apps.items())
    for prefix, face in mounts:
        app.router.routes.append(Mount(prefix, app=face))
    for path in unleash.ROOT_PATHS:  # exact paths: POST /logout and its pages
        app.router.routes.append(Route(path, unleash_root))
        mounts.append((path, unleash_root))

    async def not_found(request: Request, exc: Exception) -> Response:
        """A path no mount matched (e.g. one with an encoded line break, which Starlette's
        mount patterns do not match) still gets the error body of the face it names."""
        for prefix, face in mounts:
            if request.url.path == prefix or request.url.path.startswith(prefix + "/"):
                render: ErrorRenderer = face.state.render_error
                return render(request, 404, NotFound("no such route"))
        return JSONResponse({"message": "no such route", "statusCode": 404}, status_code=404)

    app.add_exception_handler(404, not_found)
    hot: dict[str, tuple[HotEndpoint, FastAPI]] = {
        "/v1/users/self": (astro_users.hot_self, faces["astro"]),
        "/api/v1/user": (ece_users.hot_current_user, faces["ece"]),
        "/api/admin/user": (unleash_me.hot_me, unleash_apps["/api/admin"]),
    }
    app.add_middleware(HotPathMiddleware, routes=hot, cache=cache, database=db)
    app.front = HotPathMiddleware(app, hot, cache, db)  # shares the cache with the middleware
    if settings.write_priority_ms:
        app.priority = db.priority
    if settings.cache_stats_dir:
        app.write_trace = WriteTrace()
    app.add_middleware(RequestContextMiddleware)
    return app
