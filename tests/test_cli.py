"""The `tenantry` command against a real database (SQLite and PostgreSQL)."""

from __future__ import annotations

import asyncio
import json

import pytest
from typer.testing import CliRunner

from tenantry.cli import app
from tenantry.db.engine import Database
from tenantry.directory import members, organizations, users
from tenantry.directory.members import RoleSet
from tenantry.directory.organizations import OrganizationFields
from tenantry.identity.principals import authenticate, system_principal

runner = CliRunner()


@pytest.fixture
def cli_env(monkeypatch: pytest.MonkeyPatch, database: Database) -> Database:
    monkeypatch.setenv("TENANTRY_DATABASE_URL", database.settings.database_url)
    return database


def _invoke(*args: str) -> str:
    result = runner.invoke(app, list(args))
    assert result.exit_code == 0, result.output
    return result.stdout


def _roles_of(database: Database, secret: str) -> set[str]:
    async def go() -> set[str]:
        check = Database(database.settings)
        try:
            async with check.transaction(write=False) as db:
                principal = await authenticate(db, secret)
                return {g.role for g in principal.grants.grants}
        finally:
            await check.dispose()

    return asyncio.run(go())


def test_bootstrap_prints_a_working_admin_token_last(cli_env: Database) -> None:
    out = _invoke("bootstrap", "--username", "root@example.com", "--full-name", "Root")
    secret = out.strip().splitlines()[-1]
    assert secret.startswith("tnt_")
    assert _roles_of(cli_env, secret) == {"SYSTEM_ADMIN"}
    again = _invoke("bootstrap", "--username", "ROOT@example.com").strip().splitlines()[-1]
    assert again != secret and _roles_of(cli_env, again) == {"SYSTEM_ADMIN"}


def test_user_commands(cli_env: Database) -> None:
    assert "created alice@example.com" in _invoke(
        "user", "create", "alice@example.com", "--full-name", "Alice Liddell"
    )
    listing = _invoke("user", "list", "--search", "liddell")
    assert "1 of 1" in listing
    rows = [json.loads(line) for line in _invoke("user", "list", "--json").splitlines()]
    assert [(r["username"], r["fullName"]) for r in rows] == [
        ("alice@example.com", "Alice Liddell")
    ]
    shown = _invoke("user", "show", "ALICE@example.com")
    assert "Alice Liddell" in shown
    dup = runner.invoke(app, ["user", "create", "alice@EXAMPLE.com"])
    assert dup.exit_code == 1 and "already exists" in dup.output


def test_token_create_and_revoke(cli_env: Database) -> None:
    _invoke("user", "create", "bob@example.com")
    result = runner.invoke(
        app, ["token", "create", "--user", "bob@example.com", "--expires-in", "30d"]
    )
    assert result.exit_code == 0, result.output
    secret = result.stdout.strip().splitlines()[-1]
    token_id = result.stderr.split("token id ")[1].split(",")[0]
    assert _roles_of(cli_env, secret) == set()
    _invoke("token", "revoke", token_id)
    with pytest.raises(Exception, match="invalid or expired"):
        _roles_of(cli_env, secret)


def test_bad_arguments_exit_cleanly(cli_env: Database) -> None:
    assert runner.invoke(app, ["token", "create", "--user", "nobody@x.io"]).exit_code == 1
    bad = runner.invoke(app, ["token", "create", "--user", "x", "--expires-in", "soon"])
    assert bad.exit_code == 2 and "30d" in bad.output


def test_set_password_disable_enable_and_sessions(cli_env: Database) -> None:
    _invoke("user", "create", "carol@example.com")
    weak = runner.invoke(
        app, ["user", "set-password", "carol@example.com", "--stdin"], input="password\n"
    )
    assert weak.exit_code == 1 and "commonest" in weak.output
    ok = runner.invoke(
        app,
        ["user", "set-password", "carol@example.com", "--stdin"],
        input="a-good-long-passphrase\n",
    )
    assert ok.exit_code == 0, ok.output
    assert "a-good-long-passphrase" not in ok.output
    secret = runner.invoke(app, ["token", "create", "--user", "carol@example.com"]).stdout
    secret = secret.strip().splitlines()[-1]
    assert _roles_of(cli_env, secret) == set()
    _invoke("user", "disable", "carol@example.com")
    with pytest.raises(Exception, match="invalid or expired"):
        _roles_of(cli_env, secret)
    _invoke("user", "enable", "carol@example.com")
    assert _roles_of(cli_env, secret) == set()
    assert "revoked 0 session(s)" in _invoke("sessions", "revoke", "carol@example.com")


def test_user_leave_takes_a_user_out_of_one_organization(cli_env: Database) -> None:
    _invoke("user", "create", "carol@example.com")

    async def join() -> tuple[str, str]:
        db_ = Database(cli_env.settings)
        try:
            async with db_.transaction() as db:
                user = await users.find_by_username(db, "carol@example.com")
                assert user is not None
                made = await organizations.create_organization(
                    db, system_principal(), OrganizationFields(name="Leavers")
                )
                roles = RoleSet("ORGANIZATION_MEMBER", [], [], [])
                await members.replace_user_roles(db, system_principal(), made.id, user.id, roles)
                return made.id, user.id
        finally:
            await db_.dispose()

    async def is_member(org_id: str, user_id: str) -> bool:
        db_ = Database(cli_env.settings)
        try:
            async with db_.transaction(write=False) as db:
                return await organizations.is_member(db, org_id, user_id)
        finally:
            await db_.dispose()

    org_id, user_id = asyncio.run(join())
    assert "left organization" in _invoke("user", "leave", "carol@example.com", org_id)
    assert not asyncio.run(is_member(org_id, user_id))
    again = runner.invoke(app, ["user", "leave", "carol@example.com", org_id])
    assert again.exit_code == 1 and "not found in this organization" in again.output


def test_api_token_create_list_and_revoke(cli_env: Database) -> None:
    """A system API token: the secret is the last line, shown by create alone."""
    result = runner.invoke(
        app, ["api-token", "create", "--system-role", "SYSTEM_ADMIN", "--name", "unleash"]
    )
    assert result.exit_code == 0, result.output
    secret = result.stdout.strip().splitlines()[-1]
    assert secret.startswith("tnt_")
    token_id = result.stderr.split("token id ")[1].split(" ")[0]
    assert _roles_of(cli_env, secret) == {"SYSTEM_ADMIN"}
    listing = _invoke("api-token", "list")
    assert token_id in listing and "SYSTEM_ADMIN" in listing and secret not in listing
    _invoke("api-token", "revoke", token_id)
    with pytest.raises(Exception, match="invalid or expired"):
        _roles_of(cli_env, secret)
    assert token_id not in _invoke("api-token", "list")


def test_api_token_bad_arguments_exit_cleanly(cli_env: Database) -> None:
    bad_role = runner.invoke(app, ["api-token", "create", "--system-role", "ORGANIZATION_OWNER"])
    assert bad_role.exit_code == 1 and "invalid system role" in bad_role.output
    bad_days = runner.invoke(
        app, ["api-token", "create", "--system-role", "SYSTEM_ADMIN", "--expires-in", "soon"]
    )
    assert bad_days.exit_code == 2
    assert runner.invoke(app, ["api-token", "create"]).exit_code == 2  # --system-role required
    assert runner.invoke(app, ["api-token", "revoke", "c" + "x" * 24]).exit_code == 1
    assert _invoke("api-token", "list").strip() == ""
