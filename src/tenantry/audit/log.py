"""Recording audit events. The request id and client address come from the request context."""

from __future__ import annotations

from contextvars import ContextVar
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from sqlalchemy.ext.asyncio import AsyncSession

from tenantry.db.models import AuditEvent

if TYPE_CHECKING:
    from tenantry.access.principals import Principal


@dataclass(frozen=True)
class RequestInfo:
    request_id: str | None = None
    ip: str | None = None


_NO_REQUEST = RequestInfo()
current_request: ContextVar[RequestInfo] = ContextVar("current_request", default=_NO_REQUEST)


async def record(
    db: AsyncSession,
    actor: Principal,
    action: str,
    *,
    target_type: str | None = None,
    target_id: str | None = None,
    organization_id: str | None = None,
    details: dict[str, Any] | None = None,
) -> None:
    """Never pass secrets in `details`: the log is readable by auditors."""
    info = current_request.get()
    db.add(
        AuditEvent(
            actor_type=actor.actor_type,
            actor_id=actor.actor_id,
            action=action,
            target_type=target_type,
            target_id=target_id,
            organization_id=organization_id,
            request_id=info.request_id,
            ip=info.ip,
            details=details or {},
        )
    )
