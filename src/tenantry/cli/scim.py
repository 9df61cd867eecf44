"""`tenantry scim token create|list|revoke`: an organization's SCIM tokens, as the system."""

from __future__ import annotations

from typing import Annotated

import typer
from sqlalchemy.ext.asyncio import AsyncSession

from tenantry.clock import iso_z
from tenantry.directory import scim_tokens
from tenantry.identity.principals import system_principal

scim_app = typer.Typer(help="SCIM provisioning.", no_args_is_help=True)
scim_token_app = typer.Typer(help="An organization's SCIM tokens.", no_args_is_help=True)
scim_app.add_typer(scim_token_app, name="token")
Organization = Annotated[str, typer.Option("--organization", help="The organization's id")]


@scim_token_app.command("create")
def create(
    organization: Organization,
    expires_in: Annotated[str, typer.Option(help="Lifetime, e.g. 365d, or 'never'")] = "365d",
    default_role: Annotated[
        str, typer.Option(help="Organization role of provisioned users")
    ] = scim_tokens.DEFAULT_ROLE,
    name: Annotated[str, typer.Option()] = "scim",
) -> None:
    """Mint a SCIM token for the organization's identity provider; the secret is printed
    once, as the last line of standard output."""
    from tenantry.cli import err, parse_days, run_tx

    days = None if expires_in.strip().lower() == "never" else parse_days(expires_in)

    async def work(db: AsyncSession) -> str:
        minted = await scim_tokens.create_scim_token(
            db,
            system_principal(),
            organization,
            default_role=default_role,
            expires_in_days=days,
            name=name,
        )
        expires = iso_z(minted.token.expires_at) if minted.token.expires_at else "never"
        err.print(f"SCIM token id {minted.token.id}, expires {expires}")
        return minted.secret

    print(run_tx(work))


@scim_token_app.command("list")
def list_tokens(organization: Organization) -> None:
    """The organization's SCIM tokens that are not revoked (never their secrets)."""
    from tenantry.cli import out, run_tx

    for token in run_tx(
        lambda db: scim_tokens.list_scim_tokens(db, system_principal(), organization)
    ):
        expires = iso_z(token.expires_at) if token.expires_at else "never"
        out.print(f"{token.id}  {token.name}  {token.default_role}  expires {expires}")


@scim_token_app.command("revoke")
def revoke(organization: Organization, token_id: str) -> None:
    """Revoke a SCIM token; it is refused from the next request on."""
    from tenantry.cli import out, run_tx

    run_tx(lambda db: scim_tokens.revoke_scim_token(db, system_principal(), organization, token_id))
    out.print(f"revoked {token_id}")
