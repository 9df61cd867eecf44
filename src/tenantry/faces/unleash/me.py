"""GET /api/admin/user and its profile."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response

from tenantry.access import unleash_me
from tenantry.directory import unleash_users
from tenantry.faces.http import Db, JSONResponse, security
from tenantry.faces.unleash import render
from tenantry.faces.unleash.auth import Caller, presented_secret
from tenantry.faces.unleash.users import json_object

router = APIRouter(tags=["Users"])


@router.get("/user")
async def get_me(request: Request, caller: Caller, db: Db) -> Any:
    view = await unleash_me.me(db, caller)
    body = render.me(view, presented_secret(request))
    return JSONResponse(body, headers={"cache-control": "no-store"})


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
