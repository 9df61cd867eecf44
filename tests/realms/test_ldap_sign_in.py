"""Signing in through an LDAP realm (directory/sign_in.py) against a real slapd, through every
face's sign-in route: just-in-time provisioning, mappings re-applied at each sign-in, refusals
that read as any refused password, and native accounts never taken over."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from sqlalchemy import select

from tenantry.config import Settings, load_settings
from tenantry.db.models import AuditEvent, Membership, RoleBinding, TeamMember, User
from tenantry.directory import realms
from tenantry.identity.principals import system_principal
from tenantry.identity.secretbox import SecretBox, generate_key
from tests import ldap_server as ls
from tests.factories import World

KEY = generate_key()
# Each face's password sign-in route (all take {username, password}).
FACES = {
    "native": "/tenantry/v1/auth/login",
    "ece": "/api/v1/users/auth/_login",
    "unleash": "/auth/simple/login",
}


@pytest.fixture
def settings(db_url: str) -> Settings:
    return load_settings(
        database_url=db_url,
        environment="test",
        max_body_bytes=64 * 1024,
        secret_key=KEY,
        realm_timeout_seconds=2,
    )


async def _realm(world: World, slapd: ls.Slapd, **changes: Any) -> dict[str, str]:
    """The realm `corp` bound to a new organization: admins → owner, devs → a workspace role
    and a team. Returns the ids."""
    org = await world.org()
    ws = await world.workspace(org)
    team = await world.team(org)
    binding = realms.Binding(
        org.id,
        "ORGANIZATION_MEMBER",
        (
            realms.Mapping(ls.group_dn("admins"), organization_role="ORGANIZATION_OWNER"),
            realms.Mapping(
                ls.group_dn("devs"), workspace_id=ws.id, workspace_role="WORKSPACE_AUTHOR"
            ),
            realms.Mapping(ls.group_dn("devs"), team_id=team.id),
        ),
    )
    settings = {
        "url": slapd.url,
        "bind_dn": ls.ADMIN_DN,
        "user_base_dn": ls.PEOPLE,
        "group_base_dn": ls.GROUPS,
    } | changes
    spec = realms.RealmSpec(
        id="corp",
        type="ldap",
        name="Corp",
        settings=settings,
        secrets={"bind_password": ls.ADMIN_PASSWORD},
        organizations=(binding,),
    )
    async with world.database.transaction() as db:
        await realms.create_realm(db, SecretBox([KEY]), system_principal(), spec)
    return {"org": org.id, "ws": ws.id, "team": team.id}


async def _sign_in(
    client: httpx.AsyncClient, face: str, username: str, password: str
) -> httpx.Response:
    return await client.post(FACES[face], json={"username": username, "password": password})


async def _state(world: World, username: str, ids: dict[str, str]) -> dict[str, Any]:
    async with world.database.transaction(write=False) as db:
        user = await db.scalar(select(User).where(User.username == username))
        assert user is not None
        membership = await db.get(Membership, (ids["org"], user.id))
        ws_roles = list(
            await db.scalars(
                select(RoleBinding.role).where(
                    RoleBinding.subject_id == user.id, RoleBinding.workspace_id == ids["ws"]
                )
            )
        )
        in_team = await db.get(TeamMember, (ids["team"], user.id)) is not None
    return {
        "user": user,
        "org_role": membership.role if membership else None,
        "ws_roles": ws_roles,
        "in_team": in_team,
    }


@pytest.mark.parametrize("face", sorted(FACES))
async def test_first_sign_in_provisions_and_maps(
    client: httpx.AsyncClient, world: World, slapd: ls.Slapd, face: str
) -> None:
    ids = await _realm(world, slapd)
    r = await _sign_in(client, face, "alice", ls.USERS["alice"][0])
    assert r.status_code == 200, r.text
    state = await _state(world, "alice", ids)
    user = state["user"]
    assert (user.realm, user.realm_id, user.idp_managed) == ("ldap", "corp", True)
    assert user.email == "alice@corp.test" and not user.email_verified
    assert user.full_name == "Alice Admin" and user.password_hash is None
    assert state["org_role"] == "ORGANIZATION_OWNER"
    assert state["ws_roles"] == ["WORKSPACE_AUTHOR"] and state["in_team"]
    carol = await _sign_in(client, face, "carol", ls.USERS["carol"][0])
    assert carol.status_code == 200, carol.text
    plain = await _state(world, "carol", ids)
    assert plain["org_role"] == "ORGANIZATION_MEMBER" and plain["ws_roles"] == []
    assert not plain["in_team"]


async def test_leaving_a_group_takes_its_roles_away(
    client: httpx.AsyncClient, world: World, slapd: ls.Slapd
) -> None:
    ids = await _realm(world, slapd)
    assert (await _sign_in(client, "native", "bob", ls.USERS["bob"][0])).status_code == 200
    before = await _state(world, "bob", ids)
    assert before["ws_roles"] == ["WORKSPACE_AUTHOR"] and before["in_team"]
    slapd.modify(
        f"dn: {ls.group_dn('devs')}\nchangetype: modify\ndelete: member\n"
        f"member: {ls.person_dn('bob')}\n"
    )
    try:
        assert (await _sign_in(client, "native", "bob", ls.USERS["bob"][0])).status_code == 200
        after = await _state(world, "bob", ids)
        assert after["ws_roles"] == [] and not after["in_team"]
        assert after["org_role"] == "ORGANIZATION_MEMBER"
    finally:
        slapd.modify(
            f"dn: {ls.group_dn('devs')}\nchangetype: modify\nadd: member\n"
            f"member: {ls.person_dn('bob')}\n"
        )


@pytest.mark.parametrize("face", sorted(FACES))
async def test_wrong_passwords_read_as_any_refusal_and_are_counted(
    client: httpx.AsyncClient, world: World, slapd: ls.Slapd, face: str
) -> None:
    await _realm(world, slapd)
    native_refusal = await _sign_in(client, face, "nobody-at-all", "Wrong-Pa55word!")
    for username, password in (("alice", "Wrong-Pa55word!"), ("*", ls.USERS["alice"][0])):
        r = await _sign_in(client, face, username, password)
        assert r.status_code == native_refusal.status_code == 401, r.text
        assert r.json().keys() == native_refusal.json().keys()
    async with world.database.transaction(write=False) as db:
        failures = list(
            await db.scalars(select(AuditEvent).where(AuditEvent.action == "auth.login.failure"))
        )
    assert len(failures) == 3
    assert all(ls.USERS["alice"][0] not in str(e.details) for e in failures)


async def test_an_existing_realm_user_is_locked_out_like_anyone(
    client: httpx.AsyncClient, world: World, slapd: ls.Slapd
) -> None:
    await _realm(world, slapd)
    assert (await _sign_in(client, "native", "alice", ls.USERS["alice"][0])).status_code == 200
    for _ in range(5):  # the default threshold
        assert (await _sign_in(client, "native", "alice", "Wrong-Pa55word!")).status_code == 401
    locked = await _sign_in(client, "native", "alice", ls.USERS["alice"][0])
    assert locked.status_code == 401


async def test_a_native_account_is_never_taken_over_by_a_realm(
    client: httpx.AsyncClient, world: World, slapd: ls.Slapd
) -> None:
    """A Tenantry account named like a directory entry (no password of its own) does not
    become the directory's: the realm is not asked, the sign-in is refused."""
    await _realm(world, slapd)
    await world.user("carol")
    r = await _sign_in(client, "native", "carol", ls.USERS["carol"][0])
    assert r.status_code == 401
    async with world.database.transaction(write=False) as db:
        carol = await db.scalar(select(User).where(User.username == "carol"))
    assert carol is not None and carol.realm == "native" and not carol.idp_managed


async def test_an_unreachable_realm_is_a_503_that_names_no_secret(
    client: httpx.AsyncClient, world: World, slapd: ls.Slapd
) -> None:
    await _realm(world, slapd, url="ldap://127.0.0.1:9")
    r = await _sign_in(client, "native", "alice", ls.USERS["alice"][0])
    assert r.status_code == 503, r.text
    assert ls.ADMIN_PASSWORD not in r.text and ls.USERS["alice"][0] not in r.text
