"""GET /api/admin/user-admin/search and POST /validate-password need no permission in Unleash
(any signed-in caller, issue 16). Search matches as Unleash's store does (name contains,
username or e-mail starts with, case-insensitive), answers `[]` for a `q` under two
characters, and shows only users the caller could list anyway: everyone to an administrator,
otherwise the members of the caller's organizations and the caller (directory/users.py
search_users); another tenant's users are never found."""

from __future__ import annotations

import httpx

from tests.faces.unleash import spec
from tests.faces.unleash.test_users import UA, admin_token
from tests.factories import World

SEARCH = f"{UA}/search"


async def found(client: httpx.AsyncClient, headers: dict[str, str], q: str | None) -> list[int]:
    r = await client.get(SEARCH, headers=headers, params={"q": q} if q is not None else None)
    assert r.status_code == 200, r.text
    body = r.json()
    assert spec.errors("usersSearchSchema", body) == []
    return [u["id"] for u in body]


async def test_matches_as_unleash_does(client: httpx.AsyncClient, world: World) -> None:
    auth = await admin_token(world)
    ops = await world.user("ops", "Night Operations")
    peer = await world.user("peer.user@example.com", "Peer", email="peer.user@example.com")
    odd = await world.user("odd_one", "50% Off")
    assert await found(client, auth, "op") == [ops.seq]  # the username starts with it
    assert await found(client, auth, "OP") == [ops.seq]  # in any case
    assert await found(client, auth, "ps") == []  # inside a username: no
    assert await found(client, auth, "operat") == [ops.seq]  # inside the name: yes
    assert await found(client, auth, "peer.u") == [peer.seq]  # the address starts with it
    assert await found(client, auth, "example.com") == []  # inside an address: no
    assert await found(client, auth, "d_") == []  # wildcards are literal
    assert await found(client, auth, "odd_") == [odd.seq]
    assert await found(client, auth, "0%") == [odd.seq]
    assert await found(client, auth, "%%") == []
    for short in ("o", "", None):  # under two characters, or no q: nothing (Unleash)
        assert await found(client, auth, short) == []
    r = await client.get(f"{SEARCH}?q=op&q=ops", headers=auth)  # q twice: not a string
    assert r.status_code == 200 and r.json() == []
    (row,) = (await client.get(SEARCH, headers=auth, params={"q": "ops"})).json()
    # Unleash's store selects neither loginAttempts nor createdAt, and a search has no roles.
    assert set(row) == {
        "accountType",
        "id",
        "name",
        "username",
        "imageUrl",
        "seenAt",
        "scimId",
        "seatType",
        "companyRole",
        "productUpdatesEmailConsent",
    }


async def test_any_signed_in_caller_finds_only_whom_they_may_see(
    client: httpx.AsyncClient, world: World
) -> None:
    alpha, bravo = await world.org("Alpha"), await world.org("Bravo")
    me, my_token = await world.member(alpha, username="sam.alpha@example.com")
    colleague, _ = await world.member(alpha, username="sam.colleague@example.com")
    stranger, _ = await world.member(bravo, username="sam.bravo@example.com")
    loner = await world.user("sam.loner@example.com")
    mine = {"Authorization": my_token}
    assert await found(client, mine, "sam") == [me.seq, colleague.seq]
    assert await found(client, mine, "sam.bravo") == []  # another tenant's: never
    alone = {"Authorization": await world.token(loner)}
    assert await found(client, alone, "sam") == [loner.seq]  # in no organization: yourself
    everyone = await found(client, await admin_token(world), "sam")
    assert everyone == [me.seq, colleague.seq, stranger.seq, loner.seq]
    # An API token of Bravo sees Bravo's members.
    bravo_token = await world.api_token(bravo)
    assert stranger.seq in await found(client, {"Authorization": bravo_token.secret}, "sam")
    assert me.seq not in await found(client, {"Authorization": bravo_token.secret}, "sam")
    # Without a credential: Unleash's login hint, as on every /api route.
    assert (await client.get(SEARCH, params={"q": "sam"})).json()["name"] == (
        "AuthenticationRequired"
    )


async def test_validate_password_needs_no_permission(
    client: httpx.AsyncClient, world: World
) -> None:
    viewer = await world.user("v.only@example.com")
    auth = {"Authorization": await world.token(viewer)}
    url = f"{UA}/validate-password"
    ok = await client.post(url, headers=auth, json={"password": "Viewer-Passw0rd!x"})
    assert ok.status_code == 200 and ok.content == b""
    weak = await client.post(url, headers=auth, json={"password": "weak"})
    assert spec.error(weak, 400)["name"] == "OwaspValidationError"
    # The other user-admin routes still need ADMIN.
    assert (await client.get(UA, headers=auth)).json()["name"] == "PermissionError"
