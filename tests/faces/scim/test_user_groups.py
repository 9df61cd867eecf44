"""The User's read-only `groups` (RFC 7643 §4.1.2): the organization's SCIM Groups the user is
in, after the Groups' PATCHes; projection, filters, and refusals of writes."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select

from tenantry.db.models import User
from tests.faces.scim.conftest import GROUP_SCHEMA, Idp, assert_scim_error, new_user
from tests.factories import World


async def _group(idp: Idp, name: str, members: list[str]) -> dict[str, Any]:
    body = {
        "schemas": [GROUP_SCHEMA],
        "displayName": name,
        "members": [{"value": m} for m in members],
    }
    r = await idp.post("/Groups", body)
    assert r.status_code == 201, r.text
    found: dict[str, Any] = r.json()
    return found


async def _groups_of(idp: Idp, user_id: str) -> list[dict[str, Any]]:
    r = await idp.get(f"/Users/{user_id}")
    assert r.status_code == 200, r.text
    found: list[dict[str, Any]] = r.json().get("groups", [])
    return found


async def test_groups_follow_the_groups_members(idp: Idp) -> None:
    alice = await idp.create_user("alice@example.com")
    bob = await idp.create_user("bob@example.com")
    assert "groups" not in alice  # unassigned: not shown
    guides = await _group(idp, "Guides", [alice["id"]])
    drivers = await _group(idp, "Drivers", [])
    assert await _groups_of(idp, alice["id"]) == [
        {
            "value": guides["id"],
            "$ref": f"http://tenantry.test/scim/v2/Groups/{guides['id']}",
            "display": "Guides",
            "type": "direct",
        }
    ]
    add = [
        {"op": "add", "path": "members", "value": [{"value": alice["id"]}, {"value": bob["id"]}]}
    ]
    assert (await idp.patch(f"/Groups/{drivers['id']}", add)).status_code == 204
    assert [g["display"] for g in await _groups_of(idp, alice["id"])] == ["Drivers", "Guides"]
    assert [g["value"] for g in await _groups_of(idp, bob["id"])] == [drivers["id"]]
    remove = [{"op": "remove", "path": f'members[value eq "{alice["id"]}"]'}]
    assert (await idp.patch(f"/Groups/{guides['id']}", remove)).status_code == 204
    assert [g["display"] for g in await _groups_of(idp, alice["id"])] == ["Drivers"]
    assert (await idp.delete(f"/Groups/{drivers['id']}")).status_code == 204
    assert await _groups_of(idp, alice["id"]) == []
    assert await _groups_of(idp, bob["id"]) == []


async def test_projection_and_filter(idp: Idp) -> None:
    alice = await idp.create_user("alice@example.com")
    await idp.create_user("bob@example.com")
    guides = await _group(idp, "Guides", [alice["id"]])
    r = await idp.get(f"/Users/{alice['id']}", params={"attributes": "groups.display"})
    assert r.json()["groups"] == [{"display": "Guides"}] and "userName" not in r.json()
    r = await idp.get(f"/Users/{alice['id']}", params={"excludedAttributes": "groups"})
    assert "groups" not in r.json() and r.json()["userName"] == "alice@example.com"
    for flt in (f'groups.value eq "{guides["id"]}"', f'groups[value eq "{guides["id"]}"]'):
        r = await idp.get("/Users", params={"filter": flt})
        assert [u["userName"] for u in r.json()["Resources"]] == ["alice@example.com"], flt
    r = await idp.get("/Users", params={"filter": "not (groups pr)"})
    assert [u["userName"] for u in r.json()["Resources"]] == ["bob@example.com"]
    r = await idp.get("/Users", params={"filter": 'groups.value eq "someone-else"'})
    assert r.json()["totalResults"] == 0


async def test_groups_cannot_be_written(idp: Idp) -> None:
    alice = await idp.create_user("alice@example.com")
    guides = await _group(idp, "Guides", [alice["id"]])
    path = f"/Users/{alice['id']}"
    before = (await idp.get(path)).json()
    for op in (
        {"op": "add", "path": "groups", "value": [{"value": "x"}]},
        {"op": "remove", "path": "groups"},
        {"op": "replace", "value": {"groups": []}},
    ):
        assert_scim_error(await idp.patch(path, [op]), 400, "mutability")
    assert (await idp.get(path)).json() == before
    # Writing them unchanged is no change (a client sending back what it read).
    same = [{"op": "replace", "value": {"groups": before["groups"], "title": "Guide"}}]
    r = await idp.patch(path, same)
    assert r.status_code == 200, r.text
    assert r.json()["groups"] == before["groups"] and r.json()["title"] == "Guide"
    # POST and PUT ignore them (RFC 7644 §3.3, §3.5.1: readOnly values are ignored;
    # Okta sends `groups: []`).
    r = await idp.put(path, new_user("alice@example.com", groups=[]))
    assert r.status_code == 200 and r.json()["groups"] == before["groups"]
    made = await idp.create_user("bob@example.com", groups=[{"value": guides["id"]}])
    assert "groups" not in made
    r = await idp.get(f"/Groups/{guides['id']}")
    assert [m["value"] for m in r.json()["members"]] == [alice["id"]]


async def test_another_organizations_groups_are_never_shown(idp: Idp, other_idp: Idp) -> None:
    alice = await idp.create_user("alice@example.com")
    theirs = await other_idp.create_user("globex@example.com")
    r = await other_idp.post(
        "/Groups",
        {"schemas": [GROUP_SCHEMA], "displayName": "G", "members": [{"value": alice["id"]}]},
    )
    assert_scim_error(r, 400, "invalidValue")
    await _group(idp, "Guides", [alice["id"]])
    assert "groups" not in (await other_idp.get(f"/Users/{theirs['id']}")).json()
    ops = [{"op": "add", "path": "title", "value": "x"}]
    assert_scim_error(await other_idp.patch(f"/Users/{alice['id']}", ops), 404)


async def test_a_native_team_is_not_a_group(idp: Idp, world: World) -> None:
    alice = await idp.create_user("alice@example.com")
    guides = await _group(idp, "Guides", [alice["id"]])
    async with world.database.transaction(write=False) as db:
        user = await db.scalar(select(User).where(User.id == alice["id"]))
    assert user is not None
    native = await world.team(idp.org, "Native", [user])
    assert [g["value"] for g in await _groups_of(idp, alice["id"])] == [guides["id"]]
    r = await idp.get("/Users", params={"filter": f'groups.value eq "{native.id}"'})
    assert r.json()["totalResults"] == 0
