"""Test data, made through the same service functions the faces call (one place for all tests)."""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from typing import Any

from tenantry.authz.system_roles import grant_system_role
from tenantry.db.engine import Database
from tenantry.db.models import Deployment, Organization, User, Workspace
from tenantry.directory import deployments, members, organizations, users, workspaces
from tenantry.directory.deployments import DeploymentFields
from tenantry.directory.members import DagRole, RoleSet
from tenantry.directory.organizations import OrganizationFields
from tenantry.directory.users import UserFields
from tenantry.directory.workspaces import WorkspaceFields
from tenantry.identity import personal_tokens
from tenantry.identity.principals import system_principal

_counter = itertools.count(1)


@dataclass
class World:
    """Builds users, organizations, workspaces, deployments, roles and tokens for a test."""

    database: Database

    async def user(self, username: str | None = None, full_name: str = "", **fields: Any) -> User:
        name = username or f"user{next(_counter)}@example.com"
        async with self.database.transaction() as db:
            return await users.create_user(
                db, system_principal(), name, UserFields(full_name=full_name, **fields)
            )

    async def admin(self, username: str | None = None) -> User:
        user = await self.user(username or f"admin{next(_counter)}@example.com", "Admin")
        await self.system_role(user, "SYSTEM_ADMIN")
        return user

    async def system_role(self, user: User, role: str) -> None:
        async with self.database.transaction() as db:
            await grant_system_role(db, user.id, role)

    async def org(self, name: str = "Acme", **fields: Any) -> Organization:
        async with self.database.transaction() as db:
            return await organizations.create_organization(
                db, system_principal(), OrganizationFields(name=name, **fields)
            )

    async def workspace(self, org: Organization, name: str = "ws") -> Workspace:
        async with self.database.transaction() as db:
            return await workspaces.create_workspace(
                db, system_principal(), org.id, WorkspaceFields(name=name)
            )

    async def deployment(self, ws: Workspace, name: str = "dep", **spec: Any) -> Deployment:
        async with self.database.transaction() as db:
            return await deployments.create_deployment(
                db,
                system_principal(),
                ws.organization_id,
                DeploymentFields(name=name, workspace_id=ws.id, spec=spec),
            )

    async def roles(
        self,
        org: Organization,
        user: User,
        org_role: str = "ORGANIZATION_MEMBER",
        workspaces: list[tuple[str, str]] | None = None,
        deployments: list[tuple[str, str]] | None = None,
        dags: list[DagRole] | None = None,
    ) -> RoleSet:
        roleset = RoleSet(org_role, workspaces or [], deployments or [], dags or [])
        async with self.database.transaction() as db:
            return await members.replace_user_roles(
                db, system_principal(), org.id, user.id, roleset
            )

    async def token(self, user: User, days: int | None = 30) -> str:
        async with self.database.transaction() as db:
            minted = await personal_tokens.create_personal_token(
                db, system_principal(), user.id, name="test", expires_in_days=days
            )
            return minted.secret

    async def member(
        self, org: Organization, role: str = "ORGANIZATION_MEMBER", **kwargs: Any
    ) -> tuple[User, str]:
        """A new user in `org` with `role`, and a token for them."""
        user = await self.user(**kwargs)
        await self.roles(org, user, role)
        return user, await self.token(user)

    async def team(
        self,
        org: Organization,
        name: str | None = None,
        members: list[User] | None = None,
        org_role: str = "ORGANIZATION_MEMBER",
        workspaces: list[tuple[str, str]] | None = None,
        deployments: list[tuple[str, str]] | None = None,
    ) -> Any:
        """A team of `org` (members must already belong to it), optionally with scoped roles."""
        from tenantry.directory import teams

        async with self.database.transaction() as db:
            view = await teams.create_team(
                db,
                system_principal(),
                org.id,
                teams.NewTeam(
                    name or f"team{next(_counter)}",
                    member_ids=[m.id for m in members or []],
                    organization_role=org_role,
                ),
            )
            if workspaces or deployments:
                roleset = RoleSet(org_role, workspaces or [], deployments or [])
                await teams.replace_team_roles(
                    db, system_principal(), org.id, view.team.id, roleset
                )
            return view.team

    async def invite(
        self, org: Organization, email: str | None = None, role: str = "ORGANIZATION_MEMBER"
    ) -> Any:
        """A pending invite to `org` (a PENDING user is created for an unknown address)."""
        from tenantry.directory import invites

        address = email or f"invitee{next(_counter)}@example.com"
        async with self.database.transaction() as db:
            created = await invites.create_invite(db, system_principal(), org.id, address, role)
            return created.view.invite

    async def custom_role(
        self,
        org: Organization,
        name: str | None = None,
        permissions: list[str] | None = None,
        scope: str = "DEPLOYMENT",
    ) -> Any:
        """A custom role of `org` at DEPLOYMENT (default) or DAG scope."""
        from tenantry.directory import custom_roles

        fields = custom_roles.RoleFields(
            name or f"Role{next(_counter)}", permissions or ["deployment.get"]
        )
        async with self.database.transaction() as db:
            view = await custom_roles.create_role(db, system_principal(), org.id, scope, fields)
            return view.role

    async def api_token(
        self,
        org: Organization,
        creator: User | None = None,
        role: str = "ORGANIZATION_MEMBER",
        type: str = "ORGANIZATION",
        entity_id: str | None = None,
        days: int | None = None,
        name: str | None = None,
    ) -> Any:
        """An Astro API token of `org` (an ApiTokenView: `.id`, `.token`, `.secret`), created
        through the service by `creator`, by default one of the organization's owners (a new
        owner when it has none). The creator must hold `role` where it is granted."""
        from sqlalchemy import select

        from tenantry.authz.engine import load_user_grants
        from tenantry.db.models import Membership
        from tenantry.directory import api_tokens
        from tenantry.identity.principals import Principal

        creator_id = creator.id if creator is not None else None
        if creator_id is None:
            async with self.database.transaction() as db:
                creator_id = await db.scalar(
                    select(Membership.user_id)
                    .where(
                        Membership.organization_id == org.id,
                        Membership.role == "ORGANIZATION_OWNER",
                    )
                    .order_by(Membership.user_id)
                    .limit(1)
                )
        if creator_id is None:
            creator_id = (await self.member(org, "ORGANIZATION_OWNER"))[0].id
        async with self.database.transaction() as db:
            user = await db.scalar(select(User).where(User.id == creator_id))
            assert user is not None
            actor = Principal(grants=await load_user_grants(db, user.id), user=user)
            new = api_tokens.NewApiToken(
                name or f"token{next(_counter)}", type, role, entity_id, expiry_days=days
            )
            return await api_tokens.create_api_token(db, actor, org.id, new)


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}
