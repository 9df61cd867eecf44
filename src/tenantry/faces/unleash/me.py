"""GET /api/admin/user and its profile."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import orjson
from fastapi import Request
from fastapi.responses import Response

from tenantry.directory import whoami
from tenantry.faces import hot
from tenantry.faces.hot import HotAnswer
from tenantry.faces.http import (
    Db,
    RawJSON,
    face_router,
    read_transaction,
    security,
)
from tenantry.faces.unleash import dialect as unleash_me
from tenantry.faces.unleash import render
from tenantry.faces.unleash import user_admin as unleash_users
from tenantry.faces.unleash.auth import Caller, presented_secret
from tenantry.faces.unleash.bodies import Password, json_object, parse
from tenantry.faces.unleash.wire import JSON_UTF8
from tenantry.identity.principals import Principal

router = face_router(tags=["Users"])


NO_STORE = {"cache-control": "no-store"}
_NO_STORE_RAW = (
    (b"content-type", JSON_UTF8),
    *((name.encode(), value.encode()) for name, value in NO_STORE.items()),
)


@router.get("/user")
async def get_me(request: Request, caller: Caller) -> Any:
    async with read_transaction(request) as db:
        found = await whoami.view_of(db, caller)
    body, _ = me_body(request, caller, found)
    return RawJSON(body, headers=dict(NO_STORE))


async def hot_me(request: Request) -> HotAnswer | None:
    """GET /api/admin/user on the hot path (faces/hot.py); no credential at all takes the
    normal route, which answers Unleash's AuthenticationRequired."""
    return await hot.answer(request, presented_secret(request), me_body, _NO_STORE_RAW)


def me_body(
    request: Request, caller: Principal, found: whoami.CallerView
) -> tuple[bytes, datetime | None]:
    """The body; it holds until the directory changes (no deadline of its own)."""
    view = unleash_me.me_of(caller, found.active_sessions)
    return orjson.dumps(render.me(view, presented_secret(request))), None


@router.get("/user/profile")
async def get_profile(caller: Caller, db: Db) -> Any:
    return render.profile(await unleash_me.profile(db, caller))


@router.post("/user/change-password")
async def change_password(request: Request, caller: Caller, db: Db) -> Any:
    body = parse(Password, await json_object(request))
    await unleash_users.change_own_password(db, security(request).hasher, caller, body)
    return Response(status_code=200)
