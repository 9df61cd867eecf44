"""The request/command transaction: commit on success, roll back on failure, except for a
refusal that keeps its writes (e.g. the audit event of a throttled sign-in)."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

from tenantry.access.principals import anonymous
from tenantry.audit.log import record
from tenantry.db.engine import Database
from tenantry.db.models import AuditEvent
from tenantry.errors import Invalid, RateLimited


async def _events(database: Database, action: str) -> int:
    async with database.transaction(write=False) as db:
        query = select(func.count()).select_from(AuditEvent).where(AuditEvent.action == action)
        return int(await db.scalar(query) or 0)


async def test_a_refusal_rolls_back_what_it_wrote(database: Database) -> None:
    with pytest.raises(Invalid):
        async with database.transaction() as db:
            await record(db, anonymous(), "test.rolled_back")
            await db.flush()
            raise Invalid("no")
    assert await _events(database, "test.rolled_back") == 0


async def test_a_refusal_that_keeps_its_writes_commits_them(database: Database) -> None:
    with pytest.raises(RateLimited) as raised:
        async with database.transaction() as db:
            await record(db, anonymous(), "test.kept")  # not even flushed yet
            raise RateLimited("slow down", 30, keeps_writes=True)
    assert raised.value.retry_after == 30
    assert await _events(database, "test.kept") == 1


async def test_other_failures_roll_back_even_after_a_flush(database: Database) -> None:
    with pytest.raises(RuntimeError):
        async with database.transaction() as db:
            await record(db, anonymous(), "test.crashed")
            await db.flush()
            raise RuntimeError("bug")
    assert await _events(database, "test.crashed") == 0
