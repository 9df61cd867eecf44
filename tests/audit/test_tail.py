"""Following the audit log (`tenantry audit tail --follow`): ids are taken at INSERT and
become visible at COMMIT, so an event can appear below the newest id already shown."""

from __future__ import annotations

import secrets

from tenantry.config import load_settings
from tenantry.db.engine import Database
from tenantry.db.models import AuditEvent
from tenantry.directory.audit_log import (
    GAP_SECONDS,
    MAX_GAPS,
    Tail,
    events_after,
    parse_query,
    start_tail,
)
from tenantry.identity.principals import system_principal


def test_ids_skipped_over_are_waited_for_then_given_up() -> None:
    tail = Tail(last=10)
    tail.saw([11, 14], now=0.0)
    assert tail.last == 14 and set(tail.gaps) == {12, 13}
    tail.saw([13], now=1.0)  # a late commit fills its gap
    assert tail.last == 14 and set(tail.gaps) == {12}
    tail.saw([15], now=GAP_SECONDS + 0.5)  # 12 rolled back: given up after GAP_SECONDS
    assert tail.last == 15 and tail.gaps == {}


def test_the_gaps_stay_bounded() -> None:
    tail = Tail(last=0)
    tail.saw([3 * MAX_GAPS], now=0.0)
    assert tail.last == 3 * MAX_GAPS and len(tail.gaps) <= MAX_GAPS


async def _poll(database: Database, tail: Tail, action: str) -> list[AuditEvent]:
    async with database.transaction(write=False) as db:
        query = parse_query(action=action + "*")
        return await events_after(db, system_principal(), query, tail, limit=100)


async def test_a_late_commit_below_the_newest_shown_id_is_still_shown(pg_url: str) -> None:
    database = Database(load_settings(database_url=pg_url))
    action = f"tailtest{secrets.token_hex(3)}."
    try:
        async with database.transaction(write=False) as db:
            tail = await start_tail(db)
        async with database.sessions() as slow:
            slow.add(AuditEvent(action=action + "slow", details={}))
            await slow.flush()  # takes its id first, commits last
            async with database.transaction() as fast:
                fast.add(AuditEvent(action="other.action", details={}))
                fast.add(AuditEvent(action=action + "fast", details={}))
            first = await _poll(database, tail, action)
            assert [e.action for e in first] == [action + "fast"]
            assert len(tail.gaps) == 1  # the slow transaction's id; not the other action's
            await slow.commit()
        second = await _poll(database, tail, action)
        assert [e.action for e in second] == [action + "slow"]
        assert second[0].id < first[0].id
        assert await _poll(database, tail, action) == [] and tail.gaps == {}
    finally:
        await database.dispose()


async def test_a_follower_starting_now_waits_for_transactions_still_running(
    pg_url: str,
) -> None:
    database = Database(load_settings(database_url=pg_url))
    action = f"tailtest{secrets.token_hex(3)}."
    try:
        async with database.sessions() as slow:
            slow.add(AuditEvent(action=action + "slow", details={}))
            await slow.flush()
            async with database.transaction() as fast:
                fast.add(AuditEvent(action=action + "fast", details={}))
            async with database.transaction(write=False) as db:
                tail = await start_tail(db)  # sees "fast", not "slow"
            await slow.commit()
        assert [e.action for e in await _poll(database, tail, action)] == [action + "slow"]
    finally:
        await database.dispose()
