"""Filters through the face (RFC 7644 §3.4.2.2), on SQLite and PostgreSQL: every operator on
every attribute the face filters, within the token's organization only; malformed filters are
400 invalidFilter."""

from __future__ import annotations

from typing import Any

import pytest

from tests.faces.scim.conftest import GROUP_SCHEMA, Idp, assert_list, assert_scim_error


async def _users(idp: Idp) -> dict[str, dict[str, Any]]:
    made = [
        await idp.create_user(
            "alice@acme.example",
            externalId="A-1",
            displayName="Alice Archer",
            active=True,
            emails=[{"value": "Alice@Acme.example", "type": "work", "primary": True}],
        ),
        await idp.create_user(
            "bob",
            displayName="Bob Builder",
            active=False,
            emails=[{"value": "bob@builders.example", "type": "work", "primary": True}],
        ),
        # Not ASCII: SQLite's lower() would not fold it; the keys do.
        await idp.create_user("Élodie@acme.example", displayName="Élodie Émile"),
    ]
    return {u["userName"]: u for u in made}


async def _names(idp: Idp, flt: str, path: str = "/Users") -> set[str]:
    r = await idp.get(path, params={"filter": flt, "count": "100"})
    assert r.status_code == 200, (flt, r.text)
    body = r.json()
    assert_list(body)
    assert body["totalResults"] == len(body["Resources"])
    key = "userName" if path == "/Users" else "displayName"
    return {item[key] for item in body["Resources"]}


ALICE, BOB, ELODIE = "alice@acme.example", "bob", "Élodie@acme.example"
USER_FILTERS = [
    ('userName eq "ALICE@acme.EXAMPLE"', {ALICE}),
    ('userName eq "élodie@ACME.example"', {ELODIE}),
    ('USERNAME Eq "bob"', {BOB}),
    ('urn:ietf:params:scim:schemas:core:2.0:User:userName eq "bob"', {BOB}),
    ('userName ne "alice@acme.example"', {BOB, ELODIE}),
    ('userName co "ACME"', {ALICE, ELODIE}),
    ('userName sw "ÉLO"', {ELODIE}),
    ('userName ew ".Example"', {ALICE, ELODIE}),
    ("userName pr", {ALICE, BOB, ELODIE}),
    ('userName gt "b"', {BOB, ELODIE}),
    ('userName ge "bob"', {BOB, ELODIE}),
    ('userName lt "bob"', {ALICE}),
    ('userName le "bob"', {ALICE, BOB}),
    ('externalId eq "A-1"', {ALICE}),
    ('externalId eq "a-1"', set()),  # caseExact
    ("externalId pr", {ALICE}),
    ("not (externalId pr)", {BOB, ELODIE}),
    ('emails.value eq "ALICE@acme.example"', {ALICE}),
    ('emails co "builders"', {BOB}),
    ('emails[type eq "work"].value eq "bob@builders.example"', {BOB}),
    ('emails[type eq "work" and value ew "acme.example"]', {ALICE}),
    ('emails[type eq "home"]', set()),
    ("emails pr", {ALICE, BOB}),
    ('displayName eq "bob builder"', {BOB}),
    ('displayName sw "Alice"', {ALICE}),
    ('displayName co "Émile"', {ELODIE}),  # as written: SQLite folds ASCII only
    ("active eq true", {ALICE, ELODIE}),
    ("active eq false", {BOB}),
    ("active ne true", {BOB}),
    ('meta.lastModified gt "2000-01-01T00:00:00Z"', {ALICE, BOB, ELODIE}),
    ('meta.lastModified lt "2000-01-01T00:00:00Z"', set()),
    ('meta.created le "2999-01-01T00:00:00Z"', {ALICE, BOB, ELODIE}),
    ('userName eq "bob" or externalId eq "A-1"', {ALICE, BOB}),
    ('userName co "acme" and not (active eq true)', set()),
    ('(userName eq "bob" or userName eq "alice@acme.example") and active eq true', {ALICE}),
    ('not (userName eq "bob" or displayName sw "Alice")', {ELODIE}),
]


@pytest.mark.parametrize(("flt", "expected"), USER_FILTERS)
async def test_user_filter(idp: Idp, flt: str, expected: set[str]) -> None:
    await _users(idp)
    assert await _names(idp, flt) == expected


async def test_a_filter_in_a_search_request_body(idp: Idp) -> None:
    await _users(idp)
    body = {
        "schemas": ["urn:ietf:params:scim:api:messages:2.0:SearchRequest"],
        "filter": 'userName sw "A" or userName eq "bob"',
    }
    r = await idp.post("/Users/.search", body)
    assert {u["userName"] for u in r.json()["Resources"]} == {ALICE, BOB}
    r = await idp.post("/.search", {**body, "filter": 'userName eq "bob"'})
    assert [u["userName"] for u in r.json()["Resources"]] == [BOB]  # no group has a userName


async def test_no_filter_reaches_another_organizations_users(idp: Idp, other_idp: Idp) -> None:
    mine = await idp.create_user("mine@acme.example")
    await other_idp.create_user("theirs@globex.example", externalId="T")
    await other_idp.post("/Groups", {"schemas": [GROUP_SCHEMA], "displayName": "Theirs"})
    for flt in (
        "userName pr or userName pr",
        'userName pr or not (userName pr) or externalId eq "T"',
        "not (userName pr and userName pr)",
        'not (userName eq "mine@acme.example")',
        'externalId eq "T" or (active eq true or active eq false)',
    ):
        r = await idp.get("/Users", params={"filter": flt})
        ids = {u["id"] for u in r.json()["Resources"]}
        assert ids <= {mine["id"]}, flt
    r = await idp.get("/Groups", params={"filter": "displayName pr or not (displayName pr)"})
    assert r.json()["totalResults"] == 0


async def test_group_filters(idp: Idp) -> None:
    users = await _users(idp)
    alice, bob = users[ALICE]["id"], users[BOB]["id"]
    for name, ext, members in (("Admins", "G-1", [alice]), ("Builders", None, [alice, bob])):
        body: dict[str, Any] = {"schemas": [GROUP_SCHEMA], "displayName": name}
        if ext:
            body["externalId"] = ext
        body["members"] = [{"value": m} for m in members]
        assert (await idp.post("/Groups", body)).status_code == 201
    await idp.post("/Groups", {"schemas": [GROUP_SCHEMA], "displayName": "Empty"})
    cases = [
        ('displayName eq "admins"', {"Admins"}),
        ('displayName sw "B" or displayName ew "ty"', {"Builders", "Empty"}),
        ('externalId eq "G-1"', {"Admins"}),
        ("externalId pr", {"Admins"}),
        (f'members.value eq "{bob}"', {"Builders"}),
        (f'members[value eq "{alice}"]', {"Admins", "Builders"}),
        (f'members eq "{alice}" and not (members eq "{bob}")', {"Admins"}),
        ("members pr", {"Admins", "Builders"}),
        ("not (members pr)", {"Empty"}),
        ('members[type eq "User"]', {"Admins", "Builders"}),
        (f'members.value ne "{alice}"', {"Empty"}),
        ('meta.lastModified gt "2000-01-01T00:00:00Z"', {"Admins", "Builders", "Empty"}),
    ]
    for flt, expected in cases:
        assert await _names(idp, flt, "/Groups") == expected, flt


@pytest.mark.parametrize(
    "flt",
    [
        "userName eq",
        "((",
        'userName eq "x" and',
        'userName xx "x"',
        'shoe eq "x"',
        'name.givenName eq "x"',  # kept, but not filtered
        'meta.lastModified gt "yesterday"',
        "active eq 1",
        'active gt "x"',
        'active co "t"',
        "userName gt 5",
        "userName gt null",
        'emails[type eq "work"',
        "x" * 5000,
    ],
)
async def test_a_malformed_filter_is_invalid_filter(idp: Idp, flt: str) -> None:
    await idp.create_user("alice@acme.example")
    assert_scim_error(await idp.get("/Users", params={"filter": flt}), 400, "invalidFilter")


async def test_a_malformed_group_filter_is_invalid_filter(idp: Idp) -> None:
    for flt in ('userName eq "x"', 'members.display eq "x"', "displayName eq 3"):
        r = await idp.get("/Groups", params={"filter": flt})
        assert_scim_error(r, 400, "invalidFilter")
    r = await idp.post("/.search", {"schemas": [], "filter": 'shoe eq "x"'})
    assert_scim_error(r, 400, "invalidFilter")
