"""Cleaning up role bindings whose subject or scope goes away.

Bindings name their subject generically (user, team or token id), so no foreign key removes
them with their subject; these helpers do, in the same transaction as the deletion."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import Select, delete, select
from sqlalchemy.ext.asyncio import AsyncSession

from tenantry.db.models import Deployment, RoleBinding, Token, TokenKind


async def drop_subject_bindings(
    db: AsyncSession, subject_type: str, subject_ids: Sequence[str] | Select[Any]
) -> None:
    await db.execute(
        delete(RoleBinding)
        .where(RoleBinding.subject_type == subject_type, RoleBinding.subject_id.in_(subject_ids))
        .execution_options(synchronize_session=False)
    )


async def drop_user_subjects(db: AsyncSession, user_id: str) -> None:
    """A user's own bindings and those of every token they hold or created."""
    await drop_subject_bindings(db, "user", [user_id])
    await drop_subject_bindings(db, "token", select(Token.id).where(Token.user_id == user_id))


async def drop_api_tokens_in(
    db: AsyncSession, *, workspace_id: str | None = None, deployment_id: str | None = None
) -> None:
    """API tokens scoped to a workspace (and its deployments) or a deployment that is being
    deleted: with their scope gone they could do nothing, so they go too."""
    token_ids: Select[Any]
    if workspace_id is not None:
        deps = select(Deployment.id).where(Deployment.workspace_id == workspace_id)
        token_ids = select(Token.id).where(
            Token.kind == TokenKind.API.value,
            (Token.scope_id == workspace_id) | Token.scope_id.in_(deps),
        )
    else:
        token_ids = select(Token.id).where(
            Token.kind == TokenKind.API.value, Token.scope_id == deployment_id
        )
    ids = list(await db.scalars(token_ids))
    if ids:
        await drop_subject_bindings(db, "token", ids)
        await db.execute(
            delete(Token).where(Token.id.in_(ids)).execution_options(synchronize_session=False)
        )
