"""Recording audit events. The request id and client address come from the request context."""

from __future__ import annotations

from contextvars import ContextVar
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol, cast

from sqlalchemy import Table, insert
from sqlalchemy.ext.asyncio import AsyncSession

from tenantry.clock import utcnow
from tenantry.db.engine import scoped
from tenantry.db.models import AuditEvent


class Actor(Protocol):
    """Who did it, as the log records them (a Principal, in practice)."""

    @property
    def actor_type(self) -> str: ...
    @property
    def actor_id(self) -> str | None: ...


@dataclass(frozen=True)
class RequestInfo:
    request_id: str | None = None
    ip: str | None = None


_NO_REQUEST = RequestInfo()
current_request: ContextVar[RequestInfo] = ContextVar("current_request", default=_NO_REQUEST)


async def record(
    db: AsyncSession,
    actor: Actor,
    action: str,
    *,
    target_type: str | None = None,
    target_id: str | None = None,
    organization_id: str | None = None,
    details: dict[str, Any] | None = None,
    at_once: bool = False,
) -> None:
    """Never pass secrets in `details`: the log is readable by auditors. The row is written
    at the transaction's next flush, with whatever else it wrote; `at_once`: now, as one
    INSERT, for a write that makes no ORM objects, so that its commit has nothing to flush
    (the unit of work's flush of one event cost more than the statement, bench/
    write_cost.py). An audit row concerns no cached answer."""
    row = _values(actor, action, target_type, target_id, organization_id, details)
    if at_once:
        await db.execute(INSERT, row | {"at": utcnow()}, execution_options=scoped())
    else:
        db.add(AuditEvent(**row))


INSERT = insert(cast(Table, AuditEvent.__table__))
EVENT_COLUMNS = (
    "actor_type",
    "actor_id",
    "action",
    "target_type",
    "target_id",
    "organization_id",
    "request_id",
    "ip",
    "details",
    "at",
)


def event_row(
    actor: Actor,
    action: str,
    at: datetime,
    *,
    target_type: str | None = None,
    target_id: str | None = None,
    details: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """What `record` writes, as a row (every column of EVENT_COLUMNS) for a caller that
    writes it with INSERT itself (sign-in: together with its other rows). An audit row
    changes nothing a cache derives from: such a write may be marked UNTRACKED."""
    return _values(actor, action, target_type, target_id, None, details) | {"at": at}


def _values(
    actor: Actor,
    action: str,
    target_type: str | None,
    target_id: str | None,
    organization_id: str | None,
    details: dict[str, Any] | None,
) -> dict[str, Any]:
    info = current_request.get()
    return {
        "actor_type": actor.actor_type,
        "actor_id": actor.actor_id,
        "action": action,
        "target_type": target_type,
        "target_id": target_id,
        "organization_id": organization_id,
        "request_id": info.request_id,
        "ip": info.ip,
        "details": details or {},
    }
