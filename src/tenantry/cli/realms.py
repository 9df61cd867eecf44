"""`tenantry realm add|list|show|test|remove` and `tenantry secret-key generate`: realms as the
system, described in the native API's JSON (docs/faces/native.md, Realms)."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated, Any

import typer
from pydantic import ValidationError
from sqlalchemy.ext.asyncio import AsyncSession

from tenantry.config import load_settings
from tenantry.directory import realms
from tenantry.faces.native.realms import RealmBody, UpdateRealmBody, render, to_spec
from tenantry.identity.principals import system_principal
from tenantry.identity.secretbox import SecretBox, generate_key

realm_app = typer.Typer(
    help="Identity sources: LDAP, Active Directory, OIDC, SAML.", no_args_is_help=True
)
key_app = typer.Typer(help="The key that seals realm secrets.", no_args_is_help=True)
File = Annotated[
    str, typer.Option("--file", "-f", help="The realm as native JSON; '-' reads standard input")
]


def _box() -> SecretBox:
    return SecretBox.from_settings(load_settings())


def _document(path: str) -> dict[str, Any]:
    from tenantry.cli import err

    try:
        text = sys.stdin.read() if path == "-" else Path(path).read_text()
        doc = json.loads(text)
    except (OSError, ValueError) as exc:
        err.print(f"cannot read the realm: {type(exc).__name__}")
        raise typer.Exit(2) from None
    if not isinstance(doc, dict):
        err.print("the realm must be a JSON object")
        raise typer.Exit(2)
    return doc


def _parsed(model: type[RealmBody], doc: dict[str, Any]) -> RealmBody:
    from tenantry.cli import err

    try:
        return model.model_validate(doc)
    except ValidationError as exc:  # the fields, never the input (it may hold a secret)
        for e in exc.errors(include_input=False):
            err.print(f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}")
        raise typer.Exit(2) from None


def _print(view: realms.RealmView) -> None:
    from tenantry.cli import out

    out.print_json(json.dumps(render(view)))


@realm_app.command("add")
def add(file: File) -> None:
    """Add a realm (its secrets are sealed with TENANTRY_SECRET_KEY)."""
    from tenantry.cli import run_tx

    spec = to_spec(_parsed(RealmBody, _document(file)))
    _print(run_tx(lambda db: realms.create_realm(db, _box(), system_principal(), spec)))


@realm_app.command("update")
def update(realm_id: str, file: File) -> None:
    """Replace a realm's settings and bindings; secrets left out are kept."""
    from tenantry.cli import run_tx

    spec = to_spec(_parsed(UpdateRealmBody, _document(file)), realm_id)
    _print(run_tx(lambda db: realms.update_realm(db, _box(), system_principal(), spec)))


@realm_app.command("list")
def list_realms() -> None:
    """The realms, in sign-in order (never their secrets)."""
    from tenantry.cli import out, run_tx

    for view in run_tx(lambda db: realms.list_realms(db, _box(), system_principal())):
        r = view.realm
        orgs = ",".join(b.organization_id for b in view.organizations) or "-"
        out.print(f"{r.id}  {r.type}  {r.name}  position {r.position}  organizations {orgs}")


@realm_app.command("show")
def show(realm_id: str) -> None:
    """One realm as the native API shows it."""
    from tenantry.cli import run_tx

    _print(run_tx(lambda db: realms.get_realm(db, _box(), system_principal(), realm_id)))


@realm_app.command("test")
def test(realm_id: str) -> None:
    """Try the realm's connection (a bind and the search bases, the discovery document, the
    metadata) and say what failed; exit code 1 when a step failed."""
    from tenantry.cli import out, run_tx

    seconds = load_settings().realm_timeout_seconds

    async def work(db: AsyncSession) -> list[Any]:
        return await realms.test_realm(db, _box(), system_principal(), realm_id, seconds)

    steps = run_tx(work)
    for step in steps:
        out.print(f"{'ok  ' if step.ok else 'FAIL'}  {step.step}: {step.message}", markup=False)
    if not all(s.ok for s in steps):
        raise typer.Exit(1)


@realm_app.command("remove")
def remove(realm_id: str) -> None:
    """Remove a realm; its users keep their accounts but no longer sign in through it."""
    from tenantry.cli import out, run_tx

    run_tx(lambda db: realms.delete_realm(db, system_principal(), realm_id))
    out.print(f"removed {realm_id}")


@key_app.command("generate")
def generate() -> None:
    """Print a new key for TENANTRY_SECRET_KEY (prepend it, comma-separated, to rotate)."""
    print(generate_key())
