"""Native audit log: GET /tenantry/v1/audit (filters, newest first, keyset pagination)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Query

from tenantry.clock import iso_z
from tenantry.db.models import AuditEvent
from tenantry.directory import audit_log as query
from tenantry.faces.http import BearerCaller, Db, face_router

router = face_router(tags=["Audit"])
JSON = dict[str, Any]


def _text(field: str, description: str) -> Any:
    return Query(max_length=query.MAX_LENGTHS[field], description=description)


def event(e: AuditEvent) -> JSON:
    return {
        "id": e.id,
        "at": iso_z(e.at),
        "actorType": e.actor_type,
        "actorId": e.actor_id,
        "action": e.action,
        "targetType": e.target_type,
        "targetId": e.target_id,
        "organizationId": e.organization_id,
        "requestId": e.request_id,
        "ip": e.ip,
        "details": e.details,
    }


@router.get("/audit")
async def list_audit_events(
    caller: BearerCaller,
    db: Db,
    actor: Annotated[str | None, _text("actor", "Events by this actor id")] = None,
    action: Annotated[
        str | None, _text("action", "Exact action, or a prefix ending in '*' (auth.*)")
    ] = None,
    target: Annotated[str | None, _text("target", "Events about this target id")] = None,
    targetType: Annotated[str | None, _text("targetType", "user, token, organization…")] = None,
    organization: Annotated[
        str | None, _text("organization", "Events of this organization id")
    ] = None,
    since: Annotated[str | None, _text("since", "RFC 3339, inclusive")] = None,
    until: Annotated[str | None, _text("until", "RFC 3339, exclusive")] = None,
    cursor: Annotated[str | None, _text("cursor", "nextCursor of the previous page")] = None,
    limit: Annotated[int, Query(ge=1, le=query.MAX_LIMIT)] = query.DEFAULT_LIMIT,
) -> Any:
    """Audit events, newest first. Everything with `system.audit.list`; one organization's
    events with `organization.audit.list` there (filter by `organization`)."""
    page = await query.list_events(
        db,
        caller,
        actor_id=actor,
        action=action,
        target=target,
        target_type=targetType,
        organization=organization,
        since=since,
        until=until,
        cursor=cursor,
        limit=limit,
    )
    return {"events": [event(e) for e in page.events], "nextCursor": page.next_cursor}
