"""Astro face dependencies: path ids and the bearer-token principal."""

from __future__ import annotations

from typing import Annotated

from fastapi import Path, Query

from tenantry.faces.http import BearerCaller
from tenantry.ids import ID_PATTERN

Caller = BearerCaller


def _id(description: str) -> object:
    return Path(pattern=ID_PATTERN, description=description, examples=["clm9sq6s0000008kz7uvl7yz7"])


OrgId = Annotated[str, _id("The Organization's ID.")]
UserId = Annotated[str, _id("The user's ID.")]
WorkspaceId = Annotated[str, _id("The Workspace's ID.")]
DeploymentId = Annotated[str, _id("The Deployment's ID.")]
TeamId = Annotated[str, _id("The Team's ID.")]
RoleId = Annotated[str, _id("The role's ID.")]
InviteId = Annotated[str, _id("The invite's ID.")]

# Pagination as every Astro list documents it.
Offset = Annotated[int, Query(ge=0, le=2**31 - 1, description="Offset for pagination")]
Limit = Annotated[int, Query(ge=0, le=1000, description="Limit for pagination")]
