"""/api/admin/user-admin: Unleash's user administration."""

from __future__ import annotations

import json
from typing import Any

from fastapi import Request
from fastapi.responses import Response

from tenantry.errors import FieldError, Invalid
from tenantry.faces.http import Db, JSONResponse, face_router, security
from tenantry.faces.unleash import dialect as unleash_me
from tenantry.faces.unleash import render
from tenantry.faces.unleash import user_admin as unleash_users
from tenantry.faces.unleash.auth import Caller
from tenantry.faces.unleash.errors import ContentTypeError

router = face_router(prefix="/user-admin", tags=["Users"])


def user_id(raw: str) -> int:
    if not raw.isascii() or not raw.isdigit() or len(raw) > 18:
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
    return int(raw)


async def json_object(request: Request) -> dict[str, Any] | Response:
    """The JSON body, or Unleash's own answer to a body that is not a JSON object."""
    kind = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if kind != "application/json":
        raise ContentTypeError(
            f"We do not accept the content-type you provided ({kind or 'none'}). Try using one "
            "of the content-types we do accept instead (application/json) and make sure the "
            "body is in the corresponding format."
        )
    try:
        body = json.loads(await request.body())
    except (ValueError, RecursionError):  # RecursionError: nested too deep to parse
        return JSONResponse({"message": "Unexpected end of JSON input"}, status_code=400)
    if not isinstance(body, dict):
        raise Invalid(
            "invalid body",
            [FieldError("/body", "type", "The `/body` property must be object.")],
        )
    try:  # a lone surrogate (e.g. a \ud800 escape) is valid JSON but no storable text
        json.dumps(body, ensure_ascii=False).encode()
    except UnicodeEncodeError:
        raise Invalid(
            "invalid body",
            [FieldError("/body", "format", "The body contains a lone surrogate (not Unicode).")],
        ) from None
    return body


def _listed(row: unleash_users.UnleashUser) -> dict[str, Any]:
    return {**render.user_full(row.user), "rootRole": row.root_role, "inviteLink": ""}


@router.get("")
async def list_users(caller: Caller, db: Db) -> Any:
    rows = await unleash_users.list_users(db, caller)
    return {"users": [_listed(r) for r in rows], "rootRoles": render.root_roles()}


@router.get("/search")
async def search_users(caller: Caller, db: Db, q: str = "") -> Any:
    rows = await unleash_users.search_users(db, caller, q)
    return [{**render.user_full(r.user), "rootRole": r.root_role} for r in rows]


@router.post("", status_code=201)
async def create_user(request: Request, caller: Caller, db: Db) -> Any:
    body = await json_object(request)
    if isinstance(body, Response):
        return body
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
    body = await json_object(request)
    if isinstance(body, Response):
        return body
    unleash_users.validate_password(caller, body)
    return Response(status_code=200)


@router.post("/{id}/change-password")
async def set_password(request: Request, caller: Caller, db: Db, id: str) -> Any:
    seq = user_id(id)
    body = await json_object(request)
    if isinstance(body, Response):
        return body
    await unleash_users.set_password(db, security(request).hasher, caller, seq, body)
    return Response(status_code=200)


@router.get("/{id}/permissions")
async def access_overview(caller: Caller, db: Db, id: str, project: str | None = None) -> Any:
    seq = user_id(id)
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
    row = await unleash_users.get_user(db, caller, user_id(id))
    return {**render.user_full(row.user), "rootRole": row.root_role}


@router.put("/{id}")
async def update_user(request: Request, caller: Caller, db: Db, id: str) -> Any:
    seq = user_id(id)
    body = await json_object(request)
    if isinstance(body, Response):
        return body
    row = await unleash_users.update_user(db, caller, seq, body)
    return {**render.user_full(row.user), "rootRole": row.root_role}


@router.delete("/{id}")
async def delete_user(caller: Caller, db: Db, id: str) -> Response:
    await unleash_users.delete_user(db, caller, user_id(id))
    return Response(status_code=200)
