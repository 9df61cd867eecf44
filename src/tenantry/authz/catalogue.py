"""The role catalogue: every permission and every built-in role, as data.

A permission is `<group>.<action>`; a group belongs to the scope type where it is checked.
A role granted at scope S carries its permissions at S and at every scope inside S.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from tenantry.authz.scopes import DEPTH, ScopeType


@dataclass(frozen=True)
class PermissionGroup:
    name: str
    scope: ScopeType
    description: str
    actions: tuple[str, ...]

    @property
    def permissions(self) -> tuple[str, ...]:
        return tuple(f"{self.name}.{action}" for action in self.actions)


_CRUD = ("list", "get", "create", "update", "delete")

GROUPS: tuple[PermissionGroup, ...] = (
    # search: find any user of the instance by name (a people picker: a user's public
    # fields), without listing the accounts (list, get: the administrator's view).
    PermissionGroup(
        "system.users", ScopeType.SYSTEM, "Every user of the instance", (*_CRUD, "search")
    ),
    PermissionGroup("system.users.roles", ScopeType.SYSTEM, "System roles", ("update",)),
    PermissionGroup("system.users.tokens", ScopeType.SYSTEM, "Other users' tokens", _CRUD),
    PermissionGroup(
        "system.apiTokens",
        ScopeType.SYSTEM,
        "System API tokens (instance-wide, no user)",
        ("list", "get", "create", "delete"),
    ),
    PermissionGroup("system.organizations", ScopeType.SYSTEM, "Organizations", _CRUD),
    PermissionGroup("system.permissions", ScopeType.SYSTEM, "Permission checks", ("check",)),
    PermissionGroup("system.featureFlags", ScopeType.SYSTEM, "Feature flags", ("get", "update")),
    PermissionGroup("system.audit", ScopeType.SYSTEM, "Instance audit log", ("list",)),
    PermissionGroup("system.realms", ScopeType.SYSTEM, "Identity sources (realms)", _CRUD),
    PermissionGroup("organization", ScopeType.ORGANIZATION, "The organization", ("get", "update")),
    PermissionGroup(
        "organization.users",
        ScopeType.ORGANIZATION,
        "Organization members",
        ("list", "get", "delete"),
    ),
    PermissionGroup(
        "organization.users.roles", ScopeType.ORGANIZATION, "Members' roles", ("update",)
    ),
    PermissionGroup(
        "organization.invites", ScopeType.ORGANIZATION, "Invites", ("list", "create", "delete")
    ),
    PermissionGroup("organization.teams", ScopeType.ORGANIZATION, "Teams", _CRUD),
    PermissionGroup(
        "organization.teams.members", ScopeType.ORGANIZATION, "Team members", ("update",)
    ),
    PermissionGroup("organization.teams.roles", ScopeType.ORGANIZATION, "Team roles", ("update",)),
    PermissionGroup("organization.roles", ScopeType.ORGANIZATION, "Custom roles", _CRUD),
    PermissionGroup(
        "organization.tokens", ScopeType.ORGANIZATION, "Organization API tokens", _CRUD
    ),
    PermissionGroup(
        "organization.scimTokens",
        ScopeType.ORGANIZATION,
        "The organization's SCIM tokens",
        ("list", "create", "delete"),
    ),
    # The organization's e-mail domains, proven by a DNS record (directory/domains.py).
    PermissionGroup(
        "organization.domains",
        ScopeType.ORGANIZATION,
        "The organization's verified e-mail domains",
        ("list", "create", "verify", "delete"),
    ),
    # What a SCIM token may do in its organization (identity/scim_tokens.py): provision its
    # members and teams through the SCIM face. An owner holds it too (the token's ceiling).
    PermissionGroup(
        "organization.scim", ScopeType.ORGANIZATION, "SCIM provisioning", ("provision",)
    ),
    PermissionGroup(
        "organization.workspaces", ScopeType.ORGANIZATION, "Workspaces", ("list", "create")
    ),
    PermissionGroup("organization.deployments", ScopeType.ORGANIZATION, "Deployments", ("list",)),
    PermissionGroup("organization.billing", ScopeType.ORGANIZATION, "Billing", ("get", "update")),
    PermissionGroup("organization.observe", ScopeType.ORGANIZATION, "Observe", ("get", "update")),
    PermissionGroup("organization.audit", ScopeType.ORGANIZATION, "Audit log", ("list",)),
    PermissionGroup("workspace", ScopeType.WORKSPACE, "The workspace", ("get", "update", "delete")),
    PermissionGroup("workspace.users", ScopeType.WORKSPACE, "Workspace members", ("list",)),
    PermissionGroup("workspace.users.roles", ScopeType.WORKSPACE, "Workspace roles", ("update",)),
    PermissionGroup("workspace.tokens", ScopeType.WORKSPACE, "Workspace API tokens", _CRUD),
    PermissionGroup("workspace.deployments", ScopeType.WORKSPACE, "Deployments", ("create",)),
    PermissionGroup(
        "workspace.notificationChannels", ScopeType.WORKSPACE, "Alert channels", ("get", "update")
    ),
    PermissionGroup(
        "deployment", ScopeType.DEPLOYMENT, "The deployment", ("get", "update", "delete")
    ),
    PermissionGroup(
        "deployment.users.roles", ScopeType.DEPLOYMENT, "Deployment roles", ("update",)
    ),
    PermissionGroup("deployment.tokens", ScopeType.DEPLOYMENT, "Deployment API tokens", _CRUD),
    PermissionGroup(
        "deployment.envVars", ScopeType.DEPLOYMENT, "Environment variables", ("get", "update")
    ),
    PermissionGroup("deployment.deploys", ScopeType.DEPLOYMENT, "Code deploys", ("get", "create")),
    PermissionGroup("deployment.airflow", ScopeType.DEPLOYMENT, "Airflow UI", ("get", "admin")),
    PermissionGroup(
        "deployment.airflow.pools", ScopeType.DEPLOYMENT, "Airflow pools", ("get", "update")
    ),
    PermissionGroup(
        "deployment.airflow.connections",
        ScopeType.DEPLOYMENT,
        "Airflow connections",
        ("get", "update"),
    ),
    PermissionGroup(
        "deployment.airflow.variables", ScopeType.DEPLOYMENT, "Airflow variables", ("get", "update")
    ),
    PermissionGroup(
        "deployment.airflow.dag", ScopeType.DAG, "DAGs", ("get", "update", "trigger", "delete")
    ),
    PermissionGroup(
        "deployment.airflow.taskInstance", ScopeType.DAG, "Task instances", ("get", "update")
    ),
)

ALL_PERMISSIONS: frozenset[str] = frozenset(p for g in GROUPS for p in g.permissions)
PERMISSION_SCOPE: dict[str, ScopeType] = {p: g.scope for g in GROUPS for p in g.permissions}


def _under(*prefixes: str, actions: tuple[str, ...] | None = None) -> frozenset[str]:
    """Permissions whose group starts with one of the prefixes (optionally only some actions)."""
    return frozenset(
        p
        for g in GROUPS
        if any(g.name == px or g.name.startswith(px + ".") for px in prefixes)
        for p in g.permissions
        if actions is None or p.rsplit(".", 1)[1] in actions
    )


_READ = ("get", "list")
_DAG_VIEW = frozenset({"deployment.airflow.dag.get", "deployment.airflow.taskInstance.get"})
_DAG_AUTHOR = _DAG_VIEW | {
    "deployment.airflow.dag.update",
    "deployment.airflow.dag.trigger",
    "deployment.airflow.dag.delete",
    "deployment.airflow.taskInstance.update",
}
_DEPLOYMENT_ADMIN = _under("deployment")
_WS_MEMBER = (
    frozenset(
        {
            "workspace.get",
            "workspace.users.list",
            "deployment.get",
            "deployment.airflow.get",
            "workspace.notificationChannels.get",
        }
    )
    | _DAG_VIEW
)
_WS_AUTHOR = (
    _WS_MEMBER
    | _DAG_AUTHOR
    | {"deployment.deploys.get", "deployment.deploys.create", "deployment.envVars.get"}
)
_WS_OPERATOR = (
    _WS_AUTHOR
    | _DEPLOYMENT_ADMIN
    | {"workspace.deployments.create", "workspace.notificationChannels.update"}
)
_WS_OWNER = _WS_OPERATOR | _under("workspace")
_ORG_MEMBER = frozenset(
    {
        "organization.get",
        "organization.users.list",
        "organization.users.get",
        "organization.teams.list",
        "organization.teams.get",
        "organization.roles.list",
        "organization.roles.get",
        "organization.workspaces.list",
        "organization.deployments.list",
    }
)
_ORG_OWNER = _under("organization") | _WS_OWNER
_SYSTEM_ADMIN = ALL_PERMISSIONS
_SYSTEM_VIEWER = _under("system", "organization", "workspace", "deployment", actions=_READ) | {
    "system.users.search"
}
# An editor manages what every organization holds, not the instance's accounts: like Unleash's
# Editor (no user administration) and ECE's deployments manager, it neither lists nor reads the
# instance's users (those of an organization it reads as that organization's owner); it may
# still find anyone by name (system.users.search) to give them access, as Unleash's Editor.
_SYSTEM_EDITOR = (_SYSTEM_VIEWER | _ORG_OWNER) - (
    {"system.organizations.delete"} | _under("system.users", actions=_READ)
)


@dataclass(frozen=True)
class BuiltinRole:
    name: str
    scope: ScopeType
    description: str
    permissions: frozenset[str]


def _role(name: str, scope: ScopeType, description: str, perms: frozenset[str]) -> BuiltinRole:
    return BuiltinRole(name, scope, description, frozenset(perms))


# Strongest first within each scope, as in DESIGN.md.
BUILTIN_ROLES: tuple[BuiltinRole, ...] = (
    _role("SYSTEM_ADMIN", ScopeType.SYSTEM, "Everything, everywhere", _SYSTEM_ADMIN),
    _role("SYSTEM_EDITOR", ScopeType.SYSTEM, "Manage every organization", _SYSTEM_EDITOR),
    _role("SYSTEM_VIEWER", ScopeType.SYSTEM, "Read everything", _SYSTEM_VIEWER),
    _role(
        "SYSTEM_DEPLOYMENT_VIEWER",
        ScopeType.SYSTEM,
        "Read every deployment",
        frozenset(
            {
                "organization.get",
                "organization.deployments.list",
                "organization.workspaces.list",
                "workspace.get",
                "deployment.get",
            }
        ),
    ),
    _role("ORGANIZATION_OWNER", ScopeType.ORGANIZATION, "Manage the organization", _ORG_OWNER),
    _role(
        "ORGANIZATION_BILLING_ADMIN",
        ScopeType.ORGANIZATION,
        "Member who manages billing",
        _ORG_MEMBER | _under("organization.billing") | {"organization.update"},
    ),
    _role(
        "ORGANIZATION_OBSERVE_ADMIN",
        ScopeType.ORGANIZATION,
        "Member who manages Astro Observe",
        _ORG_MEMBER | _under("organization.observe"),
    ),
    _role(
        "ORGANIZATION_OBSERVE_MEMBER",
        ScopeType.ORGANIZATION,
        "Member who uses Astro Observe",
        _ORG_MEMBER | {"organization.observe.get"},
    ),
    _role("ORGANIZATION_MEMBER", ScopeType.ORGANIZATION, "Member", _ORG_MEMBER),
    _role("WORKSPACE_OWNER", ScopeType.WORKSPACE, "Manage the workspace", _WS_OWNER),
    _role("WORKSPACE_OPERATOR", ScopeType.WORKSPACE, "Manage deployments", _WS_OPERATOR),
    _role("WORKSPACE_AUTHOR", ScopeType.WORKSPACE, "Deploy code, edit DAGs", _WS_AUTHOR),
    _role("WORKSPACE_MEMBER", ScopeType.WORKSPACE, "Read the workspace", _WS_MEMBER),
    _role(
        "WORKSPACE_ACCESSOR",
        ScopeType.WORKSPACE,
        "See the workspace",
        frozenset({"workspace.get"}),
    ),
    _role("DEPLOYMENT_ADMIN", ScopeType.DEPLOYMENT, "Manage the deployment", _DEPLOYMENT_ADMIN),
    _role("DAG_AUTHOR", ScopeType.DAG, "Edit and run the DAG", _DAG_AUTHOR),
    _role("DAG_VIEWER", ScopeType.DAG, "Read the DAG", _DAG_VIEW),
)

ROLES: dict[str, BuiltinRole] = {r.name: r for r in BUILTIN_ROLES}
# A SCIM token's one grant, at its organization: not a role anyone can be given, so not in
# the catalogue's roles; its permissions reach the engine as a credential's own (Grants'
# custom roles, keyed by organization and this name).
SCIM_PROVISIONER = "SCIM_PROVISIONER"
SCIM_PROVISIONER_PERMISSIONS = frozenset({"organization.scim.provision"})
ROLE_PERMISSIONS: dict[str, frozenset[str]] = {r.name: r.permissions for r in BUILTIN_ROLES}


def roles_at(scope: ScopeType) -> tuple[str, ...]:
    """Built-in role names bindable at a scope type (DAG roles also bind to DAG_TAG)."""
    wanted = ScopeType.DAG if scope is ScopeType.DAG_TAG else scope
    return tuple(r.name for r in BUILTIN_ROLES if r.scope is wanted)


ORGANIZATION_ROLES = roles_at(ScopeType.ORGANIZATION)
WORKSPACE_ROLES = roles_at(ScopeType.WORKSPACE)
SYSTEM_ROLES = roles_at(ScopeType.SYSTEM)
CUSTOM_ROLE_SCOPES = (ScopeType.DEPLOYMENT, ScopeType.DAG)


def permissions_valid_at(scope: ScopeType) -> frozenset[str]:
    """Permissions a custom role at this scope may contain: those checked at it or below."""
    floor = DEPTH[scope]
    return frozenset(p for p, s in PERMISSION_SCOPE.items() if DEPTH[s] >= floor)


# Permissions that let their holder hand access to others: change roles, mint tokens, invite.
_GRANTING_SUFFIXES = (".roles.update", ".roles.create", ".tokens.create", ".invites.create")


def grants_access(permission: str) -> bool:
    return permission.endswith(_GRANTING_SUFFIXES)


def is_strong_permission_set(permissions: Iterable[str]) -> bool:
    """A set of permissions (a custom role's) that lets its holder grant access."""
    return any(grants_access(p) for p in permissions)


def is_strong(role: str) -> bool:
    """A strong grant needs elevation (when the instance demands it): every SYSTEM role, and
    every built-in role whose holder may grant access to others (ORGANIZATION_OWNER,
    WORKSPACE_OWNER, WORKSPACE_OPERATOR, DEPLOYMENT_ADMIN). Custom roles are judged by their
    permissions where they are defined and granted (is_strong_permission_set)."""
    builtin = ROLES.get(role)
    if builtin is None:
        return False
    return builtin.scope is ScopeType.SYSTEM or is_strong_permission_set(builtin.permissions)


STRONG_ROLES = frozenset(r for r in ROLES if is_strong(r))
