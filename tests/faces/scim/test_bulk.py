"""POST /Bulk (RFC 7644 §3.7): operations through the single-resource routes, bulkId
references (forward ones too), failOnErrors, versions, limits, malformed requests writing
nothing, and tenants kept apart."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from sqlalchemy import func, select

from tenantry.db.models import AuditEvent, Team, TeamMember, User
from tests.faces.scim.conftest import (
    ERROR,
    GROUP_SCHEMA,
    PATCH_OP,
    Idp,
    assert_scim_error,
    new_user,
)
from tests.factories import World

BULK_REQUEST = "urn:ietf:params:scim:api:messages:2.0:BulkRequest"
BULK_RESPONSE = "urn:ietf:params:scim:api:messages:2.0:BulkResponse"


def bulk(*operations: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return {"schemas": [BULK_REQUEST], "Operations": list(operations), **extra}


def post_user(bulk_id: str, username: str, **attributes: Any) -> dict[str, Any]:
    return {
        "method": "POST",
        "path": "/Users",
        "bulkId": bulk_id,
        "data": new_user(username, **attributes),
    }


def post_group(bulk_id: str, name: str, members: list[str]) -> dict[str, Any]:
    data = {
        "schemas": [GROUP_SCHEMA],
        "displayName": name,
        "members": [{"value": m} for m in members],
    }
    return {"method": "POST", "path": "/Groups", "bulkId": bulk_id, "data": data}


async def _send(idp: Idp, body: dict[str, Any]) -> list[dict[str, Any]]:
    r = await idp.post("/Bulk", body)
    assert r.status_code == 200, r.text
    assert r.headers["content-type"].startswith("application/scim+json")
    answer = r.json()
    assert answer["schemas"] == [BULK_RESPONSE]
    found: list[dict[str, Any]] = answer["Operations"]
    return found


async def _counts(world: World) -> tuple[int, int, int]:
    async with world.database.transaction(write=False) as db:
        users = await db.scalar(select(func.count()).select_from(User))
        teams = await db.scalar(select(func.count()).select_from(Team))
        members = await db.scalar(select(func.count()).select_from(TeamMember))
    return int(users or 0), int(teams or 0), int(members or 0)


async def test_a_group_references_a_user_created_later_in_the_request(
    idp: Idp, world: World
) -> None:
    # The group comes first and names the user by bulkId: the user's POST runs first.
    results = await _send(
        idp,
        bulk(
            post_group("g1", "Tour Guides", ["bulkId:u1"]),
            post_user("u1", "bjensen@example.com", displayName="Babs"),
            {
                "method": "PATCH",
                "path": "/Users/bulkId:u1",
                "data": {
                    "schemas": [PATCH_OP],
                    "Operations": [{"op": "replace", "path": "title", "value": "Guide"}],
                },
            },
        ),
    )
    assert [(r["method"], r.get("bulkId"), r["status"]) for r in results] == [
        ("POST", "g1", "201"),
        ("POST", "u1", "201"),
        ("PATCH", None, "200"),
    ]
    group_id = results[0]["location"].rsplit("/", 1)[-1]
    user_id = results[1]["location"].rsplit("/", 1)[-1]
    assert results[1]["location"].endswith(f"/scim/v2/Users/{user_id}")
    assert results[2]["location"] == results[1]["location"]
    assert all(r["version"].startswith('W/"') and "response" not in r for r in results)
    group = (await idp.get(f"/Groups/{group_id}")).json()
    assert [m["value"] for m in group["members"]] == [user_id]
    user = (await idp.get(f"/Users/{user_id}")).json()
    assert user["title"] == "Guide" and user["meta"]["version"] == results[2]["version"]
    assert [g["value"] for g in user["groups"]] == [group_id]
    async with world.database.transaction(write=False) as db:
        events = list(await db.scalars(select(AuditEvent)))
    done = {(e.action, e.target_id) for e in events}
    assert {("organization.user.provision", user_id), ("user.profile.set", user_id)} <= done
    assert any(e.target_id == group_id for e in events)
    # every operation's events have the SCIM token as actor
    assert {e.actor_type for e in events if e.target_id in (user_id, group_id)} == {"token"}


async def test_fail_on_errors_stops_after_that_many_errors(idp: Idp, world: World) -> None:
    await idp.create_user("taken@example.com")
    before = await _counts(world)
    operations = [
        post_user("a", "alice@example.com"),
        post_user("b", "taken@example.com"),  # 409 uniqueness
        post_group("g", "Team", ["bulkId:a", "00000000000000000000000000"]),  # 400
        post_user("c", "carol@example.com"),  # never run
    ]
    results = await _send(idp, bulk(*operations, failOnErrors=2))
    assert [(r["bulkId"], r["status"]) for r in results] == [
        ("a", "201"),
        ("b", "409"),
        ("g", "400"),
    ]
    assert results[1]["response"]["scimType"] == "uniqueness"
    assert results[1]["response"]["schemas"] == [ERROR]
    assert results[2]["response"]["scimType"] == "invalidValue"
    assert "location" not in results[1]
    # alice was created; the failed group and the unprocessed carol were not
    assert await _counts(world) == (before[0] + 1, before[1], before[2])
    found = (await idp.get("/Users", params={"filter": 'userName eq "carol@example.com"'})).json()
    assert found["totalResults"] == 0
    # Without failOnErrors every operation runs.
    results = await _send(idp, bulk(*operations[1:]))
    assert [r["status"] for r in results] == ["409", "409", "201"]
    assert "cannot be resolved" in results[1]["response"]["detail"]


async def test_version_is_if_match(idp: Idp) -> None:
    made = await idp.create_user("bjensen@example.com")
    path = f"/Users/{made['id']}"
    replace = {"method": "PUT", "path": path, "data": new_user("babs@example.com")}
    results = await _send(idp, bulk({**replace, "version": 'W/"0"'}))
    assert results[0]["status"] == "412" and results[0]["location"].endswith(path)
    assert results[0]["response"]["status"] == "412"
    assert (await idp.get(path)).json()["userName"] == "bjensen@example.com"
    results = await _send(idp, bulk({**replace, "version": made["meta"]["version"]}))
    assert results[0]["status"] == "200"
    now = (await idp.get(path)).json()
    assert now["userName"] == "babs@example.com" and results[0]["version"] == now["meta"]["version"]
    results = await _send(idp, bulk({"method": "DELETE", "path": path, "version": 'W/"0"'}))
    assert results[0]["status"] == "412"
    results = await _send(idp, bulk({"method": "DELETE", "path": path}))
    assert results[0]["status"] == "204"
    assert_scim_error(await idp.get(path), 404)


async def test_limits(idp: Idp, world: World) -> None:
    before = await _counts(world)
    # small operations, so that only their number is over a limit
    many = [{"method": "DELETE", "path": f"/Users/u{i}"} for i in range(1001)]
    r = await idp.post("/Bulk", bulk(*many))
    assert_scim_error(r, 413)
    assert "maxOperations" in r.json()["detail"]
    # The face's body limit (64 KiB in the tests) is bulk.maxPayloadSize.
    big = [post_user("x", "x@example.com", title="x" * 70_000)]
    assert_scim_error(await idp.post("/Bulk", bulk(*big)), 413)
    assert await _counts(world) == before


GOOD = post_user("ok", "ok@example.com")


@pytest.mark.parametrize(
    ("body", "scim_type"),
    [
        ([GOOD], "invalidSyntax"),
        (
            {"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"], "Operations": [GOOD]},
            "invalidSyntax",
        ),
        ({"schemas": [BULK_REQUEST], "Operations": {"method": "POST"}}, "invalidSyntax"),
        (bulk(GOOD, {**GOOD, "bulkId": "x", "method": "GET"}), "invalidValue"),
        (bulk(GOOD, {"method": "POST", "bulkId": "x", "data": {}}), "invalidPath"),
        (bulk(GOOD, {"method": "POST", "bulkId": "x", "path": "/Users"}), "invalidValue"),
        (bulk(GOOD, {"method": "POST", "bulkId": "x", "path": "/Bulk", "data": {}}), "invalidPath"),
        (bulk(GOOD, {"method": "DELETE", "path": "/Schemas/x"}), "invalidPath"),
        (bulk(GOOD, {"method": "DELETE", "path": "/Users/a/b"}), "invalidPath"),
        (bulk(GOOD, {"method": "PUT", "path": "/Users", "data": {}}), "invalidPath"),
        (bulk(GOOD, {**GOOD, "bulkId": None}), "invalidValue"),
        (bulk(GOOD, {**GOOD, "data": new_user("other@example.com")}), "uniqueness"),
        (bulk(GOOD, failOnErrors=0), "invalidValue"),
        (bulk(GOOD, failOnErrors="1"), "invalidValue"),
    ],
)
async def test_a_malformed_request_is_one_error_and_writes_nothing(
    idp: Idp, world: World, body: Any, scim_type: str
) -> None:
    before = await _counts(world)
    assert_scim_error(await idp.post("/Bulk", body), 400, scim_type)
    assert await _counts(world) == before


async def test_not_json_is_invalid_syntax(idp: Idp, client: httpx.AsyncClient) -> None:
    r = await client.post("/scim/v2/Bulk", content=b"{nope", headers=idp.headers())
    assert_scim_error(r, 400, "invalidSyntax")


async def test_another_organizations_user_is_not_found(
    idp: Idp, other_idp: Idp, world: World
) -> None:
    theirs = await other_idp.create_user("globex@example.com")
    path = f"/Users/{theirs['id']}"
    results = await _send(
        idp,
        bulk(
            {"method": "PUT", "path": path, "data": new_user("mine@example.com")},
            {"method": "DELETE", "path": path},
            post_group("g", "Mine", [theirs["id"]]),
        ),
    )
    assert [r["status"] for r in results] == ["404", "404", "400"]
    assert results[0]["response"]["schemas"] == [ERROR]
    assert (await other_idp.get(path)).json() == theirs
    assert (await _counts(world))[1] == 0


async def test_unresolvable_and_circular_references_are_conflicts(idp: Idp) -> None:
    results = await _send(
        idp,
        bulk(
            {"method": "DELETE", "path": "/Users/bulkId:nobody"},
            post_user("self", "self@example.com", externalId="bulkId:self"),
            post_group("g1", "One", ["bulkId:g2"]),
            post_group("g2", "Two", ["bulkId:g1"]),
        ),
    )
    statuses = {(r["method"], r.get("bulkId")): r for r in results}
    assert len(results) == 4
    for found in statuses.values():
        assert found["status"] == "409" and found["response"]["status"] == "409"
    assert "missing" in statuses[("DELETE", None)]["response"]["detail"]
    assert "circular" in statuses[("POST", "self")]["response"]["detail"]
    assert (await idp.get("/Groups")).json()["totalResults"] == 0


async def test_a_failed_operation_rolls_back_only_itself(idp: Idp, world: World) -> None:
    # The group's second member is unknown: the group (created, then refused while its
    # members are checked) is rolled back to its savepoint; the users around it stay.
    made = await idp.create_user("first@example.com")
    results = await _send(
        idp,
        bulk(
            {
                "method": "PATCH",
                "path": f"/Users/{made['id']}",
                "data": {
                    "schemas": [PATCH_OP],
                    "Operations": [{"op": "add", "path": "groups", "value": [{"value": "x"}]}],
                },
            },
            post_user("u", "second@example.com"),
        ),
    )
    assert [r["status"] for r in results] == ["400", "201"]
    assert results[0]["response"]["scimType"] == "mutability"
    assert (await idp.get(f"/Users/{made['id']}")).json() == made
    assert (await _counts(world))[0] == 2


async def test_a_savepoint_undoes_what_a_failed_operation_wrote(idp: Idp, world: World) -> None:
    # The PATCH renames the group (written) before its unknown member refuses it: only its
    # savepoint is rolled back, and the operations around it are committed.
    made = await idp.create_user("first@example.com")
    r = await idp.post("/Groups", {"schemas": [GROUP_SCHEMA], "displayName": "Guides"})
    group = r.json()
    rename_then_refuse = {
        "method": "PATCH",
        "path": f"/Groups/{group['id']}",
        "data": {
            "schemas": [PATCH_OP],
            "Operations": [
                {"op": "replace", "path": "displayName", "value": "Renamed"},
                {"op": "add", "path": "members", "value": [{"value": "nobody"}]},
            ],
        },
    }
    add_member = {
        "method": "PATCH",
        "path": f"/Groups/{group['id']}",
        "data": {
            "schemas": [PATCH_OP],
            "Operations": [{"op": "add", "path": "members", "value": [{"value": made["id"]}]}],
        },
    }
    results = await _send(
        idp, bulk(post_user("u", "second@example.com"), rename_then_refuse, add_member)
    )
    assert [r["status"] for r in results] == ["201", "400", "204"]
    assert results[1]["response"]["scimType"] == "invalidValue"
    now = (await idp.get(f"/Groups/{group['id']}")).json()
    assert now["displayName"] == "Guides"
    assert [m["value"] for m in now["members"]] == [made["id"]]
    assert (await _counts(world))[0] == 2
    async with world.database.transaction(write=False) as db:
        renamed = await db.scalar(
            select(func.count()).select_from(Team).where(Team.name == "Renamed")
        )
    assert renamed == 0


async def test_a_long_chain_of_forward_references_is_cut(idp: Idp) -> None:
    # Operation k names the user of operation k + 1: resolving the first would nest 104
    # calls; the face follows at most 100 (MAX_CHAIN) and answers the rest 409, not a 500.
    chain = [
        post_user(f"u{k}", f"u{k}@example.com", externalId=f"bulkId:u{k + 1}") for k in range(104)
    ]
    chain.append(post_user("u104", "u104@example.com"))
    results = await _send(idp, bulk(*chain))
    statuses = [r["status"] for r in results]
    assert statuses == ["409"] * 101 + ["201"] * 4
    assert "forward references away" in results[100]["response"]["detail"]
    assert "failed" in results[0]["response"]["detail"]
    last = (await idp.get(results[103]["location"].split("/scim/v2")[1])).json()
    assert last["externalId"] == results[104]["location"].rsplit("/", 1)[-1]
