"""Directory tables: users, organizations and what lives inside them."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Boolean, ForeignKey, Index, Integer, String, UniqueConstraint, false
from sqlalchemy.orm import Mapped, mapped_column

from tenantry.clock import utcnow
from tenantry.db.base import Base, BigIntPK, JSONType, UTCDateTime
from tenantry.ids import new_id

ID = String(25)


class Organization(Base):
    __tablename__ = "organizations"

    id: Mapped[str] = mapped_column(ID, primary_key=True, default=new_id)
    name: Mapped[str] = mapped_column(String(256))
    billing_email: Mapped[str | None] = mapped_column(String(320))
    is_scim_enabled: Mapped[bool] = mapped_column(Boolean, default=False)
    support_plan: Mapped[str] = mapped_column(String(32), default="BASIC")
    product: Mapped[str | None] = mapped_column(String(16))
    status: Mapped[str] = mapped_column(String(16), default="ACTIVE")
    # Kept in the same transaction as membership changes: an exact totalCount without a scan.
    member_count: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    created_by: Mapped[str | None] = mapped_column(ID)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_by: Mapped[str | None] = mapped_column(ID)


class HolderCount(Base):
    """How many distinct users of an organization hold a role binding in (at or inside) one
    member-list filter value: a workspace, a deployment, a dagId or a dagTag. It is the exact
    `totalCount` of a list with that one filter, read instead of counted.

    Kept by triggers on role_bindings (migration 0005), in the statement that writes the
    bindings, whoever writes them (services, cascades from deleted workspaces, deployments or
    organizations, raw SQL). A row (organization, 'paused', '') suspends counting for that
    organization in the transaction that holds it: the bulk loader's, which writes the counts
    itself. TRUNCATE of role_bindings alone would leave the counts behind. On PostgreSQL the
    count is this row's holders plus its HolderCountDelta rows (migration 0009)."""

    __tablename__ = "holder_counts"

    organization_id: Mapped[str] = mapped_column(
        ID, ForeignKey("organizations.id", ondelete="CASCADE"), primary_key=True
    )
    # workspace | deployment | dag | dag_tag (| paused, with key '')
    kind: Mapped[str] = mapped_column(String(16), primary_key=True)
    key: Mapped[str] = mapped_column(String(250), primary_key=True)
    holders: Mapped[int] = mapped_column(Integer, default=0)


class HolderCountDelta(Base):
    """A change to a holder count not yet added into its `holder_counts` row (PostgreSQL).

    Every statement that changes user bindings appends its deltas here instead of updating
    the counter row, so writers of one workspace never wait for each other's commit (one hot
    counter row serialized every role change of an organization: migration 0009). Whichever
    writer finds the counter row unlocked (FOR UPDATE SKIP LOCKED) folds the deltas it can see
    into it, so few rows wait here at any time. A count = the row's holders + its deltas."""

    __tablename__ = "holder_count_deltas"
    __table_args__ = (Index("ix_holder_count_deltas_key", "organization_id", "kind", "key"),)

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True, autoincrement=True)
    organization_id: Mapped[str] = mapped_column(
        ID, ForeignKey("organizations.id", ondelete="CASCADE")
    )
    kind: Mapped[str] = mapped_column(String(16))
    key: Mapped[str] = mapped_column(String(250))
    delta: Mapped[int] = mapped_column(Integer)


class User(Base):
    __tablename__ = "users"
    __table_args__ = (
        Index("ix_users_created_at_id", "created_at", "id"),
        Index("ix_users_updated_at_id", "updated_at", "id"),
        Index("ix_users_full_name_id", "full_name", "id"),
    )

    # seq is the integer key Unleash shows as `id`; SQLite only auto-numbers a primary key.
    seq: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    id: Mapped[str] = mapped_column(ID, unique=True, default=new_id)
    username: Mapped[str] = mapped_column(String(320))
    # identity.names.username_key(username): uniqueness and look-ups on both databases. Kept in
    # step with `username` by identity.lookup; a row may instead hold a key no login reaches
    # (identity.names.UNREACHABLE, see migration 0007 and directory.invites).
    username_key: Mapped[str] = mapped_column(String(320), unique=True)
    email: Mapped[str | None] = mapped_column(String(320), index=True)
    # identity.names.email_key(email), and whether the account proved that mailbox (an invite
    # accepted, a confirmed change) or an operator asserted it. Invites bind only to verified
    # addresses. Setting `email` anywhere drops the verification (identity.lookup).
    email_key: Mapped[str | None] = mapped_column(String(320), index=True)
    email_verified: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    # A self-service change waits here until the link mailed to the new address confirms it;
    # only the SHA-256 digest of the link's secret is kept (directory.email_change).
    pending_email: Mapped[str | None] = mapped_column(String(320))
    pending_email_digest: Mapped[str | None] = mapped_column(String(64), unique=True, index=True)
    pending_email_expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # An administrator's password reset link waiting to be used: the SHA-256 digest of its
    # single-use secret and its expiry (directory.password_reset).
    password_reset_digest: Mapped[str | None] = mapped_column(String(64), unique=True, index=True)
    password_reset_expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    full_name: Mapped[str] = mapped_column(String(256), default="")
    avatar_url: Mapped[str] = mapped_column(String(2048), default="")
    status: Mapped[str] = mapped_column(String(16), default="ACTIVE")
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    builtin: Mapped[bool] = mapped_column(Boolean, default=False)
    account_type: Mapped[str] = mapped_column(String(32), default="User")
    realm: Mapped[str] = mapped_column(String(32), default="native")
    realm_id: Mapped[str | None] = mapped_column(String(64))
    idp_managed: Mapped[bool] = mapped_column(Boolean, default=False)
    scim_id: Mapped[str | None] = mapped_column(String(64), unique=True)
    external_id: Mapped[str | None] = mapped_column(String(256))
    password_hash: Mapped[str | None] = mapped_column(String(256))
    # The hashes of the passwords before the current one, newest first: the ones that cannot
    # be set again (identity/password_history.py).
    previous_password_hashes: Mapped[list[str] | None] = mapped_column(JSONType)
    login_attempts: Mapped[int] = mapped_column(Integer, default=0)
    locked_until: Mapped[datetime | None] = mapped_column(UTCDateTime)
    first_login_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_login_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    seen_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # Face-specific per-user state (e.g. Unleash splash/feedback) that has no column of its own.
    attributes: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)
    primary_organization_id: Mapped[str | None] = mapped_column(
        ID, ForeignKey("organizations.id", ondelete="SET NULL")
    )
    # The organization whose identity provider owns this account (provisioned by its SCIM
    # token, directory/provisioning.py): only it may read, match, rename or remove it there.
    # No foreign key (SQLite cannot add a named one without rebuilding `users`): deleting an
    # organization clears it (directory.organizations.delete_organization).
    managed_by_organization_id: Mapped[str | None] = mapped_column(ID, index=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    created_by: Mapped[str | None] = mapped_column(ID)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_by: Mapped[str | None] = mapped_column(ID)


class Membership(Base):
    """A user belongs to an organization with exactly one organization role."""

    __tablename__ = "memberships"

    organization_id: Mapped[str] = mapped_column(
        ID, ForeignKey("organizations.id", ondelete="CASCADE"), primary_key=True
    )
    user_id: Mapped[str] = mapped_column(
        ID, ForeignKey("users.id", ondelete="CASCADE"), primary_key=True, index=True
    )
    role: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class Workspace(Base):
    __tablename__ = "workspaces"

    id: Mapped[str] = mapped_column(ID, primary_key=True, default=new_id)
    organization_id: Mapped[str] = mapped_column(
        ID, ForeignKey("organizations.id", ondelete="CASCADE"), index=True
    )
    name: Mapped[str] = mapped_column(String(256))
    description: Mapped[str] = mapped_column(String(2048), default="")
    cicd_enforced_default: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    created_by: Mapped[str | None] = mapped_column(ID)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_by: Mapped[str | None] = mapped_column(ID)


class Deployment(Base):
    """A deployment is a scope; Tenantry runs no Airflow. `spec` keeps the client's other fields."""

    __tablename__ = "deployments"

    id: Mapped[str] = mapped_column(ID, primary_key=True, default=new_id)
    organization_id: Mapped[str] = mapped_column(
        ID, ForeignKey("organizations.id", ondelete="CASCADE"), index=True
    )
    workspace_id: Mapped[str] = mapped_column(
        ID, ForeignKey("workspaces.id", ondelete="CASCADE"), index=True
    )
    name: Mapped[str] = mapped_column(String(256))
    description: Mapped[str] = mapped_column(String(2048), default="")
    spec: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    created_by: Mapped[str | None] = mapped_column(ID)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_by: Mapped[str | None] = mapped_column(ID)


class Team(Base):
    __tablename__ = "teams"
    __table_args__ = (UniqueConstraint("organization_id", "name"),)

    id: Mapped[str] = mapped_column(ID, primary_key=True, default=new_id)
    organization_id: Mapped[str] = mapped_column(
        ID, ForeignKey("organizations.id", ondelete="CASCADE"), index=True
    )
    name: Mapped[str] = mapped_column(String(256))
    description: Mapped[str] = mapped_column(String(2048), default="")
    is_idp_managed: Mapped[bool] = mapped_column(Boolean, default=False)
    # The identity provider's own id of the group (SCIM externalId).
    external_id: Mapped[str | None] = mapped_column(String(256))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    created_by: Mapped[str | None] = mapped_column(ID)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_by: Mapped[str | None] = mapped_column(ID)


class TeamMember(Base):
    __tablename__ = "team_members"

    team_id: Mapped[str] = mapped_column(
        ID, ForeignKey("teams.id", ondelete="CASCADE"), primary_key=True
    )
    user_id: Mapped[str] = mapped_column(
        ID, ForeignKey("users.id", ondelete="CASCADE"), primary_key=True, index=True
    )
    organization_id: Mapped[str] = mapped_column(
        ID, ForeignKey("organizations.id", ondelete="CASCADE"), index=True
    )
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class Invite(Base):
    __tablename__ = "invites"

    id: Mapped[str] = mapped_column(ID, primary_key=True, default=new_id)
    organization_id: Mapped[str] = mapped_column(
        ID, ForeignKey("organizations.id", ondelete="CASCADE"), index=True
    )
    invitee_email: Mapped[str] = mapped_column(String(320), index=True)
    user_id: Mapped[str | None] = mapped_column(
        ID, ForeignKey("users.id", ondelete="CASCADE"), index=True
    )
    role: Mapped[str] = mapped_column(String(64))
    inviter_id: Mapped[str | None] = mapped_column(ID)
    # Single-use secret for the invite link, stored as a SHA-256 digest only.
    secret_digest: Mapped[str | None] = mapped_column(String(64), unique=True)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)
    accepted_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class FeatureFlag(Base):
    """Instance-wide flag with its default; users may carry their own value."""

    __tablename__ = "feature_flags"

    key: Mapped[str] = mapped_column(String(128), primary_key=True)
    default_value: Mapped[bool] = mapped_column(Boolean, default=False)
    description: Mapped[str] = mapped_column(String(1024), default="")


class UserFeatureFlag(Base):
    __tablename__ = "user_feature_flags"

    user_id: Mapped[str] = mapped_column(
        ID, ForeignKey("users.id", ondelete="CASCADE"), primary_key=True
    )
    key: Mapped[str] = mapped_column(
        String(128), ForeignKey("feature_flags.key", ondelete="CASCADE"), primary_key=True
    )
    value: Mapped[bool] = mapped_column(Boolean)


class OrganizationDomain(Base):
    """An e-mail domain an organization claims (directory/domains.py): pending until a DNS TXT
    record at `_tenantry-challenge.<domain>` carries its challenge, then verified.

    `verified_domain` is `domain` once verified and NULL before: its unique index is what keeps
    one domain verified by one organization at most, even for two verifications racing (NULLs
    are distinct on both databases, so any number of organizations may claim it pending)."""

    __tablename__ = "organization_domains"
    __table_args__ = (UniqueConstraint("organization_id", "domain"),)

    id: Mapped[str] = mapped_column(ID, primary_key=True, default=new_id)
    organization_id: Mapped[str] = mapped_column(
        ID, ForeignKey("organizations.id", ondelete="CASCADE"), index=True
    )
    # IDNA ASCII, lower case, no trailing dot (directory.domains.normalize).
    domain: Mapped[str] = mapped_column(String(253), index=True)
    verified_domain: Mapped[str | None] = mapped_column(String(253), unique=True)
    # The random value the TXT record must carry; public (it is published in DNS), not a secret.
    challenge: Mapped[str] = mapped_column(String(64))
    verified_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    created_by: Mapped[str | None] = mapped_column(ID)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_by: Mapped[str | None] = mapped_column(ID)
