"""What Unleash answers where none of its routes does (Express's fall-through).

Under /api a request is authenticated first (Unleash's authorization middleware guards all of
/api) and then, whatever the method, answered `404 NotFoundError` ("The path you were looking
for (...) is not available."): a method a known path does not serve is the same 404, never a
405. Outside /api (/auth/simple, /logout, /signed-out) a GET is Unleash's web page, any other
method Express's own `404 Cannot <METHOD> <path>` page.

These are plain Starlette routes appended after every face route (so that they catch only
what nothing else matched); refusals are domain errors answered by the face's error table."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse, Response
from starlette.routing import Route

from tenantry.errors import NotFound
from tenantry.faces.unleash.auth import signed_in
from tenantry.faces.unleash.errors import NO_ROUTE, NoSuchPage
from tenantry.faces.unleash.pages import page

METHODS = ["GET", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]
Endpoint = Callable[[Request], Awaitable[Response]]


async def no_api_route(request: Request) -> Response:
    await signed_in(request)
    raise NotFound(NO_ROUTE)


async def web_page_or_none(request: Request) -> Response:
    if request.method == "GET":
        return HTMLResponse(page())
    raise NoSuchPage(request.method, request.url.path)


def add_api_fallback(app: FastAPI) -> None:
    app.router.routes.append(Route("/{rest:path}", no_api_route, methods=METHODS))


def add_page_fallback(app: FastAPI, endpoint: Endpoint = web_page_or_none) -> None:
    app.router.routes.append(Route("/{rest:path}", endpoint, methods=METHODS))
