"""What the live Unleash 8.2 comparison (issue 16) changed on the face: the Editor root role
reads no users (the domain refuses: SYSTEM_EDITOR has no system.users.list/get) but finds them
by name, meSchema lists Unleash's Editor permissions, Unleash's `default` project, path ids as
JavaScript reads numbers, the sign-in body's coercion and first error, the body read before
the id, and no PUT /feedback."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx
import pytest

from tenantry.authz.catalogue import ROLE_PERMISSIONS
from tenantry.db.models import User
from tenantry.faces.unleash.errors import NEEDS_ADMIN, SIGN_IN_REFUSED
from tests.faces.errors import unleash_error
from tests.faces.unleash import spec
from tests.faces.unleash.test_users import UA, admin_token
from tests.factories import World

LIVE = Path(__file__).parents[2] / "reference" / "unleash-8.2-live"
ME = "/api/admin/user"
LOGIN = "/auth/simple/login"


def recorded(step: str) -> Any:
    """The body a real Unleash 8.2 answered for a step of the live corpus."""
    return json.loads((LIVE / f"{step}.json").read_text())["response"]["json"]


async def _editor(world: World) -> tuple[User, dict[str, str]]:
    editor = await world.user("ed@example.com", "Ed", email="ed@example.com")
    await world.system_role(editor, "SYSTEM_EDITOR")
    return editor, {"Authorization": await world.token(editor)}


def test_the_editor_role_reads_no_users_but_finds_them() -> None:
    editor, viewer = ROLE_PERMISSIONS["SYSTEM_EDITOR"], ROLE_PERMISSIONS["SYSTEM_VIEWER"]
    for permission in ("system.users.list", "system.users.get", "system.users.tokens.list"):
        assert permission not in editor and permission in viewer, permission
    assert "system.users.search" in editor and "system.users.search" in viewer
    assert "organization.users.list" in editor  # an organization's members, as its owner


@pytest.mark.parametrize(
    "path",
    [UA, "{ua}/{seq}", "{ua}/{seq}/permissions", "{ua}/admin-count", "{ua}/inactive"],
)
async def test_an_editor_is_refused_the_user_administration(
    client: httpx.AsyncClient, world: World, path: str
) -> None:
    editor, auth = await _editor(world)
    r = await client.get(path.format(ua=UA, seq=editor.seq), headers=auth)
    body = unleash_error(r, 403, "PermissionError", NEEDS_ADMIN)
    assert body["permissions"] == ["ADMIN"]


async def test_an_editor_finds_everyone_by_name(client: httpx.AsyncClient, world: World) -> None:
    _, auth = await _editor(world)
    loner = await world.user("loner@example.com", "Lone Wolf", email="loner@example.com")
    r = await client.get(f"{UA}/search", headers=auth, params={"q": "lone"})
    assert r.status_code == 200
    assert [u["id"] for u in r.json()] == [loner.seq]  # in no organization, found all the same
    assert spec.errors("usersSearchSchema", r.json()) == []
    access = (await client.get(f"{UA}/access", headers=auth)).json()
    assert loner.seq in [u["id"] for u in access["users"]]


async def test_a_viewer_finds_only_their_organizations(
    client: httpx.AsyncClient, world: World
) -> None:
    viewer = await world.user("vi@example.com", "Vi", email="vi@example.com")
    await world.user("lonely@example.com", "Lonely", email="lonely@example.com")
    auth = {"Authorization": await world.token(viewer)}
    r = await client.get(f"{UA}/search", headers=auth, params={"q": "lonely"})
    assert r.status_code == 200 and r.json() == []
    access = (await client.get(f"{UA}/access", headers=auth)).json()
    assert [u["id"] for u in access["users"]] == [viewer.seq]


async def test_the_editors_me_lists_unleashs_editor_permissions(
    client: httpx.AsyncClient, world: World
) -> None:
    _, auth = await _editor(world)
    r = await client.get(ME, headers=auth)
    assert r.status_code == 200
    assert spec.errors("meSchema", r.json()) == []

    def key(p: dict[str, str]) -> tuple[str, ...]:
        return (p["permission"], p.get("project", ""), p.get("environment", ""))

    got = sorted(r.json()["permissions"], key=key)
    assert got == sorted(recorded("me.get.editor_pat")["permissions"], key=key)


async def test_unleashs_default_project(client: httpx.AsyncClient, world: World) -> None:
    auth = await admin_token(world)
    profile = await client.get(f"{ME}/profile", headers=auth)
    assert profile.json()["projects"] == ["default"]
    for project in ("default", "nope"):
        r = await client.get(f"{ME}/roles", headers=auth, params={"projectId": project})
        assert r.status_code == 200
        assert r.json() == recorded("me.roles.admin_pat")  # the root role in `default`
        assert spec.errors("rolesSchema", r.json()) == []


@pytest.mark.parametrize(
    "raw", ["-1", "1e9", "0", "-0", "%2B999999999", "0x7fffffff", "1e30", "99999999999999999999"]
)
async def test_ids_javascript_reads_as_numbers_name_no_user(
    client: httpx.AsyncClient, world: World, raw: str
) -> None:
    auth = await admin_token(world)
    r = await client.get(f"{UA}/{raw}", headers=auth)
    unleash_error(r, 404, "NotFoundError", "No user found")


@pytest.mark.parametrize("raw", ["abc", "1.5", "1e400", "Infinity", "0x", "1_0"])
async def test_ids_that_are_no_integer_are_400(
    client: httpx.AsyncClient, world: World, raw: str
) -> None:
    auth = await admin_token(world)
    r = await client.get(f"{UA}/{raw}", headers=auth)
    body = unleash_error(r, 400, "BadDataError")
    assert [d["path"] for d in body["details"]] == ["/params/id"]


async def test_an_id_in_another_notation_is_the_same_user(
    client: httpx.AsyncClient, world: World
) -> None:
    auth = await admin_token(world)
    user = await world.user("seven@example.com", "Seven", email="seven@example.com")
    for raw in (f"{user.seq}e0", f"{user.seq}.0", hex(user.seq)):
        r = await client.get(f"{UA}/{raw}", headers=auth)
        assert r.status_code == 200 and r.json()["id"] == user.seq, raw


@pytest.mark.parametrize("password", [5, True, None, 1.5])
async def test_a_password_that_is_no_string_is_a_wrong_password(
    client: httpx.AsyncClient, world: World, password: Any
) -> None:
    await world.user("signer", "Signer")
    r = await client.post(LOGIN, json={"username": "signer", "password": password})
    unleash_error(r, 401, "PasswordMismatch", SIGN_IN_REFUSED)
    assert "unleash-session" not in r.headers.get("set-cookie", "")


async def test_an_empty_sign_in_names_the_username_only(client: httpx.AsyncClient) -> None:
    r = await client.post(LOGIN, json={})
    body = unleash_error(r, 400, "BadDataError")
    assert body["details"] == recorded("login.empty_object")["details"]


async def test_a_put_without_body_is_refused_before_its_id(
    client: httpx.AsyncClient, world: World
) -> None:
    auth = await admin_token(world)
    for path in (f"{UA}/search", f"{UA}/abc/change-password"):
        method = "PUT" if path.endswith("search") else "POST"
        r = await client.request(method, path, headers=auth)
        unleash_error(r, 415, "ContentTypeError")
    r = await client.put(f"{UA}/abc", headers=auth, json={"name": "x"})
    assert [d["path"] for d in unleash_error(r, 400, "BadDataError")["details"]] == ["/params/id"]


async def test_put_feedback_without_an_id_is_no_route(
    client: httpx.AsyncClient, world: World
) -> None:
    auth = await admin_token(world)
    r = await client.put("/api/admin/feedback", headers=auth, json={"feedbackId": "pnps"})
    unleash_error(r, 404, "NotFoundError", part="/api/admin/feedback")
    me = (await client.get(ME, headers=auth)).json()
    assert me["feedback"] == []
