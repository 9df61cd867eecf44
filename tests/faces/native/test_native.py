"""Native face: system users, organizations, personal tokens, check/who-can, roles, healthz."""

from __future__ import annotations

import httpx
import pytest
from sqlalchemy import func, select

from tenantry.db.models import Token, User
from tenantry.directory.members import DagRole
from tenantry.identity.tokens import digest
from tenantry.identity.usage import recorder
from tests.faces.errors import BAD_TOKEN, astro_error
from tests.factories import World, bearer

V = "/tenantry/v1"


def assert_problem(r: httpx.Response, status: int) -> dict[str, object]:
    assert r.status_code == status, r.text
    assert r.headers["content-type"].startswith("application/problem+json")
    body: dict[str, object] = r.json()
    assert body["status"] == status and body["type"] == "about:blank"
    assert isinstance(body["detail"], str) and body["requestId"] == r.headers["x-request-id"]
    return body


async def test_healthz_answers_when_the_database_does(client: httpx.AsyncClient) -> None:
    r = await client.get("/healthz")
    assert r.status_code == 200 and r.json() == {"status": "ok"}


async def test_user_lifecycle(client: httpx.AsyncClient, world: World) -> None:
    admin = await world.admin()
    h = bearer(await world.token(admin))
    r = await client.post(
        f"{V}/users", json={"username": "Grace@Navy.mil", "fullName": "Grace"}, headers=h
    )
    assert r.status_code == 201, r.text
    created = r.json()
    assert created["username"] == "Grace@Navy.mil" and created["email"] == "Grace@Navy.mil"
    assert created["id"].startswith("c") and len(created["id"]) == 25
    assert isinstance(created["seq"], int)
    dup = await client.post(f"{V}/users", json={"username": "grace@navy.MIL"}, headers=h)
    assert_problem(dup, 409)
    r = await client.patch(
        f"{V}/users/{created['id']}", json={"fullName": "Grace Hopper"}, headers=h
    )
    assert r.status_code == 200 and r.json()["fullName"] == "Grace Hopper"
    listed = await client.get(f"{V}/users?q=hopper", headers=h)
    assert [u["id"] for u in listed.json()["users"]] == [created["id"]]
    assert (await client.delete(f"{V}/users/{created['id']}", headers=h)).status_code == 204
    assert_problem(await client.get(f"{V}/users/{created['id']}", headers=h), 404)


async def test_plain_usernames_are_allowed(client: httpx.AsyncClient, world: World) -> None:
    h = bearer(await world.token(await world.admin()))
    r = await client.post(f"{V}/users", json={"username": "readonly"}, headers=h)
    assert r.status_code == 201 and r.json()["email"] is None


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"username": ""},
        {"username": "x", "extra": 1},
        {"username": "a\x00b"},
        {"username": "x" * 400},
        {"username": 5},
        [],
        "x",
    ],
)
async def test_create_user_rejects_bad_bodies(
    client: httpx.AsyncClient, world: World, body: object
) -> None:
    h = bearer(await world.token(await world.admin()))
    r = await client.post(f"{V}/users", json=body, headers=h)
    assert_problem(r, 400)
    async with world.database.transaction() as db:
        assert await db.scalar(select(func.count()).select_from(User)) == 1


async def test_non_admin_cannot_manage_users(client: httpx.AsyncClient, world: World) -> None:
    user = await world.user()
    other = await world.user()
    h = bearer(await world.token(user))
    assert_problem(await client.post(f"{V}/users", json={"username": "z@z.io"}, headers=h), 403)
    assert_problem(await client.get(f"{V}/users", headers=h), 403)
    assert_problem(await client.get(f"{V}/users/{other.id}", headers=h), 404)
    assert_problem(await client.delete(f"{V}/users/{other.id}", headers=h), 403)
    mine = await client.get(f"{V}/users/{user.id}", headers=h)
    assert mine.status_code == 200 and mine.json()["id"] == user.id


async def test_organizations(client: httpx.AsyncClient, world: World) -> None:
    admin = await world.admin()
    h = bearer(await world.token(admin))
    r = await client.post(f"{V}/organizations", json={"name": "Initech"}, headers=h)
    assert r.status_code == 201 and r.json()["name"] == "Initech"
    org = r.json()
    assert org["memberCount"] == 1  # the creator became its owner
    other = await world.org("Other")
    _member, member_token = await world.member(other)
    listed = await client.get(f"{V}/organizations", headers=bearer(member_token))
    assert [o["id"] for o in listed.json()["organizations"]] == [other.id]
    hidden = await client.get(f"{V}/organizations/{org['id']}", headers=bearer(member_token))
    assert_problem(hidden, 404)
    forbidden = await client.post(
        f"{V}/organizations", json={"name": "Mine"}, headers=bearer(member_token)
    )
    assert_problem(forbidden, 403)
    assert (await client.delete(f"{V}/organizations/{org['id']}", headers=h)).status_code == 204
    assert_problem(await client.get(f"{V}/organizations/{org['id']}", headers=h), 404)


async def test_personal_tokens(client: httpx.AsyncClient, world: World) -> None:
    user = await world.user()
    h = bearer(await world.token(user))
    r = await client.post(
        f"{V}/users/{user.id}/tokens", json={"name": "ci", "expiresInDays": 7}, headers=h
    )
    assert r.status_code == 201, r.text
    secret = r.json()["token"]
    assert secret.startswith("tnt_") and len(secret) >= 4 + 22  # >= 128 bits of base64
    async with world.database.transaction() as db:
        stored = await db.scalar(select(Token).where(Token.id == r.json()["id"]))
        assert stored is not None and stored.digest == digest(secret)
        assert secret not in {stored.digest, stored.short_token, stored.name}
    me = await client.get("/v1/users/self", headers=bearer(secret))
    assert me.status_code == 200 and me.json()["id"] == user.id
    await recorder(world.database).flush()  # the reading request only queued its use
    listed = await client.get(f"{V}/users/{user.id}/tokens", headers=h)
    assert all("token" not in t for t in listed.json()["tokens"])
    used = next(t for t in listed.json()["tokens"] if t["id"] == r.json()["id"])
    assert used["lastUsedAt"] is not None
    assert (await client.delete(f"{V}/tokens/{r.json()['id']}", headers=h)).status_code == 204
    astro_error(await client.get("/v1/users/self", headers=bearer(secret)), 401, BAD_TOKEN)


async def test_cannot_mint_tokens_for_others(client: httpx.AsyncClient, world: World) -> None:
    user, other = await world.user(), await world.user()
    r = await client.post(
        f"{V}/users/{other.id}/tokens", json={}, headers=bearer(await world.token(user))
    )
    assert_problem(r, 404)
    async with world.database.transaction() as db:
        count = await db.scalar(
            select(func.count()).select_from(Token).where(Token.user_id == other.id)
        )
    assert count == 0


async def test_check_explains_the_granting_bindings(
    client: httpx.AsyncClient, world: World
) -> None:
    org = await world.org()
    ws = await world.workspace(org)
    dep = await world.deployment(ws)
    user = await world.user()
    await world.roles(
        org,
        user,
        workspaces=[(ws.id, "WORKSPACE_AUTHOR")],
        dags=[DagRole(dep.id, "DAG_VIEWER", dag_tag="team-a")],
    )
    h = bearer(await world.token(user))

    async def check(permission: str, scope: dict[str, object]) -> dict[str, object]:
        body = {
            "subject": {"type": "user", "id": user.id},
            "permission": permission,
            "scope": scope,
        }
        r = await client.post(f"{V}/check", json=body, headers=h)
        assert r.status_code == 200, r.text
        result: dict[str, object] = r.json()
        return result

    yes = await check("deployment.airflow.dag.update", {"type": "DEPLOYMENT", "id": dep.id})
    assert yes["allowed"] is True
    granted = yes["grantedBy"]
    assert isinstance(granted, list)
    assert [g["role"] for g in granted] == ["WORKSPACE_AUTHOR"]
    no = await check("deployment.update", {"type": "DEPLOYMENT", "id": dep.id})
    assert no == {"allowed": False, "grantedBy": []}
    dag = await check(
        "deployment.airflow.dag.get",
        {"type": "DAG", "id": dep.id, "dagId": "etl", "dagTags": ["team-a"]},
    )
    granted = dag["grantedBy"]
    assert isinstance(granted, list)
    assert {g["role"] for g in granted} == {"WORKSPACE_AUTHOR", "DAG_VIEWER"}
    bad = await client.post(
        f"{V}/check",
        json={
            "subject": {"type": "user", "id": user.id},
            "permission": "nope.fly",
            "scope": {"type": "SYSTEM"},
        },
        headers=h,
    )
    assert_problem(bad, 400)


async def test_check_about_others_needs_rights(client: httpx.AsyncClient, world: World) -> None:
    org = await world.org()
    _, member_token = await world.member(org)
    owner, owner_token = await world.member(org, "ORGANIZATION_OWNER")
    body = {
        "subject": {"type": "user", "id": owner.id},
        "permission": "organization.update",
        "scope": {"type": "ORGANIZATION", "id": org.id},
    }
    assert_problem(await client.post(f"{V}/check", json=body, headers=bearer(member_token)), 404)
    r = await client.post(f"{V}/check", json=body, headers=bearer(owner_token))
    assert r.json()["allowed"] is True


async def test_who_can_and_effective(client: httpx.AsyncClient, world: World) -> None:
    org = await world.org()
    ws = await world.workspace(org)
    owner, token = await world.member(org, "ORGANIZATION_OWNER")
    writer = await world.user()
    await world.roles(org, writer, workspaces=[(ws.id, "WORKSPACE_OWNER")])
    reader = await world.user()
    await world.roles(org, reader, workspaces=[(ws.id, "WORKSPACE_MEMBER")])
    r = await client.post(
        f"{V}/who-can",
        json={"permission": "workspace.update", "scope": {"type": "WORKSPACE", "id": ws.id}},
        headers=bearer(token),
    )
    assert r.status_code == 200, r.text
    holders = {(h["subjectId"], h["role"]) for h in r.json()["holders"]}
    assert holders == {(owner.id, "ORGANIZATION_OWNER"), (writer.id, "WORKSPACE_OWNER")}
    mine = await client.get(
        f"{V}/users/{reader.id}/permissions", headers=bearer(await world.token(reader))
    )
    perms = {(p["permission"], p["scopeKey"]) for p in mine.json()["permissions"]}
    assert ("workspace.get", f"WORKSPACE:{ws.id}") in perms
    assert not any(p == "workspace.update" for p, _ in perms)


async def _who_can_pages(
    client: httpx.AsyncClient, token: str, body: dict[str, object], limit: int
) -> list[list[dict[str, str]]]:
    pages: list[list[dict[str, str]]] = []
    cursor: str | None = None
    while True:
        page_body = {**body, "limit": limit} | ({"cursor": cursor} if cursor else {})
        r = await client.post(f"{V}/who-can", json=page_body, headers=bearer(token))
        assert r.status_code == 200, r.text
        pages.append(r.json()["holders"])
        cursor = r.json()["nextCursor"]
        if cursor is None:
            return pages
        assert len(pages) < 50, "paging does not end"


async def test_who_can_pages_through_every_holder_once(
    client: httpx.AsyncClient, world: World
) -> None:
    """Keyset pages in one order, memberships and bindings merged; a page boundary may fall
    between two grants of one subject."""
    org = await world.org()
    ws = await world.workspace(org)
    owner, token = await world.member(org, "ORGANIZATION_OWNER")
    await world.roles(org, owner, "ORGANIZATION_OWNER", workspaces=[(ws.id, "WORKSPACE_OWNER")])
    for _ in range(6):
        await world.roles(org, await world.user(), workspaces=[(ws.id, "WORKSPACE_MEMBER")])
    body: dict[str, object] = {
        "permission": "workspace.get",
        "scope": {"type": "WORKSPACE", "id": ws.id},
    }
    (whole,) = await _who_can_pages(client, token, body, 1000)
    assert len(whole) == 8  # six members, and the owner twice (organization, workspace)
    keys = [(h["subjectType"], h["subjectId"], h["scopeKey"], h["role"]) for h in whole]
    assert keys == sorted(keys) and len(set(keys)) == 8
    for limit in (1, 3, 7):
        pages = await _who_can_pages(client, token, body, limit)
        assert [h for page in pages for h in page] == whole
        assert all(len(page) == limit for page in pages[:-1]) and 0 < len(pages[-1]) <= limit


@pytest.mark.parametrize(
    "extra", [{"limit": 0}, {"limit": 10_001}, {"cursor": "nope"}, {"cursor": "WzEsMl0"}]
)
async def test_who_can_rejects_bad_pages(
    client: httpx.AsyncClient, world: World, extra: dict[str, object]
) -> None:
    org = await world.org()
    _, token = await world.member(org, "ORGANIZATION_OWNER")
    body = {"permission": "organization.get", "scope": {"type": "ORGANIZATION", "id": org.id}}
    r = await client.post(f"{V}/who-can", json=body | extra, headers=bearer(token))
    assert r.status_code == 400, r.text
    problem = r.json()
    assert problem["status"] == 400 and problem["instance"] == f"{V}/who-can"
    assert {e["field"] for e in problem["errors"]} & {"limit", "cursor", "body.limit"}


async def test_roles_catalogue(client: httpx.AsyncClient, world: World) -> None:
    r = await client.get(f"{V}/roles", headers=bearer(await world.token(await world.user())))
    roles = {x["name"]: x for x in r.json()["roles"]}
    assert len(roles) == 17 and roles["DAG_VIEWER"]["scopeType"] == "DAG"
    assert "organization.users.roles.update" in roles["ORGANIZATION_OWNER"]["permissions"]
    assert "organization.users.roles.update" not in roles["ORGANIZATION_MEMBER"]["permissions"]


async def test_disabled_user_token_is_refused(client: httpx.AsyncClient, world: World) -> None:
    admin_h = bearer(await world.token(await world.admin()))
    user = await world.user()
    token = await world.token(user)
    assert (await client.get("/v1/users/self", headers=bearer(token))).status_code == 200
    r = await client.patch(f"{V}/users/{user.id}", json={"enabled": False}, headers=admin_h)
    assert r.status_code == 200
    astro_error(await client.get("/v1/users/self", headers=bearer(token)), 401, BAD_TOKEN)


@pytest.mark.parametrize(
    ("path", "content"),
    [
        (f"{V}/users", '{"username": "nul@x.io", "fullName": "a\\u0000b"}'),
        (f"{V}/users?q=a%00b", None),
        (f"{V}/organizations", '{"name": "' + "\\" * 3 + 'u0000"}'),
    ],
)
async def test_nul_characters_are_refused_everywhere(
    client: httpx.AsyncClient, world: World, path: str, content: str | None
) -> None:
    h = bearer(await world.token(await world.admin()))
    if content is None:
        r = await client.get(path, headers=h)
    else:
        r = await client.post(
            path, content=content, headers=h | {"content-type": "application/json"}
        )
    assert_problem(r, 400)
    async with world.database.transaction() as db:
        assert await db.scalar(select(func.count()).select_from(User)) == 1


async def test_escaped_backslashes_are_not_a_nul(client: httpx.AsyncClient, world: World) -> None:
    h = bearer(await world.token(await world.admin()))
    r = await client.post(
        f"{V}/users",
        content='{"username": "bs@x.io", "fullName": "C:\\\\u0000"}',
        headers=h | {"content-type": "application/json"},
    )
    assert r.status_code == 201 and r.json()["fullName"] == "C:\\u0000"


async def test_user_update_audits_what_changed(client: httpx.AsyncClient, world: World) -> None:
    from tenantry.db.models import AuditEvent

    h = bearer(await world.token(await world.admin()))
    user = await world.user(full_name="Old")
    r = await client.patch(
        f"{V}/users/{user.id}", json={"fullName": "New", "enabled": False}, headers=h
    )
    assert r.status_code == 200
    async with world.database.transaction() as db:
        event = await db.scalar(select(AuditEvent).where(AuditEvent.action == "user.update"))
    assert event is not None
    assert event.details == {"changed": {"full_name": ["Old", "New"], "enabled": [True, False]}}
