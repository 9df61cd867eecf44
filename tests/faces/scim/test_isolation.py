"""Tenants stay apart (the anchor failure: GHSA-9m7q-6qg6-888h, authentik matched SCIM users by
userName across tenants). A SCIM token sees, matches and changes only the accounts its own
organization manages; anything else reads as a made-up id, and a taken name is one uniqueness
conflict that says nothing of whose."""

from __future__ import annotations

from sqlalchemy import func, select

from tenantry.db.models import Membership, User
from tenantry.ids import new_id
from tests.faces.scim.conftest import GROUP_SCHEMA, Idp, assert_scim_error, new_user
from tests.factories import World


async def test_another_organizations_users_do_not_exist_for_a_token(
    idp: Idp, other_idp: Idp, world: World
) -> None:
    theirs = await other_idp.create_user("ceo@globex.example", externalId="x1")
    mine = await idp.create_user("me@acme.example")
    native, _ = await world.member(idp.org)  # a member of my organization it does not manage
    made_up = new_id()
    for user_id in (theirs["id"], native.id, made_up):
        path = f"/Users/{user_id}"
        assert_scim_error(await idp.get(path), 404)
        assert_scim_error(await idp.put(path, new_user("stolen@example.com")), 404)
        ops = [{"op": "replace", "path": "active", "value": False}]
        assert_scim_error(await idp.patch(path, ops), 404)
        assert_scim_error(await idp.delete(path), 404)
    details = {
        (await idp.get(f"/Users/{i}")).json()["detail"] for i in (theirs["id"], native.id, made_up)
    }
    assert len(details) == 1
    for flt in ('userName eq "ceo@globex.example"', 'externalId eq "x1"'):
        found = (await idp.get("/Users", params={"filter": flt})).json()
        assert found["totalResults"] == 0 and found["Resources"] == []
    found = (await idp.get("/Users", params={"filter": f'userName eq "{native.username}"'})).json()
    assert found["totalResults"] == 0
    listed = (await idp.get("/Users")).json()
    assert [u["id"] for u in listed["Resources"]] == [mine["id"]]
    assert listed["totalResults"] == 1
    async with world.database.transaction(write=False) as db:
        still = await db.scalar(select(User).where(User.id == theirs["id"]))
        assert still is not None and still.enabled and still.username == "ceo@globex.example"
        joined = await db.scalar(
            select(func.count())
            .select_from(Membership)
            .where(Membership.user_id == theirs["id"], Membership.organization_id == idp.org.id)
        )
    assert joined == 0


async def test_a_taken_name_is_one_conflict_that_says_nothing_of_whose(
    idp: Idp, other_idp: Idp, world: World
) -> None:
    await other_idp.create_user("ceo@globex.example")
    await world.user("loner@example.com")  # in no organization
    await world.member(idp.org, username="native@acme.example")
    answers = []
    for name in ("ceo@globex.example", "loner@example.com", "native@acme.example"):
        r = await idp.post("/Users", new_user(name))
        assert_scim_error(r, 409, "uniqueness")
        answers.append(r.json())
    assert answers[0] == answers[1] == answers[2]
    async with world.database.transaction(write=False) as db:
        count = await db.scalar(
            select(func.count())
            .select_from(User)
            .where(User.managed_by_organization_id == idp.org.id)
        )
    assert count == 0


async def test_groups_hold_only_the_organizations_own_accounts(
    idp: Idp, other_idp: Idp, world: World
) -> None:
    theirs = await other_idp.create_user("ceo@globex.example")
    mine = await idp.create_user("me@acme.example")
    native, _ = await world.member(idp.org)
    answers = []
    for member in (theirs["id"], native.id, new_id()):
        body = {
            "schemas": [GROUP_SCHEMA],
            "displayName": "Admins",
            "members": [{"value": mine["id"]}, {"value": member}],
        }
        r = await idp.post("/Groups", body)
        assert_scim_error(r, 400, "invalidValue")
        answers.append(r.json())
    assert answers[0] == answers[1] == answers[2]
    assert (await idp.get("/Groups")).json()["totalResults"] == 0
    # and another organization's group is not there to read, patch or delete
    r = await other_idp.post("/Groups", {"schemas": [GROUP_SCHEMA], "displayName": "Theirs"})
    assert r.status_code == 201, r.text
    group = r.json()["id"]
    assert_scim_error(await idp.get(f"/Groups/{group}"), 404)
    ops = [{"op": "add", "path": "members", "value": [{"value": mine["id"]}]}]
    assert_scim_error(await idp.patch(f"/Groups/{group}", ops), 404)
    assert_scim_error(await idp.delete(f"/Groups/{group}"), 404)
    found = (await idp.get("/Groups", params={"filter": 'displayName eq "Theirs"'})).json()
    assert found["totalResults"] == 0
