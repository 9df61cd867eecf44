"""Face routes hand their dicts straight to orjson (JSONRoute), skipping FastAPI's copy."""

from __future__ import annotations

from typing import Any

import fastapi.routing
import httpx
import pytest
from fastapi import FastAPI
from fastapi.responses import PlainTextResponse
from starlette.routing import Mount

from tenantry.app import create_app
from tenantry.config import Settings
from tenantry.faces.http import JSONResponse, JSONRoute, face_router
from tests.faces.routes import _api_routes


def _tiny_app() -> FastAPI:
    router = face_router()

    @router.post("/made", status_code=201)
    async def made() -> Any:
        return {"id": "x", "when": None, "tags": ["a", "b"], "n": 1.5}

    @router.get("/listed")
    async def listed(limit: int = 2) -> Any:
        return [{"i": i} for i in range(limit)]

    @router.get("/own")
    async def own() -> Any:
        return JSONResponse({"own": True}, status_code=202)

    @router.get("/text", response_class=PlainTextResponse)
    async def text() -> Any:
        return "plain words"

    app = FastAPI(default_response_class=JSONResponse)
    app.include_router(router)
    return app


async def test_dicts_and_lists_are_rendered_without_jsonable_encoder(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def refuse(*_: Any, **__: Any) -> Any:
        raise AssertionError("jsonable_encoder was called")

    monkeypatch.setattr(fastapi.routing, "jsonable_encoder", refuse)
    transport = httpx.ASGITransport(app=_tiny_app())
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
        made = await client.post("/made")
        assert made.status_code == 201  # the route's status code, not 200
        assert made.headers["content-type"] == "application/json"
        assert made.json() == {"id": "x", "when": None, "tags": ["a", "b"], "n": 1.5}
        listed = await client.get("/listed", params={"limit": 3})
        assert listed.status_code == 200 and listed.json() == [{"i": 0}, {"i": 1}, {"i": 2}]
        bad = await client.get("/listed", params={"limit": "x"})
        assert bad.status_code == 422  # parameters are still validated from the signature
        assert [e["loc"] for e in bad.json()["detail"]] == [["query", "limit"]]
        own = await client.get("/own")
        assert own.status_code == 202 and own.json() == {"own": True}


async def test_a_route_naming_its_response_class_keeps_it() -> None:
    transport = httpx.ASGITransport(app=_tiny_app())
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
        r = await client.get("/text")
    assert r.status_code == 200 and r.text == "plain words"  # not the JSON string '"plain…"'
    assert r.headers["content-type"].startswith("text/plain")


def test_including_a_router_wraps_its_endpoints_once() -> None:
    app = _tiny_app()
    route = next(r for r in _api_routes(app) if r.path == "/made")
    assert isinstance(route, JSONRoute)
    assert route.endpoint.__wrapped__.__name__ == "made"  # type: ignore[attr-defined]
    assert not hasattr(route.endpoint.__wrapped__, "__wrapped__")  # type: ignore[attr-defined]


def test_every_face_route_is_a_json_route(settings: Settings) -> None:
    """A router made with plain APIRouter would quietly go back to FastAPI's copy."""
    app = create_app(settings)
    faces = [r.app for r in app.routes if isinstance(r, Mount)]
    routes = [route for face in faces for route in _api_routes(face)]  # type: ignore[arg-type]
    assert len(routes) > 50
    plain = [f"{sorted(r.methods or ())} {r.path}" for r in routes if not isinstance(r, JSONRoute)]
    assert plain == []
