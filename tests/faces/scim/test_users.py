"""/Users: create, read, list (filter, paging), replace, patch, delete; the enterprise
extension; meta and ETags; SCIM errors with nothing written."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from sqlalchemy import func, select

from tenantry.db.models import AuditEvent, Membership, User
from tests.faces.scim.conftest import (
    ENTERPRISE,
    MEDIA,
    USER_SCHEMA,
    Idp,
    assert_list,
    assert_scim_error,
    assert_user,
    new_user,
)
from tests.factories import World

BARBARA = {
    "externalId": "00u1",
    "name": {"givenName": "Barbara", "familyName": "Jensen", "formatted": "Ms. Barbara J Jensen"},
    "displayName": "Babs Jensen",
    "title": "Tour Guide",
    "emails": [{"value": "bjensen@example.com", "type": "work", "primary": True}],
    ENTERPRISE: {
        "employeeNumber": "701984",
        "department": "Tour Operations",
        "manager": {"value": "26118915-6090-4610-87e4-49d8ca9f808d"},
    },
}


async def _count(world: World, model: Any) -> int:
    async with world.database.transaction(write=False) as db:
        return int(await db.scalar(select(func.count()).select_from(model)) or 0)


async def test_create_and_read_a_user(idp: Idp, world: World) -> None:
    made = await idp.create_user("bjensen@example.com", **BARBARA)
    assert_user(made)
    assert made["schemas"] == [USER_SCHEMA, ENTERPRISE]
    # `active` is shown once the identity provider gave it (or the account is disabled)
    assert made["userName"] == "bjensen@example.com" and "active" not in made
    assert made[ENTERPRISE]["department"] == "Tour Operations"
    meta = made["meta"]
    assert meta["resourceType"] == "User" and meta["version"].startswith('W/"')
    assert meta["location"].endswith(f"/scim/v2/Users/{made['id']}")
    r = await idp.get(f"/Users/{made['id']}")
    assert r.status_code == 200 and r.headers["content-type"].startswith(MEDIA)
    assert r.headers["etag"] == meta["version"]
    assert r.json() == made
    async with world.database.transaction(write=False) as db:
        user = await db.scalar(select(User).where(User.id == made["id"]))
        assert user is not None
        assert (user.full_name, user.email, user.email_verified) == (
            "Babs Jensen",
            "bjensen@example.com",
            False,
        )
        assert user.idp_managed and user.realm == "scim" and user.realm_id == idp.org.id
        assert user.managed_by_organization_id == idp.org.id
        member = await db.get(Membership, (idp.org.id, user.id))
        assert member is not None and member.role == "ORGANIZATION_MEMBER"
        events = list(await db.scalars(select(AuditEvent).where(AuditEvent.target_id == user.id)))
    assert {e.action for e in events} >= {"user.create", "organization.user.provision"}
    assert {(e.actor_type, e.actor_id) for e in events} == {("token", _token_id(idp, events))}


def _token_id(idp: Idp, events: list[AuditEvent]) -> str | None:
    return events[0].actor_id


async def test_active_is_shown_once_given(idp: Idp) -> None:
    made = await idp.create_user("a@example.com", active=True)
    assert made["active"] is True
    r = await idp.patch(f"/Users/{made['id']}", [{"op": "remove", "path": "active"}])
    assert r.status_code == 200 and "active" not in r.json(), r.text
    r = await idp.put(f"/Users/{made['id']}", new_user("a@example.com", active="false"))
    assert r.status_code == 200 and r.json()["active"] is False, r.text


async def test_search_with_post(idp: Idp) -> None:
    await idp.create_user("a@example.com", displayName="A")
    r = await idp.post(
        "/Users/.search",
        {
            "schemas": ["urn:ietf:params:scim:api:messages:2.0:SearchRequest"],
            "filter": 'userName eq "a@example.com"',
            "attributes": ["displayName"],
        },
    )
    assert r.status_code == 200, r.text
    assert [set(u) for u in r.json()["Resources"]] == [{"schemas", "id", "meta", "displayName"}]
    r = await idp.post("/.search", {"excludedAttributes": ["displayName"]})
    assert r.status_code == 200 and r.json()["totalResults"] == 1, r.text
    assert "displayName" not in r.json()["Resources"][0]
    assert_scim_error(await idp.post("/.search", {"count": "x"}), 400, "invalidValue")


async def test_list_filter_and_paging(idp: Idp) -> None:
    for i in range(5):
        await idp.create_user(f"u{i}@example.com", externalId=f"ext{i}")
    r = await idp.get("/Users", params={"startIndex": 2, "count": 2})
    body = r.json()
    assert_list(body)
    assert (body["totalResults"], body["startIndex"], body["itemsPerPage"]) == (5, 2, 2)
    assert [u["userName"] for u in body["Resources"]] == ["u1@example.com", "u2@example.com"]
    found = (await idp.get("/Users", params={"filter": 'userName eq "U3@EXAMPLE.com"'})).json()
    assert [u["userName"] for u in found["Resources"]] == ["u3@example.com"]
    assert found["totalResults"] == 1
    found = (await idp.get("/Users", params={"filter": 'externalId eq "ext4"'})).json()
    assert [u["externalId"] for u in found["Resources"]] == ["ext4"]
    none = (await idp.get("/Users", params={"filter": 'userName eq "nobody"'})).json()
    assert none["totalResults"] == 0 and none["Resources"] == []
    counted = (await idp.get("/Users", params={"count": 0})).json()
    assert counted["totalResults"] == 5 and counted["Resources"] == []
    shown = (await idp.get("/Users", params={"attributes": "userName"})).json()
    assert set(shown["Resources"][0]) == {"schemas", "id", "meta", "userName"}


async def test_replace_a_user(idp: Idp, world: World) -> None:
    made = await idp.create_user("bjensen@example.com", **BARBARA)
    body = new_user("babs@example.com", displayName="Babs", active=False)
    r = await idp.put(f"/Users/{made['id']}", body)
    assert r.status_code == 200, r.text
    after = r.json()
    assert_user(after)
    assert after["userName"] == "babs@example.com" and after["active"] is False
    assert ENTERPRISE not in after and "emails" not in after and "externalId" not in after
    assert after["meta"]["version"] != made["meta"]["version"]
    async with world.database.transaction(write=False) as db:
        user = await db.scalar(select(User).where(User.id == made["id"]))
        assert user is not None and (user.full_name, user.email, user.enabled) == (
            "Babs",
            None,
            False,
        )


async def test_patch_a_user_as_entra_does(idp: Idp) -> None:
    made = await idp.create_user("bjensen@example.com", **BARBARA)
    ops = [
        {"op": "Replace", "path": "displayName", "value": "B. Jensen"},
        {"op": "Replace", "path": f"{ENTERPRISE}:department", "value": "Sales"},
        {"op": "Replace", "path": "active", "value": "False"},
        {"op": "Add", "path": "title", "value": "Lead"},
    ]
    r = await idp.patch(f"/Users/{made['id']}", ops)
    assert r.status_code == 200, r.text
    after = r.json()
    assert after["displayName"] == "B. Jensen" and after["active"] is False
    assert after[ENTERPRISE]["department"] == "Sales" and after["title"] == "Lead"
    assert after[ENTERPRISE]["employeeNumber"] == "701984"


async def test_if_match(idp: Idp) -> None:
    made = await idp.create_user("bjensen@example.com")
    path = f"/Users/{made['id']}"
    stale = 'W/"0"'
    r = await idp.put(path, new_user("x@example.com"), headers={"If-Match": stale})
    assert_scim_error(r, 412)
    r = await idp.delete(path, headers={"If-Match": stale})
    assert_scim_error(r, 412)
    assert (await idp.get(path)).json()["userName"] == "bjensen@example.com"
    r = await idp.put(
        path, new_user("x@example.com"), headers={"If-Match": made["meta"]["version"]}
    )
    assert r.status_code == 200, r.text
    assert (await idp.delete(path, headers={"If-Match": "*"})).status_code == 204


async def test_delete_a_user(idp: Idp, world: World) -> None:
    made = await idp.create_user("bjensen@example.com")
    assert (await idp.delete(f"/Users/{made['id']}")).status_code == 204
    assert_scim_error(await idp.get(f"/Users/{made['id']}"), 404)
    assert_scim_error(await idp.delete(f"/Users/{made['id']}"), 404)
    async with world.database.transaction(write=False) as db:
        assert await db.scalar(select(User).where(User.id == made["id"])) is None
        org = await db.get(type(idp.org), idp.org.id)
        assert org is not None and org.member_count == 0


async def test_a_taken_username_is_a_uniqueness_conflict(idp: Idp, world: World) -> None:
    await world.user("taken@example.com")  # outside the organization
    await idp.create_user("mine@example.com")
    before = await _count(world, User)
    for name in ("taken@example.com", "TAKEN@example.com", "mine@example.com"):
        r = await idp.post("/Users", new_user(name))
        assert_scim_error(r, 409, "uniqueness")
        assert "example.com" not in r.json()["detail"]
    assert await _count(world, User) == before
    made = await idp.create_user("other@example.com")
    r = await idp.put(f"/Users/{made['id']}", new_user("taken@example.com"))
    assert_scim_error(r, 409, "uniqueness")


@pytest.mark.parametrize(
    ("body", "scim_type"),
    [
        ({"schemas": [USER_SCHEMA]}, "invalidValue"),
        (new_user(""), "invalidValue"),
        (new_user("a@example.com", active="maybe"), "invalidValue"),
        (new_user("a@example.com", emails="a@example.com"), "invalidValue"),
        (new_user("a@example.com", emails=[{"value": 7}]), "invalidValue"),
        (new_user("a@example.com", name="Barbara"), "invalidValue"),
        (new_user("a@example.com", shoeSize="42"), "invalidSyntax"),
        (new_user("a@example.com", name={"nickname": "x"}), "invalidSyntax"),
        (new_user("a@example.com", **{ENTERPRISE: {"salary": "1"}}), "invalidSyntax"),
        (new_user("a@example.com", externalId=5), "invalidValue"),
        (new_user("bad\u200bname@example.com"), "invalidValue"),
        (new_user("a@example.com", emails=[{"value": "not an address"}]), "invalidValue"),
        (
            new_user(
                "a@example.com",
                emails=[{"value": "a@x.io", "primary": True}, {"value": "b@x.io", "primary": True}],
            ),
            "invalidValue",
        ),
        ([], "invalidSyntax"),
        ("x", "invalidSyntax"),
    ],
)
async def test_bad_users_are_refused_and_nothing_is_written(
    idp: Idp, world: World, body: Any, scim_type: str
) -> None:
    before = await _count(world, User)
    assert_scim_error(await idp.post("/Users", body), 400, scim_type)
    assert await _count(world, User) == before


async def test_bad_requests_are_scim_errors(idp: Idp, client: httpx.AsyncClient) -> None:
    made = await idp.create_user("bjensen@example.com")
    headers = idp.headers()
    r = await client.post("/scim/v2/Users", content=b"{not json", headers=headers)
    assert_scim_error(r, 400, "invalidSyntax")
    r = await client.post("/scim/v2/Users", content=b"", headers=headers)
    assert_scim_error(r, 400, "invalidSyntax")
    assert_scim_error(
        await idp.get("/Users", params={"filter": "userName eq"}), 400, "invalidFilter"
    )
    assert_scim_error(await idp.get("/Users", params={"filter": "(("}), 400, "invalidFilter")
    assert_scim_error(
        await idp.get("/Users", params={"filter": 'shoe eq "x"'}), 400, "invalidFilter"
    )
    assert_scim_error(await idp.get("/Users", params={"count": "many"}), 400, "invalidValue")
    assert_scim_error(await idp.get("/Users/not-an-id"), 404)
    assert_scim_error(await idp.get("/Users/c" + "0" * 24), 404)
    r = await idp.request("PATCH", f"/Users/{made['id']}", {"Operations": []})
    assert_scim_error(r, 400, "invalidSyntax")
    r = await idp.patch(f"/Users/{made['id']}", [{"op": "jump", "path": "title"}])
    assert_scim_error(r, 400, "invalidSyntax")
    r = await idp.patch(f"/Users/{made['id']}", [{"op": "remove"}])
    assert_scim_error(r, 400, "noTarget")
    r = await idp.patch(f"/Users/{made['id']}", [{"op": "replace", "path": "active", "value": 3}])
    assert_scim_error(r, 400, "invalidValue")
    assert (await idp.get(f"/Users/{made['id']}")).json() == made
    r = await client.post(
        "/scim/v2/Users", content=b"{" + b'"x":"' + b"a" * 70_000 + b'"}', headers=headers
    )
    assert_scim_error(r, 413)
    assert_scim_error(await client.get("/scim/v2/Nothing", headers=headers), 404)
