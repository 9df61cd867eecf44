"""address identity: one key for login names and addresses, verified addresses, pending changes

Schema (plain ADD COLUMN and CREATE INDEX: `users` is not rebuilt on SQLite, so nothing that
references it or hangs on it is dropped and recreated):
- `users.email_key` (indexed): identity.names.email_key(email), what invites match;
- `users.email_verified` (not null, default false): the account proved the mailbox or an
  operator asserted it; invites bind only to verified addresses;
- `users.pending_email`, `pending_email_digest` (unique), `pending_email_expires_at`: a
  self-service e-mail change waiting for the link mailed to the new address.

Data:
- `users.username_key` is recomputed with identity.names.username_key (no more casefold():
  `straße` and `strasse` are two names; NFKC; IDNA domains). Where two existing rows now have
  one key, the older (created_at, then seq) keeps it and each newer one gets
  identity.names.unreachable_key(id), which no login name reaches: that account can no longer
  sign in by name (an operator renames it). A name with invisible characters (key "") is
  treated the same way. Such rows are written to the migration log by id, never by name.
- `invites.invitee_email` is rewritten as identity.names.email_key of what it held (the
  casefolded address: for ASCII the same key; `ß` already lost, which binding by user_id makes
  harmless);
- `email_key` for every row with an e-mail; `email_verified` is true where there is an address
  that is one valid mailbox, except for accounts whose audit log shows a self-service change of
  it (`user.update` by the account itself, details naming `email`): those addresses were only
  ever asserted by their holder; and except for PENDING accounts without a password (an invite
  created them and it was never accepted: accepting it verifies the address). Events already
  pruned by audit retention cannot be seen.

The rules are those of identity.names at this revision; a later change of the key needs its own
migration.

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-24 09:00:00
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Sequence
from typing import Any

import sqlalchemy as sa
from alembic import op
from sqlalchemy.engine import Connection

import tenantry.db.base
from tenantry.identity import names

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

log = logging.getLogger("alembic.runtime.migration")

_users = sa.table(
    "users",
    sa.column("seq", sa.Integer),
    sa.column("id", sa.String),
    sa.column("username", sa.String),
    sa.column("username_key", sa.String),
    sa.column("email", sa.String),
    sa.column("email_key", sa.String),
    sa.column("email_verified", sa.Boolean),
    sa.column("status", sa.String),
    sa.column("password_hash", sa.String),
    sa.column("created_at", sa.DateTime),
)
_events = sa.table(
    "audit_events",
    sa.column("action", sa.String),
    sa.column("actor_id", sa.String),
    sa.column("target_id", sa.String),
    sa.column("details", sa.JSON),
)
_invites = sa.table("invites", sa.column("id", sa.String), sa.column("invitee_email", sa.String))
_TEMPORARY = "\x02"  # a key no row holds and no login reaches, while keys move


def upgrade() -> None:
    op.add_column("users", sa.Column("email_key", sa.String(length=320), nullable=True))
    op.add_column(
        "users",
        sa.Column("email_verified", sa.Boolean(), server_default=sa.false(), nullable=False),
    )
    op.add_column("users", sa.Column("pending_email", sa.String(length=320), nullable=True))
    op.add_column("users", sa.Column("pending_email_digest", sa.String(length=64), nullable=True))
    op.add_column(
        "users",
        sa.Column(
            "pending_email_expires_at",
            tenantry.db.base.UTCDateTime(timezone=True),
            nullable=True,
        ),
    )
    op.create_index("ix_users_email_key", "users", ["email_key"], unique=False)
    op.create_index("ix_users_pending_email_digest", "users", ["pending_email_digest"], unique=True)
    connection = op.get_bind()
    _rekey_usernames(connection, names.username_key)
    _key_addresses(connection, _self_changed(connection))
    _rekey_invites(connection)


def _new_keys(rows: Sequence[Any], key_of: Callable[[str], str]) -> dict[str, str]:
    """id -> its new username_key; the oldest row wins a key several rows now share."""
    taken: set[str] = set()
    keys: dict[str, str] = {}
    for row in rows:  # oldest first
        key = key_of(row.username)
        if not key or key in taken:
            key = names.unreachable_key(row.id)
            log.warning("user %s: login name clashes under the new key; it is unreachable", row.id)
        taken.add(key)
        keys[row.id] = key
    return keys


def _rekey_usernames(connection: Connection, key_of: Callable[[str], str]) -> None:
    rows = connection.execute(
        sa.select(_users.c.id, _users.c.username, _users.c.username_key).order_by(
            _users.c.created_at, _users.c.seq
        )
    ).all()
    old = {row.id: row.username_key for row in rows}
    moving = {uid: key for uid, key in _new_keys(rows, key_of).items() if key != old[uid]}
    # Two steps, so that no row takes a key another row still holds until its own turn.
    for uid in moving:
        _set(connection, uid, username_key=f"{_TEMPORARY}{uid}")
    for uid, key in moving.items():
        _set(connection, uid, username_key=key)


def _self_changed(connection: Connection) -> set[str]:
    """Accounts that set their own address: an audit event of theirs on themselves that
    mentions the e-mail (ECE writes `changed: [..."email"...]`, others `changed: {email: ...}`)."""
    rows = connection.execute(
        sa.select(_events.c.target_id, _events.c.details).where(
            _events.c.action == "user.update", _events.c.actor_id == _events.c.target_id
        )
    ).all()
    found: set[str] = set()
    for target_id, details in rows:
        text = details if isinstance(details, str) else json.dumps(details)
        if '"email"' in text:
            found.add(target_id)
    return found


def _key_addresses(connection: Connection, self_changed: set[str]) -> None:
    rows = connection.execute(
        sa.select(_users.c.id, _users.c.email, _users.c.status, _users.c.password_hash).where(
            _users.c.email.is_not(None)
        )
    ).all()
    for row in rows:
        invited = row.status == "PENDING" and row.password_hash is None
        verified = row.id not in self_changed and not invited and names.looks_like_email(row.email)
        _set(connection, row.id, email_key=names.email_key(row.email), email_verified=verified)


def _rekey_invites(connection: Connection) -> None:
    rows = connection.execute(sa.select(_invites.c.id, _invites.c.invitee_email)).all()
    for invite_id, email in rows:
        key = names.email_key(email)
        if key and key != email:
            connection.execute(
                sa.update(_invites).where(_invites.c.id == invite_id).values(invitee_email=key)
            )


def _set(connection: Connection, user_id: str, **values: Any) -> None:
    connection.execute(sa.update(_users).where(_users.c.id == user_id).values(**values))


def _casefolded(username: str) -> str:
    return username.strip().casefold()


def downgrade() -> None:
    # The casefolded keys of 0001-0006 come back; clashing rows stay unreachable.
    _rekey_usernames(op.get_bind(), _casefolded)
    op.drop_index("ix_users_pending_email_digest", table_name="users")
    op.drop_index("ix_users_email_key", table_name="users")
    with op.batch_alter_table("users", recreate="never") as batch_op:
        batch_op.drop_column("pending_email_expires_at")
        batch_op.drop_column("pending_email_digest")
        batch_op.drop_column("pending_email")
        batch_op.drop_column("email_verified")
        batch_op.drop_column("email_key")
