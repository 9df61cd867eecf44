"""Organizations: create (system), list what the caller can see, read, update, delete."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from tenantry.audit.log import record
from tenantry.authz import scopes
from tenantry.authz.scopes import SYSTEM_SCOPE
from tenantry.clock import utcnow
from tenantry.db.engine import scoped
from tenantry.db.models import Deployment, Membership, Organization, User, Workspace
from tenantry.db.paging import Page, check_window, order_by, parse_sorts
from tenantry.directory.subjects import Subjects, load_subjects
from tenantry.errors import FieldError, Invalid, NotFound
from tenantry.identity.principals import Principal

SUPPORT_PLANS = ("TRIAL", "BASIC", "STANDARD", "PREMIUM", "BUSINESS_CRITICAL")
PRODUCTS = ("HOSTED", "HYBRID")
ORG_SORTS = ("name", "createdAt", "updatedAt")
MAX_BILLING_EMAIL = 320


# PostgreSQL cannot store NUL in text (nor in JSONB strings): refused as invalid input rather
# than failing as a server error on one database only.
NUL = "\x00"


def check_name(name: str, field: str = "name", max_length: int = 256) -> str:
    """A name as stored: stripped, 1 to max_length characters, no NUL."""
    name = name.strip()
    if not name or len(name) > max_length or NUL in name:
        raise Invalid(
            f"invalid {field}",
            [FieldError(field, "invalid", f"1 to {max_length} characters, no NUL")],
        )
    return name


def check_filter(field: str, values: Sequence[str]) -> None:
    """List filters: a value no object can carry (NUL) is refused, not sent to the database."""
    if any(NUL in v for v in values):
        raise Invalid(f"invalid {field}", [FieldError(field, "invalid", "no NUL")])


def check_text(value: str, field: str, max_length: int) -> str:
    """Free text as stored: at most max_length characters, no NUL."""
    if len(value) > max_length or NUL in value:
        raise Invalid(
            f"invalid {field}",
            [FieldError(field, "invalid", f"at most {max_length} characters, no NUL")],
        )
    return value


async def adjust_member_count(db: AsyncSession, org_id: str, delta: int) -> None:
    """Atomic in SQL, so concurrent joins never lose an increment."""
    await db.execute(
        update(Organization)
        .where(Organization.id == org_id)
        .values(member_count=Organization.member_count + delta)
        .execution_options(**scoped())  # no cached answer shows the count
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


def can_reach(actor: Principal, org_id: str) -> bool:
    """Whether the caller may know of the organization and what is inside it: it may see the
    organization or holds a role inside it (an API token bound to one workspace reaches that
    workspace without seeing the organization). Anything else of another tenant answers as
    if it did not exist."""
    return actor.can("organization.get", scopes.organization(org_id)) or any(
        g.scope.organization_id == org_id for g in actor.grants.grants
    )


async def get_reachable(db: AsyncSession, actor: Principal, org_id: str) -> Organization:
    """The organization, or 404 unless the caller can reach it (`can_reach`)."""
    if not can_reach(actor, org_id):
        raise NotFound("organization not found")
    return await load(db, org_id)


def authors(objects: Iterable[Organization | Workspace | Deployment]) -> list[str | None]:
    """The created_by and updated_by ids of the objects."""
    return [i for o in objects for i in (o.created_by, o.updated_by)]


@dataclass(frozen=True)
class OrganizationView:
    organization: Organization
    subjects: Subjects


@dataclass(frozen=True)
class OrganizationPage:
    page: Page[Organization]
    subjects: Subjects


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
    if fields.billing_email is not None:
        check_text(fields.billing_email, "billingEmail", MAX_BILLING_EMAIL)
    if fields.name is not None:
        org.name = check_name(fields.name)
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
    if support_plan is not None and support_plan not in SUPPORT_PLANS:
        raise Invalid("invalid supportPlan", [FieldError("supportPlan", "invalid", "unknown plan")])
    if product is not None and product not in PRODUCTS:
        raise Invalid("invalid product", [FieldError("product", "invalid", "unknown product")])
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
    # The accounts its identity provider managed are no longer anyone's to manage.
    await db.execute(
        update(User)
        .where(User.managed_by_organization_id == org_id)
        .values(managed_by_organization_id=None)
        .execution_options(synchronize_session=False)
    )
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


# --- views: the object with what rendering it needs (who created and updated it) -------------


async def get_organization_view(
    db: AsyncSession, actor: Principal, org_id: str
) -> OrganizationView:
    org = await get_visible(db, actor, org_id)
    return OrganizationView(org, await load_subjects(db, authors([org])))


async def list_organizations_view(
    db: AsyncSession,
    actor: Principal,
    *,
    offset: int = 0,
    limit: int = 20,
    sorts: Sequence[str] = (),
    support_plan: str | None = None,
    product: str | None = None,
) -> OrganizationPage:
    page = await list_organizations(
        db,
        actor,
        offset=offset,
        limit=limit,
        sorts=sorts,
        support_plan=support_plan,
        product=product,
    )
    return OrganizationPage(page, await load_subjects(db, authors(page.items)))


async def update_organization_view(
    db: AsyncSession, actor: Principal, org_id: str, fields: OrganizationFields
) -> OrganizationView:
    org = await update_organization(db, actor, org_id, fields)
    return OrganizationView(org, await load_subjects(db, authors([org])))
