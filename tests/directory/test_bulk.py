"""The bulk loader writes a big organization that the API reads exactly like one built through
the services: exact totals, the same filter semantics, well-formed ids and bindings."""

from __future__ import annotations

import re
from collections import Counter
from typing import TypedDict

import httpx
import pytest
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError

from tenantry.authz.engine import scope_of
from tenantry.config import load_settings
from tenantry.db.engine import Database
from tenantry.db.models import Deployment, Membership, Organization, RoleBinding, User
from tenantry.devdata.bulk import IdSequence, load_organization
from tenantry.directory import scim_tokens
from tenantry.identity.principals import system_principal
from tenantry.ids import ID_PATTERN
from tests.conftest import _truncate
from tests.factories import World, bearer

USERS = 300


async def _ids(
    client: httpx.AsyncClient, token: str, path: str, **params: str | list[str]
) -> set[str]:
    r = await client.get(path, params={**params, "limit": 1000}, headers=bearer(token))
    assert r.status_code == 200, r.text
    body = r.json()
    ids = {u["id"] for u in body["users"]}
    assert body["totalCount"] == len(ids)
    return ids


async def test_bulk_organization_reads_like_a_real_one(
    database: Database, world: World, client: httpx.AsyncClient
) -> None:
    info = await load_organization(
        database, users=USERS, workspaces=4, deployments_per_workspace=2, seed=7
    )
    assert len(info.workspace_ids) == 4 and len(info.deployment_ids) == 8
    admin = await world.admin()
    token = await world.token(admin)
    users_path = f"/v1/organizations/{info.organization_id}/users"

    r = await client.get(users_path, headers=bearer(token))
    assert r.status_code == 200, r.text
    assert r.json()["totalCount"] == USERS
    assert len(await _ids(client, token, users_path)) == USERS

    async with database.transaction(write=False) as db:
        org = await db.get(Organization, info.organization_id)
        assert org is not None and org.member_count == USERS
        roles = Counter(
            await db.scalars(select(Membership.role).where(Membership.organization_id == org.id))
        )
        assert sum(roles.values()) == USERS and roles["ORGANIZATION_OWNER"] >= 1
        assert roles["ORGANIZATION_MEMBER"] > USERS * 0.8
        users = (await db.scalars(select(User).where(User.id != admin.id))).all()
        in_org = RoleBinding.organization_id == info.organization_id
        bindings = (await db.scalars(select(RoleBinding).where(in_org))).all()
        dep_ws = dict((await db.execute(select(Deployment.id, Deployment.workspace_id))).all())
        holders: dict[str, set[str]] = {}
        for ws_id in info.workspace_ids:
            holders[ws_id] = set(
                await db.scalars(
                    select(RoleBinding.subject_id)
                    .where(RoleBinding.workspace_id == ws_id, RoleBinding.subject_type == "user")
                    .distinct()
                )
            )
        tagged = set(
            await db.scalars(
                select(RoleBinding.subject_id).where(
                    RoleBinding.scope_type == "DAG_TAG",
                    RoleBinding.dag_tag.in_(info.dag_tags[:2]),
                )
            )
        )
        on_dep = set(
            await db.scalars(
                select(RoleBinding.subject_id).where(
                    RoleBinding.deployment_id == info.deployment_ids[0]
                )
            )
        )
        total_bindings = await db.scalar(select(func.count()).where(in_org))

    # users: well-formed, unique, casefolded keys
    assert len(users) == USERS
    assert all(re.match(ID_PATTERN, u.id) for u in users)
    assert len({u.id for u in users}) == USERS
    assert all(u.username_key == u.username.casefold() for u in users)
    assert all(u.email == u.username and u.full_name for u in users)
    # bindings: scope keys and ancestor ids as build_bindings writes them
    assert total_bindings == info.bindings == sum(info.bindings_by_scope.values())
    assert {b.scope_type for b in bindings} == {"WORKSPACE", "DEPLOYMENT", "DAG", "DAG_TAG"}
    for b in bindings:
        assert b.organization_id == info.organization_id and b.subject_type == "user"
        assert scope_of(b).key == b.scope_key
        if b.deployment_id is not None:
            assert b.workspace_id == dep_ws[b.deployment_id]
        assert (b.dag_id is not None) == (b.scope_type == "DAG")
        assert (b.dag_tag is not None) == (b.scope_type == "DAG_TAG")
    assert len({(b.subject_id, b.scope_key) for b in bindings}) == len(bindings)

    # the filters return exactly the holders of a binding inside the scope
    for ws_id in info.workspace_ids:
        assert await _ids(client, token, users_path, workspaceId=ws_id) == holders[ws_id]
    assert holders[info.workspace_ids[0]]
    tags = list(info.dag_tags[:2])
    assert await _ids(client, token, users_path, dagTags=tags) == tagged
    dep = info.deployment_ids[0]
    assert await _ids(client, token, users_path, deploymentId=dep) == on_dep

    # the owner can use the organization like any member
    owner_token = await world.token(next(u for u in users if u.id == info.owner_id))
    r = await client.get("/v1/users/self", headers=bearer(owner_token))
    assert r.status_code == 200, r.text
    assert any(x["role"] == "ORGANIZATION_OWNER" for x in r.json()["roles"])
    r = await client.get(users_path, params={"limit": 5}, headers=bearer(owner_token))
    assert r.status_code == 200 and r.json()["totalCount"] == USERS


async def test_repeated_loads_do_not_collide(database: Database) -> None:
    first = await load_organization(
        database, users=20, workspaces=1, deployments_per_workspace=1, seed=1
    )
    second = await load_organization(
        database,
        users=20,
        workspaces=0,
        deployments_per_workspace=0,
        seed=1,
        trust_references=False,
        analyze=False,
    )
    assert first.organization_id != second.organization_id
    assert first.domain != second.domain
    assert second.bindings == 0
    async with database.transaction(write=False) as db:
        counts = dict((await db.execute(select(Organization.id, Organization.member_count))).all())
        assert await db.scalar(select(func.count()).select_from(User)) == 40
    assert counts == {first.organization_id: 20, second.organization_id: 20}


async def test_provisioned_accounts_are_managed_by_the_organization(
    database: Database, world: World, client: httpx.AsyncClient
) -> None:
    """`provisioned=True` (bench/scim.py): every account as a SCIM POST leaves it, found by the
    organization's SCIM token and by no one else's."""
    info = await load_organization(
        database, users=12, workspaces=0, deployments_per_workspace=0, seed=3, provisioned=True
    )
    plain = await load_organization(
        database, users=3, workspaces=0, deployments_per_workspace=0, seed=3
    )
    async with database.transaction(write=False) as db:
        rows = (await db.execute(select(User).where(User.realm == "scim"))).scalars().all()
        native = await db.scalar(select(func.count()).where(User.realm == "native"))
    assert len(rows) == 12 and native == 3
    for user in rows:
        assert user.idp_managed and not user.email_verified
        assert user.managed_by_organization_id == info.organization_id
        assert user.primary_organization_id == user.realm_id == info.organization_id
    async with database.transaction() as db:
        minted = await scim_tokens.create_scim_token(db, system_principal(), info.organization_id)
        other = await scim_tokens.create_scim_token(db, system_principal(), plain.organization_id)
    for secret, total in ((minted.secret, 12), (other.secret, 0)):
        r = await client.get("/scim/v2/Users", headers=bearer(secret))
        assert r.status_code == 200, r.text
        assert r.json()["totalResults"] == total


def test_id_sequence_is_cuid_shaped_and_ordered() -> None:
    ids = IdSequence()
    made = [ids(n) for n in (0, 1, 35, 36, 46655, 46656, 10**9, 36**9 - 1)]
    assert all(re.match(ID_PATTERN, i) for i in made)
    assert made == sorted(made) and len(set(made)) == len(made)


SCHEMA_OF_BULK_TABLES = """
    SELECT 'index', tablename, indexname, indexdef FROM pg_indexes
    WHERE schemaname = current_schema() AND tablename IN ('users', 'memberships', 'role_bindings')
    UNION ALL
    SELECT 'constraint', conrelid::regclass::text, conname, pg_get_constraintdef(oid)
    FROM pg_constraint
    WHERE conrelid::regclass::text IN ('users', 'memberships', 'role_bindings')
    ORDER BY 1, 2, 3
"""


async def _schema(database: Database) -> list[tuple[str, ...]]:
    async with database.engine.connect() as conn:
        return [tuple(row) for row in await conn.exec_driver_sql(SCHEMA_OF_BULK_TABLES)]


async def test_a_load_into_empty_tables_builds_every_index_again(pg_url: str) -> None:
    """PostgreSQL, empty tables: indexes are set aside during the load and rebuilt before the
    commit, with the same definitions, and they enforce uniqueness as before."""
    database = Database(load_settings(database_url=pg_url))
    try:
        await _truncate(database)
        before = await _schema(database)
        assert any(name == "ix_role_bindings_dag" for _, _, name, _ in before)
        info = await load_organization(
            database, users=200, workspaces=3, deployments_per_workspace=2, seed=5
        )
        assert "indexes" in info.timings, "empty tables: the indexes were built after the rows"
        assert await _schema(database) == before
        async with database.transaction() as db:
            owner = (await db.scalars(select(User).where(User.id == info.owner_id))).one()
            twin = User(username=owner.username.upper(), username_key=owner.username_key)
            with pytest.raises(IntegrityError, match="uq_users_username_key"):
                async with db.begin_nested():  # the rebuilt unique index refuses the twin
                    db.add(twin)
    finally:
        await database.dispose()


class _Shape(TypedDict):
    """load_organization's sizes, passed with ** (typed, so they can't stand for its flags)."""

    users: int
    workspaces: int
    deployments_per_workspace: int
    seed: int


async def test_a_failed_load_with_indexes_set_aside_changes_nothing(pg_url: str) -> None:
    """The drop, the rows and the rebuild are one transaction: a load whose rows break a
    unique index fails when the index is built again, and leaves tables and indexes intact."""
    database = Database(load_settings(database_url=pg_url))
    try:
        await _truncate(database)
        shape: _Shape = {"users": 50, "workspaces": 1, "deployments_per_workspace": 1, "seed": 3}
        first = await load_organization(database, domain="twins.example.com", **shape)
        before = await _schema(database)
        with pytest.raises(IntegrityError, match="uq_users_username_key"):
            # same seed and domain: the same usernames again
            await load_organization(
                database, domain="twins.example.com", build_indexes_after=True, **shape
            )
        assert await _schema(database) == before
        async with database.transaction(write=False) as db:
            assert await db.scalar(select(func.count()).select_from(User)) == 50
            assert await db.scalar(select(func.count()).select_from(Organization)) == 1
            assert (await db.get(Organization, first.organization_id)) is not None
    finally:
        await database.dispose()
