"""GET /tenantry/v1/audit: rendering, filters, keyset pagination, permissions, bad input."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
from sqlalchemy import delete

from tenantry.db.models import AuditEvent
from tenantry.directory.audit_log import decode_cursor, encode_cursor
from tests.factories import World, bearer

URL = "/tenantry/v1/audit"
T0 = datetime(2026, 1, 1, tzinfo=UTC)


def assert_problem(r: httpx.Response, status: int) -> dict[str, Any]:
    assert r.status_code == status, r.text
    assert r.headers["content-type"].startswith("application/problem+json")
    body: dict[str, Any] = r.json()
    assert body["status"] == status and body["requestId"] == r.headers["x-request-id"]
    return body


async def add_events(world: World, *events: dict[str, Any], clear: bool = True) -> list[int]:
    """Insert events as given (defaults: action "test.event", at T0 + i minutes)."""
    async with world.database.transaction() as db:
        if clear:
            await db.execute(delete(AuditEvent))
        rows = [
            AuditEvent(
                **({"action": "test.event", "at": T0 + timedelta(minutes=i), "details": {}} | e)
            )
            for i, e in enumerate(events)
        ]
        db.add_all(rows)
        await db.flush()
        return [r.id for r in rows]


async def fetch(
    client: httpx.AsyncClient, token: str, **params: Any
) -> tuple[list[dict[str, Any]], str | None]:
    r = await client.get(URL, params=params, headers=bearer(token))
    assert r.status_code == 200, r.text
    body = r.json()
    assert set(body) == {"events", "nextCursor"}
    return body["events"], body["nextCursor"]


async def admin_token(world: World, client: httpx.AsyncClient) -> str:
    """A SYSTEM_ADMIN token, already used once (its "token.first_use" event is behind us)."""
    token = await world.token(await world.admin())
    assert (await client.get("/tenantry/v1/roles", headers=bearer(token))).status_code == 200
    return token


async def test_events_render_with_request_context(client: httpx.AsyncClient, world: World) -> None:
    admin = await world.admin()
    token = await world.token(admin)
    r = await client.post(
        "/tenantry/v1/users",
        json={"username": "grace@navy.mil"},
        headers=bearer(token) | {"x-request-id": "req-audit-1"},
    )
    assert r.status_code == 201
    events, cursor = await fetch(client, token, action="user.create", target=r.json()["id"])
    assert cursor is None and len(events) == 1
    event = events[0]
    assert set(event) == {
        "id",
        "at",
        "actorType",
        "actorId",
        "action",
        "targetType",
        "targetId",
        "organizationId",
        "requestId",
        "ip",
        "details",
    }
    assert event["actorType"] == "user" and event["actorId"] == admin.id
    assert event["targetType"] == "user" and event["targetId"] == r.json()["id"]
    assert event["requestId"] == "req-audit-1" and event["ip"] == "127.0.0.1"
    assert event["organizationId"] is None and isinstance(event["id"], int)
    at = datetime.strptime(event["at"], "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)
    assert abs(at - datetime.now(UTC)) < timedelta(minutes=1)


async def test_filters(client: httpx.AsyncClient, world: World) -> None:
    token = await admin_token(world, client)
    ids = await add_events(
        world,
        {
            "action": "auth.login.success",
            "actor_id": "ca",
            "target_type": "user",
            "target_id": "u1",
        },
        {"action": "auth.logout", "actor_id": "cb", "target_type": "token", "target_id": "t1"},
        {"action": "user.system_roles.set", "actor_id": "ca", "target_id": "u1"},
        {"action": "userXsystem.other", "actor_id": "ca", "organization_id": "o1"},
        {"action": "organization.update", "organization_id": "o1", "details": {"k": "v"}},
        {"action": "authz", "organization_id": "o2"},
    )

    async def ids_for(**params: Any) -> list[int]:
        events, _ = await fetch(client, token, **params)
        return [e["id"] for e in events]

    assert await ids_for() == ids[::-1]  # newest first
    assert await ids_for(actor="ca") == [ids[3], ids[2], ids[0]]
    assert await ids_for(action="auth.logout") == [ids[1]]
    assert await ids_for(action="auth.*") == [ids[1], ids[0]]
    assert await ids_for(action="auth*") == [ids[5], ids[1], ids[0]]
    assert await ids_for(action="*") == ids[::-1]
    assert await ids_for(action="auth") == []  # exact unless it ends with '*'
    # '_' and '%' in a prefix are literal characters, not SQL wildcards
    assert await ids_for(action="user.*") == [ids[2]]
    assert await ids_for(action="user_*") == []
    assert await ids_for(action="%*") == []
    assert await ids_for(target="u1") == [ids[2], ids[0]]
    assert await ids_for(targetType="token") == [ids[1]]
    assert await ids_for(organization="o1") == [ids[4], ids[3]]
    assert await ids_for(organization="o1", actor="ca") == [ids[3]]
    # since is inclusive, until exclusive; offsets are honoured
    assert await ids_for(since="2026-01-01T00:02:00Z") == [ids[5], ids[4], ids[3], ids[2]]
    assert await ids_for(until="2026-01-01T00:02:00Z") == [ids[1], ids[0]]
    assert await ids_for(since="2026-01-01T01:01:00+01:00", until="2026-01-01T00:03:00.5Z") == [
        ids[3],
        ids[2],
        ids[1],
    ]
    assert await ids_for(since="2026-01-01t00:04:59.9999999z") == [ids[5]]
    events, _ = await fetch(client, token, organization="o1", action="organization.update")
    assert events[0]["details"] == {"k": "v"} and events[0]["at"] == "2026-01-01T00:04:00Z"


async def test_keyset_pagination(client: httpx.AsyncClient, world: World) -> None:
    token = await admin_token(world, client)
    ids = await add_events(world, *({"action": f"page.{i}"} for i in range(25)))
    seen: list[int] = []
    cursor: str | None = None
    sizes = []
    while True:
        params: dict[str, Any] = {"limit": 10} | ({"cursor": cursor} if cursor else {})
        events, cursor = await fetch(client, token, **params)
        sizes.append(len(events))
        seen += [e["id"] for e in events]
        if cursor is None:
            break
        # Events recorded while paging do not shift later pages (keyset, not offset).
        await add_events(world, {"action": "page.new"}, clear=False)
    assert sizes == [10, 10, 5]
    assert seen == ids[::-1]
    exact, cursor = await fetch(client, token, limit=2, action="page.new")
    assert len(exact) == 2 and cursor is None  # a full last page has no next cursor
    first, cursor = await fetch(client, token, limit=1)
    assert cursor is not None and str(first[0]["id"]) not in cursor  # opaque
    assert decode_cursor(cursor) == first[0]["id"]
    default, _ = await fetch(client, token)
    assert len(default) == 27  # the default limit (100) covers everything here


async def test_limit_bounds(client: httpx.AsyncClient, world: World) -> None:
    token = await admin_token(world, client)
    await add_events(world, *({} for _ in range(3)))
    assert len((await fetch(client, token, limit=1))[0]) == 1
    assert len((await fetch(client, token, limit=1000))[0]) == 3


MALFORMED: list[dict[str, Any]] = [
    {"since": "yesterday"},
    {"since": "2026-01-01"},
    {"since": "2026-01-01T00:00:00"},  # no offset
    {"until": "2026-13-01T00:00:00Z"},
    {"until": "0000-01-01T00:00:00Z"},
    {"until": "9999-12-31T23:59:59-23:59"},
    {"since": "2026-01-02T00:00:00Z", "until": "2026-01-01T00:00:00Z"},
    {"since": "2026-01-01T00:00:00Z", "until": "2026-01-01T00:00:00Z"},
    {"since": "x" * 100},
    {"cursor": "garbage!"},
    {"cursor": "AAAA"},
    {"cursor": "YWUxOmFiYw"},  # "ae1:abc"
    {"cursor": "eDE6NQ"},  # "x1:5"
    {"cursor": "YWUxOi0x"},  # "ae1:-1"
    {"cursor": "YWUxOjA"},  # "ae1:0"
    {"cursor": "x" * 100},
    {"cursor": encode_cursor(2**63)},  # beyond any id
    {"limit": 0},
    {"limit": 1001},
    {"limit": "ten"},
    {"action": "auth.*.x"},
    {"action": "a*b"},
    {"action": ""},
    {"actor": "a\x00b"},
    {"target": "x" * 601},
    {"organization": "c" * 65},
]


async def test_malformed_filters_are_400(client: httpx.AsyncClient, world: World) -> None:
    """Each is a problem naming the offending field (one world for all: they are cheap)."""
    token = await admin_token(world, client)
    for params in MALFORMED:
        body = assert_problem(await client.get(URL, params=params, headers=bearer(token)), 400)
        fields = {e["field"] for e in body["errors"]}
        assert fields and fields <= {*params, "until"}, params


async def test_cursor_round_trip() -> None:
    for value in (1, 42, 2**63 - 1):
        assert decode_cursor(encode_cursor(value)) == value


async def test_system_auditors_read_everything(client: httpx.AsyncClient, world: World) -> None:
    org = await world.org("Gone")
    viewer = await world.user()
    await world.system_role(viewer, "SYSTEM_VIEWER")
    token = await world.token(viewer)
    admin_h = bearer(await admin_token(world, client))
    assert (await client.delete(f"/tenantry/v1/organizations/{org.id}", headers=admin_h)).is_success
    # The events of a deleted organization stay readable, by id.
    events, _ = await fetch(client, token, organization=org.id)
    assert {e["action"] for e in events} >= {"organization.create", "organization.delete"}
    everything, _ = await fetch(client, token)
    assert any(e["action"] == "user.create" for e in everything)


async def test_organization_owners_read_their_organization(
    client: httpx.AsyncClient, world: World
) -> None:
    org, other = await world.org("Mine"), await world.org("Theirs")
    _, owner_token = await world.member(org, "ORGANIZATION_OWNER")
    _, member_token = await world.member(org)
    await world.workspace(org, "mine")
    await world.workspace(other, "theirs")
    events, _ = await fetch(client, owner_token, organization=org.id)
    assert events and {e["organizationId"] for e in events} == {org.id}
    assert {"organization.create", "workspace.create"} <= {e["action"] for e in events}
    narrowed, _ = await fetch(client, owner_token, organization=org.id, action="workspace.*")
    assert [e["action"] for e in narrowed] == ["workspace.create"]
    # everything, or another organization's log, stays out of reach
    assert_problem(await client.get(URL, headers=bearer(owner_token)), 403)
    for org_id in (other.id, "cnope00000000000000000000", "not-an-id"):
        r = await client.get(URL, params={"organization": org_id}, headers=bearer(owner_token))
        assert_problem(r, 404)
    # a member sees the organization but may not audit it
    r = await client.get(URL, params={"organization": org.id}, headers=bearer(member_token))
    assert_problem(r, 403)
    assert_problem(await client.get(URL, headers=bearer(member_token)), 403)


async def test_requires_a_valid_token(client: httpx.AsyncClient, world: World) -> None:
    assert_problem(await client.get(URL), 401)
    assert_problem(await client.get(URL, headers=bearer("tnt_nope")), 401)
