"""The request/command transaction: commit on success, roll back on failure, except for a
refusal that keeps its writes (e.g. the audit event of a throttled sign-in)."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

from tenantry.audit.log import record
from tenantry.db.engine import Database
from tenantry.db.models import AuditEvent
from tenantry.errors import Invalid, RateLimited
from tenantry.identity.principals import anonymous


async def _events(database: Database, action: str) -> int:
    async with database.transaction(write=False) as db:
        query = select(func.count()).select_from(AuditEvent).where(AuditEvent.action == action)
        return int(await db.scalar(query) or 0)


async def _write_then_fail(
    database: Database, action: str, failure: Exception, *, flush: bool
) -> None:
    async with database.transaction() as db:
        await record(db, anonymous(), action)
        if flush:
            await db.flush()
        raise failure


async def test_a_refusal_rolls_back_what_it_wrote(database: Database) -> None:
    with pytest.raises(Invalid):
        await _write_then_fail(database, "test.rolled_back", Invalid("no"), flush=True)
    assert await _events(database, "test.rolled_back") == 0


async def test_a_refusal_that_keeps_its_writes_commits_them(database: Database) -> None:
    kept = RateLimited("slow down", 30, keeps_writes=True)
    with pytest.raises(RateLimited) as raised:  # the event is not even flushed yet
        await _write_then_fail(database, "test.kept", kept, flush=False)
    assert raised.value.retry_after == 30
    assert await _events(database, "test.kept") == 1


async def test_other_failures_roll_back_even_after_a_flush(database: Database) -> None:
    with pytest.raises(RuntimeError):
        await _write_then_fail(database, "test.crashed", RuntimeError("bug"), flush=True)
    assert await _events(database, "test.crashed") == 0
