"""Retention: delete audit events older than TENANTRY_AUDIT_RETENTION_DAYS.

A prune runs as a series of short transactions of at most `batch_size` events each, so that a
large backlog never holds one huge transaction (nor the SQLite write lock) for long.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import delete, func, select

from tenantry.audit.log import record
from tenantry.clock import iso_z, utcnow
from tenantry.db.engine import Database
from tenantry.db.models import AuditEvent
from tenantry.identity.principals import system_principal

BATCH_SIZE = 10_000


def cutoff_for(days: int, now: datetime | None = None) -> datetime:
    return (now or utcnow()) - timedelta(days=days)


async def count_older(database: Database, older_than: datetime) -> int:
    """How many events a prune would delete (for --dry-run)."""
    async with database.transaction(write=False) as db:
        count = await db.scalar(
            select(func.count()).select_from(AuditEvent).where(AuditEvent.at < older_than)
        )
    return int(count or 0)


async def prune(database: Database, older_than: datetime, *, batch_size: int = BATCH_SIZE) -> int:
    """Delete every event recorded before `older_than`, oldest first, one transaction per
    batch; returns how many were deleted. The prune itself is recorded (action
    "audit.prune") so that the log shows when and how far it was cut."""
    if batch_size < 1:
        raise ValueError("batch_size must be positive")
    total = 0
    while True:
        async with database.transaction() as db:
            # The id of the batch_size-th old event bounds this batch: deleting by an id range
            # stays correct however sparse the ids are.
            bound = await db.scalar(
                select(AuditEvent.id)
                .where(AuditEvent.at < older_than)
                .order_by(AuditEvent.id)
                .offset(batch_size - 1)
                .limit(1)
            )
            stmt = delete(AuditEvent).where(AuditEvent.at < older_than)
            if bound is not None:
                stmt = stmt.where(AuditEvent.id <= bound)
            result = await db.execute(stmt.execution_options(synchronize_session=False))
            total += int(getattr(result, "rowcount", 0) or 0)
        if bound is None:
            break
    async with database.transaction() as db:
        await record(
            db,
            system_principal(),
            "audit.prune",
            target_type="audit",
            details={"olderThan": iso_z(older_than), "deleted": total},
        )
    return total
