"""The `tenantry` command. Each command is one transaction over the same service functions
the faces use, acting as the trusted system principal."""

from __future__ import annotations

import asyncio
import copy
import json
import re
import sys
from collections.abc import Awaitable, Callable
from typing import Annotated, Any, TypeVar

import typer
from rich.console import Console
from rich.table import Column, Table
from sqlalchemy.ext.asyncio import AsyncSession

from tenantry.cli.api_tokens import api_token_app
from tenantry.cli.audit import audit_app
from tenantry.cli.domain import domain_app
from tenantry.cli.realms import key_app, realm_app
from tenantry.cli.scim import scim_app
from tenantry.clock import iso_z
from tenantry.config import load_settings
from tenantry.db.engine import Database
from tenantry.db.migrate import upgrade
from tenantry.db.models import User
from tenantry.directory import accounts, members, users
from tenantry.directory.users import UserFields
from tenantry.errors import DomainError
from tenantry.identity import personal_tokens, sessions
from tenantry.identity.principals import system_principal
from tenantry.identity.security import Security

app = typer.Typer(help="Tenantry: user directory and access control.", no_args_is_help=True)
db_app = typer.Typer(help="Database schema.", no_args_is_help=True)
user_app = typer.Typer(help="Users of the instance.", no_args_is_help=True)
token_app = typer.Typer(help="Personal tokens.", no_args_is_help=True)
sessions_app = typer.Typer(help="Sign-in sessions.", no_args_is_help=True)
app.add_typer(db_app, name="db")
app.add_typer(user_app, name="user")
app.add_typer(token_app, name="token")
app.add_typer(sessions_app, name="sessions")
app.add_typer(audit_app, name="audit")
app.add_typer(scim_app, name="scim")
app.add_typer(domain_app, name="domain")
app.add_typer(realm_app, name="realm")
app.add_typer(key_app, name="secret-key")
app.add_typer(api_token_app, name="api-token")
err = Console(stderr=True)
out = Console()
T = TypeVar("T")


def run_tx(work: Callable[[AsyncSession], Awaitable[T]]) -> T:
    """Run one command as one transaction; domain errors become a clean exit code 1."""

    async def go() -> T:
        db = Database(load_settings())
        try:
            async with db.transaction() as session:
                return await work(session)
        finally:
            await db.dispose()

    try:
        return asyncio.run(go())
    except DomainError as exc:
        err.print(f"[red]error:[/red] {exc.message}")
        for f in exc.fields:
            err.print(f"  {f.field}: {f.message}")
        raise typer.Exit(1) from None


def parse_days(text: str) -> int:
    match = re.fullmatch(r"(\d+)d?", text.strip())
    if not match or not 1 <= int(match.group(1)) <= 3650:
        raise typer.BadParameter("use a number of days such as 30d (1..3650)")
    return int(match.group(1))


@db_app.command("upgrade")
def db_upgrade() -> None:
    """Apply all migrations to TENANTRY_DATABASE_URL."""
    upgrade(load_settings().database_url)
    err.print("database is at the latest schema")


@app.command()
def serve(
    host: str = "127.0.0.1",
    port: Annotated[int, typer.Option(min=1, max=65535)] = 8000,
    workers: Annotated[int, typer.Option(min=1, max=64)] = 1,
) -> None:
    """Migrate the database, then serve every face."""
    import uvicorn

    settings = load_settings()
    upgrade(settings.database_url)
    uvicorn.run(
        "tenantry.app:create_app",
        factory=True,
        host=host,
        port=port,
        workers=workers,
        log_level=settings.log_level.lower(),
        log_config=_log_config(settings.log_level),
        access_log=False,
        proxy_headers=False,
    )


def _log_config(level: str) -> dict[str, Any]:
    """uvicorn's own logging, plus Tenantry's loggers through the same handler (without it
    they would have none, and only warnings would reach stderr)."""
    from uvicorn.config import LOGGING_CONFIG

    config = copy.deepcopy(LOGGING_CONFIG)
    config["loggers"]["tenantry"] = {"handlers": ["default"], "level": level, "propagate": False}
    return config


@app.command()
def bootstrap(
    username: Annotated[str, typer.Option(help="Login name, usually an e-mail address")],
    full_name: Annotated[str, typer.Option()] = "",
    expires_in: Annotated[str, typer.Option(help="Token lifetime, e.g. 30d")] = "90d",
) -> None:
    """Create the user if absent, make it SYSTEM_ADMIN, print a new personal token last."""
    from tenantry.directory.bootstrap import ensure_builtin_users, ensure_system_admin

    days = parse_days(expires_in)

    async def work(db: AsyncSession) -> str:
        user = await ensure_system_admin(db, username, full_name)
        await ensure_builtin_users(db)  # ECE's `admin` and `readonly` (no password yet)
        minted = await personal_tokens.create_personal_token(
            db, system_principal(), user.id, name="bootstrap", expires_in_days=days
        )
        return minted.secret

    secret = run_tx(work)
    err.print(f"{username} is SYSTEM_ADMIN; personal token:")
    print(secret)


@app.command()
def demo(
    if_empty: Annotated[
        bool, typer.Option("--if-empty", help="Do nothing if the database already has users")
    ] = False,
    admin: Annotated[str, typer.Option(help="Username of the demo SYSTEM_ADMIN")] = (
        "admin@example.com"
    ),
    url: Annotated[str, typer.Option(help="Base URL for the example requests")] = (
        "http://127.0.0.1:8000"
    ),
) -> None:
    """Load demo data (2 organizations, ~50 users with roles at every scope, invites, feature
    flags) in one transaction; print an admin token and example requests."""
    from tenantry.devdata import demo as dataset

    upgrade(load_settings().database_url)
    result = run_tx(lambda db: dataset.load_demo(db, admin_username=admin, if_empty=if_empty))
    if not result.loaded:
        err.print(dataset.already_loaded_note(result), markup=False, highlight=False)
        return
    print(dataset.instructions(result, url))


@user_app.command("create")
def user_create(
    username: str,
    full_name: Annotated[str, typer.Option()] = "",
    email: Annotated[str | None, typer.Option()] = None,
) -> None:
    """Create a user."""
    fields = UserFields(full_name=full_name, email=email)
    user = run_tx(lambda db: users.create_user(db, system_principal(), username, fields))
    out.print(f"created {user.username} ({user.id})")


@user_app.command("list")
def user_list(
    search: Annotated[str, typer.Option("--search", "-q")] = "",
    limit: Annotated[int, typer.Option(min=0, max=1000)] = 100,
    as_json: Annotated[bool, typer.Option("--json", help="One JSON object per line")] = False,
) -> None:
    """List users (case-insensitive search on username and full name)."""
    page = run_tx(lambda db: users.list_users(db, system_principal(), limit=limit, search=search))
    if as_json:
        for u in page.items:
            print(
                json.dumps(
                    {
                        "id": u.id,
                        "username": u.username,
                        "fullName": u.full_name,
                        "status": u.status,
                        "createdAt": iso_z(u.created_at),
                    }
                )
            )
        return
    # Fold rather than truncate: ids and usernames are what people copy from this table.
    table = Table(
        *(Column(name, overflow="fold") for name in ("id", "username", "full name")),
        "status",
        "created",
    )
    for u in page.items:
        table.add_row(u.id, u.username, u.full_name, u.status, iso_z(u.created_at))
    out.print(table)
    out.print(f"{len(page.items)} of {page.total}")


@user_app.command("show")
def user_show(username: str) -> None:
    """Show one user by username."""

    async def work(db: AsyncSession) -> dict[str, str]:
        user = await users.find_by_username(db, username)
        if user is None:
            raise DomainError(f"no user {username!r}")
        return {
            "id": user.id,
            "username": user.username,
            "email": user.email or "",
            "fullName": user.full_name,
            "status": user.status,
            "enabled": str(user.enabled),
            "createdAt": iso_z(user.created_at),
        }

    for key, value in run_tx(work).items():
        out.print(f"{key:>10}: {value}")


async def _user_named(db: AsyncSession, username: str) -> User:
    user = await users.find_by_username(db, username)
    if user is None:
        raise DomainError(f"no user {username!r}")
    return user


@user_app.command("set-password")
def user_set_password(
    username: str,
    stdin: Annotated[bool, typer.Option("--stdin", help="Read the password from stdin")] = False,
) -> None:
    """Set a user's password (prompted twice, or one line from stdin; never an argument, so
    it stays out of shell history and process lists). Ends the user's sessions."""
    if stdin:
        password = sys.stdin.readline().rstrip("\n")
    else:
        password = typer.prompt("New password", hide_input=True, confirmation_prompt=True)
    hasher = Security.from_settings(load_settings()).hasher

    async def work(db: AsyncSession) -> None:
        user = await _user_named(db, username)
        await accounts.set_password(db, hasher, system_principal(), user.id, password)

    run_tx(work)
    err.print(f"password set for {username}; their sessions have ended")


def _set_enabled(username: str, enabled: bool) -> None:
    async def work(db: AsyncSession) -> None:
        user = await _user_named(db, username)
        await users.update_user(db, system_principal(), user.id, UserFields(enabled=enabled))

    run_tx(work)


@user_app.command("disable")
def user_disable(username: str) -> None:
    """Disable a user: every credential they hold is refused from the next request on."""
    _set_enabled(username, False)
    out.print(f"disabled {username}")


@user_app.command("enable")
def user_enable(username: str) -> None:
    """Enable a disabled user again."""
    _set_enabled(username, True)
    out.print(f"enabled {username}")


@user_app.command("leave")
def user_leave(username: str, organization_id: str) -> None:
    """Take a user out of an organization: its role, their roles inside it, its teams (the
    account, other organizations and tokens stay; an organization keeps one owner)."""

    async def work(db: AsyncSession) -> None:
        user = await _user_named(db, username)
        await members.remove_member(db, system_principal(), organization_id, user.id)

    run_tx(work)
    out.print(f"{username} left organization {organization_id}")


@sessions_app.command("revoke")
def sessions_revoke(username: str) -> None:
    """End every sign-in session of a user (personal and API tokens are kept)."""

    async def work(db: AsyncSession) -> int:
        user = await _user_named(db, username)
        return await sessions.revoke_sessions(db, system_principal(), user.id)

    out.print(f"revoked {run_tx(work)} session(s) of {username}")


@token_app.command("create")
def token_create(
    user: Annotated[str, typer.Option("--user", help="Username (e-mail) of the owner")],
    name: Annotated[str, typer.Option()] = "cli",
    expires_in: Annotated[str, typer.Option(help="Lifetime, e.g. 30d")] = "90d",
) -> None:
    """Mint a personal token for a user; the secret is printed once, as the last line."""
    days = parse_days(expires_in)

    async def work(db: AsyncSession) -> str:
        owner = await users.find_by_username(db, user)
        if owner is None:
            raise DomainError(f"no user {user!r}")
        minted = await personal_tokens.create_personal_token(
            db, system_principal(), owner.id, name=name, expires_in_days=days
        )
        err.print(f"token id {minted.token.id}, expires {iso_z(minted.token.expires_at or 0)}")  # type: ignore[arg-type]
        return minted.secret

    print(run_tx(work))


@token_app.command("revoke")
def token_revoke(token_id: str) -> None:
    """Revoke a token by id; it is refused from the next request on."""
    run_tx(lambda db: personal_tokens.revoke_token(db, system_principal(), token_id))
    out.print(f"revoked {token_id}")


def main() -> None:
    app()
