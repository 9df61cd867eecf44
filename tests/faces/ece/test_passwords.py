"""ece: passwords, elevation per credential and the audit trail, through the domain.

Finding 1 of issue 14: `PATCH /api/v1/user {"security":{"password":…}}` changed your own
password from a bare API key (no current password, no elevation), other sessions survived and
the audit log said only `user.update`. ECE's wire has no current password, so the proof is a
fresh elevation of the very credential making the change.
"""

from __future__ import annotations

import httpx
from sqlalchemy import select

from tenantry.db.models import RoleBinding, Token, User
from tests.faces.ece.conftest import (
    PASSWORD,
    V,
    apikey,
    audit,
    basic,
    elevate,
    login,
    with_password,
)
from tests.faces.ece.spec import assert_ece, assert_error
from tests.factories import World, bearer

ELEVATION_REQUIRED = "root.unauthorized.rbac.elevated_permissions_required"
NEW = "copper-lantern-77"
SET_PASSWORD = {"security": {"password": NEW}}


async def _api_key(client: httpx.AsyncClient, username: str) -> str:
    r = await client.post(
        f"{V}/users/auth/keys", headers=basic(username), json={"description": "probe"}
    )
    assert r.status_code == 201, r.text
    key: str = r.json()["key"]
    return key


async def _actions(world: World, user: User) -> list[str]:
    return [e.action for e in await audit(world, user.id)]


async def _user_events(world: World, user: User, after: int) -> list[tuple[str, object]]:
    """The `user.*` events about `user` after its first `after` events (the test's setup)."""
    events = (await audit(world, user.id))[after:]
    return [(e.action, e.details) for e in events if e.action.startswith("user.")]


async def test_own_password_needs_a_fresh_elevation(
    strict: httpx.AsyncClient, world: World
) -> None:
    """Finding 1, as the probe did it (TENANTRY_REQUIRE_ELEVATION=true)."""
    ann = await with_password(world, "ann")
    key = await _api_key(strict, "ann")
    other = await login(strict, "ann")  # a session of ann's made before the change
    session = await login(strict, "ann")
    before = await _actions(world, ann)
    for headers in (apikey(key), bearer(session), basic("ann")):
        r = await strict.patch(f"{V}/user", headers=headers, json=SET_PASSWORD)
        body = assert_error(r, 449, ELEVATION_REQUIRED)
        assert NEW not in r.text and "fields" not in body["errors"][0]
    # Nothing changed: the old password, the other session and the audit log are as they were.
    assert (await strict.get(f"{V}/user", headers=basic("ann"))).status_code == 200
    assert (await strict.get(f"{V}/user", headers=bearer(other))).status_code == 200
    assert await _actions(world, ann) == before

    elevated = await elevate(strict, session)
    r = await strict.patch(f"{V}/user", headers=bearer(elevated), json=SET_PASSWORD)
    assert r.status_code == 200, r.text
    assert_ece(r.json(), "User")
    assert "password" not in r.json()["security"]
    assert (await strict.get(f"{V}/user", headers=basic("ann", NEW))).status_code == 200
    assert_error(await strict.get(f"{V}/user", headers=basic("ann")), 401, "root.unauthorized")
    # The other session ends; the elevated session that changed it and the API key (a
    # personal token is not a session) go on.
    r = await strict.get(f"{V}/user", headers=bearer(other))
    assert_error(r, 401, "root.unauthorized")
    assert (await strict.get(f"{V}/user", headers=bearer(elevated))).status_code == 200
    assert (await strict.get(f"{V}/user", headers=apikey(key))).status_code == 200
    assert await _user_events(world, ann, len(before)) == [("user.password.set", {"self": True})]


async def test_api_key_never_proves_it_is_you(client: httpx.AsyncClient, world: World) -> None:
    """Without TENANTRY_REQUIRE_ELEVATION too: the proof is not a policy, it is the rule."""
    ann = await with_password(world, "ann")
    key = await _api_key(client, "ann")
    setup = len(await audit(world, ann.id))
    r = await client.patch(
        f"{V}/user", headers=apikey(key), json={"full_name": "Ann Lee", **SET_PASSWORD}
    )
    assert_error(r, 449, ELEVATION_REQUIRED)
    me = (await client.get(f"{V}/user", headers=basic("ann"))).json()
    assert "full_name" not in me  # the whole patch was refused
    # With a fresh elevation, the name and the password: one event each, before and after.
    elevated = await elevate(client, await login(client, "ann"))
    r = await client.patch(
        f"{V}/user", headers=bearer(elevated), json={"full_name": "Ann Lee", **SET_PASSWORD}
    )
    assert r.status_code == 200 and r.json()["full_name"] == "Ann Lee", r.text
    assert await _user_events(world, ann, setup) == [
        ("user.update", {"changed": {"full_name": ["", "Ann Lee"]}}),
        ("user.password.set", {"self": True}),
    ]


async def test_admin_sets_a_users_password(strict: httpx.AsyncClient, world: World) -> None:
    await with_password(world, "root", "SYSTEM_ADMIN")
    bob = await with_password(world, "bob")
    setup = len(await audit(world, bob.id))
    bobs_key = await _api_key(strict, "bob")
    bobs_session = await login(strict, "bob")
    root = await login(strict, "root")
    r = await strict.patch(f"{V}/users/bob", headers=bearer(root), json=SET_PASSWORD)
    assert_error(r, 449, ELEVATION_REQUIRED)
    assert (await strict.get(f"{V}/user", headers=basic("bob"))).status_code == 200
    r = await strict.patch(
        f"{V}/users/bob", headers=bearer(await elevate(strict, root)), json=SET_PASSWORD
    )
    assert r.status_code == 200, r.text
    assert (await strict.get(f"{V}/user", headers=basic("bob", NEW))).status_code == 200
    r = await strict.get(f"{V}/user", headers=bearer(bobs_session))
    assert_error(r, 401, "root.unauthorized")  # every session of bob's ends
    assert (await strict.get(f"{V}/user", headers=apikey(bobs_key))).status_code == 200
    assert await _user_events(world, bob, setup) == [("user.password.set", {"self": False})]


async def test_only_a_session_elevates(client: httpx.AsyncClient, world: World) -> None:
    ann = await with_password(world, "ann")
    key = await _api_key(client, "ann")
    # Enabling: ECE's invalid (MFA) token; disabling: not the session token it needs (ECE
    # documents only 401 for DELETE _elevate).
    for method, status, code in (
        ("POST", 400, "authc.invalid_token"),
        ("DELETE", 401, "root.unauthorized"),
    ):
        r = await client.request(
            method, f"{V}/users/auth/_elevate", headers=apikey(key), json={"token": PASSWORD}
        )
        assert_error(r, status, code)
    async with world.database.transaction() as db:
        assert await db.scalar(select(Token.id).where(Token.elevated_until.is_not(None))) is None
    assert "auth.elevate" not in await _actions(world, ann)
    r = await client.get(f"{V}/user", headers=apikey(key))
    assert r.json()["security"]["elevated_permissions"] == {"enabled": False}


async def test_an_api_key_does_not_share_its_sessions_elevation(
    strict: httpx.AsyncClient, world: World
) -> None:
    await with_password(world, "ops", "SYSTEM_ADMIN")
    bob = await with_password(world, "bob")
    setup = len(await audit(world, bob.id))
    key = await _api_key(strict, "ops")
    elevated = await elevate(strict, await login(strict, "ops"))
    admin = {"security": {"roles": ["ece_platform_admin"]}}
    r = await strict.patch(f"{V}/users/bob", headers=apikey(key), json=admin)
    assert_error(r, 449, ELEVATION_REQUIRED)
    me = (await strict.get(f"{V}/user", headers=apikey(key))).json()
    assert me["security"]["elevated_permissions"] == {"enabled": False}
    async with world.database.transaction() as db:
        assert await db.scalar(select(RoleBinding).where(RoleBinding.subject_id == bob.id)) is None
    r = await strict.patch(f"{V}/users/bob", headers=bearer(elevated), json=admin)
    assert r.status_code == 200, r.text
    assert r.json()["security"]["roles"] == ["ece_platform_admin"]
    assert await _user_events(world, bob, setup) == [
        ("user.system_roles.set", {"before": [], "after": ["SYSTEM_ADMIN"]})
    ]


async def test_changes_are_audited_like_every_face(client: httpx.AsyncClient, world: World) -> None:
    """Finding 7: one action per change, before and after, whichever face made it."""
    await with_password(world, "root", "SYSTEM_ADMIN")
    body = {
        "user_name": "jdoe",
        "security": {"roles": ["ece_platform_viewer"], "password": "amber-meadow-19"},
    }
    r = await client.post(f"{V}/users", headers=basic("root"), json=body)
    assert r.status_code == 200, r.text
    async with world.database.transaction() as db:
        jdoe = await db.scalar(select(User).where(User.username == "jdoe"))
    assert jdoe is not None
    patch = {
        "user_name": "john",
        "full_name": "John Doe",
        "security": {"roles": ["ece_platform_viewer", "ece_deployment_manager"]},
    }
    r = await client.patch(f"{V}/users/jdoe", headers=basic("root"), json=patch)
    assert r.status_code == 200, r.text
    r = await client.patch(f"{V}/users/john", headers=basic("root"), json=patch)  # no change
    assert r.status_code == 200, r.text
    assert [(e.action, e.details) for e in await audit(world, jdoe.id)] == [
        ("user.create", {}),
        ("user.system_roles.set", {"before": [], "after": ["SYSTEM_VIEWER"]}),
        ("user.update", {"changed": {"full_name": ["", "John Doe"], "username": ["jdoe", "john"]}}),
        (
            "user.system_roles.set",
            {"before": ["SYSTEM_VIEWER"], "after": ["SYSTEM_EDITOR", "SYSTEM_VIEWER"]},
        ),
    ]
