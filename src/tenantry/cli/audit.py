"""`tenantry audit prune|tail`: retention and a look at the newest events.

Pruning runs in several short transactions (see tenantry.directory.audit_retention), so
these commands open the database themselves instead of going through cli.run_tx's single
transaction.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Awaitable, Callable
from typing import Annotated, Any, TypeVar

import typer
from rich.console import Console
from rich.table import Column, Table

from tenantry.clock import iso_z
from tenantry.config import load_settings
from tenantry.db.engine import Database
from tenantry.db.models import AuditEvent
from tenantry.directory import audit_log as query
from tenantry.directory import audit_retention as retention
from tenantry.errors import DomainError
from tenantry.identity.principals import system_principal

audit_app = typer.Typer(help="The audit log: retention and tail.", no_args_is_help=True)
err = Console(stderr=True)
out = Console()
T = TypeVar("T")
POLL_SECONDS = 1.0
FOLLOW_BATCH = 1000


def _run(work: Callable[[Database], Awaitable[T]]) -> T:
    """Run `work` with a Database of its own; domain errors exit 1, Ctrl-C exits 0."""

    async def go() -> T:
        database = Database(load_settings())
        try:
            return await work(database)
        finally:
            await database.dispose()

    try:
        return asyncio.run(go())
    except DomainError as exc:
        err.print(f"[red]error:[/red] {exc.message}")
        for f in exc.fields:
            err.print(f"  {f.field}: {f.message}")
        raise typer.Exit(1) from None
    except KeyboardInterrupt:
        raise typer.Exit(0) from None


@audit_app.command("prune")
def prune(
    days: Annotated[
        int | None,
        typer.Option(
            min=1, max=36_500, help="Keep this many days (default TENANTRY_AUDIT_RETENTION_DAYS)"
        ),
    ] = None,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Only count what would be deleted")
    ] = False,
) -> None:
    """Delete audit events older than the retention period, in batches."""
    keep = days if days is not None else load_settings().audit_retention_days
    cutoff = retention.cutoff_for(keep)
    if dry_run:
        count = _run(lambda database: retention.count_older(database, cutoff))
        out.print(f"would delete {count} audit events older than {iso_z(cutoff)} ({keep} days)")
        return
    deleted = _run(lambda database: retention.prune(database, cutoff))
    out.print(f"deleted {deleted} audit events older than {iso_z(cutoff)} ({keep} days)")


def _as_json(e: AuditEvent) -> dict[str, Any]:
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


def _table() -> Table:
    return Table(
        "id",
        "at",
        Column("actor", overflow="fold"),
        Column("action", overflow="fold"),
        Column("target", overflow="fold"),
        Column("organization", overflow="fold"),
        "ip",
    )


def _emit(events: list[AuditEvent], as_json: bool) -> None:
    if as_json:
        for e in events:
            print(json.dumps(_as_json(e), separators=(",", ":")), flush=True)
        return
    if not events:
        return
    table = _table()
    for e in events:
        table.add_row(
            str(e.id),
            iso_z(e.at),
            f"{e.actor_type}:{e.actor_id}" if e.actor_id else (e.actor_type or ""),
            e.action,
            f"{e.target_type}:{e.target_id}" if e.target_id else (e.target_type or ""),
            e.organization_id or "",
            e.ip or "",
        )
    out.print(table)


async def _sleep(seconds: float) -> None:
    await asyncio.sleep(seconds)


@audit_app.command("tail")
def tail(
    follow: Annotated[
        bool, typer.Option("--follow", "-f", help="Keep printing new events (Ctrl-C stops)")
    ] = False,
    action: Annotated[
        str | None, typer.Option(help="Only actions starting with this, e.g. auth.")
    ] = None,
    limit: Annotated[int, typer.Option(min=1, max=query.MAX_LIMIT)] = 20,
    as_json: Annotated[bool, typer.Option("--json", help="One JSON object per line")] = False,
) -> None:
    """Print the newest audit events, oldest of them first."""
    prefix = None if action is None else action.removesuffix("*") + "*"
    actor = system_principal()

    async def work(database: Database) -> None:
        filters = query.parse_query(action=prefix)
        async with database.transaction(write=False) as db:
            tail = await query.start_tail(db)  # first: what commits meanwhile is not missed
            page = await query.list_events(db, actor, action=prefix, limit=limit)
        oldest_first = list(reversed(page.events))
        _emit(oldest_first, as_json)
        tail.saw([e.id for e in oldest_first], time.monotonic())  # shown: not again
        while follow:
            await _sleep(POLL_SECONDS)
            async with database.transaction(write=False) as db:
                fresh = await query.events_after(db, actor, filters, tail, limit=FOLLOW_BATCH)
            if fresh:
                _emit(fresh, as_json)

    _run(work)
