"""The unleash face's view of the caller: root role, permissions in Unleash's names, profile,
and the per-user splash/feedback state (kept in User.attributes["unleash"])."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from tenantry.authz.engine import Grant, Grants, load_user_grants
from tenantry.authz.scopes import ScopeType
from tenantry.clock import utcnow
from tenantry.db.models import Team, TeamMember, Token, User
from tenantry.directory import sign_in, users
from tenantry.directory.users import get_by_id
from tenantry.errors import Invalid
from tenantry.identity.principals import Principal
from tenantry.identity.security import Security
from tenantry.identity.sessions import active_session_count
from tenantry.identity.tokens import Minted, TokenKind

ADMIN, EDITOR, VIEWER = 1, 2, 3
ROOT_ROLES: dict[int, tuple[str, str]] = {
    ADMIN: (
        "Admin",
        "Users with the root admin role have superuser access to Unleash and can perform any "
        "operation within the Unleash platform.",
    ),
    EDITOR: (
        "Editor",
        "Users with the root editor role have access to most features in Unleash, but can not "
        "manage users and roles in the root scope. Editors will be added as project owners when "
        "creating projects and get superuser rights within the context of these projects. Users "
        "with the editor role will also get access to most permissions on the default project "
        "by default.",
    ),
    VIEWER: (
        "Viewer",
        "Users with the root viewer role can only read root resources in Unleash. Viewers can "
        "be added to specific projects as project members. Users with the viewer role may not "
        "view API tokens.",
    ),
}
SYSTEM_ROLE_OF = {ADMIN: "SYSTEM_ADMIN", EDITOR: "SYSTEM_EDITOR"}

# Unleash always has the project `default`, and it stores every root role binding in it: its
# profile lists it among everyone's projects and GET /user/roles gives the root role that
# project. A face fiction (no Tenantry workspace stands for it), kept for Unleash's clients.
DEFAULT_PROJECT = "default"

# Unleash's predefined project roles (ids as a fresh Unleash install numbers them). A workspace
# is an Unleash project: WORKSPACE_OWNER is the project's Owner, every other workspace role a
# Member (Unleash has no finer predefined project role; the permissions say the rest).
OWNER, MEMBER = 4, 5
PROJECT_ROLES: dict[int, tuple[str, str]] = {
    OWNER: (
        "Owner",
        "Users with the project owner role have full control over the project, and can add and "
        "manage other users within the project context, manage feature flags within the "
        "project, and control advanced project features like archiving and deleting the "
        "project.",
    ),
    MEMBER: (
        "Member",
        "Users with the project member role are allowed to view, create, and update feature "
        "flags within a project, but have limited permissions in regards to managing the "
        "project's user access and can not archive or delete the project.",
    ),
}

# Tenantry permission → Unleash permission. Workspaces are Unleash projects, deployments are
# Unleash environments; a SYSTEM_ADMIN is Unleash's ADMIN and nothing else is listed for it.
_SYSTEM = {
    "system.organizations.create": "CREATE_PROJECT",
    "system.users.list": "READ_ROLE",
}
_PROJECT = {
    "workspace.update": "UPDATE_PROJECT",
    "workspace.delete": "DELETE_PROJECT",
    "workspace.deployments.create": "CREATE_FEATURE",
    "workspace.users.list": "PROJECT_USER_ACCESS_READ",
    "workspace.users.roles.update": "PROJECT_USER_ACCESS_WRITE",
    "workspace.tokens.list": "READ_PROJECT_API_TOKEN",
    "workspace.tokens.create": "CREATE_PROJECT_API_TOKEN",
    "workspace.tokens.delete": "DELETE_PROJECT_API_TOKEN",
}
_ENVIRONMENT = {
    "deployment.update": "UPDATE_FEATURE_ENVIRONMENT",
    "deployment.deploys.create": "CREATE_FEATURE_STRATEGY",
    "deployment.envVars.update": "UPDATE_FEATURE_STRATEGY",
    "deployment.delete": "DELETE_FEATURE_STRATEGY",
}


def root_role_of(system_roles: Iterable[str]) -> int:
    """A user may hold several SYSTEM roles (ECE's combinations): the strongest decides;
    anything but SYSTEM_ADMIN and SYSTEM_EDITOR is a Viewer."""
    held = set(system_roles)
    return next((role for role, name in SYSTEM_ROLE_OF.items() if name in held), VIEWER)


def system_roles_for(role: int) -> tuple[str, ...]:
    """The SYSTEM roles a root role stands for (setting one replaces them all)."""
    return (SYSTEM_ROLE_OF[role],) if role in SYSTEM_ROLE_OF else ()


def root_role(grants: Grants) -> int:
    return root_role_of(g.role for g in grants.grants if g.scope.type is ScopeType.SYSTEM)


def root_role_body(role: int) -> dict[str, Any]:
    name, description = ROOT_ROLES[role]
    return {"id": role, "name": name, "type": "root", "description": description}


def parse_root_role(value: int | str) -> int:
    """rootRole as Unleash accepts it: 1/2/3 or "Admin"/"Editor"/"Viewer" ("Owner", "Member"
    and "Reader" pass Unleash's schema but are project roles)."""
    if isinstance(value, int) and not isinstance(value, bool) and value in ROOT_ROLES:
        return value
    for role, (name, _) in ROOT_ROLES.items():
        if name == value:
            return role
    raise Invalid("Could not find rootRole")


def project_role_of(workspace_role: str) -> int:
    return OWNER if workspace_role == "WORKSPACE_OWNER" else MEMBER


def project_role_body(role: int) -> dict[str, Any]:
    name, description = PROJECT_ROLES[role]
    return {"id": role, "name": name, "type": "project", "description": description}


def _workspace_grants(grants: Grants, project: str) -> list[Grant]:
    """The grants at the workspace `project` itself (the user's own and their teams')."""
    return [
        g
        for g in grants.grants
        if g.scope.type is ScopeType.WORKSPACE and g.scope.workspace_id == project
    ]


def project_roles(grants: Grants, project: str) -> list[int]:
    """The Unleash project roles held in `project` (a workspace id), Owner first."""
    return sorted({project_role_of(g.role) for g in _workspace_grants(grants, project)})


def project_role_permissions(grants: Grants, project: str, role: int) -> list[str]:
    """The Unleash project permissions that the workspace roles shown as `role` grant."""
    granted: set[str] = set()
    for g in _workspace_grants(grants, project):
        if project_role_of(g.role) == role:
            granted |= {_PROJECT[p] for p in grants.permissions_of(g) if p in _PROJECT}
    return sorted(granted)


# What Unleash 8.2's Editor root role lists in meSchema (fixture me.get.editor_pat): root
# permissions, and project and environment permissions in its `default` project and the two
# environments a fresh Unleash has. They name Unleash's features, segments, strategies, ...,
# none of which Tenantry serves, so listing them grants nothing; what an editor may do in
# Tenantry is SYSTEM_EDITOR's permissions (no user administration, as in Unleash).
_EDITOR_ROOT = (
    "CREATE_ADDON", "CREATE_CONTEXT_FIELD", "CREATE_PROJECT", "CREATE_SEGMENT",
    "CREATE_STRATEGY", "CREATE_TAG_TYPE", "DELETE_ADDON", "DELETE_CONTEXT_FIELD",
    "DELETE_SEGMENT", "DELETE_STRATEGY", "DELETE_TAG_TYPE", "READ_CLIENT_API_TOKEN",
    "READ_FRONTEND_API_TOKEN", "RELEASE_PLAN_TEMPLATE_CREATE", "RELEASE_PLAN_TEMPLATE_UPDATE",
    "UPDATE_ADDON", "UPDATE_APPLICATION", "UPDATE_CONTEXT_FIELD", "UPDATE_SEGMENT",
    "UPDATE_STRATEGY", "UPDATE_TAG_TYPE",
)  # fmt: skip
_EDITOR_PROJECT = (
    "CREATE_FEATURE", "CREATE_PROJECT_API_TOKEN", "DELETE_FEATURE", "DELETE_PROJECT",
    "DELETE_PROJECT_API_TOKEN", "MOVE_FEATURE_TOGGLE", "READ_PROJECT_API_TOKEN",
    "UPDATE_FEATURE", "UPDATE_FEATURE_DEPENDENCY", "UPDATE_FEATURE_VARIANTS", "UPDATE_PROJECT",
)  # fmt: skip
_EDITOR_ENVIRONMENT = (
    "CREATE_FEATURE_STRATEGY", "DELETE_FEATURE_STRATEGY", "UPDATE_FEATURE_ENVIRONMENT",
    "UPDATE_FEATURE_ENVIRONMENT_VARIANTS", "UPDATE_FEATURE_STRATEGY",
)  # fmt: skip
DEFAULT_ENVIRONMENTS = ("development", "production")


def _editor_permissions() -> list[dict[str, str]]:
    return [
        *({"permission": p} for p in _EDITOR_ROOT),
        *({"permission": p, "project": DEFAULT_PROJECT} for p in _EDITOR_PROJECT),
        *(
            {"permission": p, "project": DEFAULT_PROJECT, "environment": e}
            for p in _EDITOR_ENVIRONMENT
            for e in DEFAULT_ENVIRONMENTS
        ),
    ]


def _permission_key(item: dict[str, str]) -> tuple[str, str, str]:
    return (item["permission"], item.get("project", ""), item.get("environment", ""))


def translate_permissions(grants: Grants) -> list[dict[str, str]]:
    """meSchema's permissions: ADMIN alone for an Admin; for an Editor, Unleash's Editor
    permissions; then the caller's effective permissions in Unleash's names."""
    role = root_role(grants)
    if role == ADMIN:
        return [{"permission": "ADMIN"}]
    out: dict[tuple[str, str, str], dict[str, str]] = {}
    if role == EDITOR:
        out = {_permission_key(item): item for item in _editor_permissions()}
    for permission, scope in grants.effective():
        item: dict[str, str] | None = None
        if scope.type is ScopeType.SYSTEM and permission in _SYSTEM:
            item = {"permission": _SYSTEM[permission]}
        elif scope.type is ScopeType.WORKSPACE and permission in _PROJECT:
            item = {"permission": _PROJECT[permission], "project": scope.workspace_id or ""}
        elif scope.type is ScopeType.DEPLOYMENT and permission in _ENVIRONMENT:
            item = {
                "permission": _ENVIRONMENT[permission],
                "project": scope.workspace_id or "",
                "environment": scope.deployment_id or "",
            }
        if item is not None:
            out.setdefault(_permission_key(item), item)
    return [out[k] for k in sorted(out)]


def group_number(team: Team) -> int:
    """Unleash numbers groups; a Tenantry team id is a string, so the number shown is a stable
    48-bit digest of it (as for PATs)."""
    return int.from_bytes(hashlib.sha256(team.id.encode()).digest()[:6], "big") or 1


async def groups_of(db: AsyncSession, user_id: str) -> list[Team]:
    """Unleash groups are Tenantry teams: the teams the user is a member of, by name."""
    rows = await db.scalars(
        select(Team)
        .join(TeamMember, TeamMember.team_id == Team.id)
        .where(TeamMember.user_id == user_id)
        .order_by(Team.name, Team.id)
    )
    return list(rows)


# The per-user state Unleash's UI keeps (splash screens seen, feedback questionnaires
# answered) is Unleash vocabulary: it lives in User.attributes["unleash"], written through the
# directory's generic use case for a face's own attributes (users.set_own_attributes).
NAMESPACE = "unleash"


def unleash_state(user: User) -> dict[str, Any]:
    state = (user.attributes or {}).get(NAMESPACE)
    return state if isinstance(state, dict) else {}


@dataclass
class Me:
    user: User | None
    token: Token | None
    permissions: list[dict[str, str]]
    splash: dict[str, bool] = field(default_factory=dict)
    feedback: list[dict[str, Any]] = field(default_factory=list)
    via_session: bool = False
    active_sessions: int = 0


def me_of(actor: Principal, active_sessions: int) -> Me:
    """The caller as Unleash's GET /api/admin/user shows it, from what was loaded with them
    (directory.whoami)."""
    permissions = translate_permissions(actor.grants)
    if actor.user is None:  # an API token acting as itself
        return Me(None, actor.token, permissions)
    state = unleash_state(actor.user)
    via_session = actor.token is not None and actor.token.kind == TokenKind.SESSION
    active = active_sessions if via_session else 0
    return Me(
        actor.user,
        actor.token,
        permissions,
        splash=dict(state.get("splash", {})),
        feedback=list(state.get("feedback", [])),
        via_session=via_session,
        active_sessions=active,
    )


@dataclass
class Profile:
    root_role: int
    projects: list[str]
    can_change_password: bool
    groups: list[Team] = field(default_factory=list)


async def profile(db: AsyncSession, actor: Principal) -> Profile:
    if actor.user is None:
        raise Invalid("User id is missing in request user object")
    workspaces = {g.scope.workspace_id for g in actor.grants.grants if g.scope.workspace_id}
    projects = [DEFAULT_PROJECT, *sorted(workspaces - {DEFAULT_PROJECT})]
    user = actor.user
    return Profile(
        root_role(actor.grants),
        projects,
        user.realm == "native" and not user.idp_managed,
        await groups_of(db, user.id),
    )


@dataclass
class SimpleLogin:
    user: User
    minted: Minted
    active_sessions: int


async def simple_login(
    db: AsyncSession,
    sec: Security,
    *,
    username: str,
    password: str,
    ip: str | None,
) -> SimpleLogin | None:
    """Unleash's password sign-in: a session plus the user and their session count. None when
    refused (returned, not raised, so that the failure count commits)."""
    outcome = await sign_in.login(db, sec, username=username, password=password, ip=ip)
    if outcome.minted is None or outcome.minted.token.user_id is None:
        return None
    user = await get_by_id(db, outcome.minted.token.user_id)
    return SimpleLogin(user, outcome.minted, await active_session_count(db, user.id))


MAX_KEY = 100
MAX_ENTRIES = 100


def _own_user(actor: Principal) -> User:
    if actor.user is None:
        raise Invalid("User id is missing in request user object")
    return actor.user


def _key(value: Any, name: str) -> str:
    if not isinstance(value, str) or not value or len(value) > MAX_KEY or "\x00" in value:
        raise Invalid(f"{name} must be a string of 1 to {MAX_KEY} characters, without NUL")
    return value


async def mark_splash_seen(db: AsyncSession, actor: Principal, splash_id: str) -> User | None:
    """The caller with the splash screen remembered; None for an API token, which has no user
    to remember it for (Unleash answers its admin token 200 and keeps nothing either)."""
    key = _key(splash_id, "splashId")
    if actor.user is None:
        return None
    user = actor.user
    state = dict(unleash_state(user))
    splash = dict(state.get("splash", {}))
    if key not in splash and len(splash) >= MAX_ENTRIES:
        raise Invalid("too many splash screens recorded")
    splash[key] = True
    state["splash"] = splash
    return await users.set_own_attributes(db, actor, NAMESPACE, state, what={"splashId": key})


async def give_feedback(
    db: AsyncSession,
    actor: Principal,
    feedback_id: Any,
    never_show: bool | None,
    given: datetime | None,
) -> dict[str, Any]:
    """Create or update the caller's answer to one feedback questionnaire."""
    user = _own_user(actor)
    key = _key(feedback_id, "feedbackId")
    state = dict(unleash_state(user))
    items = [dict(i) for i in state.get("feedback", []) if isinstance(i, dict)]
    item = next((i for i in items if i.get("feedbackId") == key), None)
    if item is None:
        if len(items) >= MAX_ENTRIES:
            raise Invalid("too many feedback answers recorded")
        item = {"userId": user.seq, "feedbackId": key, "neverShow": False, "given": None}
        items.append(item)
    if never_show is not None:
        item["neverShow"] = never_show
    when = given or utcnow()
    item["given"] = when.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.") + (
        f"{when.microsecond // 1000:03d}Z"
    )
    state["feedback"] = items
    await users.set_own_attributes(db, actor, NAMESPACE, state, what={"feedbackId": key})
    return item


@dataclass
class OwnRoles:
    root_role: int
    project_roles: list[int]


def own_roles(actor: Principal, project: str) -> OwnRoles:
    """GET /api/admin/user/roles?projectId=: the caller's root role and project roles in that
    project (their own workspace bindings and their teams'), as Unleash 8 lists them. An API
    token has no roles of its own: Unleash fails on its admin token (500), Tenantry answers the
    400 it gives a token on the other routes about the caller (UNLEASH_500 in
    docs/faces/unleash.md)."""
    _own_user(actor)
    return OwnRoles(root_role(actor.grants), project_roles(actor.grants, project))


# Unleash 8.2's permission catalogue (GET /user-admin/{id}/permissions): (id, name, display name).
UNLEASH_ROOT_PERMISSIONS: tuple[tuple[int, str, str], ...] = (
    (1, "ADMIN", "Admin"),
    (3, "CREATE_STRATEGY", "Create activation strategies"),
    (4, "CREATE_ADDON", "Create addons"),
    (5, "DELETE_ADDON", "Delete addons"),
    (6, "UPDATE_ADDON", "Update addons"),
    (9, "UPDATE_APPLICATION", "Update applications"),
    (10, "UPDATE_TAG_TYPE", "Update tag types"),
    (11, "DELETE_TAG_TYPE", "Delete tag types"),
    (12, "CREATE_PROJECT", "Create projects"),
    (15, "UPDATE_STRATEGY", "Update strategies"),
    (16, "DELETE_STRATEGY", "Delete strategies"),
    (17, "UPDATE_CONTEXT_FIELD", "Update context fields"),
    (18, "CREATE_CONTEXT_FIELD", "Create context fields"),
    (19, "DELETE_CONTEXT_FIELD", "Delete context fields"),
    (20, "READ_ROLE", "Read roles"),
    (31, "CREATE_SEGMENT", "Create segments"),
    (32, "UPDATE_SEGMENT", "Edit segments"),
    (33, "DELETE_SEGMENT", "Delete segments"),
    (50, "CREATE_CLIENT_API_TOKEN", "Create Backend tokens"),
    (51, "UPDATE_CLIENT_API_TOKEN", "Update Backend tokens"),
    (52, "DELETE_CLIENT_API_TOKEN", "Delete Backend tokens"),
    (53, "READ_CLIENT_API_TOKEN", "Read Backend tokens"),
    (59, "CREATE_TAG_TYPE", "Create tag types"),
    (70, "RELEASE_PLAN_TEMPLATE_CREATE", "Create release plan template"),
    (71, "RELEASE_PLAN_TEMPLATE_UPDATE", "Update release plan template"),
    (72, "RELEASE_PLAN_TEMPLATE_DELETE", "Delete release plan template"),
    (73, "UPDATE_MAINTENANCE_MODE", "Change maintenance mode state"),
    (74, "UPDATE_INSTANCE_BANNERS", "Change instance banners"),
    (75, "UPDATE_AUTH_CONFIGURATION", "Change authentication settings (SSO)"),
    (76, "READ_LOGS", "Read instance logs and login history"),
    (77, "UPDATE_CORS", "Update CORS settings"),
    (54, "CREATE_FRONTEND_API_TOKEN", "Create Frontend tokens"),
    (55, "UPDATE_FRONTEND_API_TOKEN", "Update Frontend tokens"),
    (56, "DELETE_FRONTEND_API_TOKEN", "Delete Frontend tokens"),
    (57, "READ_FRONTEND_API_TOKEN", "Read Frontend tokens"),
)
UNLEASH_PROJECT_PERMISSIONS: tuple[tuple[int, str, str], ...] = (
    (13, "UPDATE_PROJECT", "Update project"),
    (14, "DELETE_PROJECT", "Delete project"),
    (29, "UPDATE_FEATURE_VARIANTS", "Create/edit variants"),
    (42, "READ_PROJECT_API_TOKEN", "Read api tokens for a specific project"),
    (43, "CREATE_PROJECT_API_TOKEN", "Create api tokens for a specific project"),
    (44, "DELETE_PROJECT_API_TOKEN", "Delete api tokens for a specific project"),
    (45, "UPDATE_PROJECT_SEGMENT", "Create/edit project segment"),
    (2, "CREATE_FEATURE", "Create feature flags"),
    (7, "UPDATE_FEATURE", "Update feature flags"),
    (8, "DELETE_FEATURE", "Delete feature flags"),
    (30, "MOVE_FEATURE_TOGGLE", "Change feature flag project"),
    (58, "UPDATE_FEATURE_DEPENDENCY", "Update feature dependency"),
    (60, "PROJECT_USER_ACCESS_READ", "View only access to Project User Access"),
    (
        61,
        "PROJECT_DEFAULT_STRATEGY_READ",
        "View only access to default strategy configuration for project",
    ),
    (
        62,
        "PROJECT_CHANGE_REQUEST_READ",
        "View only access to change request configuration for project",
    ),
    (63, "PROJECT_SETTINGS_READ", "View only access to project settings"),
    (64, "PROJECT_USER_ACCESS_WRITE", "Write access to Project User Access"),
    (
        65,
        "PROJECT_DEFAULT_STRATEGY_WRITE",
        "Write access to default strategy configuration for project",
    ),
    (
        66,
        "PROJECT_CHANGE_REQUEST_WRITE",
        "Write access to change request configuration for project",
    ),
    (67, "PROJECT_SETTINGS_WRITE", "Write access to project settings"),
    (78, "UPDATE_PROJECT_CONTEXT", "Create/edit project context"),
    (79, "UPDATE_PROJECT_RELEASE_TEMPLATE", "Create/edit project release template"),
)
# What an Editor holds at the root (Unleash's editor cannot manage users, roles or auth).
_EDITOR_ROOT_DENIED = frozenset(
    {"ADMIN", "READ_ROLE", "UPDATE_AUTH_CONFIGURATION", "READ_LOGS", "UPDATE_MAINTENANCE_MODE"}
)


@dataclass
class ProjectRole:
    role: int
    permissions: list[tuple[int, str, str]]


@dataclass
class AccessOverview:
    user: User
    root_role: int
    root: list[tuple[int, str, str, bool]]
    project: list[tuple[int, str, str, bool]]
    groups: list[Team] = field(default_factory=list)
    project_roles: list[ProjectRole] = field(default_factory=list)


async def access_overview(
    db: AsyncSession, actor: Principal, user: User, project: str | None = None
) -> AccessOverview:
    """GET /user-admin/{id}/permissions[?project=] for a user already fetched by the caller's
    rights: Unleash's catalogue with what the user holds. Without a project, an Admin or Editor
    holds every project permission and a Viewer none (Unleash's answer without a project);
    with one, the project permissions are the user's translated permissions in that workspace
    and `projectRoles` their project roles there. Groups are the user's teams."""
    grants = await load_user_grants(db, user.id)
    role = root_role(grants)

    def root_has(name: str) -> bool:
        return role == ADMIN or (role == EDITOR and name not in _EDITOR_ROOT_DENIED)

    root = [(i, n, d, root_has(n)) for i, n, d in UNLEASH_ROOT_PERMISSIONS]
    if project is None:
        held = {n for _, n, _ in UNLEASH_PROJECT_PERMISSIONS} if role in (ADMIN, EDITOR) else set()
    elif role == ADMIN:
        held = {n for _, n, _ in UNLEASH_PROJECT_PERMISSIONS}
    else:
        held = {
            p["permission"] for p in translate_permissions(grants) if p.get("project") == project
        }
    listed = [(i, n, d, n in held) for i, n, d in UNLEASH_PROJECT_PERMISSIONS]
    roles: list[ProjectRole] = []
    if project is not None:
        by_name = {n: (i, n, d) for i, n, d in UNLEASH_PROJECT_PERMISSIONS}
        for r in project_roles(grants, project):
            names = project_role_permissions(grants, project, r)
            roles.append(ProjectRole(r, [by_name[n] for n in names if n in by_name]))
    return AccessOverview(user, role, root, listed, await groups_of(db, user.id), roles)
