"""Demo data for `tenantry demo`: two organizations of people with roles at every scope.

Everything goes through the same service functions the faces call, as the trusted system
principal, inside the caller's one transaction. Invites and feature flags are written as rows
(their own services are not needed for a fixed dataset).
"""

from __future__ import annotations

import hashlib
import random
import secrets
import shlex
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from tenantry.audit.log import record
from tenantry.authz.scopes import SYSTEM_SCOPE
from tenantry.clock import utcnow
from tenantry.db.models import FeatureFlag, Invite, RoleBinding, User, UserFeatureFlag
from tenantry.devdata.bulk import FIRST_NAMES, LAST_NAMES, ascii_name
from tenantry.directory import deployments, members, organizations, users, workspaces
from tenantry.directory.bootstrap import ensure_builtin_users, ensure_system_admin
from tenantry.directory.deployments import DeploymentFields
from tenantry.directory.members import DagRole, RoleSet
from tenantry.directory.organizations import OrganizationFields
from tenantry.directory.users import UserFields
from tenantry.directory.workspaces import WorkspaceFields
from tenantry.errors import Conflict
from tenantry.identity import personal_tokens
from tenantry.identity.principals import Principal, system_principal

DEFAULT_ADMIN = "admin@example.com"
INVITE_DAYS = 7


@dataclass(frozen=True)
class OrgSpec:
    key: str
    name: str
    domain: str
    support_plan: str
    product: str
    # workspace name -> deployment names
    workspaces: dict[str, tuple[str, ...]]


ORGS = (
    OrgSpec(
        "acme",
        "Acme Analytics",
        "acme.example.com",
        "PREMIUM",
        "HOSTED",
        {
            "Data Platform": ("data-platform-prod", "data-platform-staging"),
            "Marketing Analytics": ("marketing-prod",),
            "ML Research": ("ml-training", "ml-serving"),
        },
    ),
    OrgSpec(
        "globex",
        "Globex Logistics",
        "globex.example.com",
        "STANDARD",
        "HYBRID",
        {
            "Operations": ("ops-prod", "ops-dev"),
            "Finance": ("finance-prod",),
        },
    ),
)


@dataclass(frozen=True)
class Person:
    """One user's roles in one organization; scopes are named, resolved to ids at load time."""

    full_name: str
    org: str
    org_role: str
    workspaces: tuple[tuple[str, str], ...] = ()  # (workspace name, role)
    deployments: tuple[tuple[str, str], ...] = ()  # (deployment name, role)
    dags: tuple[tuple[str, str, str | None, str | None], ...] = ()  # (dep, role, dagId, dagTag)
    email: str | None = None
    status: str = "ACTIVE"


# Hand-picked people: every organization role, every workspace role, deployment admins, DAG
# roles by dagId and by dagTag, and one person in both organizations.
PEOPLE = (
    Person("María García", "acme", "ORGANIZATION_OWNER"),
    Person("James O'Connor", "acme", "ORGANIZATION_BILLING_ADMIN"),
    Person(
        "Wei Chen",
        "acme",
        "ORGANIZATION_OBSERVE_ADMIN",
        workspaces=(("Data Platform", "WORKSPACE_OWNER"),),
    ),
    Person(
        "Priya Patel",
        "acme",
        "ORGANIZATION_OBSERVE_MEMBER",
        workspaces=(("Data Platform", "WORKSPACE_OPERATOR"), ("ML Research", "WORKSPACE_MEMBER")),
    ),
    Person(
        "Lukas Müller",
        "acme",
        "ORGANIZATION_MEMBER",
        workspaces=(("Data Platform", "WORKSPACE_AUTHOR"),),
        deployments=(("data-platform-prod", "DEPLOYMENT_ADMIN"),),
    ),
    Person(
        "Aisha Okafor",
        "acme",
        "ORGANIZATION_MEMBER",
        workspaces=(("Marketing Analytics", "WORKSPACE_OWNER"),),
    ),
    Person(
        "Sofia Rossi",
        "acme",
        "ORGANIZATION_MEMBER",
        workspaces=(("Marketing Analytics", "WORKSPACE_ACCESSOR"),),
        dags=(("marketing-prod", "DAG_AUTHOR", "campaign_attribution", None),),
    ),
    Person(
        "Kenji Tanaka",
        "acme",
        "ORGANIZATION_MEMBER",
        deployments=(("ml-training", "DEPLOYMENT_ADMIN"),),
        dags=(("ml-serving", "DAG_VIEWER", None, "ml"),),
    ),
    Person(
        "Emma Johansson",
        "acme",
        "ORGANIZATION_MEMBER",
        dags=(
            ("data-platform-prod", "DAG_AUTHOR", "etl_orders_daily", None),
            ("data-platform-prod", "DAG_VIEWER", None, "finance"),
        ),
    ),
    Person("Diego Fernández", "acme", "ORGANIZATION_MEMBER", status="INACTIVE"),
    Person("Olga Petrova", "globex", "ORGANIZATION_OWNER"),
    Person(
        "Samuel Adeyemi",
        "globex",
        "ORGANIZATION_BILLING_ADMIN",
        workspaces=(("Finance", "WORKSPACE_OWNER"),),
    ),
    Person("Hana Kim", "globex", "ORGANIZATION_OBSERVE_ADMIN"),
    Person(
        "Lars Nielsen",
        "globex",
        "ORGANIZATION_MEMBER",
        workspaces=(("Operations", "WORKSPACE_OPERATOR"),),
        deployments=(("ops-prod", "DEPLOYMENT_ADMIN"),),
    ),
    Person(
        "Fatima Rahman",
        "globex",
        "ORGANIZATION_MEMBER",
        dags=(("ops-prod", "DAG_AUTHOR", None, "critical"),),
    ),
    Person(
        "Tomás Silva",
        "globex",
        "ORGANIZATION_MEMBER",
        workspaces=(("Finance", "WORKSPACE_AUTHOR"),),
        dags=(("finance-prod", "DAG_VIEWER", "reconcile_payments", None),),
    ),
    # Wei Chen also works with Globex, under the Acme address.
    Person(
        "Wei Chen",
        "globex",
        "ORGANIZATION_MEMBER",
        workspaces=(("Operations", "WORKSPACE_MEMBER"),),
        email="wei.chen@acme.example.com",
    ),
)
GENERATED_PEOPLE = {"acme": 22, "globex": 12}
DAG_IDS = ("etl_orders_daily", "sync_salesforce", "dbt_run_marts", "ml_train_churn")
DAG_TAGS = ("finance", "marketing", "ml", "critical", "pii")

FEATURE_FLAGS = (
    ("dag-versioning", True, "Show DAG versions in deployment views"),
    ("audit-log-export", True, "Export the audit log as CSV"),
    ("astro-observe", False, "Astro Observe: data products and SLAs"),
    ("new-deployment-wizard", False, "The redesigned create-deployment flow"),
    ("remote-execution", False, "Run tasks on remote agents"),
)
# (e-mail, flag, value); the admin's own overrides are added at load time.
FLAG_OVERRIDES = (
    ("wei.chen@acme.example.com", "astro-observe", True),
    ("priya.patel@acme.example.com", "dag-versioning", False),
    ("olga.petrova@globex.example.com", "new-deployment-wizard", True),
)
# (organization, e-mail as typed, role); the admin is also invited to Globex.
INVITES = (
    ("acme", "new.hire@acme.example.com", "ORGANIZATION_MEMBER"),
    ("acme", "Contractor.Jones@Partner.example.com", "ORGANIZATION_MEMBER"),
    ("acme", "auditor@kpmg.example.com", "ORGANIZATION_OBSERVE_MEMBER"),
    ("globex", "ops.lead@globex.example.com", "ORGANIZATION_MEMBER"),
)


@dataclass
class DemoResult:
    loaded: bool
    admin_username: str | None = None
    token: str | None = None
    organizations: list[tuple[str, str]] = field(default_factory=list)  # (name, id)
    workspaces: list[tuple[str, str]] = field(default_factory=list)  # (name, id), first org first
    deployments: int = 0
    users: int = 0
    invites: int = 0
    feature_flags: int = 0


def email_for(full_name: str, domain: str) -> str:
    first, *rest = full_name.split(" ")
    last = "".join(rest)
    return f"{ascii_name(first)}.{ascii_name(last)}@{domain}"


def _generated(taken: set[str]) -> list[Person]:
    """More ordinary members, the same every time."""
    rng = random.Random(2024)  # noqa: S311 - demo data, not secrets
    people: list[Person] = []
    for spec in ORGS:
        ws_names = list(spec.workspaces)
        dep_names = [d for deps in spec.workspaces.values() for d in deps]
        made = 0
        while made < GENERATED_PEOPLE[spec.key]:
            name = f"{rng.choice(FIRST_NAMES)} {rng.choice(LAST_NAMES)}"
            email = email_for(name, spec.domain)
            if email in taken:
                continue
            taken.add(email)
            made += 1
            ws = (
                ((rng.choice(ws_names), rng.choice(("WORKSPACE_MEMBER", "WORKSPACE_AUTHOR"))),)
                if rng.random() < 0.7
                else ()
            )
            dags: tuple[tuple[str, str, str | None, str | None], ...] = ()
            if rng.random() < 0.2:
                dag_id = rng.choice(DAG_IDS) if rng.random() < 0.5 else None
                dags = (
                    (
                        rng.choice(dep_names),
                        rng.choice(("DAG_VIEWER", "DAG_AUTHOR")),
                        dag_id,
                        None if dag_id else rng.choice(DAG_TAGS),
                    ),
                )
            people.append(Person(name, spec.key, "ORGANIZATION_MEMBER", ws, dags=dags))
    return people


async def admin_usernames(db: AsyncSession) -> list[str]:
    """Users holding SYSTEM_ADMIN, oldest first."""
    rows = await db.scalars(
        select(User.username)
        .join(RoleBinding, RoleBinding.subject_id == User.id)
        .where(
            RoleBinding.subject_type == "user",
            RoleBinding.scope_key == SYSTEM_SCOPE.key,
            RoleBinding.role == "SYSTEM_ADMIN",
        )
        .order_by(User.seq)
    )
    return list(rows)


async def has_users(db: AsyncSession) -> bool:
    return await db.scalar(select(User.id).limit(1)) is not None


async def load_demo(
    db: AsyncSession,
    *,
    admin_username: str = DEFAULT_ADMIN,
    if_empty: bool = False,
    token_days: int = 90,
) -> DemoResult:
    """Load the dataset and mint a personal token for the admin. With `if_empty`, a database
    that already has users is left alone (`loaded` is False, `admin_username` names an
    existing SYSTEM_ADMIN if there is one)."""
    if await has_users(db):
        first = PEOPLE[0]
        owner = email_for(first.full_name, _spec(first.org).domain)
        if if_empty:
            admins = await admin_usernames(db)
            preferred = admin_username if admin_username in admins else None
            return DemoResult(False, preferred or (admins[0] if admins else None))
        if await users.find_by_username(db, owner) is not None:
            raise Conflict(f"the demo data is already loaded ({owner} exists)")
    actor = system_principal()
    result = DemoResult(True, admin_username)
    admin = await ensure_system_admin(db, admin_username, "Demo Admin")
    await ensure_builtin_users(db)

    org_ids: dict[str, str] = {}
    ws_ids: dict[tuple[str, str], str] = {}
    dep_ids: dict[tuple[str, str], str] = {}
    for spec in ORGS:
        org = await organizations.create_organization(
            db,
            actor,
            OrganizationFields(
                name=spec.name,
                billing_email=f"billing@{spec.domain}",
                support_plan=spec.support_plan,
                product=spec.product,
            ),
        )
        org_ids[spec.key] = org.id
        result.organizations.append((spec.name, org.id))
        for ws_name, dep_names in spec.workspaces.items():
            ws = await workspaces.create_workspace(
                db,
                actor,
                org.id,
                WorkspaceFields(name=ws_name, description=f"{ws_name} pipelines"),
            )
            ws_ids[spec.key, ws_name] = ws.id
            result.workspaces.append((ws_name, ws.id))
            for dep_name in dep_names:
                dep = await deployments.create_deployment(
                    db, actor, org.id, DeploymentFields(**_deployment_fields(ws.id, dep_name))
                )
                dep_ids[spec.key, dep_name] = dep.id
                result.deployments += 1

    taken = {p.email or email_for(p.full_name, _spec(p.org).domain) for p in PEOPLE}
    by_email: dict[str, User] = {}
    for person in (*PEOPLE, *_generated(taken)):
        email = person.email or email_for(person.full_name, _spec(person.org).domain)
        user = by_email.get(email)
        if user is None:
            user = await users.create_user(
                db,
                actor,
                email,
                UserFields(
                    full_name=person.full_name,
                    status=person.status,
                    avatar_url=f"https://avatars.example.com/{email.split('@')[0]}.png",
                ),
            )
            by_email[email] = user
        org_key = person.org
        roles = RoleSet(
            organization_role=person.org_role,
            workspace_roles=[(ws_ids[org_key, w], role) for w, role in person.workspaces],
            deployment_roles=[(dep_ids[org_key, d], role) for d, role in person.deployments],
            dag_roles=[
                DagRole(dep_ids[org_key, d], role, dag_id, dag_tag)
                for d, role, dag_id, dag_tag in person.dags
            ],
        )
        await members.replace_user_roles(db, actor, org_ids[org_key], user.id, roles)
    result.users = len(by_email) + 1

    # The admin owns Acme, so /users/self shows roles, and is invited to Globex.
    acme = org_ids["acme"]
    await members.replace_user_roles(
        db,
        actor,
        acme,
        admin.id,
        RoleSet(
            "ORGANIZATION_OWNER",
            workspace_roles=[(ws_ids["acme", "ML Research"], "WORKSPACE_OWNER")],
        ),
    )
    owners = {spec.key: by_email[email_for(_owner(spec.key), spec.domain)] for spec in ORGS}
    for org_key, email, role in (*INVITES, ("globex", admin_username, "ORGANIZATION_MEMBER")):
        await _invite(db, actor, org_ids[org_key], email, role, owners[org_key].id)
        result.invites += 1

    result.feature_flags = await _feature_flags(db, by_email, admin)
    minted = await personal_tokens.create_personal_token(
        db, actor, admin.id, name="demo", expires_in_days=token_days
    )
    result.token = minted.secret
    await record(
        db,
        actor,
        "demo.load",
        details={"organizations": [o for _, o in result.organizations], "users": result.users},
    )
    return result


def _spec(key: str) -> OrgSpec:
    return next(s for s in ORGS if s.key == key)


def _owner(org_key: str) -> str:
    return next(p.full_name for p in PEOPLE if p.org == org_key and p.org_role.endswith("OWNER"))


def _deployment_fields(ws_id: str, name: str) -> dict[str, Any]:
    prod = name.endswith("prod") or name == "ml-serving"
    return {
        "name": name,
        "workspace_id": ws_id,
        "description": "Production" if prod else "Development and testing",
        "spec": {
            "type": "STANDARD",
            "executor": "CELERY",
            "runtimeVersion": "12.1.0",
            "cloudProvider": "AWS",
            "region": "us-east-1",
            "isHighAvailability": prod,
        },
    }


async def _invite(
    db: AsyncSession, actor: Principal, org_id: str, email: str, role: str, inviter_id: str
) -> None:
    """As the invites service does: a PENDING user stands for an unknown address."""
    email_key = users.username_key(email)
    user = await users.find_by_username(db, email_key)
    if user is None:
        pending = UserFields(status="PENDING")
        user = await users.add_user(db, actor, email_key, pending, email_verified=False)
    now = utcnow()
    secret = secrets.token_urlsafe(32)
    db.add(
        Invite(
            organization_id=org_id,
            invitee_email=email_key,
            user_id=user.id,
            role=role,
            inviter_id=inviter_id,
            secret_digest=hashlib.sha256(secret.encode()).hexdigest(),
            expires_at=now + timedelta(days=INVITE_DAYS),
            created_at=now,
        )
    )
    await db.flush()


async def _feature_flags(db: AsyncSession, by_email: dict[str, User], admin: User) -> int:
    existing = set(await db.scalars(select(FeatureFlag.key)))
    for key, default, description in FEATURE_FLAGS:
        if key not in existing:
            db.add(FeatureFlag(key=key, default_value=default, description=description))
    await db.flush()
    overrides = [(by_email[email].id, key, value) for email, key, value in FLAG_OVERRIDES]
    overrides += [(admin.id, "astro-observe", True), (admin.id, "new-deployment-wizard", True)]
    for user_id, key, value in overrides:
        db.add(UserFeatureFlag(user_id=user_id, key=key, value=value))
    await db.flush()
    return len(FEATURE_FLAGS)


def instructions(result: DemoResult, base_url: str) -> str:
    """What `tenantry demo` prints after loading: the token and three requests to try."""
    org_name, org_id = result.organizations[0]
    ws_name, ws_id = result.workspaces[0]
    base = base_url.rstrip("/")
    auth = '-H "Authorization: Bearer $TOKEN"'
    lines = [
        f"Loaded the demo: {len(result.organizations)} organizations "
        f"({', '.join(f'{n} {i}' for n, i in result.organizations)}), "
        f"{len(result.workspaces)} workspaces, {result.deployments} deployments, "
        f"{result.users} users, {result.invites} pending invites, "
        f"{result.feature_flags} feature flags.",
        f"Admin: {result.admin_username} (SYSTEM_ADMIN, owner of {org_name}).",
        "",
        "Personal token for the admin (shown once):",
        f"export TOKEN={result.token}",
        "",
        "Try (with `tenantry serve` running):",
        f"curl -s {auth} {shlex.quote(f'{base}/v1/users/self')}",
        f"curl -s {auth} "
        + shlex.quote(
            f"{base}/platform/v1beta1/organizations/{org_id}/users?sorts=fullName:asc&limit=5"
        ),
        f"curl -s {auth} "
        + shlex.quote(f"{base}/v1/organizations/{org_id}/users?workspaceId={ws_id}")
        + f"  # {ws_name}",
    ]
    return "\n".join(lines)


def already_loaded_note(result: DemoResult) -> str:
    """What `tenantry demo --if-empty` says when the database already has users."""
    who = result.admin_username or "<username>"
    lines = ["The database already has users: the demo was not loaded (again)."]
    if result.admin_username is None:
        lines.append("No SYSTEM_ADMIN yet: `tenantry bootstrap --username <you>` makes one.")
    lines.append(f"Mint a token with: tenantry token create --user {shlex.quote(who)}")
    return "\n".join(lines)
