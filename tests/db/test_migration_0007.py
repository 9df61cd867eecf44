"""Migration 0007 on data written under 0006: new username keys (clashes made unreachable, the
older account keeping the key), e-mail keys, verified addresses, invite keys; and back."""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import sqlalchemy as sa
from alembic import command
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from tenantry.db.migrate import alembic_config, upgrade
from tenantry.identity import names
from tests.conftest import _admin, _with_database

T0 = datetime(2026, 1, 1, tzinfo=UTC)
FULL_WIDTH_STRASSE = "\uff53\uff54\uff52\uff41\uff53\uff53\uff45"
# username, username_key under 0006 (casefold), email, minutes after T0
USERS = {
    "admin": ("admin", "admin", None, 0),
    "fullwidth": ("\uff41dmin", "\uff41dmin", None, 5),  # newer, NFKC-equal to admin
    "x": (FULL_WIDTH_STRASSE, FULL_WIDTH_STRASSE, None, 1),
    "y": ("STRA\u1e9eE", "strasse", None, 2),  # capital sharp s: casefold gave X's new key
    "zws": ("bob\u200b", "bob\u200b", None, 3),
    "eszett": ("Bob@Straße.test", "bob@strasse.test", "Bob@Straße.test", 4),
    "selfset": ("sam", "sam", "sam@x.test", 6),
    "adminset": ("ada", "ada", "ada@x.test", 7),
    "list": ("lis", "lis", "a,b@x.test", 8),
    "invited": ("Ivy@x.test", "ivy@x.test", "Ivy@x.test", 9),  # PENDING, no password
}


@pytest.fixture(params=["sqlite", "postgres"])
def fresh_url(request: pytest.FixtureRequest, tmp_path: Any) -> Iterator[str]:
    if request.param == "sqlite":
        yield f"sqlite+aiosqlite:///{tmp_path / 'm.db'}"
        return
    server: str = request.getfixturevalue("pg_server")
    name = f"tenantry_m7_{secrets.token_hex(4)}"
    asyncio.run(_admin(server, f'CREATE DATABASE "{name}"'))
    yield _with_database(server, name)
    asyncio.run(_admin(server, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


@pytest.fixture
async def engine(fresh_url: str) -> AsyncIterator[AsyncEngine]:
    await asyncio.to_thread(upgrade, fresh_url, "0006")
    engine = create_async_engine(fresh_url)
    yield engine
    await engine.dispose()


def _id(label: str) -> str:
    return ("c" + label + "0" * 24)[:25]


def _user_row(label: str) -> dict[str, Any]:
    username, key, email, minutes = USERS[label]
    at = T0 + timedelta(minutes=minutes)
    status = "PENDING" if label == "invited" else "ACTIVE"
    return {
        "id": _id(label), "username": username, "username_key": key, "email": email,
        "full_name": "", "avatar_url": "", "status": status, "enabled": True,
        "builtin": False, "account_type": "User", "realm": "native", "idp_managed": False,
        "login_attempts": 0, "attributes": {}, "created_at": at, "updated_at": at,
    }  # fmt: skip


def _seed(connection: sa.Connection) -> None:
    meta = sa.MetaData()
    users = sa.Table("users", meta, autoload_with=connection)
    events = sa.Table("audit_events", meta, autoload_with=connection)
    orgs = sa.Table("organizations", meta, autoload_with=connection)
    invites = sa.Table("invites", meta, autoload_with=connection)
    connection.execute(users.insert(), [_user_row(label) for label in USERS])
    connection.execute(
        events.insert(),
        [
            {"at": T0, "action": "user.update", "actor_id": _id("selfset"),
             "target_id": _id("selfset"), "details": {"changed": ["email"], "face": "ece"}},
            {"at": T0, "action": "user.update", "actor_id": _id("admin"),
             "target_id": _id("adminset"), "details": {"changed": {"email": [None, "ada@x.test"]}}},
            {"at": T0, "action": "user.update", "actor_id": _id("adminset"),
             "target_id": _id("adminset"), "details": {"changed": {"full_name": ["", "Ada"]}}},
        ],
    )  # fmt: skip
    connection.execute(
        orgs.insert(),
        [{"id": _id("org"), "name": "O", "is_scim_enabled": False, "support_plan": "BASIC",
          "status": "ACTIVE", "member_count": 0, "created_at": T0, "updated_at": T0}],
    )  # fmt: skip
    connection.execute(
        invites.insert(),
        [{"id": _id("inv"), "organization_id": _id("org"), "invitee_email": "bob@bücher.test",
          "role": "ORGANIZATION_MEMBER", "expires_at": T0, "created_at": T0}],
    )  # fmt: skip


def _read(connection: sa.Connection) -> tuple[dict[str, Any], str]:
    users = sa.Table("users", sa.MetaData(), autoload_with=connection)
    rows = {row.id: row._mapping for row in connection.execute(sa.select(users))}
    invite = connection.execute(sa.text("SELECT invitee_email FROM invites")).scalar_one()
    return rows, invite


async def test_0007_rekeys_and_verifies_existing_rows(engine: AsyncEngine, fresh_url: str) -> None:
    async with engine.begin() as conn:
        await conn.run_sync(_seed)
    await asyncio.to_thread(upgrade, fresh_url, "0007")
    async with engine.connect() as conn:
        rows, invite = await conn.run_sync(_read)
    key = {label: rows[_id(label)]["username_key"] for label in USERS}
    assert key["admin"] == "admin"  # the older keeps the key ...
    assert key["fullwidth"] == names.unreachable_key(_id("fullwidth"))  # ... the newer has none
    assert key["x"] == "strasse" and key["y"] == "straße"  # moved through each other's keys
    assert key["zws"] == names.unreachable_key(_id("zws"))
    assert key["eszett"] == "bob@xn--strae-oqa.test"
    assert all(names.username_key(USERS[label][0]) != key[label] for label in ("fullwidth", "zws"))
    verified = {label: rows[_id(label)]["email_verified"] for label in USERS}
    assert verified == {
        "admin": False, "fullwidth": False, "x": False, "y": False, "zws": False,
        "eszett": True, "selfset": False, "adminset": True, "list": False, "invited": False,
    }  # fmt: skip
    assert rows[_id("eszett")]["email_key"] == "bob@xn--strae-oqa.test"
    assert rows[_id("admin")]["email_key"] is None
    assert rows[_id("invited")]["email_key"] == "ivy@x.test"
    assert all(rows[_id(label)]["pending_email"] is None for label in USERS)
    assert invite == "bob@xn--bcher-kva.test"

    await asyncio.to_thread(command.downgrade, alembic_config(fresh_url), "0006")
    async with engine.connect() as conn:
        rows, _ = await conn.run_sync(_read)
    assert "email_verified" not in rows[_id("admin")]
    back = {label: rows[_id(label)]["username_key"] for label in USERS}
    assert back["eszett"] == "bob@strasse.test" and back["y"] == "strasse"
    assert back["x"] == USERS["x"][1] and back["admin"] == "admin"
    await asyncio.to_thread(upgrade, fresh_url, "0007")  # and forward again
