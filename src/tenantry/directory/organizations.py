"""Organizations: create (system), list what the caller can see, read, update, delete."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from tenantry.access import scopes
from tenantry.access.principals import Principal
from tenantry.access.scopes import SYSTEM_SCOPE
from tenantry.audit.log import record
from tenantry.clock import utcnow
from tenantry.db.models import Membership, Organization
from tenantry.directory.paging import Page, check_window, order_by, parse_sorts
from tenantry.errors import FieldError, Invalid, NotFound

SUPPORT_PLANS = ("TRIAL", "BASIC", "STANDARD", "PREMIUM", "BUSINESS_CRITICAL")
PRODUCTS = ("HOSTED", "HYBRID")
ORG_SORTS = ("name", "createdAt", "updatedAt")


def _check_name(name: str) -> str:
    name = name.strip()
    if not name or len(name) > 256:
        raise Invalid("invalid name", [FieldError("name", "invalid", "1 to 256 characters")])
    return name


async def adjust_member_count(db: AsyncSession, org_id: str, delta: int) -> None:
    """Atomic in SQL, so concurrent joins never lose an increment."""
    await db.execute(
        update(Organization)
        .where(Organization.id == org_id)
        .values(member_count=Organization.member_count + delta)
    )


async def add_member(db: AsyncSession, org_id: str, user_id: str, role: str) -> Membership:
    membership = Membership(organization_id=org_id, user_id=user_id, role=role)
    db.add(membership)
    await db.flush()
    await adjust_member_count(db, org_id, 1)
    return membership


async def load(db: AsyncSession, org_id: str) -> Organization:
    org = await db.get(Organization, org_id)
    if org is None:
        raise NotFound("organization not found")
    return org


async def get_visible(db: AsyncSession, actor: Principal, org_id: str) -> Organization:
    """The organization, or 404 when it is missing *or* the caller may not see it."""
    actor.require_visible("organization.get", scopes.organization(org_id), "organization")
    return await load(db, org_id)


@dataclass
class OrganizationFields:
    name: str | None = None
    billing_email: str | None = None
    is_scim_enabled: bool | None = None
    support_plan: str | None = None
    product: str | None = None


def _apply(org: Organization, fields: OrganizationFields) -> None:
    if fields.support_plan is not None and fields.support_plan not in SUPPORT_PLANS:
        raise Invalid("invalid supportPlan", [FieldError("supportPlan", "invalid", "unknown plan")])
    if fields.product is not None and fields.product not in PRODUCTS:
        raise Invalid("invalid product", [FieldError("product", "invalid", "unknown product")])
    if fields.name is not None:
        org.name = _check_name(fields.name)
    for name in ("billing_email", "is_scim_enabled", "support_plan", "product"):
        value = getattr(fields, name)
        if value is not None:
            setattr(org, name, value)


async def create_organization(
    db: AsyncSession, actor: Principal, fields: OrganizationFields
) -> Organization:
    """A user who creates an organization becomes its owner."""
    actor.require("system.organizations.create", SYSTEM_SCOPE)
    now = utcnow()
    org = Organization(
        name="",
        created_at=now,
        updated_at=now,
        created_by=actor.actor_id,
        updated_by=actor.actor_id,
        member_count=0,
    )
    if fields.name is None:
        raise Invalid("name is required", [FieldError("name", "required", "required")])
    _apply(org, fields)
    db.add(org)
    await db.flush()
    if actor.user is not None:
        await add_member(db, org.id, actor.user.id, "ORGANIZATION_OWNER")
    await record(
        db,
        actor,
        "organization.create",
        target_type="organization",
        target_id=org.id,
        organization_id=org.id,
    )
    return org


async def list_organizations(
    db: AsyncSession,
    actor: Principal,
    *,
    offset: int = 0,
    limit: int = 20,
    sorts: Sequence[str] = (),
    support_plan: str | None = None,
    product: str | None = None,
) -> Page[Organization]:
    check_window(offset, limit)
    order = order_by(
        parse_sorts(sorts, ORG_SORTS),
        {
            "name": Organization.name,
            "createdAt": Organization.created_at,
            "updatedAt": Organization.updated_at,
        },
        Organization.id,
    )
    query = select(Organization)
    if not actor.can("organization.get", SYSTEM_SCOPE):
        visible = [
            o
            for o in actor.grants.organization_ids()
            if actor.can("organization.get", scopes.organization(o))
        ]
        query = query.where(Organization.id.in_(visible))
    if support_plan is not None:
        query = query.where(Organization.support_plan == support_plan)
    if product is not None:
        query = query.where(Organization.product == product)
    total = await db.scalar(select(func.count()).select_from(query.subquery())) or 0
    rows = await db.scalars(query.order_by(*order).offset(offset).limit(limit))
    return Page(list(rows), total, offset, limit)


async def update_organization(
    db: AsyncSession, actor: Principal, org_id: str, fields: OrganizationFields
) -> Organization:
    org = await get_visible(db, actor, org_id)
    actor.require("organization.update", scopes.organization(org_id))
    _apply(org, fields)
    org.updated_at = utcnow()
    org.updated_by = actor.actor_id
    await db.flush()
    await record(
        db,
        actor,
        "organization.update",
        target_type="organization",
        target_id=org.id,
        organization_id=org.id,
    )
    return org


async def delete_organization(db: AsyncSession, actor: Principal, org_id: str) -> None:
    org = await get_visible(db, actor, org_id)
    actor.require("system.organizations.delete", SYSTEM_SCOPE)
    await db.delete(org)
    await db.flush()
    await record(
        db,
        actor,
        "organization.delete",
        target_type="organization",
        target_id=org_id,
        organization_id=org_id,
    )


async def is_member(db: AsyncSession, org_id: str, user_id: str) -> bool:
    found = await db.scalar(
        select(Membership.user_id).where(
            Membership.organization_id == org_id, Membership.user_id == user_id
        )
    )
    return found is not None
