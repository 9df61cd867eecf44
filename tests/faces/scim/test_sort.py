"""sortBy / sortOrder (RFC 7644 §3.4.2.3) on /Users, /Groups and the .search endpoints:
the order asserted on real data, a missing value last ascending and first descending."""

from __future__ import annotations

from typing import Any

import pytest

from tests.faces.scim.conftest import GROUP_SCHEMA, USER_SCHEMA, Idp, assert_scim_error

PEOPLE: list[tuple[str, dict[str, Any]]] = [
    ("carol@example.com", {"displayName": "carol", "name": {"familyName": "Zeta"}}),
    ("Alice@example.com", {"displayName": "Bob", "externalId": "b", "name": {"familyName": "mu"}}),
    ("bob@example.com", {"displayName": "alice", "externalId": "a"}),
]


async def _people(idp: Idp) -> None:
    for username, attributes in PEOPLE:
        await idp.create_user(username, emails=[{"value": username}], **attributes)


async def _user_names(idp: Idp, **params: str) -> list[str]:
    r = await idp.get("/Users", params=params)
    assert r.status_code == 200, r.text
    return [u["userName"] for u in r.json()["Resources"]]


@pytest.mark.parametrize(
    ("sort_by", "ascending"),
    [
        # userName and emails compare case-insensitively (by their keys)
        ("userName", ["Alice@example.com", "bob@example.com", "carol@example.com"]),
        ("emails.value", ["Alice@example.com", "bob@example.com", "carol@example.com"]),
        ("displayName", ["bob@example.com", "Alice@example.com", "carol@example.com"]),
        # no family name for bob: last ascending, first descending
        ("name.familyName", ["Alice@example.com", "carol@example.com", "bob@example.com"]),
        ("externalId", ["bob@example.com", "Alice@example.com", "carol@example.com"]),
        ("meta.created", ["carol@example.com", "Alice@example.com", "bob@example.com"]),
        (f"{USER_SCHEMA}:userName", ["Alice@example.com", "bob@example.com", "carol@example.com"]),
    ],
)
async def test_users_sort(idp: Idp, sort_by: str, ascending: list[str]) -> None:
    await _people(idp)
    assert await _user_names(idp, sortBy=sort_by) == ascending
    assert await _user_names(idp, sortBy=sort_by, sortOrder="ascending") == ascending
    assert await _user_names(idp, sortBy=sort_by, sortOrder="descending") == ascending[::-1]


async def test_sort_pages_and_filters(idp: Idp) -> None:
    await _people(idp)
    params = {"sortBy": "userName", "sortOrder": "descending", "count": "1", "startIndex": "2"}
    assert await _user_names(idp, **params) == ["bob@example.com"]
    body: dict[str, Any] = {
        "schemas": ["urn:ietf:params:scim:api:messages:2.0:SearchRequest"],
        "filter": 'userName ne "bob@example.com"',
        "sortBy": "displayName",
        "sortOrder": "descending",
    }
    r = await idp.post("/Users/.search", body)
    assert [u["userName"] for u in r.json()["Resources"]] == [
        "carol@example.com",
        "Alice@example.com",
    ]


async def test_groups_sort_and_the_root_search(idp: Idp) -> None:
    await _people(idp)
    for name in ("beta", "Alpha", "gamma"):
        r = await idp.post("/Groups", {"schemas": [GROUP_SCHEMA], "displayName": name})
        assert r.status_code == 201, r.text
    r = await idp.get("/Groups", params={"sortBy": "displayName", "sortOrder": "descending"})
    assert [g["displayName"] for g in r.json()["Resources"]] == ["gamma", "beta", "Alpha"]
    # At the root, each type sorts by the attribute it has; users come first.
    body = {"schemas": ["urn:ietf:params:scim:api:messages:2.0:SearchRequest"]}
    r = await idp.post("/.search", body | {"sortBy": "displayName"})
    found = [x["displayName"] for x in r.json()["Resources"]]
    assert found == ["alice", "Bob", "carol", "Alpha", "beta", "gamma"]
    r = await idp.post("/.search", body | {"sortBy": "userName", "sortOrder": "descending"})
    found = [x.get("userName", x.get("displayName")) for x in r.json()["Resources"]]
    users = ["carol@example.com", "bob@example.com", "Alice@example.com"]
    # the groups have no userName: oldest first
    assert found == [*users, "beta", "Alpha", "gamma"]


@pytest.mark.parametrize(
    ("path", "params"),
    [
        ("/Users", {"sortBy": "title"}),
        ("/Users", {"sortBy": "nothing"}),
        ("/Groups", {"sortBy": "userName"}),
        ("/Users", {"sortBy": "userName", "sortOrder": "upwards"}),
    ],
)
async def test_what_cannot_be_sorted_is_invalid_value(
    idp: Idp, path: str, params: dict[str, str]
) -> None:
    await _people(idp)
    r = await idp.get(path, params=params)
    assert_scim_error(r, 400, "invalidValue")
    assert "sort" in r.json()["detail"]


async def test_the_root_search_refuses_what_neither_type_sorts_by(idp: Idp) -> None:
    body = {"schemas": ["urn:ietf:params:scim:api:messages:2.0:SearchRequest"], "sortBy": "title"}
    assert_scim_error(await idp.post("/.search", body), 400, "invalidValue")
