"""/api/admin/user-admin: Unleash's user administration. Each write reads the JSON body,
checks Unleash's route permission, parses the body by its model and calls one translation in
user_admin.py; refusals are domain errors answered by the face's error table."""

from __future__ import annotations

import math
import re
from typing import Any

from fastapi import BackgroundTasks, Request
from fastapi.responses import Response

from tenantry.config import Settings
from tenantry.errors import FieldError, Invalid
from tenantry.faces.http import Db, JSONResponse, face_router, security
from tenantry.faces.unleash import dialect as unleash_me
from tenantry.faces.unleash import render
from tenantry.faces.unleash import user_admin as unleash_users
from tenantry.faces.unleash.auth import Caller
from tenantry.faces.unleash.bodies import (
    CreateUser,
    Email,
    Ids,
    Password,
    UpdateUser,
    json_object,
    parse,
)
from tenantry.mail import Mailer, deliver

router = face_router(prefix="/user-admin", tags=["Users"])


# A number as JavaScript's `+text` reads it (decimal with sign, fraction and exponent, or
# 0x / 0o / 0b); Unleash's validator coerces a path id with it and wants an integer.
_JS_NUMBER = re.compile(
    r"[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?|0[xX][0-9a-fA-F]+|0[oO][0-7]+|0[bB][01]+",
    re.ASCII,
)


def user_id(raw: str) -> int:
    """The id in the path as Unleash coerces it: '-1' and '1e3' are numbers (no user has them:
    404 from the lookup), 'abc' and '1.5' are no integer (400)."""
    text = raw.strip()
    if _JS_NUMBER.fullmatch(text):
        if text[1:2] in ("x", "X", "o", "O", "b", "B"):
            return int(text, 0)
        value = float(text)
        if math.isfinite(value) and value.is_integer():
            return int(value)
    raise Invalid(
        "invalid id",
        [
            FieldError(
                "/params/id",
                "type",
                f'The `/params/id` property must be integer. You sent "{raw}".',
            )
        ],
    )


def _listed(row: unleash_users.UnleashUser) -> dict[str, Any]:
    return {**render.user_full(row.user), "rootRole": row.root_role, "inviteLink": ""}


@router.get("")
async def list_users(caller: Caller, db: Db) -> Any:
    unleash_users.route_permission(caller, "system.users.list")
    rows = await unleash_users.list_users(db)
    return {"users": [_listed(r) for r in rows], "rootRoles": render.root_roles()}


@router.get("/search")
async def search_users(request: Request, caller: Caller, db: Db) -> Any:
    """Any signed-in caller (Unleash: no permission); users.search_users shows only the
    users the caller may see. `q` once, of at least two characters, else `[]` (Unleash)."""
    q = request.query_params.getlist("q")
    rows = await unleash_users.search_users(db, caller, q[0] if len(q) == 1 else None)
    return [render.user_found(u) for u in rows]


@router.get("/admin-count")
async def admin_count(caller: Caller, db: Db) -> Any:
    unleash_users.route_permission(caller, "system.users.list")
    count = await unleash_users.admin_count(db, caller)
    return {"password": count.password, "noPassword": count.no_password, "service": count.service}


@router.get("/access")
async def access(caller: Caller, db: Db) -> Any:
    """Any signed-in caller (Unleash: no permission), who gets whom they could list anyway."""
    found = await unleash_users.access(db, caller)
    return {
        "users": [render.user_base(u) for u in found.users],
        "groups": [
            {"id": unleash_me.group_number(t), "name": t.name, "userCount": n, "rootRole": None}
            for t, n in found.groups
        ],
    }


@router.get("/inactive")
async def inactive_users(caller: Caller, db: Db) -> Any:
    unleash_users.route_permission(caller, "system.users.list")
    rows = await unleash_users.inactive(db, caller)
    return {"version": 1, "inactiveUsers": [render.inactive_user(u, used) for u, used in rows]}


@router.post("/inactive/delete")
async def delete_inactive_users(request: Request, caller: Caller, db: Db) -> Response:
    raw = await json_object(request)
    unleash_users.route_permission(caller, "system.users.delete")
    await unleash_users.delete_inactive(db, caller, parse(Ids, raw).ids)
    return Response(status_code=200)


@router.post("", status_code=201)
async def create_user(request: Request, caller: Caller, db: Db) -> Any:
    raw = await json_object(request)
    unleash_users.route_permission(caller, "system.users.create")
    body = parse(CreateUser, raw)
    created = await unleash_users.create_user(db, security(request).hasher, caller, body)
    rendered = {
        **render.user_full(created.user),
        "rootRole": created.root_role,
        "inviteLink": "",
        "emailSent": False,
    }
    return JSONResponse(rendered, status_code=201, headers={"location": str(created.user.seq)})


@router.post("/validate-password")
async def validate_password(request: Request, caller: Caller) -> Any:
    # Any signed-in caller (Unleash: no permission); nothing is read or written.
    unleash_users.validate_password(parse(Password, await json_object(request)))
    return Response(status_code=200)


@router.post("/reset-password")
async def reset_password(request: Request, caller: Caller, db: Db, tasks: BackgroundTasks) -> Any:
    """A reset link for the user with that address (directory.password_reset): its secret in
    the URL's fragment, in this one answer and the mail to the user (sent after the commit)."""
    raw = await json_object(request)
    unleash_users.route_permission(caller, "system.users.update")
    body = parse(Email, raw)
    settings: Settings = request.app.state.settings
    link = await unleash_users.reset_password_link(
        db,
        caller,
        body.id,
        public_url=settings.public_url,
        limiter=security(request).limits.limiter,
    )
    if link.mail is not None:
        mailer: Mailer = request.app.state.mailer
        tasks.add_task(deliver, mailer, link.mail)
    return {"resetPasswordUrl": link.url}


@router.post("/{id}/change-password")
async def set_password(request: Request, caller: Caller, db: Db, id: str) -> Any:
    # The body before the id, as Unleash (PUT /user-admin/search without a body: 415).
    raw = await json_object(request)
    seq = user_id(id)
    unleash_users.route_permission(caller, "system.users.update")
    body = parse(Password, raw)
    await unleash_users.set_password(db, security(request).hasher, caller, seq, body)
    return Response(status_code=200)


@router.get("/{id}/permissions")
async def access_overview(caller: Caller, db: Db, id: str, project: str | None = None) -> Any:
    seq = user_id(id)
    unleash_users.route_permission(caller, "system.users.get")
    view = await unleash_users.access_overview(db, caller, seq, project or None)

    def item(kind: str, p: tuple[int, str, str, bool]) -> dict[str, Any]:
        return {"id": p[0], "name": p[1], "displayName": p[2], "type": kind, "hasPermission": p[3]}

    def role(r: unleash_me.ProjectRole) -> dict[str, Any]:
        return {
            **unleash_me.project_role_body(r.role),
            "permissions": [
                {"id": i, "name": n, "displayName": d, "type": "project"}
                for i, n, d in r.permissions
            ],
        }

    return {
        "overview": {
            "root": [item("root", p) for p in view.root],
            "project": [item("project", p) for p in view.project],
            "groups": [render.group(t) for t in view.groups],
            "environment": [],
        },
        "user": {**render.user_full(view.user), "rootRole": view.root_role},
        "rootRole": render.root_role(view.root_role),
        "projectRoles": [role(r) for r in view.project_roles],
    }


@router.get("/{id}")
async def get_user(caller: Caller, db: Db, id: str) -> Any:
    seq = user_id(id)
    unleash_users.route_permission(caller, "system.users.get")
    row = await unleash_users.get_user(db, seq)
    return {**render.user_full(row.user), "rootRole": row.root_role}


@router.put("/{id}")
async def update_user(request: Request, caller: Caller, db: Db, id: str) -> Any:
    # The body before the id, as Unleash (PUT /user-admin/search without a body: 415).
    raw = await json_object(request)
    seq = user_id(id)
    unleash_users.route_permission(caller, "system.users.update")
    body = parse(UpdateUser, raw)
    row = await unleash_users.update_user(db, caller, seq, body)
    # Unleash echoes the rootRole as sent, and none when none was sent.
    echoed = {} if body.rootRole is None else {"rootRole": body.rootRole}
    return {**render.user_full(row.user), **echoed}


@router.delete("/{id}")
async def delete_user(caller: Caller, db: Db, id: str) -> Response:
    seq = user_id(id)
    unleash_users.route_permission(caller, "system.users.delete")
    await unleash_users.delete_user(db, caller, seq)
    return Response(status_code=200)
