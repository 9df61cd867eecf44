"""ECE users: the current user and the users CRUD."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

import orjson
from fastapi import BackgroundTasks, Body, Depends, Path, Query, Request

from tenantry.clock import utcnow
from tenantry.config import Settings
from tenantry.directory import whoami
from tenantry.faces import hot
from tenantry.faces.ece import dialect as ece_users
from tenantry.faces.ece import render
from tenantry.faces.ece.credentials import Caller, token_secret
from tenantry.faces.hot import HotAnswer
from tenantry.faces.http import (
    Db,
    RawJSON,
    face_router,
    read_transaction,
    security,
)
from tenantry.identity.principals import Principal
from tenantry.mail import Mail, Mailer, deliver

router = face_router(tags=["ClusterSecurity"])
UserName = Annotated[str, Path(max_length=320)]
UserBody = Annotated[Any, Body()]


@router.get("/user", operation_id="get-current-user")
async def get_current_user(request: Request, caller: Caller) -> Any:
    async with read_transaction(request) as db:
        found = await whoami.view_of(db, caller)
    body, _ = current_user_body(request, caller, found)
    return RawJSON(body)


async def hot_current_user(request: Request) -> HotAnswer | None:
    """GET /api/v1/user on the hot path (faces/hot.py) with an API key or bearer token;
    HTTP Basic and missing credentials take the normal route."""
    return await hot.answer(request, token_secret(request), current_user_body)


def current_user_body(
    _request: Request, caller: Principal, found: whoami.CallerView
) -> tuple[bytes, datetime | None]:
    """The body, and when it stops being true by itself (elevated_permissions ending)."""
    view = ece_users.current_user_of(caller, found.system_roles)
    until = caller.elevated_until
    return orjson.dumps(render.user(view)), until if until and until > utcnow() else None


class Outbox:
    """Sends a mail the domain asked for (an e-mail change's confirmation link) once the
    response, and so the commit, is done: a rolled-back change never mails anyone."""

    def __init__(self, request: Request, tasks: BackgroundTasks) -> None:
        self._mailer: Mailer = request.app.state.mailer
        self._tasks = tasks

    def send(self, mail: Mail | None) -> None:
        if mail is not None:
            self._tasks.add_task(deliver, self._mailer, mail)


def _public_url(request: Request) -> str:
    settings: Settings = request.app.state.settings
    return settings.public_url


@router.patch("/user", operation_id="update-current-user")
async def update_current_user(
    request: Request,
    caller: Caller,
    db: Db,
    body: UserBody,
    outbox: Annotated[Outbox, Depends()],
) -> Any:
    patch = render.user_patch(body)
    hasher = security(request).hasher
    view, profile = await ece_users.update_current_user(
        db,
        hasher,
        caller,
        patch,
        public_url=_public_url(request),
        limiter=security(request).limits.limiter,
    )
    outbox.send(profile.mail if profile else None)
    return render.user(view)


@router.get("/users", operation_id="get-users")
async def get_users(
    caller: Caller, db: Db, include_disabled: Annotated[bool, Query()] = True
) -> Any:
    views = await ece_users.list_users(db, caller, include_disabled=include_disabled)
    return {"users": [render.user(v) for v in views]}


@router.post("/users", operation_id="create-user")
async def create_user(request: Request, caller: Caller, db: Db, body: UserBody) -> Any:
    patch = render.user_patch(body)
    view = await ece_users.create_user(db, security(request).hasher, caller, patch)
    return render.user(view)


@router.get("/users/{user_name}", operation_id="get-user")
async def get_user(caller: Caller, db: Db, user_name: UserName) -> Any:
    return render.user(await ece_users.get_user(db, caller, user_name))


@router.patch("/users/{user_name}", operation_id="update-user")
async def update_user(
    request: Request, caller: Caller, db: Db, user_name: UserName, body: UserBody
) -> Any:
    patch = render.user_patch(body)
    hasher = security(request).hasher
    return render.user(await ece_users.update_user(db, hasher, caller, user_name, patch))


@router.delete("/users/{user_name}", operation_id="delete-user")
async def delete_user(caller: Caller, db: Db, user_name: UserName) -> Any:
    await ece_users.delete_user(db, caller, user_name)
    return {}


@router.get(
    "/platform/configuration/security/realms",
    operation_id="get-security-realm-configurations",
    tags=["ClusterSecurity"],
)
async def get_security_realms(caller: Caller, db: Db) -> Any:
    return render.realms(await ece_users.security_realms(db, caller))
