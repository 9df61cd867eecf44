"""An organization's verified e-mail domains (directory/domains.py)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Path, Request
from fastapi.responses import Response

from tenantry.config import Settings
from tenantry.directory import domains
from tenantry.dns import TxtResolver
from tenantry.faces.http import BearerCaller, Db, face_router
from tenantry.faces.native import render, schemas
from tenantry.ids import ID_PATTERN

router = face_router(tags=["Domains"])
AnyId = Annotated[str, Path(pattern=ID_PATTERN)]
# Checked by the use case (identity.names.check_domain); the bound only keeps junk out.
DomainName = Annotated[str, Path(min_length=1, max_length=253)]
PATH = "/organizations/{organizationId}/domains"


@router.post(PATH, status_code=201)
async def claim_domain(
    caller: BearerCaller, db: Db, organizationId: AnyId, body: schemas.ClaimDomain
) -> Any:
    """Claims a domain: pending until its TXT record (in the answer) is published."""
    return render.domain(await domains.claim_domain(db, caller, organizationId, body.domain))


@router.get(PATH)
async def list_domains(caller: BearerCaller, db: Db, organizationId: AnyId) -> Any:
    found = await domains.list_domains(db, caller, organizationId)
    return {"domains": [render.domain(d) for d in found]}


@router.get(PATH + "/{domain}")
async def get_domain(
    caller: BearerCaller, db: Db, organizationId: AnyId, domain: DomainName
) -> Any:
    return render.domain(await domains.get_domain(db, caller, organizationId, domain))


@router.post(PATH + "/{domain}/verify")
async def verify_domain(
    request: Request, caller: BearerCaller, db: Db, organizationId: AnyId, domain: DomainName
) -> Any:
    """Looks the TXT record up now; verified, or why not (what the DNS answered)."""
    settings: Settings = request.app.state.settings
    lookup = TxtResolver.from_settings(settings).txt
    return render.domain(await domains.verify_domain(db, caller, organizationId, domain, lookup))


@router.delete(PATH + "/{domain}", status_code=204)
async def remove_domain(
    caller: BearerCaller, db: Db, organizationId: AnyId, domain: DomainName
) -> Response:
    await domains.remove_domain(db, caller, organizationId, domain)
    return Response(status_code=204)
