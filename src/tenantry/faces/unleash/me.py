"""GET /api/admin/user and its profile."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request

from tenantry.access import unleash_me
from tenantry.faces.http import Db, JSONResponse
from tenantry.faces.unleash import render
from tenantry.faces.unleash.auth import Caller, presented_secret

router = APIRouter(tags=["Users"])


@router.get("/user")
async def get_me(request: Request, caller: Caller, db: Db) -> Any:
    view = await unleash_me.me(db, caller)
    body = render.me(view, presented_secret(request))
    return JSONResponse(body, headers={"cache-control": "no-store"})


@router.get("/user/profile")
async def get_profile(caller: Caller, db: Db) -> Any:
    return render.profile(await unleash_me.profile(db, caller))
