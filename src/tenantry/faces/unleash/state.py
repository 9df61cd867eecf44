"""Splash screens seen, feedback given and the caller's roles."""

from __future__ import annotations

from typing import Any

from fastapi import Request

from tenantry.faces.http import Db, face_router
from tenantry.faces.unleash import dialect as unleash_me
from tenantry.faces.unleash import render
from tenantry.faces.unleash.auth import Caller
from tenantry.faces.unleash.bodies import CreateFeedback, Feedback, json_object, parse
from tenantry.faces.unleash.errors import Bare

router = face_router(tags=["Users"])


@router.post("/splash/{id}")
async def splash_seen(caller: Caller, db: Db, id: str) -> Any:
    user = await unleash_me.mark_splash_seen(db, caller, id)
    if user is None:  # an API token: as Unleash answers its admin token, no userId
        return {"splashId": id, "seen": True}
    return {"userId": user.seq, "splashId": id, "seen": True}


async def _feedback(
    request: Request, caller: Caller, db: Db, feedback_id: str | None, schema: type[Feedback]
) -> Any:
    body = parse(schema, await json_object(request))
    return await unleash_me.give_feedback(
        db,
        caller,
        feedback_id if feedback_id is not None else body.feedbackId,
        body.neverShow,
        body.given,
    )


@router.post("/feedback")
async def create_feedback(request: Request, caller: Caller, db: Db) -> Any:
    return await _feedback(request, caller, db, None, CreateFeedback)


@router.put("/feedback/{id}")
async def update_feedback(request: Request, caller: Caller, db: Db, id: str) -> Any:
    return await _feedback(request, caller, db, id, Feedback)


@router.get("/user/roles")
async def my_roles(caller: Caller, projectId: str | None = None) -> Any:
    """Unleash 8 answers only with a projectId (without one: 400 and no body): the root role,
    then the caller's project roles in that project."""
    if not projectId:
        raise Bare("projectId is required")
    held = unleash_me.own_roles(caller, projectId)
    roles = [
        render.role_with_project(
            unleash_me.root_role_body(held.root_role), unleash_me.DEFAULT_PROJECT
        )
    ]
    roles += [
        render.role_with_project(unleash_me.project_role_body(r), projectId)
        for r in held.project_roles
    ]
    return {"version": 1, "roles": roles}
