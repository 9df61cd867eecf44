"""Rule: no existence oracle (issue 14, finding 9). A caller of organization A who names
organization B's real organization, workspace, deployment, user or token gets exactly the
answer a made-up id gets (status and body; request ids aside, and the ids themselves), through
native `check` and `who-can`, astro's and native's look-ups, astro's role replacement, ECE's
and Unleash's user look-ups; and what is listed is only what the caller may see: `who-can`
and `grantedBy` show grants at SYSTEM scope (the instance's administrators) only to callers
with system rights."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from tenantry.db.models import Organization, User
from tenantry.ids import new_id
from tests.factories import World, bearer

NATIVE = "/tenantry/v1"


@dataclass
class Tenants:
    org_a: Organization
    owner: User
    owner_token: str
    member_token: str
    real: dict[str, str]  # B's ids
    made_up: dict[str, str]

    @property
    def ids(self) -> list[str]:
        return [self.org_a.id, *self.real.values(), *self.made_up.values()]


async def tenants(world: World) -> Tenants:
    org_a = await world.org("Alpha")
    owner, owner_token = await world.member(org_a, "ORGANIZATION_OWNER")
    _, member_token = await world.member(org_a)
    org_b = await world.org("Bravo")
    ws_b = await world.workspace(org_b, "bravo-ws")
    dep_b = await world.deployment(ws_b, "bravo-dep")
    member_b, _ = await world.member(org_b, username="bee@example.com")
    token_b = await world.api_token(org_b)
    real = {
        "org": org_b.id,
        "ws": ws_b.id,
        "dep": dep_b.id,
        "user": member_b.id,
        "token": token_b.id,
        "name": "bee@example.com",
        "seq": str(member_b.seq),
    }
    made_up = {key: new_id() for key in real} | {"name": "nobody@example.com", "seq": "987654"}
    return Tenants(org_a, owner, owner_token, member_token, real, made_up)


def comparable(r: httpx.Response, ids: list[str]) -> tuple[int, str]:
    """The status and body without request ids (astro's and native's requestId, Unleash's
    error id), each named id replaced by <id>."""
    body: Any = r.json()
    if isinstance(body, dict):
        body = {k: v for k, v in body.items() if k not in ("requestId", "id")}
    text = json.dumps(body, sort_keys=True)
    for value in sorted(ids, key=len, reverse=True):
        text = text.replace(value, "<id>")
    return r.status_code, text


async def same_answer(
    client: httpx.AsyncClient,
    t: Tenants,
    send: Any,
) -> tuple[int, str]:
    """`send(ids)` with B's real ids and with made-up ones: the two answers, compared."""
    real = comparable(await send(t.real), t.ids)
    fake = comparable(await send(t.made_up), t.ids)
    assert real == fake, f"B's real ids answer {real}, made-up ones {fake}"
    return real


SCOPES = [
    ("ORGANIZATION", "org", {}),
    ("WORKSPACE", "ws", {}),
    ("DEPLOYMENT", "dep", {}),
    ("DAG", "dep", {"dagId": "etl"}),
    ("DAG", "dep", {}),  # without its dagId: still the 404 of a missing deployment
    ("DAG_TAG", "dep", {"dagTag": "team-a"}),
]


@pytest.mark.parametrize("question", ["check", "who-can"])
@pytest.mark.parametrize(("kind", "key", "extra"), SCOPES)
@pytest.mark.parametrize("caller", ["owner", "member"])
async def test_a_foreign_scope_answers_like_a_made_up_one(
    client: httpx.AsyncClient,
    world: World,
    question: str,
    kind: str,
    key: str,
    extra: dict[str, str],
    caller: str,
) -> None:
    t = await tenants(world)
    token = t.owner_token if caller == "owner" else t.member_token

    async def send(ids: dict[str, str]) -> httpx.Response:
        body: dict[str, Any] = {
            "permission": "deployment.get",
            "scope": {"type": kind, "id": ids[key], **extra},
        }
        if question == "check":  # about oneself: always allowed, were the scope one's own
            body["subject"] = {"type": "user", "id": t.owner.id}
        return await client.post(f"{NATIVE}/{question}", json=body, headers=bearer(token))

    status, text = await same_answer(client, t, send)
    assert status == 404 and "not found" in json.loads(text)["detail"]


@pytest.mark.parametrize("subject", ["user", "token"])
async def test_a_foreign_subject_answers_like_a_made_up_one(
    client: httpx.AsyncClient, world: World, subject: str
) -> None:
    """A's owner may ask about A's members and tokens at A's scopes; B's answer as made up."""
    t = await tenants(world)

    async def send(ids: dict[str, str]) -> httpx.Response:
        body = {
            "subject": {"type": subject, "id": ids[subject]},
            "permission": "organization.get",
            "scope": {"type": "ORGANIZATION", "id": t.org_a.id},
        }
        return await client.post(f"{NATIVE}/check", json=body, headers=bearer(t.owner_token))

    status, text = await same_answer(client, t, send)
    assert status == 404 and json.loads(text)["detail"] == "subject not found"


ASTRO_LOOKUPS = [
    "/v1/organizations/{org}",
    "/v1/organizations/{org}/users",
    "/v1/organizations/{org}/users/{user}",
    "/v1/organizations/{own}/users/{user}",
    "/v1/organizations/{org}/workspaces",
    "/v1/organizations/{org}/workspaces/{ws}",
    "/v1/organizations/{own}/workspaces/{ws}",
    "/v1/organizations/{org}/deployments/{dep}",
    "/v1/organizations/{own}/deployments/{dep}",
    "/v1/organizations/{org}/tokens/{token}",
    "/v1/organizations/{own}/tokens/{token}",
    "/iam/v1beta1/organizations/{org}/users/{user}",
    "/platform/v1beta1/organizations/{own}/workspaces/{ws}",
]
# Astro's ListUsers and ListWorkspaces document 403 and no 404 (tests/faces/astro/
# test_documented_errors.py): there an organization you cannot reach is 403, made-up or real.
NOT_YOURS = {"/v1/organizations/{org}/users": 403, "/v1/organizations/{org}/workspaces": 403}
NATIVE_LOOKUPS = [
    f"{NATIVE}/organizations/{{org}}",
    f"{NATIVE}/users/{{user}}",
    f"{NATIVE}/users/{{user}}/permissions",
    f"{NATIVE}/users/{{user}}/tokens",
]


@pytest.mark.parametrize("template", ASTRO_LOOKUPS + NATIVE_LOOKUPS)
async def test_a_foreign_object_is_looked_up_like_a_made_up_one(
    client: httpx.AsyncClient, world: World, template: str
) -> None:
    t = await tenants(world)

    async def send(ids: dict[str, str]) -> httpx.Response:
        path = template.format(own=t.org_a.id, **ids)
        return await client.get(path, headers=bearer(t.owner_token))

    status, _ = await same_answer(client, t, send)
    assert status == NOT_YOURS.get(template, 404)


@pytest.mark.parametrize("body", [{}, {"organizationRole": "ORGANIZATION_MEMBER"}])
async def test_roles_for_a_foreign_user_answer_like_a_made_up_one(
    client: httpx.AsyncClient, world: World, body: dict[str, str]
) -> None:
    """Astro's role replacement used to make any user of the instance a member of the
    owner's organization (200) where a made-up id got 404: it now changes nothing."""
    t = await tenants(world)

    async def send(ids: dict[str, str]) -> httpx.Response:
        path = f"/v1/organizations/{t.org_a.id}/users/{ids['user']}/roles"
        return await client.post(path, json=body, headers=bearer(t.owner_token))

    status, text = await same_answer(client, t, send)
    assert status == 404 and json.loads(text)["message"] == "user not found"
    listed = await client.get(
        f"/v1/organizations/{t.org_a.id}/users", headers=bearer(t.owner_token)
    )
    assert listed.json()["totalCount"] == 2  # the owner and the member only


@pytest.mark.parametrize(
    ("method", "template"),
    [
        ("GET", "/api/v1/users/{name}"),
        ("GET", "/api/admin/user-admin/{seq}"),
    ],
)
async def test_ece_and_unleash_look_up_users_alike(
    client: httpx.AsyncClient, world: World, method: str, template: str
) -> None:
    """Their users are the instance's: a caller without system rights gets the same answer
    for an existing user as for an unknown one."""
    t = await tenants(world)

    async def send(ids: dict[str, str]) -> httpx.Response:
        path = template.format(**ids)
        scheme = "ApiKey " if path.startswith("/api/v1") else ""
        headers = {"Authorization": scheme + t.member_token}
        return await client.request(method, path, headers=headers)

    status, _ = await same_answer(client, t, send)
    assert status in (403, 404)


async def _holders(client: httpx.AsyncClient, token: str, org_id: str) -> list[dict[str, str]]:
    body = {"permission": "organization.get", "scope": {"type": "ORGANIZATION", "id": org_id}}
    r = await client.post(f"{NATIVE}/who-can", json=body, headers=bearer(token))
    assert r.status_code == 200, r.text
    holders: list[dict[str, str]] = r.json()["holders"]
    return holders


async def test_who_can_lists_system_administrators_to_system_callers_only(
    client: httpx.AsyncClient, world: World
) -> None:
    t = await tenants(world)
    admin = await world.admin()
    owners = await _holders(client, t.owner_token, t.org_a.id)
    assert t.owner.id in {h["subjectId"] for h in owners}
    assert admin.id not in {h["subjectId"] for h in owners}
    assert all(h["scopeKey"] != "SYSTEM" for h in owners)
    operators = await _holders(client, await world.token(admin), t.org_a.id)
    assert {"subjectType": "user", "subjectId": admin.id, "scopeKey": "SYSTEM"}.items() <= next(
        h for h in operators if h["subjectId"] == admin.id
    ).items()
    assert [h for h in operators if h["scopeKey"] != "SYSTEM"] == owners


async def test_granted_by_shows_system_grants_to_system_callers_and_oneself(
    client: httpx.AsyncClient, world: World
) -> None:
    """An owner asking about a member who is also an instance administrator learns whether
    they may (`allowed`), but not through which SYSTEM grant."""
    t = await tenants(world)
    member, member_token = await world.member(t.org_a)
    await world.system_role(member, "SYSTEM_ADMIN")
    body = {
        "subject": {"type": "user", "id": member.id},
        "permission": "organization.update",
        "scope": {"type": "ORGANIZATION", "id": t.org_a.id},
    }
    as_owner = await client.post(f"{NATIVE}/check", json=body, headers=bearer(t.owner_token))
    assert as_owner.json() == {"allowed": True, "grantedBy": []}
    as_self = await client.post(f"{NATIVE}/check", json=body, headers=bearer(member_token))
    assert as_self.json()["allowed"] is True
    assert [g["role"] for g in as_self.json()["grantedBy"]] == ["SYSTEM_ADMIN"]
