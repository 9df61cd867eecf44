"""ece: credentials, the current user and the users CRUD with ECE's codes and role rules."""

from __future__ import annotations

import httpx
from sqlalchemy import func, select

from tenantry.authz.catalogue import ROLE_PERMISSIONS
from tenantry.db.models import AuditEvent, RoleBinding, User
from tenantry.directory import bootstrap, realms
from tenantry.faces.ece.operations import OPERATIONS
from tenantry.identity.principals import system_principal
from tenantry.identity.secretbox import SecretBox
from tests.faces.ece.conftest import V, apikey, basic, with_password
from tests.faces.ece.spec import assert_ece, assert_error, operation_ids
from tests.factories import World, bearer

ELEVATE_SPEC = "apidocs-pre-ms89-with-elevate.json"
USER_OPS = {op for op, permission in OPERATIONS.items() if permission is None}


async def _user(world: World, username: str) -> User:
    async with world.database.transaction() as db:
        user = await db.scalar(select(User).where(User.username == username))
        assert user is not None
        return user


async def _count_users(world: World) -> int:
    async with world.database.transaction() as db:
        return int(await db.scalar(select(func.count()).select_from(User)) or 0)


async def test_current_user_with_every_credential(client: httpx.AsyncClient, world: World) -> None:
    user = await with_password(world, "ops", "SYSTEM_ADMIN")
    token = await world.token(user)
    for headers in (apikey(token), bearer(token), basic("ops"), basic("OPS")):
        r = await client.get(f"{V}/user", headers=headers)
        assert r.status_code == 200, r.text
        body = r.json()
        assert_ece(body, "User")
        assert body["user_name"] == "ops" and body["builtin"] is False
        security = body["security"]
        assert security["roles"] == ["ece_platform_admin"]
        assert security["permissions"] == sorted(OPERATIONS)
        assert security["enabled"] is True
        assert security["elevated_permissions"] == {"enabled": False}
        assert security["security_realm"] == {"type": "native", "id": "native"}
        assert body["metadata"]["created_at"].endswith("+00:00")


async def test_refused_credentials_are_401_root_unauthorized(
    client: httpx.AsyncClient, world: World
) -> None:
    user = await with_password(world, "ops", "SYSTEM_ADMIN")
    for headers in (
        {},
        apikey("tnt_not-a-token"),
        bearer("nope"),
        {"Authorization": "Basic !!!"},
        {"Authorization": "Basic " + "b3Bz"},  # "ops" without a colon
        {"Authorization": "Digest abc"},
    ):
        r = await client.get(f"{V}/user", headers=headers)
        assert_error(r, 401, "root.unauthorized")
    r = await client.get(f"{V}/user", headers=basic("ops", "wrong-password-1"))
    assert_error(r, 401, "root.unauthorized")
    stored = await _user(world, "ops")
    assert stored.login_attempts == 1 and stored.id == user.id  # the failure was committed


async def test_permissions_follow_the_system_role(client: httpx.AsyncClient, world: World) -> None:
    await with_password(world, "viewer", "SYSTEM_VIEWER")
    await with_password(world, "nobody")
    r = await client.get(f"{V}/user", headers=basic("viewer"))
    security = r.json()["security"]
    assert security["roles"] == ["ece_platform_viewer"]
    reads = {
        "get-users",
        "get-user",
        "get-security-realm-configurations",
        "get-users-api-keys",
        "get-user-api-keys",
        "get-user-api-key",
    }
    assert security["permissions"] == sorted(USER_OPS | reads)
    assert "delete-user" not in security["permissions"]
    r = await client.get(f"{V}/user", headers=basic("nobody"))
    assert r.json()["security"]["roles"] == []
    assert r.json()["security"]["permissions"] == sorted(USER_OPS)


def test_operations_are_exactly_the_face_routes_and_ece_operations() -> None:
    from tenantry.faces import ece

    paths = ece.build(64 * 1024).openapi()["paths"]
    ids = {op["operationId"] for item in paths.values() for op in item.values()}
    assert ids == set(OPERATIONS)
    assert set(OPERATIONS) <= operation_ids() | operation_ids(ELEVATE_SPEC)


async def test_patch_current_user_is_a_merge_patch(client: httpx.AsyncClient, world: World) -> None:
    await with_password(world, "ann", email="ann@example.com")
    r = await client.patch(f"{V}/user", headers=basic("ann"), json={"full_name": "Ann Lee"})
    assert r.status_code == 200, r.text
    assert_ece(r.json(), "User")
    assert r.json()["full_name"] == "Ann Lee" and r.json()["email"] == "ann@example.com"
    r = await client.patch(f"{V}/user", headers=basic("ann"), json={"full_name": None})
    assert r.status_code == 200 and "full_name" not in r.json()
    assert r.json()["email"] == "ann@example.com"  # absent: unchanged
    # Your own e-mail is not taken unconfirmed: it waits for the link mailed to it, and the
    # answer keeps the current address; the same address again is no change.
    r = await client.patch(f"{V}/user", headers=basic("ann"), json={"email": "ann@example.com"})
    assert r.status_code == 200, r.text
    r = await client.patch(
        f"{V}/user", headers=basic("ann"), json={"email": "ann@other.test", "full_name": "X"}
    )
    assert r.status_code == 200, r.text
    assert r.json()["email"] == "ann@example.com" and r.json()["full_name"] == "X"
    async with world.database.transaction() as db:
        ann = await db.scalar(select(User).where(User.username == "ann"))
    assert ann is not None and ann.email == "ann@example.com"
    assert ann.pending_email == "ann@other.test" and ann.pending_email_digest is not None


async def test_patch_current_user_refusals_write_nothing(
    client: httpx.AsyncClient, world: World
) -> None:
    await with_password(world, "ann", "SYSTEM_VIEWER")
    cases = [
        ({"security": {"roles": ["ece_platform_admin"]}, "full_name": "X"}, "user.roles.forbidden"),
        ({"security": {"permissions": ["get-users"]}, "full_name": "X"}, "user.restricted_field"),
        ({"metadata": {"created_by": "me"}, "full_name": "X"}, "user.restricted_field"),
        ({"security": {"roles": ["root"]}, "full_name": "X"}, "user.roles.invalid"),
        ({"security": {"enabled": False}, "full_name": "X"}, "user.restricted_field"),
        ({"full_name": 5}, "root.invalid_json_request"),
        ({"security": {"roles": "ece_platform_admin"}}, "root.invalid_json_request"),
        ([1, 2], "root.invalid_json_request"),
    ]
    for body, code in cases:
        r = await client.patch(f"{V}/user", headers=basic("ann"), json=body)
        assert_error(r, 400, code)
    r = await client.get(f"{V}/user", headers=basic("ann"))
    assert "full_name" not in r.json() and r.json()["security"]["roles"] == ["ece_platform_viewer"]


async def test_create_user_visible_through_native_and_astro(
    client: httpx.AsyncClient, world: World
) -> None:
    await with_password(world, "root", "SYSTEM_ADMIN")
    body = {
        "user_name": "jdoe",
        "full_name": "John Doe",
        "email": "jdoe@example.com",
        "security": {"roles": ["ece_platform_viewer"], "password": "amber-meadow-19"},
    }
    r = await client.post(f"{V}/users", headers=basic("root"), json=body)
    assert r.status_code == 200, r.text
    created = r.json()
    assert_ece(created, "User")
    assert created["user_name"] == "jdoe" and created["security"]["roles"] == [
        "ece_platform_viewer"
    ]
    assert "password" not in created["security"]
    # The new user signs in with the password given, and is the directory's user everywhere.
    me = await client.get(f"{V}/user", headers=basic("jdoe", "amber-meadow-19"))
    assert me.status_code == 200 and me.json()["full_name"] == "John Doe"
    stored = await _user(world, "jdoe")
    admin_token = await world.token(await _user(world, "root"))
    native = await client.get(
        "/tenantry/v1/users", params={"q": "jdoe"}, headers=bearer(admin_token)
    )
    assert [u["id"] for u in native.json()["users"]] == [stored.id]
    astro = await client.get("/v1/users/self", headers=bearer(await world.token(stored)))
    assert astro.status_code == 200 and astro.json()["username"] == "jdoe"
    async with world.database.transaction() as db:
        role = await db.scalar(select(RoleBinding.role).where(RoleBinding.subject_id == stored.id))
        events = await db.scalar(
            select(func.count()).select_from(AuditEvent).where(AuditEvent.target_id == stored.id)
        )
    assert role == "SYSTEM_VIEWER" and events
    r = await client.get(f"{V}/users/JDOE", headers=basic("root"))
    assert r.status_code == 200 and r.json()["user_name"] == "jdoe"


async def test_create_user_refusals_write_nothing(client: httpx.AsyncClient, world: World) -> None:
    await with_password(world, "root", "SYSTEM_ADMIN")
    await with_password(world, "viewer", "SYSTEM_VIEWER")
    before = await _count_users(world)
    cases = [
        ({"user_name": ""}, 400, "user.user_name.invalid"),
        ({"user_name": "bad name!"}, 400, "user.user_name.invalid"),
        ({"security": {}}, 400, "user.user_name.invalid"),
        ({"user_name": "x", "security": {"roles": ["superuser"]}}, 400, "user.roles.invalid"),
        (
            {
                "user_name": "x",
                "security": {"roles": ["ece_platform_admin", "ece_platform_viewer"]},
            },
            400,
            "user.roles.invalid",
        ),
        (
            {
                "user_name": "x",
                "security": {"roles": ["ece_deployment_manager", "ece_deployment_viewer"]},
            },
            400,
            "user.roles.invalid",
        ),
        ({"user_name": "x", "builtin": True}, 400, "user.restricted_field"),
        ({"user_name": "VIEWER"}, 409, "user.user_name.conflict"),
        ({"user_name": "x", "security": {"password": "short"}}, 400, "root.invalid_json_request"),
    ]
    for body, status, code in cases:
        r = await client.post(f"{V}/users", headers=basic("root"), json=body)
        assert_error(r, status, code)
    r = await client.post(f"{V}/users", headers=basic("viewer"), json={"user_name": "x"})
    assert_error(r, 403, "root.unauthorized.rbac")
    assert await _count_users(world) == before


async def test_list_and_get_users(client: httpx.AsyncClient, world: World) -> None:
    await with_password(world, "root", "SYSTEM_ADMIN")
    await with_password(world, "nobody")
    off = await world.user("off", enabled=False)
    r = await client.get(f"{V}/users", headers=basic("root"))
    assert r.status_code == 200
    assert_ece(r.json(), "UserList")
    assert [u["user_name"] for u in r.json()["users"]] == ["nobody", "off", "root"]
    r = await client.get(f"{V}/users", params={"include_disabled": "false"}, headers=basic("root"))
    assert [u["user_name"] for u in r.json()["users"]] == ["nobody", "root"]
    r = await client.get(f"{V}/users/off", headers=basic("root"))
    assert r.status_code == 200 and r.json()["security"]["enabled"] is False
    assert off.enabled is False
    assert_error(await client.get(f"{V}/users/ghost", headers=basic("root")), 404, "user.not_found")
    # Without system rights: yourself only; others do not exist; the list is forbidden.
    assert (await client.get(f"{V}/users/nobody", headers=basic("nobody"))).status_code == 200
    r = await client.get(f"{V}/users/root", headers=basic("nobody"))
    assert_error(r, 404, "user.not_found")
    assert_error(
        await client.get(f"{V}/users", headers=basic("nobody")), 403, "root.unauthorized.rbac"
    )


async def test_update_user_roles_and_state(client: httpx.AsyncClient, world: World) -> None:
    await with_password(world, "root", "SYSTEM_ADMIN")
    await with_password(world, "bob")
    r = await client.patch(
        f"{V}/users/bob",
        headers=basic("root"),
        json={"security": {"roles": ["ece_deployment_manager"], "enabled": False}},
    )
    assert r.status_code == 200, r.text
    assert_ece(r.json(), "User")
    assert r.json()["security"]["roles"] == ["ece_deployment_manager"]
    assert r.json()["security"]["enabled"] is False
    assert_error(await client.get(f"{V}/user", headers=basic("bob")), 401, "root.unauthorized")
    r = await client.patch(
        f"{V}/users/bob", headers=basic("root"), json={"security": {"roles": None, "enabled": True}}
    )
    assert r.json()["security"]["roles"] == [] and r.json()["security"]["enabled"] is True
    async with world.database.transaction() as db:
        bob = await db.scalar(select(User).where(User.username == "bob"))
        assert bob is not None
        assert await db.scalar(select(RoleBinding).where(RoleBinding.subject_id == bob.id)) is None
    r = await client.patch(f"{V}/users/bob", headers=basic("root"), json={"user_name": "robert"})
    assert r.status_code == 200 and r.json()["user_name"] == "robert"
    assert_error(
        await client.patch(f"{V}/users/bob", headers=basic("root"), json={}), 404, "user.not_found"
    )
    r = await client.patch(
        f"{V}/users/root", headers=basic("root"), json={"security": {"roles": []}}
    )
    assert_error(r, 400, "user.roles.forbidden")
    r = await client.patch(
        f"{V}/users/root", headers=basic("root"), json={"security": {"enabled": False}}
    )
    assert_error(r, 400, "user.restricted_field")
    r = await client.patch(f"{V}/users/robert", headers=basic("root"), json={"user_name": "root"})
    assert_error(r, 409, "user.user_name.conflict")
    r = await client.get(f"{V}/user", headers=basic("root"))
    assert r.json()["security"]["roles"] == ["ece_platform_admin"]
    assert r.json()["security"]["enabled"] is True


async def test_builtin_and_external_users_are_protected(
    client: httpx.AsyncClient, world: World
) -> None:
    async with world.database.transaction() as db:
        first = [u.id for u in await bootstrap.ensure_builtin_users(db)]
    async with world.database.transaction() as db:
        again = [u.id for u in await bootstrap.ensure_builtin_users(db)]  # idempotent
    assert first == again
    await with_password(world, "root", "SYSTEM_ADMIN")
    ext = await world.user("sso-user")
    async with world.database.transaction() as db:
        stored = await db.get(User, ext.seq)
        assert stored is not None
        stored.realm, stored.realm_id = "saml", "okta"
    r = await client.get(f"{V}/users", headers=basic("root"))
    by_name = {u["user_name"]: u for u in r.json()["users"]}
    assert by_name["admin"]["builtin"] is True
    assert by_name["admin"]["security"]["roles"] == ["ece_platform_admin"]
    assert by_name["readonly"]["security"]["roles"] == ["ece_platform_viewer"]
    assert by_name["sso-user"]["security"]["security_realm"] == {"type": "saml", "id": "okta"}
    # Built-in users "cannot be modified"; deleting yourself is ECE's restricted deletion.
    for name in ("admin", "readonly"):
        r = await client.delete(f"{V}/users/{name}", headers=basic("root"))
        assert_error(r, 400, "user.cannot_modify")
    r = await client.delete(f"{V}/users/root", headers=basic("root"))
    assert_error(r, 400, "user.restricted_deletion")
    r = await client.patch(f"{V}/users/admin", headers=basic("root"), json={"user_name": "boss"})
    assert_error(r, 400, "user.cannot_modify")
    r = await client.patch(
        f"{V}/users/readonly", headers=basic("root"), json={"security": {"roles": []}}
    )
    assert_error(r, 400, "user.cannot_modify")
    r = await client.patch(
        f"{V}/users/sso-user", headers=basic("root"), json={"security": {"password": "x" * 20}}
    )
    assert_error(r, 400, "user.cannot_modify_external")
    assert_error(
        await client.delete(f"{V}/users/sso-user", headers=basic("root")),
        400,
        "user.cannot_modify_external",
    )
    assert {u.username for u in [await _user(world, n) for n in ("admin", "readonly")]} == {
        "admin",
        "readonly",
    }


async def test_delete_user(client: httpx.AsyncClient, world: World) -> None:
    await with_password(world, "root", "SYSTEM_ADMIN")
    await with_password(world, "viewer", "SYSTEM_VIEWER")
    await with_password(world, "bob")
    assert_error(
        await client.delete(f"{V}/users/bob", headers=basic("viewer")),
        403,
        "root.unauthorized.rbac",
    )
    r = await client.delete(f"{V}/users/bob", headers=basic("root"))
    assert r.status_code == 200 and r.json() == {}
    assert_error(await client.get(f"{V}/users/bob", headers=basic("root")), 404, "user.not_found")
    assert_error(
        await client.delete(f"{V}/users/bob", headers=basic("root")), 404, "user.not_found"
    )


async def test_security_realms(client: httpx.AsyncClient, world: World) -> None:
    await with_password(world, "root", "SYSTEM_VIEWER")
    await with_password(world, "nobody")
    r = await client.get(f"{V}/platform/configuration/security/realms", headers=basic("root"))
    assert r.status_code == 200
    assert_ece(r.json(), "SecurityRealmInfoList")
    assert [(x["type"], x["id"]) for x in r.json()["realms"]] == [("native", "native")]
    for name, realm, realm_id in (
        ("a", "saml", "okta"),
        ("b", "ldap", "corp"),
        ("c", "scim", None),
    ):
        user = await world.user(name)
        async with world.database.transaction() as db:
            stored = await db.get(User, user.seq)
            assert stored is not None
            stored.realm, stored.realm_id = realm, realm_id
    # a configured realm is listed before anyone signed in through it
    ad = realms.RealmSpec(
        id="ad",
        type="active_directory",
        name="AD",
        settings={"url": "ldap://dc.corp.test", "user_base_dn": "dc=corp,dc=test"},
    )
    async with world.database.transaction() as db:
        await realms.create_realm(db, SecretBox([]), system_principal(), ad)
    r = await client.get(f"{V}/platform/configuration/security/realms", headers=basic("root"))
    assert_ece(r.json(), "SecurityRealmInfoList")
    assert [(x["type"], x["id"]) for x in r.json()["realms"]] == [
        ("native", "native"),
        ("active_directory", "ad"),
        ("ldap", "corp"),
        ("saml", "okta"),
        ("saml", "scim"),
    ]
    r = await client.get(f"{V}/platform/configuration/security/realms", headers=basic("nobody"))
    assert_error(r, 403, "root.unauthorized.rbac")


def _ops_of(*roles: str) -> list[str]:
    """The ece operationIds the union of these SYSTEM roles allows (the catalogue's answer)."""
    granted = set().union(*(ROLE_PERMISSIONS[r] for r in roles))
    return sorted(op for op, perm in OPERATIONS.items() if perm is None or perm in granted)


async def _system_roles(world: World, username: str) -> list[str]:
    user = await _user(world, username)
    async with world.database.transaction() as db:
        rows = await db.scalars(
            select(RoleBinding.role)
            .where(RoleBinding.subject_id == user.id, RoleBinding.scope_type == "SYSTEM")
            .order_by(RoleBinding.role)
        )
        return list(rows)


async def test_role_combinations(client: httpx.AsyncClient, world: World) -> None:
    await with_password(world, "root", "SYSTEM_ADMIN")
    body = {
        "user_name": "combo",
        # Any order, repeats allowed: rendered back once each, platform roles first.
        "security": {
            "roles": ["ece_deployment_manager", "ece_platform_viewer", "ece_deployment_manager"],
            "password": "amber-meadow-19",
        },
    }
    r = await client.post(f"{V}/users", headers=basic("root"), json=body)
    assert r.status_code == 200, r.text
    assert_ece(r.json(), "User")
    security = r.json()["security"]
    assert security["roles"] == ["ece_platform_viewer", "ece_deployment_manager"]
    union = _ops_of("SYSTEM_VIEWER", "SYSTEM_EDITOR")
    assert security["permissions"] == union
    assert len(union) > len(USER_OPS)
    assert await _system_roles(world, "combo") == ["SYSTEM_EDITOR", "SYSTEM_VIEWER"]
    # The same through GET /users/{name}, the list, and the user's own GET /user.
    r = await client.get(f"{V}/users/combo", headers=basic("root"))
    assert r.json()["security"]["roles"] == ["ece_platform_viewer", "ece_deployment_manager"]
    assert r.json()["security"]["permissions"] == union
    listed = {
        u["user_name"]: u
        for u in (await client.get(f"{V}/users", headers=basic("root"))).json()["users"]
    }
    assert listed["combo"]["security"]["roles"] == ["ece_platform_viewer", "ece_deployment_manager"]
    me = await client.get(f"{V}/user", headers=basic("combo", "amber-meadow-19"))
    assert me.json()["security"]["roles"] == ["ece_platform_viewer", "ece_deployment_manager"]
    assert me.json()["security"]["permissions"] == union
    # PATCH replaces the whole set.
    r = await client.patch(
        f"{V}/users/combo",
        headers=basic("root"),
        json={"security": {"roles": ["ece_deployment_viewer", "ece_platform_viewer"]}},
    )
    assert r.status_code == 200, r.text
    assert_ece(r.json(), "User")
    assert r.json()["security"]["roles"] == ["ece_platform_viewer", "ece_deployment_viewer"]
    both = _ops_of("SYSTEM_VIEWER", "SYSTEM_DEPLOYMENT_VIEWER")
    assert r.json()["security"]["permissions"] == both
    # The union: what ece_platform_viewer allows beyond ece_deployment_viewer alone.
    assert set(both) > set(_ops_of("SYSTEM_DEPLOYMENT_VIEWER")) == USER_OPS
    assert await _system_roles(world, "combo") == ["SYSTEM_DEPLOYMENT_VIEWER", "SYSTEM_VIEWER"]
    r = await client.patch(
        f"{V}/users/combo",
        headers=basic("root"),
        json={"security": {"roles": ["ece_deployment_manager"]}},
    )
    assert r.json()["security"]["roles"] == ["ece_deployment_manager"]
    assert await _system_roles(world, "combo") == ["SYSTEM_EDITOR"]
    # Refused combinations write nothing.
    for roles in (
        ["ece_platform_admin", "ece_deployment_viewer"],
        ["ece_platform_viewer", "ece_deployment_manager", "ece_deployment_viewer"],
    ):
        r = await client.patch(
            f"{V}/users/combo", headers=basic("root"), json={"security": {"roles": roles}}
        )
        assert_error(r, 400, "user.roles.invalid")
    assert await _system_roles(world, "combo") == ["SYSTEM_EDITOR"]


async def test_role_combination_seen_by_every_face(client: httpx.AsyncClient, world: World) -> None:
    await with_password(world, "root", "SYSTEM_ADMIN")
    body = {
        "user_name": "combo@example.com",
        "email": "combo@example.com",
        "security": {"roles": ["ece_platform_viewer", "ece_deployment_manager"]},
    }
    assert (await client.post(f"{V}/users", headers=basic("root"), json=body)).status_code == 200
    combo = await _user(world, "combo@example.com")
    token = await world.token(combo)
    # astro: SelfUser lists every SYSTEM role.
    astro = (await client.get("/v1/users/self", headers=bearer(token))).json()
    system = sorted(r["role"] for r in astro["roles"] if r["scope"]["type"] == "SYSTEM")
    assert system == ["SYSTEM_EDITOR", "SYSTEM_VIEWER"]
    assert all(
        r["scope"] == {"entityId": "SYSTEM", "type": "SYSTEM"}
        for r in astro["roles"]
        if r["scope"]["type"] == "SYSTEM"
    )
    # unleash: the strongest decides the root role (Editor).
    profile = (await client.get("/api/admin/user/profile", headers=bearer(token))).json()
    assert profile["rootRole"]["name"] == "Editor"
    admin_token = await world.token(await _user(world, "root"))
    listed = (await client.get("/api/admin/user-admin", headers=bearer(admin_token))).json()
    assert {u["id"]: u["rootRole"] for u in listed["users"]}[combo.seq] == 2
    # native: setting one system role replaces the combination.
    r = await client.put(
        f"/tenantry/v1/users/{combo.id}/system-role",
        headers=bearer(admin_token),
        json={"role": "SYSTEM_VIEWER"},
    )
    assert r.status_code == 204 and r.content == b"", r.text
    assert await _system_roles(world, "combo@example.com") == ["SYSTEM_VIEWER"]
    r = await client.get(f"{V}/users/combo@example.com", headers=basic("root"))
    assert r.json()["security"]["roles"] == ["ece_platform_viewer"]
