"""An organization's verified e-mail domains: claimed by its owners, proven by a DNS TXT record.

- claim (`organization.domains.create`, elevation when the instance demands it): the domain,
  normalized (identity.names.check_domain: IDNA ASCII, lower case, no trailing dot), pending,
  with a random challenge the owner publishes as the TXT record
  `_tenantry-challenge.<domain>` = `tenantry-domain-verification=<challenge>`. Any number of
  organizations may claim a domain; one organization claims it once. Audited
  `organization.domain.create`.
- verify (`organization.domains.verify`, elevation): looks the record up (tenantry.dns) and
  marks the domain verified when one TXT string is exactly the expected value; otherwise says
  what it found (no record, or records without that value: Invalid) or that the DNS did not
  answer (Unavailable, 503). A domain another organization has verified stays its: Conflict.
  Verifying a verified domain again changes nothing. Audited `organization.domain.verify`.
- list (`organization.domains.list`), remove (`organization.domains.delete`; audited
  `organization.domain.delete`). Removing a domain adopts nobody and releases nobody: accounts
  already adopted stay managed by the organization.

What a verified domain is for: `in_verified_domain` (is this address in a verified domain of
the organization), asked by adoption (directory/provisioning.py) and by account linking.
Only the domain itself counts, not its subdomains: `a.example.com` is verified on its own.

An organization the caller cannot see is "not found", as a made-up id.
"""

from __future__ import annotations

import secrets
from collections.abc import Awaitable, Callable

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from tenantry.audit.log import record
from tenantry.authz import scopes
from tenantry.clock import utcnow
from tenantry.db.models import OrganizationDomain
from tenantry.directory import organizations
from tenantry.errors import Conflict, FieldError, Invalid, NotFound
from tenantry.identity import names
from tenantry.identity.principals import Principal

CHALLENGE_LABEL = "_tenantry-challenge"
VALUE_PREFIX = "tenantry-domain-verification="
MAX_DOMAINS = 100
PENDING, VERIFIED = "pending", "verified"
_SHOWN_RECORDS = 3  # of the TXT strings found, how many a refusal quotes

# How a domain's TXT strings are looked up (tenantry.dns.TxtResolver.txt; tests may pass
# another real resolver's): the strings at a name, [] for none, Unavailable when no answer.
TxtLookup = Callable[[str], Awaitable[list[str]]]


def status_of(claim: OrganizationDomain) -> str:
    return VERIFIED if claim.verified_at is not None else PENDING


def record_name(claim: OrganizationDomain) -> str:
    return f"{CHALLENGE_LABEL}.{claim.domain}"


def record_value(claim: OrganizationDomain) -> str:
    return f"{VALUE_PREFIX}{claim.challenge}"


async def _guarded(db: AsyncSession, actor: Principal, org_id: str, action: str) -> None:
    await organizations.get_visible(db, actor, org_id)
    actor.require(f"organization.domains.{action}", scopes.organization(org_id))


async def _claim(
    db: AsyncSession, org_id: str, domain: str, *, lock: bool = False
) -> OrganizationDomain:
    query = select(OrganizationDomain).where(
        OrganizationDomain.organization_id == org_id, OrganizationDomain.domain == domain
    )
    found = await db.scalar(query.with_for_update() if lock else query)
    if found is None:
        raise NotFound("domain not found")
    return found


async def claim_domain(
    db: AsyncSession, actor: Principal, org_id: str, domain: str
) -> OrganizationDomain:
    await _guarded(db, actor, org_id, "create")
    name = names.check_domain(domain)
    actor.require_elevation()
    where = OrganizationDomain.organization_id == org_id
    if await db.scalar(
        select(OrganizationDomain.id).where(where, OrganizationDomain.domain == name)
    ):
        raise Conflict(
            "the organization has claimed this domain already",
            [FieldError("domain", "exists", "already claimed")],
        )
    count = await db.scalar(select(func.count()).select_from(OrganizationDomain).where(where))
    if (count or 0) >= MAX_DOMAINS:
        raise Invalid(
            "too many domains", [FieldError("domain", "too_many", f"at most {MAX_DOMAINS}")]
        )
    now = utcnow()
    claim = OrganizationDomain(
        organization_id=org_id,
        domain=name,
        challenge=secrets.token_urlsafe(24),
        created_at=now,
        created_by=actor.actor_id,
        updated_at=now,
        updated_by=actor.actor_id,
    )
    db.add(claim)
    await db.flush()
    await _audit(db, actor, "organization.domain.create", claim)
    return claim


async def list_domains(db: AsyncSession, actor: Principal, org_id: str) -> list[OrganizationDomain]:
    await _guarded(db, actor, org_id, "list")
    rows = await db.scalars(
        select(OrganizationDomain)
        .where(OrganizationDomain.organization_id == org_id)
        .order_by(OrganizationDomain.domain)
    )
    return list(rows)


async def get_domain(
    db: AsyncSession, actor: Principal, org_id: str, domain: str
) -> OrganizationDomain:
    await _guarded(db, actor, org_id, "list")
    return await _claim(db, org_id, names.check_domain(domain))


def _refusal(claim: OrganizationDomain, found: list[str]) -> Invalid:
    name, expected = record_name(claim), record_value(claim)
    if not found:
        message = f"no TXT record at {name}: publish one with the value {expected}"
        return Invalid(message, [FieldError("domain", "no_record", message)])
    shown = ", ".join(repr(v[:80]) for v in found[:_SHOWN_RECORDS])
    message = f"the TXT records at {name} ({shown}) do not hold the value {expected}"
    return Invalid(message, [FieldError("domain", "wrong_value", message)])


async def verify_domain(
    db: AsyncSession, actor: Principal, org_id: str, domain: str, lookup: TxtLookup
) -> OrganizationDomain:
    await _guarded(db, actor, org_id, "verify")
    claim = await _claim(db, org_id, names.check_domain(domain), lock=True)
    actor.require_elevation()
    if claim.verified_at is not None:
        return claim
    found = await lookup(record_name(claim))
    if record_value(claim) not in found:
        raise _refusal(claim, found)
    taken = await db.scalar(
        select(OrganizationDomain.id).where(OrganizationDomain.verified_domain == claim.domain)
    )
    if taken is not None:
        # The unique index on verified_domain settles a race this check does not see.
        raise Conflict(
            "another organization has verified this domain",
            [FieldError("domain", "taken", "verified by another organization")],
        )
    claim.verified_domain, claim.verified_at = claim.domain, utcnow()
    claim.updated_at, claim.updated_by = claim.verified_at, actor.actor_id
    await db.flush()
    await _audit(db, actor, "organization.domain.verify", claim)
    return claim


async def remove_domain(db: AsyncSession, actor: Principal, org_id: str, domain: str) -> None:
    await _guarded(db, actor, org_id, "delete")
    claim = await _claim(db, org_id, names.check_domain(domain), lock=True)
    await db.delete(claim)
    await db.flush()
    await _audit(db, actor, "organization.domain.delete", claim)


async def _audit(
    db: AsyncSession, actor: Principal, action: str, claim: OrganizationDomain
) -> None:
    await record(
        db,
        actor,
        action,
        target_type="domain",
        target_id=claim.id,
        organization_id=claim.organization_id,
        details={"domain": claim.domain},
    )


async def in_verified_domain(db: AsyncSession, org_id: str, address: str | None) -> bool:
    """Whether `address` (an e-mail address or its key) lies in a domain the organization has
    verified (no permission check: callers are use cases that did theirs)."""
    domain = names.domain_of(names.email_key(address))
    if domain is None:
        return False
    found = await db.scalar(
        select(OrganizationDomain.id).where(
            OrganizationDomain.organization_id == org_id,
            OrganizationDomain.verified_domain == domain,
        )
    )
    return found is not None
