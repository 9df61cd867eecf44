"""All tables; importing this module registers them on Base.metadata."""

from tenantry.db.models.access import CustomRole, Realm, RoleBinding, Token, TokenKind
from tenantry.db.models.audit import AuditEvent
from tenantry.db.models.directory import (
    Deployment,
    FeatureFlag,
    Invite,
    Membership,
    Organization,
    OrganizationDomain,
    Team,
    TeamMember,
    User,
    UserFeatureFlag,
    Workspace,
)

__all__ = [
    "AuditEvent",
    "CustomRole",
    "Deployment",
    "FeatureFlag",
    "Invite",
    "Membership",
    "Organization",
    "OrganizationDomain",
    "Realm",
    "RoleBinding",
    "Team",
    "TeamMember",
    "Token",
    "TokenKind",
    "User",
    "UserFeatureFlag",
    "Workspace",
]
