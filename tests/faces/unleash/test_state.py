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
                "project": None,
            }
        ],
    }
    assert spec.errors("rolesSchema", r.json()) == []
    viewer_auth = {"Authorization": await world.token(await viewer(world))}
    r = await client.get(
        "/api/admin/user/roles", params={"projectId": "default"}, headers=viewer_auth
    )
    assert [(x["id"], x["name"], x["type"]) for x in r.json()["roles"]] == [(3, "Viewer", "root")]
