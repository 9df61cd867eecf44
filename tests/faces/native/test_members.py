"""DELETE /tenantry/v1/organizations/{org}/members/{user}: taking a user out of an
organization, and only that."""

from __future__ import annotations

import asyncio

import httpx
from sqlalchemy import ColumnElement, func, select

from tenantry.db.models import AuditEvent, Membership, Organization, RoleBinding, TeamMember
from tenantry.directory import members
from tenantry.errors import Invalid
from tenantry.identity.principals import system_principal
from tests.faces.errors import astro_error
from tests.faces.native.test_native import assert_problem
from tests.factories import World, bearer

NATIVE = "/tenantry/v1"


def members_url(org_id: str, user_id: str) -> str:
    return f"{NATIVE}/organizations/{org_id}/members/{user_id}"


async def state(world: World, org_id: str, user_id: str) -> tuple[int, int, int, int, int]:
    """(member_count, memberships, the user's bindings, team places, audit events) in org."""
    async with world.database.transaction(write=False) as db:
        count = await db.scalar(select(Organization.member_count).where(Organization.id == org_id))

        async def n(model: type, *where: ColumnElement[bool]) -> int:
            return int(await db.scalar(select(func.count()).select_from(model).where(*where)) or 0)

        return (
            int(count or 0),
            await n(Membership, Membership.organization_id == org_id),
            await n(
                RoleBinding,
                RoleBinding.subject_id == user_id,
                RoleBinding.organization_id == org_id,
            ),
            await n(TeamMember, TeamMember.user_id == user_id),
            await n(AuditEvent, AuditEvent.organization_id == org_id),
        )


async def test_an_owner_removes_a_member_with_their_roles_and_teams(
    client: httpx.AsyncClient, world: World
) -> None:
    org = await world.org()
    other = await world.org("Other")
    ws = await world.workspace(org)
    _, owner = await world.member(org, "ORGANIZATION_OWNER")
    user, token = await world.member(org)
    await world.roles(org, user, workspaces=[(ws.id, "WORKSPACE_AUTHOR")])
    await world.roles(other, user, "ORGANIZATION_MEMBER")
    await world.team(org, members=[user])
    listed = f"/v1/organizations/{org.id}/users?workspaceId={ws.id}"
    assert (await client.get(listed, headers=bearer(owner))).json()["totalCount"] == 1
    assert (await state(world, org.id, user.id))[:4] == (2, 2, 1, 1)

    r = await client.delete(members_url(org.id, user.id), headers=bearer(owner))

    assert r.status_code == 204, r.text
    count, memberships, bindings, teams, _ = await state(world, org.id, user.id)
    assert (count, memberships, bindings, teams) == (1, 1, 0, 0)
    page = (await client.get(listed, headers=bearer(owner))).json()
    assert (page["totalCount"], page["users"]) == (0, [])
    gone = await client.get(f"/v1/organizations/{org.id}/users/{user.id}", headers=bearer(owner))
    assert gone.status_code == 404
    astro_error(gone, 404, "user not found in this organization")  # removed, still a user
    me = (await client.get("/v1/users/self", headers=bearer(token))).json()
    assert {r["scope"]["entityId"] for r in me["roles"]} == {other.id}  # other org kept
    async with world.database.transaction(write=False) as db:
        event = await db.scalar(
            select(AuditEvent).where(AuditEvent.action == "organization.user.remove")
        )
    assert event is not None
    assert (event.target_id, event.organization_id) == (user.id, org.id)
    assert event.details["before"]["organizationRole"] == "ORGANIZATION_MEMBER"


async def test_members_cannot_remove_and_outsiders_cannot_see(
    client: httpx.AsyncClient, world: World
) -> None:
    org = await world.org()
    elsewhere = await world.org("Elsewhere")
    _, member = await world.member(org)
    _, foreign_owner = await world.member(elsewhere, "ORGANIZATION_OWNER")
    target, _ = await world.member(org)
    before = await state(world, org.id, target.id)

    refused = await client.delete(members_url(org.id, target.id), headers=bearer(member))
    assert_problem(refused, 403)
    hidden = await client.delete(members_url(org.id, target.id), headers=bearer(foreign_owner))
    assert_problem(hidden, 404)
    # An owner of another organization cannot reach this one's members through their own.
    crossed = await client.delete(
        members_url(elsewhere.id, target.id), headers=bearer(foreign_owner)
    )
    assert_problem(crossed, 404)
    assert await state(world, org.id, target.id) == before


async def test_the_last_owner_stays_and_a_stranger_is_not_found(
    client: httpx.AsyncClient, world: World
) -> None:
    org = await world.org()
    owner_user, owner = await world.member(org, "ORGANIZATION_OWNER")
    stranger = await world.user()
    before = await state(world, org.id, owner_user.id)

    last = await client.delete(members_url(org.id, owner_user.id), headers=bearer(owner))
    assert "at least one owner" in str(assert_problem(last, 400)["detail"])
    missing = await client.delete(members_url(org.id, stranger.id), headers=bearer(owner))
    assert_problem(missing, 404)
    malformed = await client.delete(members_url(org.id, "not-an-id"), headers=bearer(owner))
    assert_problem(malformed, 400)
    assert await state(world, org.id, owner_user.id) == before

    second_user, _ = await world.member(org, "ORGANIZATION_OWNER")
    left = await client.delete(members_url(org.id, owner_user.id), headers=bearer(owner))
    assert left.status_code == 204  # with another owner, an owner may leave
    assert (await state(world, org.id, second_user.id))[:2] == (1, 1)


async def test_two_owners_removed_at_once_leave_one_owner(world: World) -> None:
    """Each removal locks the organization's row before counting owners, so of two
    concurrent removals of the last two owners exactly one goes through."""
    org = await world.org()
    first, _ = await world.member(org, "ORGANIZATION_OWNER")
    second, _ = await world.member(org, "ORGANIZATION_OWNER")

    async def remove(user_id: str) -> str:
        try:
            async with world.database.transaction() as db:
                await members.remove_member(db, system_principal(), org.id, user_id)
        except Invalid:
            return "refused"
        return "removed"

    outcomes = await asyncio.gather(remove(first.id), remove(second.id))
    assert sorted(outcomes) == ["refused", "removed"]
    async with world.database.transaction(write=False) as db:
        owners = await db.scalar(
            select(func.count())
            .select_from(Membership)
            .where(Membership.organization_id == org.id, Membership.role == members.OWNER)
        )
    assert owners == 1
    assert (await state(world, org.id, first.id))[:2] == (1, 1)


async def test_the_last_owner_cannot_be_demoted_either(
    client: httpx.AsyncClient, world: World
) -> None:
    org = await world.org()
    owner_user, owner = await world.member(org, "ORGANIZATION_OWNER")
    roles_url = f"/v1/organizations/{org.id}/users/{owner_user.id}/roles"
    demote = {"organizationRole": "ORGANIZATION_MEMBER"}

    refused = await client.post(roles_url, json=demote, headers=bearer(owner))
    assert refused.status_code == 400, refused.text
    body = refused.json()
    assert body["statusCode"] == 400 and "at least one owner" in body["message"]
    one = await client.get(
        f"/v1/organizations/{org.id}/users/{owner_user.id}", headers=bearer(owner)
    )
    assert one.json()["organizationRole"] == "ORGANIZATION_OWNER"

    await world.member(org, "ORGANIZATION_OWNER")
    done = await client.post(roles_url, json=demote, headers=bearer(owner))
    assert done.status_code == 200 and done.json()["organizationRole"] == "ORGANIZATION_MEMBER"
