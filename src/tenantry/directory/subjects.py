"""Who is behind a created_by / updated_by id: a user or an API token."""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from tenantry.db.models import Token, User

Subject = User | Token
Subjects = Mapping[str, Subject]


async def load_subjects(db: AsyncSession, ids: Iterable[str | None]) -> dict[str, Subject]:
    """Two queries at most, however many objects are being rendered. Ids of subjects deleted
    since (or of the system itself, which has none) are simply absent."""
    wanted = {i for i in ids if i}
    if not wanted:
        return {}
    found: dict[str, Subject] = {
        u.id: u for u in await db.scalars(select(User).where(User.id.in_(wanted)))
    }
    rest = wanted - found.keys()
    if rest:
        found.update({t.id: t for t in await db.scalars(select(Token).where(Token.id.in_(rest)))})
    return found
