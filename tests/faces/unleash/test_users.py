"""/api/admin/user-admin against the Unleash 8.2 captures; users made here are everyone's."""

from __future__ import annotations

from typing import Any

import httpx
from sqlalchemy import func, select

from tenantry.db.models import AuditEvent, RoleBinding, User
from tenantry.directory import accounts
from tenantry.faces.unleash.errors import NEEDS_ADMIN, OLD_PASSWORD_REFUSED, SIGN_IN_REFUSED
from tenantry.identity.principals import system_principal
from tests.faces.errors import unleash_error
from tests.faces.unleash import spec
from tests.faces.unleash.test_me import admin_named_admin, same_as_capture
from tests.factories import World, bearer

UA = "/api/admin/user-admin"


async def admin_token(world: World) -> dict[str, str]:
    return {"Authorization": await world.token(await admin_named_admin(world))}


def owasp_error(*reasons: str) -> dict[str, Any]:
    """Unleash's OwaspValidationError (without its id)."""
    details = [{"validationErrors": list(reasons), "message": reasons[0]}]
    return {"name": "OwaspValidationError", "message": reasons[0], "details": details}


def request_body(number: int) -> Any:
    return spec.capture(number)["request"]["body"]


async def user_count(world: World) -> int:
    async with world.database.transaction() as db:
        return int(await db.scalar(select(func.count(User.seq))) or 0)


async def test_list_create_get_list(client: httpx.AsyncClient, world: World) -> None:
    auth = await admin_token(world)
    same_as_capture(15, await client.get(UA, headers=auth), "usersSchema")
    r = await client.post(UA, headers=auth, json=request_body(17))
    created = same_as_capture(17, r, "createUserResponseSchema")
    assert r.headers["location"] == str(created["id"])
    got = same_as_capture(18, await client.get(f"{UA}/{created['id']}", headers=auth), "userSchema")
    assert got["rootRole"] == 3 and got["email"] == "peer.user@example.com"
    same_as_capture(19, await client.get(UA, headers=auth), "usersSchema")
    async with world.database.transaction() as db:
        user = await db.scalar(select(User).where(User.seq == created["id"]))
        assert user is not None and user.full_name == "Peer User"
        bindings = await db.scalar(
            select(func.count(RoleBinding.id)).where(RoleBinding.subject_id == user.id)
        )
        assert bindings == 0  # Viewer = no system role
        assert await db.scalar(select(AuditEvent).where(AuditEvent.target_id == user.id))


async def test_unleash_user_is_visible_through_native_and_astro(
    client: httpx.AsyncClient, world: World
) -> None:
    auth = await admin_token(world)
    body = {"email": "vis@example.com", "name": "Vis", "rootRole": "Editor"}
    created = (await client.post(UA, headers=auth, json=body)).json()
    assert created["rootRole"] == "Editor"
    admin = await world.admin()
    token = await world.token(admin)
    native = await client.get("/tenantry/v1/users", headers=bearer(token))
    assert native.status_code == 200, native.text
    assert "vis@example.com" in native.text
    async with world.database.transaction() as db:
        user = await db.scalar(select(User).where(User.seq == created["id"]))
        assert user is not None
        role = await db.scalar(select(RoleBinding.role).where(RoleBinding.subject_id == user.id))
        assert role == "SYSTEM_EDITOR"
    got = await client.get(f"{UA}/{created['id']}", headers=auth)
    assert got.json()["rootRole"] == 2
    org = await world.org()
    await world.roles(org, user)
    astro = await client.get(f"/v1/organizations/{org.id}/users/{user.id}", headers=bearer(token))
    assert astro.status_code == 200, astro.text
    assert astro.json()["username"] == "vis@example.com" and astro.json()["fullName"] == "Vis"


async def test_root_role_by_id_and_update_and_delete(
    client: httpx.AsyncClient, world: World
) -> None:
    auth = await admin_token(world)
    created = (await client.post(UA, headers=auth, json={"username": "ops", "rootRole": 1})).json()
    assert created["username"] == "ops" and "email" not in created
    seq = created["id"]
    r = await client.put(f"{UA}/{seq}", headers=auth, json={"name": "Ops", "rootRole": "Viewer"})
    assert r.status_code == 200, r.text
    assert r.json()["rootRole"] == "Viewer" and r.json()["name"] == "Ops"  # echoed as sent
    assert spec.errors("createUserResponseSchema", r.json()) == []
    assert (await client.get(f"{UA}/{seq}", headers=auth)).json()["rootRole"] == 3
    search = await client.get(f"{UA}/search", headers=auth, params={"q": "op"})
    assert [u["id"] for u in search.json()] == [seq]
    assert (await client.delete(f"{UA}/{seq}", headers=auth)).status_code == 200
    same_as_capture(28, await client.get(f"{UA}/{seq}", headers=auth))


async def test_bad_input_is_refused_as_unleash_does_and_writes_nothing(
    client: httpx.AsyncClient, world: World
) -> None:
    auth = await admin_token(world)
    await client.post(UA, headers=auth, json=request_body(17))
    before = await user_count(world)
    for number in (20, 21, 22, 23, 24, 25):
        r = await client.post(UA, headers=auth, json=request_body(number))
        body = same_as_capture(number, r)
        assert body["details"] == spec.response(number)[2]["details"], number
        assert body["message"] == spec.response(number)[2]["message"], number
    malformed = await client.post(
        UA, headers={**auth, "content-type": "application/json"}, content=b'{"email": '
    )
    same_as_capture(26, malformed)
    plain = await client.post(UA, headers={**auth, "content-type": "text/plain"}, content=b"hello")
    same_as_capture(27, plain)
    assert plain.json()["message"] == spec.response(27)[2]["message"]
    same_as_capture(28, await client.get(f"{UA}/999999", headers=auth))
    same_as_capture(29, await client.get(f"{UA}/abc", headers=auth))
    assert await user_count(world) == before


async def test_create_coerces_scalars_as_unleash_validator(
    client: httpx.AsyncClient, world: World
) -> None:
    """Unleash validates with `coerce: true`: rootRole "2" is the role 2 (answered as the
    number), a number as name is its text; an e-mail that is no address after coercion is its
    service's refusal (no `id`, no path), as the live Unleash 8.2 answered
    (user_admin.create.*_not_string). A boolean rootRole stays refused (no role by a typo)."""
    auth = await admin_token(world)
    base = {"rootRole": "Viewer", "sendEmail": False}
    r = await client.post(UA, headers=auth, json={**base, "email": "r2s@x.io", "rootRole": "2"})
    assert r.status_code == 201 and r.json()["rootRole"] == 2, r.text
    assert (await client.get(f"{UA}/{r.json()['id']}", headers=auth)).json()["rootRole"] == 2
    r = await client.post(UA, headers=auth, json={**base, "email": "n5@x.io", "name": 5})
    assert r.status_code == 201 and r.json()["name"] == "5", r.text
    assert spec.errors("createUserResponseSchema", r.json()) == []
    before = await user_count(world)
    r = await client.post(UA, headers=auth, json={**base, "email": 5})
    assert "id" not in r.json(), r.text  # a service's refusal has none
    error = spec.error(r, 400)
    assert error["name"] == "BadDataError"
    assert error["details"] == [{"message": '"value" must be a valid email. You provided "5".'}]
    r = await client.post(UA, headers=auth, json={**base, "email": "b@x.io", "rootRole": True})
    assert spec.error(r, 400)["details"][0]["path"] == "/body/rootRole"
    assert await user_count(world) == before


async def test_viewer_is_refused_with_permission_error(
    client: httpx.AsyncClient, world: World
) -> None:
    viewer = await world.user("peer.user@example.com", "Peer User")
    auth = {"Authorization": await world.token(viewer)}
    same_as_capture(34, await client.get(UA, headers=auth))
    before = await user_count(world)
    same_as_capture(35, await client.post(UA, headers=auth, json=request_body(35)))
    assert await user_count(world) == before
    same_as_capture(16, await client.get(UA))


async def test_admin_sets_password_then_viewer_logs_in(
    client: httpx.AsyncClient, world: World
) -> None:
    auth = await admin_token(world)
    created = (await client.post(UA, headers=auth, json=request_body(17))).json()
    r = await client.post(
        f"{UA}/{created['id']}/change-password", headers=auth, json=request_body(30)
    )
    assert r.status_code == 200 and r.content == b""
    login = await client.post("/auth/simple/login", json=request_body(31))
    same_as_capture(31, login, "userSchema")
    weak = await client.post(
        f"{UA}/{created['id']}/change-password", headers=auth, json={"password": "x"}
    )
    assert spec.error(weak, 400) == owasp_error(
        "The password must be at least 10 characters long.",
        "The password must contain at least one uppercase letter.",
        "The password must contain at least one number.",
        "The password must contain at least one special character.",
    )


async def test_validate_password(client: httpx.AsyncClient, world: World) -> None:
    auth = await admin_token(world)
    ok = await client.post(
        f"{UA}/validate-password", headers=auth, json={"password": "Viewer-Passw0rd!x"}
    )
    assert ok.status_code == 200
    bad = await client.post(f"{UA}/validate-password", headers=auth, json={"password": "short"})
    assert spec.error(bad, 400) == owasp_error(
        "The password must be at least 10 characters long.",
        "The password must contain at least one uppercase letter.",
        "The password must contain at least one number.",
        "The password must contain at least one special character.",
    )


async def test_change_own_password(client: httpx.AsyncClient, world: World) -> None:
    from tests.faces.unleash.test_me import PASSWORD, viewer, with_password

    user = await viewer(world)
    await with_password(world, user)
    auth = {"Authorization": await world.token(user)}
    new = "Another-Passw0rd!y"
    wrong = await client.post(
        "/api/admin/user/change-password",
        headers=auth,
        json={"password": new, "confirmPassword": new, "oldPassword": "nope"},
    )
    unleash_error(wrong, 401, "PasswordMismatch", OLD_PASSWORD_REFUSED)
    mismatch = await client.post(
        "/api/admin/user/change-password",
        headers=auth,
        json={"password": new, "confirmPassword": new + "x", "oldPassword": PASSWORD},
    )
    assert mismatch.status_code == 400 and mismatch.content == b""  # Unleash's bare 400
    r = await client.post(
        "/api/admin/user/change-password",
        headers=auth,
        json={"password": new, "confirmPassword": new, "oldPassword": PASSWORD},
    )
    assert r.status_code == 200
    login = await client.post(
        "/auth/simple/login", json={"username": "peer.user@example.com", "password": new}
    )
    assert login.status_code == 200


async def test_own_change_refuses_a_previous_password(
    client: httpx.AsyncClient, world: World
) -> None:
    """The domain's password history (TENANTRY_PASSWORD_HISTORY) in Unleash's words: 400
    PasswordPreviouslyUsedError, no `id` (own.back_to_previous in the live corpus); nothing
    changes. An administrator setting it is not checked, as in Unleash."""
    from tests.faces.unleash.test_me import PASSWORD, viewer, with_password

    user = await viewer(world)
    await with_password(world, user)
    auth = {"Authorization": await world.token(user)}
    url = "/api/admin/user/change-password"
    new = "Another-Passw0rd!y"
    sent = {"password": new, "confirmPassword": new, "oldPassword": PASSWORD}
    assert (await client.post(url, headers=auth, json=sent)).status_code == 200
    back = {"password": PASSWORD, "confirmPassword": PASSWORD, "oldPassword": new}
    r = await client.post(url, headers=auth, json=back)
    message = "You've previously used this password. Please use a new password."
    error = unleash_error(r, 400, "PasswordPreviouslyUsedError", message)
    assert "id" not in error and error["details"] == [{"message": message}]
    same = {"password": new, "confirmPassword": new, "oldPassword": new}
    unleash_error(
        await client.post(url, headers=auth, json=same), 400, "PasswordPreviouslyUsedError"
    )
    login = {"username": "peer.user@example.com", "password": new}
    assert (await client.post("/auth/simple/login", json=login)).status_code == 200
    admin = await admin_token(world)
    r = await client.post(
        f"{UA}/{user.seq}/change-password", headers=admin, json={"password": PASSWORD}
    )
    assert r.status_code == 200, r.text


async def test_access_overview_matches_capture(client: httpx.AsyncClient, world: World) -> None:
    auth = await admin_token(world)
    admin_seq = (await client.get("/api/admin/user", headers=auth)).json()["user"]["id"]
    r = await client.get(f"{UA}/{admin_seq}/permissions", headers=auth)
    same_as_capture(14, r)
    viewer = await world.user("v@example.com")
    v = (await client.get(f"{UA}/{viewer.seq}/permissions", headers=auth)).json()
    assert v["rootRole"]["id"] == 3
    assert not any(p["hasPermission"] for p in v["overview"]["root"] + v["overview"]["project"])
    same_as_capture(28, await client.get(f"{UA}/999999/permissions", headers=auth))


async def test_editor_cannot_hand_out_root_roles(client: httpx.AsyncClient, world: World) -> None:
    editor = await world.user("ed@example.com")
    await world.system_role(editor, "SYSTEM_EDITOR")
    auth = {"Authorization": await world.token(editor)}
    before = await user_count(world)
    r = await client.post(UA, headers=auth, json={"email": "boss@example.com", "rootRole": "Admin"})
    assert r.status_code == 403 and r.json()["name"] == "PermissionError"
    assert r.json()["permissions"] == ["ADMIN"]
    assert await user_count(world) == before
    r = await client.put(f"{UA}/{editor.seq}", headers=auth, json={"rootRole": 1})
    assert r.status_code == 403
    assert unleash_error(r, 403, "PermissionError", NEEDS_ADMIN)["permissions"] == ["ADMIN"]
    async with world.database.transaction() as db:
        role = await db.scalar(select(RoleBinding.role).where(RoleBinding.subject_id == editor.id))
        assert role == "SYSTEM_EDITOR"


async def _events(world: World, action: str, target_id: str) -> list[dict[str, Any]]:
    async with world.database.transaction() as db:
        rows = await db.scalars(
            select(AuditEvent)
            .where(AuditEvent.action == action, AuditEvent.target_id == target_id)
            .order_by(AuditEvent.id)
        )
        return [dict(e.details or {}) for e in rows]


async def _actions(world: World, target_id: str) -> list[str]:
    async with world.database.transaction() as db:
        rows = await db.scalars(
            select(AuditEvent.action)
            .where(AuditEvent.target_id == target_id)
            .order_by(AuditEvent.id)
        )
        return list(rows)


async def test_root_role_changes_are_audited_as_every_face_does(
    client: httpx.AsyncClient, world: World
) -> None:
    """Finding 7: a root role change was `user.system_role.grant` here; it is the domain's
    `user.system_roles.set` with the roles before and after (nothing when unchanged), and a
    change of name or e-mail one `user.update` with each field before and after."""
    auth = await admin_token(world)
    body = {"email": "ed@example.com", "name": "Ed", "rootRole": "Editor"}
    seq = (await client.post(UA, headers=auth, json=body)).json()["id"]
    async with world.database.transaction() as db:
        user = await db.scalar(select(User).where(User.seq == seq))
        assert user is not None
    for role in (1, 1, "Viewer"):
        r = await client.put(f"{UA}/{seq}", headers=auth, json={"rootRole": role})
        assert r.status_code == 200 and r.json()["rootRole"] == role
    assert await _events(world, "user.system_roles.set", user.id) == [
        {"before": [], "after": ["SYSTEM_EDITOR"]},
        {"before": ["SYSTEM_EDITOR"], "after": ["SYSTEM_ADMIN"]},
        {"before": ["SYSTEM_ADMIN"], "after": []},
    ]
    r = await client.put(f"{UA}/{seq}", headers=auth, json={"name": "Eddie", "email": "e@x.io"})
    assert r.status_code == 200 and r.json()["name"] == "Eddie" and r.json()["email"] == "e@x.io"
    # The login name was the address: it follows (directory.users.follow_address).
    assert await _events(world, "user.update", user.id) == [
        {
            "changed": {
                "full_name": ["Ed", "Eddie"],
                "email": ["ed@example.com", "e@x.io"],
                "username": ["ed@example.com", "e@x.io"],
            }
        }
    ]
    actions = await _actions(world, user.id)
    assert not [a for a in actions if a.startswith("user.system_role.")], actions


async def test_root_role_needs_elevation_when_required(
    strict: httpx.AsyncClient, world: World
) -> None:
    """With TENANTRY_REQUIRE_ELEVATION, giving a root role above Viewer (create or update)
    without an elevated session is 403 in Unleash's body and writes nothing; a Viewer needs
    no elevation; once the session is elevated, the same requests succeed."""
    from tests.faces.unleash.conftest import cookie, elevate, sign_in
    from tests.faces.unleash.test_me import PASSWORD, with_password

    admin = await admin_named_admin(world)
    await with_password(world, admin)
    auth = cookie(await sign_in(strict, "admin", PASSWORD))
    before = await user_count(world)
    r = await strict.post(UA, headers=auth, json={"email": "boss@example.com", "rootRole": 1})
    refused = spec.error(r, 403)
    assert refused["name"] == "NoAccessError" and "elevated" in refused["message"]
    assert refused["details"] == [{"message": refused["message"]}]
    assert await user_count(world) == before
    r = await strict.post(UA, headers=auth, json={"email": "v@example.com", "rootRole": 3})
    assert r.status_code == 201, r.text
    seq = r.json()["id"]
    for role in (1, "Editor"):
        r = await strict.put(f"{UA}/{seq}", headers=auth, json={"rootRole": role, "name": "V"})
        assert spec.error(r, 403)["name"] == "NoAccessError"
    got = (await strict.get(f"{UA}/{seq}", headers=auth)).json()
    assert got["rootRole"] == 3 and "name" not in got
    async with world.database.transaction() as db:
        user = await db.scalar(select(User).where(User.seq == seq))
        assert user is not None
        assert (
            await db.scalar(select(RoleBinding.role).where(RoleBinding.subject_id == user.id))
            is None
        )
    await elevate(strict, auth["Cookie"].split("%3A", 1)[1], PASSWORD)
    r = await strict.put(f"{UA}/{seq}", headers=auth, json={"rootRole": 1})
    assert r.status_code == 200 and r.json()["rootRole"] == 1
    r = await strict.post(UA, headers=auth, json={"email": "boss@example.com", "rootRole": 1})
    assert r.status_code == 201 and r.json()["rootRole"] == 1


async def test_own_root_role_is_not_changed(client: httpx.AsyncClient, world: World) -> None:
    """The domain's guard (not yourself) in Unleash's words; asking for the role you hold is
    no change and no refusal."""
    admin = await admin_named_admin(world)
    auth = {"Authorization": await world.token(admin)}
    r = await client.put(f"{UA}/{admin.seq}", headers=auth, json={"rootRole": 3})
    assert spec.error(r, 400) == spec.bad_data("You cannot change your own root role")
    r = await client.put(f"{UA}/{admin.seq}", headers=auth, json={"rootRole": "Admin"})
    assert r.status_code == 200 and r.json()["rootRole"] == "Admin"
    # Also when the roles behind "Admin" are several (an ECE combination): shown unchanged,
    # so no change, and nothing is refused or rewritten.
    async with world.database.transaction() as db:
        both = ("SYSTEM_ADMIN", "SYSTEM_VIEWER")
        await accounts.set_system_roles(db, system_principal(), admin.id, both)
    r = await client.put(f"{UA}/{admin.seq}", headers=auth, json={"rootRole": 1, "name": "Me"})
    assert r.status_code == 200 and r.json()["rootRole"] == 1 and r.json()["name"] == "Me"
    async with world.database.transaction() as db:
        roles = await accounts.system_roles_of(db, [admin.id])
    assert set(roles[admin.id]) == {"SYSTEM_ADMIN", "SYSTEM_VIEWER"}
    set_up = {"before": ["SYSTEM_ADMIN"], "after": ["SYSTEM_ADMIN", "SYSTEM_VIEWER"]}
    assert await _events(world, "user.system_roles.set", admin.id) == [set_up]


async def test_update_ignores_unknown_properties_and_keeps_empty_ones(
    client: httpx.AsyncClient, world: World
) -> None:
    """updateUserSchema is open: Unleash ignores what it does not know (a client may send back
    the user it read); an empty name or e-mail keeps the user's; without rootRole the answer
    has none (Unleash echoes the one sent)."""
    auth = await admin_token(world)
    body = {"email": "kept@example.com", "name": "Kept", "rootRole": "Editor"}
    created = (await client.post(UA, headers=auth, json=body)).json()
    url = f"{UA}/{created['id']}"
    read_back = (await client.get(url, headers=auth)).json()
    r = await client.put(url, headers=auth, json={**read_back, "bogus": 1, "name": "Kept Too"})
    assert r.status_code == 200, r.text
    assert r.json()["name"] == "Kept Too" and r.json()["rootRole"] == 2
    r = await client.put(url, headers=auth, json={"name": "", "email": "", "id": 1})
    assert r.status_code == 200, r.text
    assert (r.json()["name"], r.json()["email"]) == ("Kept Too", "kept@example.com")
    assert "rootRole" not in r.json()
    assert spec.errors("createUserResponseSchema", r.json()) == []
    assert (await client.get(url, headers=auth)).json()["rootRole"] == 2
    # Known properties are coerced as Unleash's validator does (a number is its text), and
    # still typed beyond that.
    r = await client.put(url, headers=auth, json={"name": 5})
    assert r.status_code == 200 and r.json()["name"] == "5", r.text
    r = await client.put(url, headers=auth, json={"name": {"first": "K"}})
    assert spec.error(r, 400)["details"][0]["path"] == "/body/name"
    assert (await client.get(url, headers=auth)).json()["name"] == "5"


async def test_users_are_unique_by_username_and_by_email(
    client: httpx.AsyncClient, world: World
) -> None:
    """Unleash's "User already exists" (capture 21) for a username or an e-mail address
    another user has, whichever the clash; nothing written."""
    auth = await admin_token(world)
    await client.post(UA, headers=auth, json=request_body(17))
    before = await user_count(world)
    for body in (
        {"username": "other", "email": "Peer.User@example.com", "rootRole": 3},
        {"username": "peer.user@example.com", "rootRole": 3},
        {"username": "ADMIN", "email": "new@example.com", "rootRole": 3},
    ):
        r = await client.post(UA, headers=auth, json=body)
        assert spec.error(r, 400) == spec.bad_data("User already exists"), body
    assert await user_count(world) == before


async def test_own_password_change_proves_the_old_one_and_ends_other_sessions(
    client: httpx.AsyncClient, world: World
) -> None:
    """POST /user/change-password is accounts.set_password with the current password: a
    wrong or missing oldPassword is Unleash's 400 and changes nothing; the change ends the
    user's other sessions (not the one that made it) and is audited as `user.password.set`."""
    from tests.faces.unleash.conftest import cookie, sign_in
    from tests.faces.unleash.test_me import PASSWORD, viewer, with_password

    user = await viewer(world)
    await with_password(world, user)
    mine = cookie(await sign_in(client, "peer.user@example.com", PASSWORD))
    other = cookie(await sign_in(client, "peer.user@example.com", PASSWORD))
    new = "Another-Passw0rd!y"
    url = "/api/admin/user/change-password"
    r = await client.post(
        url, headers=mine, json={"password": new, "confirmPassword": new, "oldPassword": "nope"}
    )
    unleash_error(r, 401, "PasswordMismatch", OLD_PASSWORD_REFUSED)
    for body in (
        {"password": new, "confirmPassword": new},
        {"password": new, "confirmPassword": new + "x", "oldPassword": PASSWORD},
    ):
        r = await client.post(url, headers=mine, json=body)
        assert r.status_code == 400 and r.content == b"", body  # Unleash's bare 400
    assert (await client.get("/api/admin/user", headers=other)).status_code == 200
    set_up = [{"self": False}]  # with_password, by the system
    assert await _events(world, "user.password.set", user.id) == set_up
    r = await client.post(
        url, headers=mine, json={"password": new, "confirmPassword": new, "oldPassword": PASSWORD}
    )
    assert r.status_code == 200 and r.content == b""
    # The other session's cookie is now unknown: Unleash's login hint.
    assert spec.error(await client.get("/api/admin/user", headers=other), 401)["name"] == (
        "AuthenticationRequired"
    )
    assert (await client.get("/api/admin/user", headers=mine)).status_code == 200
    assert await _events(world, "user.password.set", user.id) == [*set_up, {"self": True}]
    login = await client.post(
        "/auth/simple/login", json={"username": "peer.user@example.com", "password": PASSWORD}
    )
    assert login.status_code == 401
    unleash_error(login, 401, "PasswordMismatch", SIGN_IN_REFUSED)
