"""Splash and feedback state shows in meSchema; /user/roles needs a project."""

from __future__ import annotations

import httpx

from tests.faces.unleash import spec
from tests.faces.unleash.test_me import admin_named_admin, viewer
from tests.factories import World


async def test_splash_and_feedback_show_in_me(client: httpx.AsyncClient, world: World) -> None:
    user = await viewer(world)
    auth = {"Authorization": await world.token(user)}
    r = await client.post("/api/admin/splash/new-ui", headers=auth)
    assert r.status_code == 200 and r.json() == {
        "userId": user.seq,
        "splashId": "new-ui",
        "seen": True,
    }
    assert spec.errors("splashResponseSchema", r.json()) == []
    f = await client.post("/api/admin/feedback", headers=auth, json={"feedbackId": "pnps"})
    assert f.status_code == 200 and f.json()["neverShow"] is False
    assert spec.errors("feedbackResponseSchema", f.json()) == []
    u = await client.put("/api/admin/feedback/pnps", headers=auth, json={"neverShow": True})
    assert u.status_code == 200 and u.json()["neverShow"] is True
    me = (await client.get("/api/admin/user", headers=auth)).json()
    assert me["splash"] == {"new-ui": True}
    assert [(i["feedbackId"], i["neverShow"]) for i in me["feedback"]] == [("pnps", True)]
    assert spec.errors("meSchema", me) == []


async def test_bad_feedback_writes_nothing(client: httpx.AsyncClient, world: World) -> None:
    user = await viewer(world)
    auth = {"Authorization": await world.token(user)}
    for body in (
        {},
        {"feedbackId": ""},
        {"feedbackId": "x" * 101},
        {"feedbackId": "a", "neverShow": "yes"},
    ):
        r = await client.post("/api/admin/feedback", headers=auth, json=body)
        assert r.status_code == 400 and r.json()["name"] == "BadDataError", body
    me = (await client.get("/api/admin/user", headers=auth)).json()
    assert me["feedback"] == [] and me["splash"] == {}


async def test_feedback_create_requires_its_id_as_unleash_validates(
    client: httpx.AsyncClient, world: World
) -> None:
    """feedbackCreateSchema requires feedbackId: the schema validator's answer (an `id`, the
    detail's path), as the live Unleash 8.2 gave it (feedback.create.invalid.*); the update's
    id comes from its path; a scalar is coerced to the schema's type ("true" is true)."""
    user = await viewer(world)
    auth = {"Authorization": await world.token(user)}
    r = await client.post("/api/admin/feedback", headers=auth, json={"neverShow": True})
    assert isinstance(r.json().get("id"), str), r.text  # the validator's answer has an id
    error = spec.error(r, 400)
    assert error["name"] == "BadDataError"
    assert error["details"] == [
        {
            "path": "/body/feedbackId",
            "message": "The `/body/feedbackId` property is required. It was not present on the "
            "data you sent.",
        }
    ]
    coerced = await client.post(
        "/api/admin/feedback", headers=auth, json={"feedbackId": "pnps", "neverShow": "true"}
    )
    assert coerced.status_code == 200 and coerced.json()["neverShow"] is True, coerced.text
    assert spec.errors("feedbackResponseSchema", coerced.json()) == []
    me = (await client.get("/api/admin/user", headers=auth)).json()
    assert [(i["feedbackId"], i["neverShow"]) for i in me["feedback"]] == [("pnps", True)]


async def test_roles_need_a_project(client: httpx.AsyncClient, world: World) -> None:
    """Unleash 8 answers GET /user/roles only with ?projectId= (400 and no body without)."""
    auth = {"Authorization": await world.token(await admin_named_admin(world))}
    r = await client.get("/api/admin/user/roles", headers=auth)
    assert r.status_code == 400 and r.content == b""
    r = await client.get("/api/admin/user/roles", params={"projectId": "default"}, headers=auth)
    assert r.status_code == 200
    assert r.json() == {
        "version": 1,
        "roles": [
            {
                "id": 1,
                "name": "Admin",
                "type": "root",
                "description": spec.response(11)[2]["rootRole"]["description"],
                "project": "default",  # where Unleash binds every root role
            }
        ],
    }
    assert spec.errors("rolesSchema", r.json()) == []
    viewer_auth = {"Authorization": await world.token(await viewer(world))}
    r = await client.get(
        "/api/admin/user/roles", params={"projectId": "default"}, headers=viewer_auth
    )
    assert [(x["id"], x["name"], x["type"]) for x in r.json()["roles"]] == [(3, "Viewer", "root")]


async def test_splash_and_feedback_are_the_users_own_attributes(
    client: httpx.AsyncClient, world: World
) -> None:
    """Written through the directory's generic use case (users.set_own_attributes): kept in
    attributes["unleash"], audited as `user.attributes.set` naming what changed; a credential
    that is no user (an API token) has nothing to remember it for: Unleash's answer to its
    admin token (200, no userId) and nothing written."""
    from sqlalchemy import func, select

    from tenantry.db.models import AuditEvent, User

    user = await viewer(world)
    auth = {"Authorization": await world.token(user)}
    assert (await client.post("/api/admin/splash/tour", headers=auth)).status_code == 200
    r = await client.put("/api/admin/feedback/pnps", headers=auth, json={"neverShow": True})
    assert r.status_code == 200
    async with world.database.transaction() as db:
        stored = await db.scalar(select(User).where(User.id == user.id))
        assert stored is not None
        assert stored.attributes["unleash"]["splash"] == {"tour": True}
        events = list(
            await db.scalars(
                select(AuditEvent)
                .where(AuditEvent.target_id == user.id, AuditEvent.action.like("user.%"))
                .order_by(AuditEvent.id)
            )
        )
    assert [(e.action, e.details) for e in events if e.action != "user.create"] == [
        ("user.attributes.set", {"namespace": "unleash", "splashId": "tour"}),
        ("user.attributes.set", {"namespace": "unleash", "feedbackId": "pnps"}),
    ]
    org = await world.org()
    token = {"Authorization": (await world.api_token(org)).secret}
    attributes_set = select(func.count()).where(AuditEvent.action == "user.attributes.set")
    r = await client.post("/api/admin/splash/tour", headers=token)
    assert (r.status_code, r.json()) == (200, {"splashId": "tour", "seen": True})
    async with world.database.transaction(write=False) as db:
        assert await db.scalar(attributes_set) == 2  # the user's two above, no more
    r = await client.put("/api/admin/feedback/pnps", headers=auth, json={"neverShow": "yes"})
    assert spec.error(r, 400)["details"] == [
        {
            "path": "/body/neverShow",
            "message": 'The `/body/neverShow` property must be boolean. You sent "yes".',
        }
    ]
