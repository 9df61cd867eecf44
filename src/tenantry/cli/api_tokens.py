"""`tenantry api-token create|list|revoke`: the instance's system API tokens, as the system."""

from __future__ import annotations

from typing import Annotated

import typer
from sqlalchemy.ext.asyncio import AsyncSession

from tenantry.clock import iso_z
from tenantry.directory import system_api_tokens
from tenantry.identity.principals import system_principal

api_token_app = typer.Typer(
    help="System API tokens: instance-wide, no user, one SYSTEM role.", no_args_is_help=True
)


@api_token_app.command("create")
def create(
    system_role: Annotated[
        str, typer.Option("--system-role", help="SYSTEM_ADMIN, SYSTEM_EDITOR, SYSTEM_VIEWER, ...")
    ],
    name: Annotated[str, typer.Option()] = "",
    expires_in: Annotated[str, typer.Option(help="Lifetime, e.g. 365d, or 'never'")] = "365d",
) -> None:
    """Mint a system API token; the secret is printed once, as the last line of standard
    output."""
    from tenantry.cli import err, parse_days, run_tx

    days = None if expires_in.strip().lower() == "never" else parse_days(expires_in)

    async def work(db: AsyncSession) -> str:
        made = await system_api_tokens.create_system_api_token(
            db, system_principal(), role=system_role, name=name, expires_in_days=days
        )
        expires = iso_z(made.token.expires_at) if made.token.expires_at else "never"
        err.print(f"system API token id {made.token.id} ({made.role}), expires {expires}")
        assert made.secret is not None
        return made.secret

    print(run_tx(work))


@api_token_app.command("list")
def list_tokens() -> None:
    """The system API tokens that are not revoked (never their secrets)."""
    from tenantry.cli import out, run_tx

    for made in run_tx(lambda db: system_api_tokens.list_system_api_tokens(db, system_principal())):
        token = made.token
        expires = iso_z(token.expires_at) if token.expires_at else "never"
        out.print(f"{token.id}  {token.name}  {made.role}  expires {expires}")


@api_token_app.command("revoke")
def revoke(token_id: str) -> None:
    """Revoke a system API token; it is refused from the next request on."""
    from tenantry.cli import out, run_tx

    run_tx(lambda db: system_api_tokens.revoke_system_api_token(db, system_principal(), token_id))
    out.print(f"revoked {token_id}")
