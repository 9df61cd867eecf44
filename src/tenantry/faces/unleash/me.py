"""GET /api/admin/user and its profile."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response

from tenantry.access import unleash_me
from tenantry.access.principals import Principal
from tenantry.directory import unleash_users
from tenantry.faces.http import (
    Db,
    RawJSON,
    cached_view,
    read_transaction,
    reading_principal,
    security,
)
from tenantry.faces.unleash import render
from tenantry.faces.unleash.auth import Caller, presented_secret
from tenantry.faces.unleash.users import json_object

router = APIRouter(tags=["Users"])


@router.get("/user")
async def get_me(request: Request, caller: Caller) -> Any:
    return RawJSON(await me_body(request, caller), headers=NO_STORE)


async def hot_me(request: Request) -> Response | None:
    """GET /api/admin/user (faces/http.py HotPathMiddleware); no credential at all takes the
    normal route, which answers Unleash's AuthenticationRequired."""
    secret = presented_secret(request)
    if secret is None:
        return None
    body = await me_body(request, await reading_principal(request, secret))
    return RawJSON(body, headers=NO_STORE)


NO_STORE = {"cache-control": "no-store"}


async def me_body(request: Request, caller: Principal) -> bytes:
    async def load() -> tuple[Any, datetime | None]:
        async with read_transaction(request) as db:
            view = await unleash_me.me(db, caller)
        return render.me(view, presented_secret(request)), None

    return await cached_view(request, caller, "unleash.me", load)


@router.get("/user/profile")
async def get_profile(caller: Caller, db: Db) -> Any:
    return render.profile(await unleash_me.profile(db, caller))


@router.post("/user/change-password")
async def change_password(request: Request, caller: Caller, db: Db) -> Any:
    body = await json_object(request)
    if isinstance(body, Response):
        return body
    await unleash_users.change_own_password(db, security(request).hasher, caller, body)
    return Response(status_code=200)
