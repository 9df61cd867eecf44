"""Reading the audit log: filters, newest first, keyset pagination by event id.

System auditors (`system.audit.list`) read everything; an organization's auditors
(`organization.audit.list`, e.g. ORGANIZATION_OWNER) read the events of that organization when
they filter by it.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass
from dataclasses import field as dataclass_field
from datetime import UTC, datetime

from sqlalchemy import ColumnElement, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from tenantry.authz import scopes
from tenantry.authz.scopes import SYSTEM_SCOPE
from tenantry.db.models import AuditEvent, Organization
from tenantry.db.paging import cursor_text, invalid_cursor, opaque_cursor
from tenantry.errors import FieldError, Forbidden, Invalid, NotFound
from tenantry.identity.principals import Principal

DEFAULT_LIMIT = 100
MAX_LIMIT = 1000
MAX_ID = 2**63 - 1
# Longest accepted filter value per field (the column widths, with room for a trailing '*').
MAX_LENGTHS = {
    "actor": 64,
    "action": 65,
    "target": 600,
    "targetType": 32,
    "organization": 64,
    "since": 64,
    "until": 64,
    "cursor": 64,
}
_RFC3339 = re.compile(
    r"(\d{4}-\d{2}-\d{2})[Tt ](\d{2}:\d{2}:\d{2})(?:\.(\d{1,9}))?([Zz]|[+-]\d{2}:\d{2})"
)
_CURSOR_TAG = "ae1:"


@dataclass(frozen=True)
class AuditQuery:
    """Parsed filters. `action_prefix` matches every action starting with it."""

    actor_id: str | None = None
    action: str | None = None
    action_prefix: str | None = None
    target_id: str | None = None
    target_type: str | None = None
    organization_id: str | None = None
    since: datetime | None = None  # inclusive
    until: datetime | None = None  # exclusive


@dataclass(frozen=True)
class AuditPage:
    events: list[AuditEvent]
    next_cursor: str | None  # None: this is the last page


def encode_cursor(event_id: int) -> str:
    """Opaque to clients: they pass back what they were given."""
    return opaque_cursor(f"{_CURSOR_TAG}{event_id}")


def decode_cursor(cursor: str) -> int:
    """The id of the last event of the previous page; Invalid unless we made the cursor."""
    text = cursor_text(cursor) or ""
    number = text.removeprefix(_CURSOR_TAG)
    if not text.startswith(_CURSOR_TAG) or not number.isdigit() or not 0 < int(number) <= MAX_ID:
        raise invalid_cursor()
    return int(number)


def parse_time(value: str, field: str) -> datetime:
    """An RFC 3339 date-time with its offset (e.g. 2026-01-31T08:00:00Z), as UTC."""
    match = _RFC3339.fullmatch(value.strip())
    problem = FieldError(field, "invalid", "an RFC 3339 date-time such as 2026-01-31T08:00:00Z")
    if match is None:
        raise Invalid(f"invalid {field}", [problem])
    day, clock, fraction, offset = match.groups()
    micro = f".{(fraction + '00000')[:6]}" if fraction else ""
    zone = "+00:00" if offset in ("Z", "z") else offset
    try:
        return datetime.fromisoformat(f"{day}T{clock}{micro}{zone}").astimezone(UTC)
    except (ValueError, OverflowError):
        raise Invalid(f"invalid {field}", [problem]) from None


def _check_text(value: str | None, field: str, errors: list[FieldError]) -> str | None:
    if value is None:
        return None
    if not value or len(value) > MAX_LENGTHS[field] or "\x00" in value:
        errors.append(FieldError(field, "invalid", f"1 to {MAX_LENGTHS[field]} characters, no NUL"))
        return None
    return value


def parse_query(
    *,
    actor: str | None = None,
    action: str | None = None,
    target: str | None = None,
    target_type: str | None = None,
    organization: str | None = None,
    since: str | None = None,
    until: str | None = None,
) -> AuditQuery:
    """Filters as given in a request; every malformed one is reported at once (Invalid)."""
    errors: list[FieldError] = []
    actor = _check_text(actor, "actor", errors)
    action = _check_text(action, "action", errors)
    target = _check_text(target, "target", errors)
    target_type = _check_text(target_type, "targetType", errors)
    organization = _check_text(organization, "organization", errors)
    exact, prefix = None, None
    if action is not None:
        if action.endswith("*"):
            prefix = action[:-1]
        else:
            exact = action
        if "*" in (prefix if prefix is not None else action):
            errors.append(FieldError("action", "invalid", "'*' only at the end, as a prefix"))
    moments: dict[str, datetime | None] = {"since": None, "until": None}
    for field, raw in (("since", since), ("until", until)):
        if raw is None or _check_text(raw, field, errors) is None:
            continue
        try:
            moments[field] = parse_time(raw, field)
        except Invalid as exc:
            errors.extend(exc.fields)
    start, end = moments["since"], moments["until"]
    if start is not None and end is not None and start >= end:
        errors.append(FieldError("until", "invalid", "must be later than since"))
    if errors:
        raise Invalid(
            "invalid audit filter: " + "; ".join(f"{e.field}: {e.message}" for e in errors),
            errors,
        )
    return AuditQuery(
        actor_id=actor,
        action=exact,
        action_prefix=prefix,
        target_id=target,
        target_type=target_type,
        organization_id=organization,
        since=start,
        until=end,
    )


def check_limit(limit: int) -> int:
    if not 1 <= limit <= MAX_LIMIT:
        raise Invalid(
            "invalid limit", [FieldError("limit", "out_of_range", f"between 1 and {MAX_LIMIT}")]
        )
    return limit


async def authorize(db: AsyncSession, actor: Principal, organization_id: str | None) -> None:
    """Everything for system auditors; otherwise one organization the caller may audit.
    An organization the caller cannot see is "not found", as everywhere else."""
    if actor.can("system.audit.list", SYSTEM_SCOPE):
        return
    if organization_id is None:
        raise Forbidden("missing permission system.audit.list (or filter by an organization)")
    scope = scopes.organization(organization_id)
    actor.require_visible("organization.get", scope, "organization")
    if await db.get(Organization, organization_id) is None:
        raise NotFound("organization not found")
    actor.require("organization.audit.list", scope)


def _conditions(query: AuditQuery) -> list[ColumnElement[bool]]:
    ev = AuditEvent
    conditions: list[ColumnElement[bool]] = []
    if query.actor_id is not None:
        conditions.append(ev.actor_id == query.actor_id)
    if query.action is not None:
        conditions.append(ev.action == query.action)
    if query.action_prefix:  # "*" alone: every action
        conditions.append(ev.action.startswith(query.action_prefix, autoescape=True))
    if query.target_id is not None:
        conditions.append(ev.target_id == query.target_id)
    if query.target_type is not None:
        conditions.append(ev.target_type == query.target_type)
    if query.organization_id is not None:
        conditions.append(ev.organization_id == query.organization_id)
    if query.since is not None:
        conditions.append(ev.at >= query.since)
    if query.until is not None:
        conditions.append(ev.at < query.until)
    return conditions


async def search(
    db: AsyncSession, query: AuditQuery, *, limit: int, before_id: int | None = None
) -> AuditPage:
    """Newest first, `limit` events older than `before_id` (no permission check)."""
    conditions = _conditions(query)
    if before_id is not None:
        conditions.append(AuditEvent.id < before_id)
    rows = list(
        await db.scalars(
            select(AuditEvent).where(*conditions).order_by(AuditEvent.id.desc()).limit(limit + 1)
        )
    )
    more = len(rows) > limit
    events = rows[:limit]
    return AuditPage(events, encode_cursor(events[-1].id) if more and events else None)


async def list_events(
    db: AsyncSession,
    actor: Principal,
    *,
    actor_id: str | None = None,
    action: str | None = None,
    target: str | None = None,
    target_type: str | None = None,
    organization: str | None = None,
    since: str | None = None,
    until: str | None = None,
    cursor: str | None = None,
    limit: int = DEFAULT_LIMIT,
) -> AuditPage:
    """The use case behind GET /tenantry/v1/audit: filters and cursor as the client sent them."""
    await authorize(db, actor, organization)
    query = parse_query(
        actor=actor_id,
        action=action,
        target=target,
        target_type=target_type,
        organization=organization,
        since=since,
        until=until,
    )
    before = decode_cursor(cursor) if cursor is not None else None
    return await search(db, query, limit=check_limit(limit), before_id=before)


GAP_SECONDS = 60.0  # how long a missing id is waited for (see Tail)
MAX_GAPS = 10_000


@dataclass
class Tail:
    """Where a follower of the log stands. Ids come from a sequence: taken at INSERT, visible
    at COMMIT. A transaction that took its id first can commit after one that took a later id,
    which a follower may already have shown. So the follower remembers the ids below the
    newest it has seen that it has not seen (the gaps) and looks for them again on each poll,
    for GAP_SECONDS: by then the transaction has committed or rolled back (its id is lost)."""

    last: int = 0  # the highest id seen, whatever its action
    # each missing id -> when it was first missed
    gaps: dict[int, float] = dataclass_field(default_factory=dict)

    def saw(self, ids: list[int], now: float) -> None:
        """Take in the ids (ascending) that one poll found."""
        for found in ids:
            if found > self.last:
                for missing in range(self.last + 1, min(found, self.last + 1 + MAX_GAPS)):
                    self.gaps[missing] = now
                self.last = found
            self.gaps.pop(found, None)
        expired = [gap for gap, since in self.gaps.items() if now - since > GAP_SECONDS]
        for gap in expired:
            del self.gaps[gap]
        while len(self.gaps) > MAX_GAPS:  # a storm of rollbacks: forget the oldest
            del self.gaps[min(self.gaps)]


async def start_tail(db: AsyncSession, window: int = 1000) -> Tail:
    """A follower starting now: past the newest id, waiting for the ids missing among the
    newest `window` (transactions still running, or rolled back)."""
    newest = list(
        await db.scalars(select(AuditEvent.id).order_by(AuditEvent.id.desc()).limit(window))
    )
    tail = Tail(last=newest[-1] - 1 if newest else 0)
    tail.saw(sorted(newest), time.monotonic())
    return tail


async def events_after(
    db: AsyncSession, actor: Principal, query: AuditQuery, tail: Tail, *, limit: int
) -> list[AuditEvent]:
    """Events the follower at `tail` has not shown yet, oldest first; moves `tail` on. Gaps
    are found on the ids alone (any action), so that a filter does not turn every other
    action's id into a gap; then the new events matching the filter are read."""
    actor.require("system.audit.list", SYSTEM_SCOPE)
    newer = AuditEvent.id > tail.last
    late = AuditEvent.id.in_(list(tail.gaps)) if tail.gaps else None
    found = list(
        await db.scalars(
            select(AuditEvent.id)
            .where(newer if late is None else or_(newer, late))
            .order_by(AuditEvent.id)
            .limit(check_limit(limit))
        )
    )
    tail.saw(found, time.monotonic())
    if not found:
        return []
    rows = await db.scalars(
        select(AuditEvent)
        .where(*_conditions(query), AuditEvent.id.in_(found))
        .order_by(AuditEvent.id)
    )
    return list(rows)
