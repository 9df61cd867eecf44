"""`tenantry audit prune|tail` and batched retention, against SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession
from typer.testing import CliRunner

from tenantry.cli import app
from tenantry.cli import audit as cli_audit
from tenantry.clock import utcnow
from tenantry.db.engine import Database
from tenantry.db.models import AuditEvent
from tenantry.directory import audit_retention as retention

runner = CliRunner()


@pytest.fixture
def cli_env(monkeypatch: pytest.MonkeyPatch, database: Database) -> Database:
    monkeypatch.setenv("TENANTRY_DATABASE_URL", database.settings.database_url)
    return database


def _invoke(*args: str) -> str:
    result = runner.invoke(app, list(args))
    assert result.exit_code == 0, result.output
    return result.stdout


def _run(coro: Any) -> Any:
    return asyncio.run(coro)


async def _with_db(database: Database, work: Any) -> Any:
    """Run `work(db)` in one transaction on a fresh engine (the CLI's loop, not pytest's)."""
    fresh = Database(database.settings)
    try:
        async with fresh.transaction() as db:
            return await work(db)
    finally:
        await fresh.dispose()


def add_events(database: Database, *ages_days: float, action: str = "test.event") -> list[int]:
    """Events recorded `age` days ago, in the given order."""

    async def work(db: AsyncSession) -> list[int]:
        now = utcnow()
        rows = [
            AuditEvent(action=action, at=now - timedelta(days=age), details={}) for age in ages_days
        ]
        db.add_all(rows)
        await db.flush()
        return [r.id for r in rows]

    ids: list[int] = _run(_with_db(database, work))
    return ids


def remaining(database: Database) -> list[tuple[int, str]]:
    async def work(db: AsyncSession) -> list[tuple[int, str]]:
        rows = await db.execute(select(AuditEvent.id, AuditEvent.action).order_by(AuditEvent.id))
        return [(i, a) for i, a in rows.all()]

    result: list[tuple[int, str]] = _run(_with_db(database, work))
    return result


def test_prune_dry_run_then_prune(cli_env: Database, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TENANTRY_AUDIT_RETENTION_DAYS", "30")
    old = add_events(cli_env, 400, 31, 90)
    recent = add_events(cli_env, 29, 3, 0)
    dry = _invoke("audit", "prune", "--dry-run")
    assert "would delete 3 audit events" in dry and "(30 days)" in dry
    assert [i for i, _ in remaining(cli_env)] == old + recent
    assert "deleted 3 audit events" in _invoke("audit", "prune")
    rows = remaining(cli_env)
    assert [i for i, _ in rows][:3] == recent
    assert [a for _, a in rows] == ["test.event"] * 3 + ["audit.prune"]  # the prune is recorded
    assert "deleted 2 audit events" in _invoke("audit", "prune", "--days", "2")
    assert [i for i, _ in remaining(cli_env)][:1] == recent[2:]


def test_prune_rejects_bad_days(cli_env: Database) -> None:
    for bad in ("0", "-1", "x", "36501"):
        result = runner.invoke(app, ["audit", "prune", "--days", bad])
        assert result.exit_code == 2, (bad, result.output)


@pytest.mark.parametrize(("count", "batch"), [(10, 3), (9, 3), (2, 5), (0, 4)])
def test_prune_runs_one_short_transaction_per_batch(
    cli_env: Database, count: int, batch: int
) -> None:
    old = add_events(cli_env, *([100] * count))
    kept = add_events(cli_env, 1)
    sizes: list[int] = []

    class Counting(Database):
        @asynccontextmanager
        async def transaction(self, *, write: bool = True) -> AsyncIterator[AsyncSession]:
            async with super().transaction(write=write) as db:
                before = len(await _ids(db))
                yield db
                sizes.append(before - len(await _ids(db)))

    async def go() -> int:
        database = Counting(cli_env.settings)
        try:
            return await retention.prune(database, utcnow() - timedelta(days=30), batch_size=batch)
        finally:
            await database.dispose()

    assert _run(go()) == count == len(old)
    # every batch but the last (and the final audit.prune record) deletes exactly `batch`
    deletes = sizes[:-1]
    assert all(n <= batch for n in deletes) and sum(deletes) == count
    assert len(deletes) == count // batch + 1
    assert [i for i, _ in remaining(cli_env)][:1] == kept


async def _ids(db: AsyncSession) -> list[int]:
    return list(await db.scalars(select(AuditEvent.id)))


def test_tail_prints_the_newest_oldest_first(cli_env: Database) -> None:
    add_events(cli_env, 3, action="user.create")
    ids = add_events(cli_env, 2, 1, action="auth.login.success")
    last = add_events(cli_env, 0, action="user.delete")
    lines = [json.loads(x) for x in _invoke("audit", "tail", "--limit", "3", "--json").splitlines()]
    assert [e["id"] for e in lines] == [*ids, *last]
    assert lines[0]["action"] == "auth.login.success" and lines[0]["at"].endswith("Z")
    auth = _invoke("audit", "tail", "--action", "auth.", "--json").splitlines()
    assert [json.loads(x)["id"] for x in auth] == ids
    starred = _invoke("audit", "tail", "--action", "auth.*", "--json").splitlines()
    assert starred == auth
    table = _invoke("audit", "tail", "--action", "user.")
    assert "user.create" in table and "user.delete" in table and "auth.login" not in table
    assert _invoke("audit", "tail", "--action", "nothing.", "--json") == ""


def test_tail_follow_prints_new_events_until_interrupted(
    cli_env: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    first = add_events(cli_env, 1, action="auth.login.success")
    calls = 0

    async def fake_sleep(_seconds: float) -> None:
        nonlocal calls
        calls += 1
        if calls == 1:

            async def work(db: AsyncSession) -> None:
                db.add_all(
                    [
                        AuditEvent(action="user.update", details={}),
                        AuditEvent(action="auth.logout", details={}),
                    ]
                )

            await _with_db(cli_env, work)
            return
        raise KeyboardInterrupt  # Ctrl-C

    monkeypatch.setattr(cli_audit, "_sleep", fake_sleep)
    result = runner.invoke(app, ["audit", "tail", "--follow", "--json", "--action", "auth."])
    assert result.exit_code == 0, result.output
    lines = [json.loads(x) for x in result.stdout.splitlines()]
    assert [e["action"] for e in lines] == ["auth.login.success", "auth.logout"]
    assert lines[0]["id"] == first[0] and lines[1]["id"] > first[0]
    assert calls == 2


def test_tail_rejects_bad_arguments(cli_env: Database) -> None:
    assert runner.invoke(app, ["audit", "tail", "--limit", "0"]).exit_code == 2
    bad = runner.invoke(app, ["audit", "tail", "--action", "a*b"])
    assert bad.exit_code == 1 and "action" in bad.output


def test_cli_changes_are_audited_as_the_system(cli_env: Database) -> None:
    """The CLI goes through the same services: each change leaves its event, actor "system"."""
    _invoke("bootstrap", "--username", "root@example.com")
    _invoke("user", "create", "carol@example.com")
    created = runner.invoke(app, ["token", "create", "--user", "carol@example.com"])
    assert created.exit_code == 0, created.output
    token_id = created.stderr.split("token id ")[1].split(",")[0]
    _invoke("token", "revoke", token_id)
    _invoke("user", "disable", "carol@example.com")
    _invoke("sessions", "revoke", "carol@example.com")
    lines = [json.loads(x) for x in _invoke("audit", "tail", "--json").splitlines()]
    assert [e["action"] for e in lines] == [
        "user.create",
        "user.system_roles.set",
        "user.create",  # ECE's built-in `admin`, made by bootstrap
        "user.create",  # and `readonly`
        "token.create",
        "user.create",
        "token.create",
        "token.revoke",
        "user.update",
        "auth.sessions.revoke",
    ]
    assert {e["actorType"] for e in lines} == {"system"}
    assert lines[7]["targetId"] == token_id
