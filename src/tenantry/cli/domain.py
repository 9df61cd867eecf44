"""`tenantry domain add|list|verify|remove`: an organization's verified e-mail domains, as the
system (directory/domains.py)."""

from __future__ import annotations

from typing import Annotated

import typer

from tenantry.clock import iso_z
from tenantry.config import load_settings
from tenantry.db.models import OrganizationDomain
from tenantry.directory import domains
from tenantry.dns import TxtResolver
from tenantry.identity.principals import system_principal

domain_app = typer.Typer(help="An organization's verified e-mail domains.", no_args_is_help=True)
Organization = Annotated[str, typer.Option("--organization", help="The organization's id")]
Domain = Annotated[str, typer.Argument(help="The domain, e.g. example.com")]


def _line(claim: OrganizationDomain) -> str:
    status = domains.status_of(claim)
    since = f" since {iso_z(claim.verified_at)}" if claim.verified_at else ""
    return f"{claim.domain}  {status}{since}"


def _txt(claim: OrganizationDomain) -> str:
    return f"TXT {domains.record_name(claim)} {domains.record_value(claim)}"


@domain_app.command("add")
def add(organization: Organization, domain: Domain) -> None:
    """Claim a domain; prints the TXT record to publish before `verify`."""
    from tenantry.cli import out, run_tx

    claim = run_tx(lambda db: domains.claim_domain(db, system_principal(), organization, domain))
    out.print(_line(claim))
    out.print(_txt(claim), soft_wrap=True)


@domain_app.command("list")
def list_domains(organization: Organization) -> None:
    """The organization's domains, pending and verified, with their TXT records."""
    from tenantry.cli import out, run_tx

    for claim in run_tx(lambda db: domains.list_domains(db, system_principal(), organization)):
        out.print(f"{_line(claim)}  {_txt(claim)}", soft_wrap=True)


@domain_app.command("verify")
def verify(organization: Organization, domain: Domain) -> None:
    """Look the TXT record up now (TENANTRY_DNS_NAMESERVERS) and mark the domain verified."""
    from tenantry.cli import out, run_tx

    lookup = TxtResolver.from_settings(load_settings()).txt
    claim = run_tx(
        lambda db: domains.verify_domain(db, system_principal(), organization, domain, lookup)
    )
    out.print(_line(claim))


@domain_app.command("remove")
def remove(organization: Organization, domain: Domain) -> None:
    """Remove a claimed or verified domain (adopted accounts stay managed)."""
    from tenantry.cli import out, run_tx

    run_tx(lambda db: domains.remove_domain(db, system_principal(), organization, domain))
    out.print(f"removed {domain}")
