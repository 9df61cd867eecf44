"""Realms on the native face (directory/realms.py): system administrators only, elevation when
required, audited; secrets sealed with TENANTRY_SECRET_KEY and never answered; every binding's
targets checked; bad input refused with the native error body and nothing stored."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from sqlalchemy import func, select

from tenantry.authz.engine import load_user_grants
from tenantry.config import Settings, load_settings
from tenantry.db.models import AuditEvent, Realm
from tenantry.directory import realms
from tenantry.errors import ElevationRequired
from tenantry.identity.policy import SecurityPolicy
from tenantry.identity.principals import Principal
from tenantry.identity.secretbox import SecretBox, SecretKeyMissing, generate_key
from tests.faces.routes import assert_face_error
from tests.factories import World, bearer

PATH = "/tenantry/v1/realms"
KEY = generate_key()
BIND_PASSWORD = "bind-S3cret-never-shown"


@pytest.fixture
def settings(db_url: str) -> Settings:
    return load_settings(
        database_url=db_url, environment="test", max_body_bytes=64 * 1024, secret_key=KEY
    )


def ldap_realm(org_id: str, **extra: Any) -> dict[str, Any]:
    return {
        "id": "corp",
        "type": "ldap",
        "name": "Corp directory",
        "ldap": {
            "url": "ldap://127.0.0.1:3389",
            "bindDn": "cn=admin,dc=corp,dc=test",
            "bindPassword": BIND_PASSWORD,
            "userBaseDn": "ou=people,dc=corp,dc=test",
            "groupBaseDn": "ou=groups,dc=corp,dc=test",
        },
        "organizations": [
            {
                "organizationId": org_id,
                "defaultRole": "ORGANIZATION_MEMBER",
                "mappings": [
                    {
                        "group": "cn=admins,ou=groups,dc=corp,dc=test",
                        "organizationRole": "ORGANIZATION_OWNER",
                    },
                ],
            }
        ],
        **extra,
    }


async def _admin(world: World) -> str:
    return await world.token(await world.admin())


async def _count(world: World) -> int:
    async with world.database.transaction(write=False) as db:
        return int(await db.scalar(select(func.count()).select_from(Realm)) or 0)


async def test_a_system_admin_adds_reads_updates_and_removes_a_realm(
    client: httpx.AsyncClient, world: World
) -> None:
    token = await _admin(world)
    org = await world.org()
    made = await client.post(PATH, json=ldap_realm(org.id), headers=bearer(token))
    assert made.status_code == 201, made.text
    body = made.json()
    assert body["id"] == "corp" and body["type"] == "ldap" and body["name"] == "Corp directory"
    assert body["ldap"]["bindPasswordSet"] is True
    assert body["ldap"]["userFilter"] == "(uid={username})"  # the type's default
    assert body["organizations"][0]["mappings"][0]["organizationRole"] == "ORGANIZATION_OWNER"
    assert BIND_PASSWORD not in made.text
    listed = await client.get(PATH, headers=bearer(token))
    assert [r["id"] for r in listed.json()["realms"]] == ["corp"]
    assert BIND_PASSWORD not in listed.text
    # stored sealed: the row holds no trace of the password, the key opens it
    async with world.database.transaction(write=False) as db:
        row = await db.get(Realm, "corp")
        assert row is not None and row.sealed_secrets and BIND_PASSWORD not in row.sealed_secrets
        assert BIND_PASSWORD not in str(row.config)
        assert SecretBox([KEY]).open(row.sealed_secrets) == {"bind_password": BIND_PASSWORD}
    # an update without the password keeps it
    changed = ldap_realm(org.id, name="Corp LDAP")
    del changed["ldap"]["bindPassword"]
    updated = await client.put(f"{PATH}/corp", json=changed, headers=bearer(token))
    assert updated.status_code == 200, updated.text
    assert updated.json()["name"] == "Corp LDAP" and updated.json()["ldap"]["bindPasswordSet"]
    async with world.database.transaction(write=False) as db:
        row = await db.get(Realm, "corp")
        assert row is not None and row.sealed_secrets
        assert SecretBox([KEY]).open(row.sealed_secrets) == {"bind_password": BIND_PASSWORD}
    gone = await client.delete(f"{PATH}/corp", headers=bearer(token))
    assert gone.status_code == 204
    assert (await client.get(f"{PATH}/corp", headers=bearer(token))).status_code == 404
    async with world.database.transaction(write=False) as db:
        actions = list(
            await db.scalars(
                select(AuditEvent.action)
                .where(AuditEvent.target_id == "corp")
                .order_by(AuditEvent.id)
            )
        )
        details = list(await db.scalars(select(AuditEvent.details)))
    assert actions == ["realm.create", "realm.update", "realm.delete"]
    assert BIND_PASSWORD not in str(details)


async def test_only_system_admins_manage_realms(client: httpx.AsyncClient, world: World) -> None:
    org = await world.org()
    _, owner = await world.member(org, "ORGANIZATION_OWNER")
    refused = await client.post(PATH, json=ldap_realm(org.id), headers=bearer(owner))
    assert_face_error("native", refused, 403)
    assert_face_error("native", await client.get(PATH, headers=bearer(owner)), 403)
    assert_face_error("native", await client.get(PATH), 401)
    assert await _count(world) == 0


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"id": "Not Valid"}, "id"),
        ({"id": "native"}, "id"),
        ({"type": "kerberos"}, "type"),
        ({"name": ""}, "name"),
        ({"ldap": {"url": "http://x", "userBaseDn": "dc=x"}}, "url"),
        ({"ldap": {"userBaseDn": "dc=x"}}, "url"),
        (
            {"ldap": {"url": "ldap://x", "userBaseDn": "dc=x", "userFilter": "(uid=*)"}},
            "user_filter",
        ),
        ({"ldap": {"url": "ldap://x", "userBaseDn": "dc=x", "colour": "red"}}, "colour"),
        ({"oidc": {"issuer": "https://x"}}, "oidc"),
        ({"organizations": [{"organizationId": "c" + "x" * 24}]}, "organizationId"),
        ({"organizations": "everyone"}, "organizations"),
        ({"extra": 1}, "extra"),
    ],
)
async def test_bad_realms_are_refused_and_nothing_is_stored(
    client: httpx.AsyncClient, world: World, change: dict[str, Any], field: str
) -> None:
    token = await _admin(world)
    org = await world.org()
    body = ldap_realm(org.id) | change
    r = await client.post(PATH, json=body, headers=bearer(token))
    assert_face_error("native", r, 400)
    assert field in r.text, r.text
    assert BIND_PASSWORD not in r.text
    assert await _count(world) == 0


async def test_mappings_name_targets_of_their_own_organization(
    client: httpx.AsyncClient, world: World
) -> None:
    token = await _admin(world)
    org, other = await world.org(), await world.org("Other")
    foreign_ws = await world.workspace(other)
    foreign_team = await world.team(other)
    for mapping in (
        {"group": "g", "workspaceId": foreign_ws.id, "workspaceRole": "WORKSPACE_MEMBER"},
        {"group": "g", "teamId": foreign_team.id},
        {"group": "g", "organizationRole": "ORGANIZATION_OWNER", "teamId": foreign_team.id},
        {"group": "g", "organizationRole": "SYSTEM_ADMIN"},
    ):
        body = ldap_realm(org.id)
        body["organizations"][0]["mappings"] = [mapping]
        r = await client.post(PATH, json=body, headers=bearer(token))
        assert_face_error("native", r, 400)
        assert "mappings[0]" in r.text, r.text
    ws = await world.workspace(org)
    body = ldap_realm(org.id)
    body["organizations"][0]["mappings"] = [
        {"group": "devs", "workspaceId": ws.id, "workspaceRole": "WORKSPACE_AUTHOR"}
    ]
    ok = await client.post(PATH, json=body, headers=bearer(token))
    assert ok.status_code == 201, ok.text
    assert ok.json()["organizations"][0]["mappings"] == body["organizations"][0]["mappings"]


async def test_a_taken_id_and_a_changed_type_are_refused(
    client: httpx.AsyncClient, world: World
) -> None:
    token = await _admin(world)
    org = await world.org()
    assert (await client.post(PATH, json=ldap_realm(org.id), headers=bearer(token))).is_success
    again = await client.post(PATH, json=ldap_realm(org.id), headers=bearer(token))
    assert_face_error("native", again, 409)
    oidc = {
        "id": "corp",
        "type": "oidc",
        "name": "x",
        "oidc": {"issuer": "https://idp.test", "clientId": "c"},
    }
    changed = await client.put(f"{PATH}/corp", json=oidc, headers=bearer(token))
    assert_face_error("native", changed, 400)
    assert "type" in changed.text


async def test_without_a_secret_key_no_secret_is_stored(world: World) -> None:
    admin = await world.admin()
    org = await world.org()
    spec = realms.RealmSpec(
        id="corp",
        type="ldap",
        name="Corp",
        settings={"url": "ldap://x", "user_base_dn": "dc=x"},
        secrets={"bind_password": BIND_PASSWORD},
        organizations=(realms.Binding(org.id),),
    )
    async with world.database.transaction() as db:
        actor = Principal(grants=await load_user_grants(db, admin.id), user=admin)
        with pytest.raises(SecretKeyMissing) as caught:
            await realms.create_realm(db, SecretBox([]), actor, spec)
        assert BIND_PASSWORD not in str(caught.value)
        strict = Principal(
            grants=actor.grants, user=admin, policy=SecurityPolicy(require_elevation=True)
        )
        with pytest.raises(ElevationRequired):
            await realms.create_realm(db, SecretBox([KEY]), strict, spec)


def test_secret_keys_rotate() -> None:
    old, new = generate_key(), generate_key()
    sealed = SecretBox([old]).seal({"client_secret": "s"})
    rotated = SecretBox([new, old])
    assert rotated.open(sealed) == {"client_secret": "s"}
    moved = rotated.reencrypt(sealed)
    assert SecretBox([new]).open(moved) == {"client_secret": "s"}
    with pytest.raises(ValueError, match="32 url-safe"):
        SecretBox(["not-a-key"])
