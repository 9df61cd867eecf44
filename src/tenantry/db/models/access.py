"""Access tables: role bindings, custom roles and tokens."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import ForeignKey, Index, Integer, String, UniqueConstraint, text
from sqlalchemy.orm import Mapped, mapped_column

from tenantry.clock import utcnow
from tenantry.db.base import Base, BigIntPK, JSONType, UTCDateTime
from tenantry.ids import new_id

ID = String(25)


def _where(condition: str) -> dict[str, Any]:
    """A partial index's condition, the same on both databases."""
    return {"sqlite_where": text(condition), "postgresql_where": text(condition)}


class RoleBinding(Base):
    """(subject, role, scope). Ancestor ids are copied in so "inside this scope" is one index."""

    __tablename__ = "role_bindings"
    __table_args__ = (
        UniqueConstraint("subject_type", "subject_id", "scope_key", "role"),
        Index(
            "ix_role_bindings_one_role_per_scope",
            "subject_type",
            "subject_id",
            "scope_key",
            unique=True,
            # A subject holds one role per scope, except at SYSTEM scope where it may hold
            # several (ECE's ece_platform_viewer + ece_deployment_manager); one row per
            # (subject, scope, role) everywhere (the UniqueConstraint above).
            **_where("scope_type <> 'SYSTEM'"),
        ),
        Index("ix_role_bindings_subject", "subject_id", "organization_id"),
        # Covering indexes for the member-list filters: the exact count of a filter is an
        # index-only scan (see docs/performance.md).
        Index(
            "ix_role_bindings_workspace",
            "workspace_id",
            "subject_type",
            "subject_id",
            "organization_id",
        ),
        # Partial: only the bindings that have the column can match its filter (`col = x`
        # implies `col IS NOT NULL` to both planners), and most bindings lack a DAG or a
        # deployment; the index is smaller, cheaper to write and to build (migration 0006).
        Index(
            "ix_role_bindings_deployment",
            "deployment_id",
            "subject_type",
            "subject_id",
            "organization_id",
            **_where("deployment_id IS NOT NULL"),
        ),
        Index(
            "ix_role_bindings_dag",
            "organization_id",
            "dag_id",
            "subject_type",
            "scope_type",
            "subject_id",
            **_where("dag_id IS NOT NULL"),
        ),
        Index(
            "ix_role_bindings_dag_tag",
            "organization_id",
            "dag_tag",
            "subject_type",
            "scope_type",
            "subject_id",
            **_where("dag_tag IS NOT NULL"),
        ),
        Index("ix_role_bindings_scope_role", "scope_key", "role"),
    )

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True, autoincrement=True)
    organization_id: Mapped[str | None] = mapped_column(
        ID, ForeignKey("organizations.id", ondelete="CASCADE")
    )
    subject_type: Mapped[str] = mapped_column(String(8))  # user | team | token
    subject_id: Mapped[str] = mapped_column(ID)
    role: Mapped[str] = mapped_column(String(128))
    scope_type: Mapped[str] = mapped_column(String(16))
    scope_key: Mapped[str] = mapped_column(String(600))
    workspace_id: Mapped[str | None] = mapped_column(
        ID, ForeignKey("workspaces.id", ondelete="CASCADE")
    )
    deployment_id: Mapped[str | None] = mapped_column(
        ID, ForeignKey("deployments.id", ondelete="CASCADE")
    )
    dag_id: Mapped[str | None] = mapped_column(String(250))
    dag_tag: Mapped[str | None] = mapped_column(String(250))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    created_by: Mapped[str | None] = mapped_column(ID)


class CustomRole(Base):
    """An organization's own role at DEPLOYMENT or DAG scope, made of catalogue permissions."""

    __tablename__ = "custom_roles"
    __table_args__ = (UniqueConstraint("organization_id", "name"),)

    id: Mapped[str] = mapped_column(ID, primary_key=True, default=new_id)
    organization_id: Mapped[str] = mapped_column(
        ID, ForeignKey("organizations.id", ondelete="CASCADE"), index=True
    )
    name: Mapped[str] = mapped_column(String(128))
    description: Mapped[str] = mapped_column(String(2048), default="")
    scope_type: Mapped[str] = mapped_column(String(16))
    permissions: Mapped[list[str]] = mapped_column(JSONType, default=list)
    restricted_workspace_ids: Mapped[list[str]] = mapped_column(JSONType, default=list)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    created_by: Mapped[str | None] = mapped_column(ID)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_by: Mapped[str | None] = mapped_column(ID)


class TokenKind(StrEnum):
    SESSION = "session"
    PERSONAL = "personal"
    API = "api"
    # An organization's credential for its identity provider (identity/scim_tokens.py): no
    # user, good only on the SCIM face, which no other credential is.
    SCIM = "scim"


class Token(Base):
    """Every credential: session, personal (acts as its user) and api (a subject of its own)."""

    __tablename__ = "tokens"

    id: Mapped[str] = mapped_column(ID, primary_key=True, default=new_id)
    kind: Mapped[str] = mapped_column(String(10))  # session | personal | api | scim
    # SHA-256 hex of the secret: the only form in which a secret is stored or looked up.
    digest: Mapped[str] = mapped_column(String(64), unique=True)
    short_token: Mapped[str] = mapped_column(String(16))
    user_id: Mapped[str | None] = mapped_column(
        ID, ForeignKey("users.id", ondelete="CASCADE"), index=True
    )
    organization_id: Mapped[str | None] = mapped_column(
        ID, ForeignKey("organizations.id", ondelete="CASCADE"), index=True
    )
    name: Mapped[str] = mapped_column(String(256), default="")
    description: Mapped[str] = mapped_column(String(2048), default="")
    scope_type: Mapped[str | None] = mapped_column(String(16))
    scope_id: Mapped[str | None] = mapped_column(ID)
    expiry_days: Mapped[int | None] = mapped_column(Integer)
    expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # Sessions slide `expires_at` on use but never past this absolute deadline.
    max_expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # A session that re-entered its password ("sudo") until then; only sessions elevate.
    elevated_until: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_used_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # A SCIM token's: the organization role of the users it provisions.
    default_role: Mapped[str | None] = mapped_column(String(64))
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    created_by: Mapped[str | None] = mapped_column(ID)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_by: Mapped[str | None] = mapped_column(ID)


class Realm(Base):
    """A configured identity source (directory/realms.py): where users sign in from besides
    Tenantry's own passwords. `config` holds the type's settings without secrets,
    `organizations` the bindings (organization, default role, group mappings), and
    `sealed_secrets` the secrets (bind password, client secret, ...) encrypted with
    TENANTRY_SECRET_KEY (identity/secretbox.py): never returned by any API."""

    __tablename__ = "realms"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    type: Mapped[str] = mapped_column(String(32))
    name: Mapped[str] = mapped_column(String(256))
    # Password sign-in asks the password realms in this order (then by id).
    position: Mapped[int] = mapped_column(Integer, default=0)
    config: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)
    organizations: Mapped[list[Any]] = mapped_column(JSONType, default=list)
    sealed_secrets: Mapped[str | None] = mapped_column(String(8192))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    created_by: Mapped[str | None] = mapped_column(ID)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
