"""SCIM face fixtures: organizations with SCIM tokens, a client speaking application/scim+json."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from scim2_models import Context, EnterpriseUser, Error, Group, ListResponse, User

from tenantry.db.models import Organization
from tenantry.directory import scim_tokens
from tenantry.identity.principals import system_principal
from tests.factories import World

BASE = "/scim/v2"
MEDIA = "application/scim+json"
ERROR = "urn:ietf:params:scim:api:messages:2.0:Error"
ENTERPRISE = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"
USER_SCHEMA = "urn:ietf:params:scim:schemas:core:2.0:User"
GROUP_SCHEMA = "urn:ietf:params:scim:schemas:core:2.0:Group"
PATCH_OP = "urn:ietf:params:scim:api:messages:2.0:PatchOp"


async def scim_token(world: World, org: Organization, role: str = "ORGANIZATION_MEMBER") -> str:
    async with world.database.transaction() as db:
        minted = await scim_tokens.create_scim_token(
            db, system_principal(), org.id, default_role=role
        )
        return minted.secret


@dataclass
class Idp:
    """One organization's identity provider: its SCIM token over the test client."""

    client: httpx.AsyncClient
    org: Organization
    token: str

    def headers(self, extra: dict[str, str] | None = None) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}", "Content-Type": MEDIA} | (extra or {})

    async def request(
        self,
        method: str,
        path: str,
        body: Any = None,
        headers: dict[str, str] | None = None,
        **kwargs: Any,
    ) -> httpx.Response:
        return await self.client.request(
            method, BASE + path, json=body, headers=self.headers(headers), **kwargs
        )

    async def get(self, path: str, **kwargs: Any) -> httpx.Response:
        return await self.request("GET", path, **kwargs)

    async def post(self, path: str, body: Any, **kwargs: Any) -> httpx.Response:
        return await self.request("POST", path, body, **kwargs)

    async def put(self, path: str, body: Any, **kwargs: Any) -> httpx.Response:
        return await self.request("PUT", path, body, **kwargs)

    async def patch(self, path: str, ops: list[dict[str, Any]], **kwargs: Any) -> httpx.Response:
        return await self.request(
            "PATCH", path, {"schemas": [PATCH_OP], "Operations": ops}, **kwargs
        )

    async def delete(self, path: str, **kwargs: Any) -> httpx.Response:
        return await self.request("DELETE", path, **kwargs)

    async def create_user(self, username: str, **attributes: Any) -> dict[str, Any]:
        body = {"schemas": [USER_SCHEMA], "userName": username, **attributes}
        r = await self.post("/Users", body)
        assert r.status_code == 201, r.text
        found: dict[str, Any] = r.json()
        return found


def new_user(username: str, **attributes: Any) -> dict[str, Any]:
    return {"schemas": [USER_SCHEMA], "userName": username, **attributes}


@pytest.fixture
async def idp(client: httpx.AsyncClient, world: World) -> Idp:
    org = await world.org("Acme")
    return Idp(client, org, await scim_token(world, org))


@pytest.fixture
async def other_idp(client: httpx.AsyncClient, world: World) -> Idp:
    org = await world.org("Globex")
    return Idp(client, org, await scim_token(world, org))


def assert_scim_error(r: httpx.Response, status: int, scim_type: str | None = None) -> None:
    """A SCIM error body (validated by scim2-models) with this status and scimType."""
    assert r.status_code == status, r.text
    assert r.headers["content-type"].startswith(MEDIA), r.headers
    body = r.json()
    assert body["schemas"] == [ERROR], body
    assert body["status"] == str(status), body
    Error.model_validate(body)
    if scim_type is not None:
        assert body.get("scimType") == scim_type, body


def assert_user(body: dict[str, Any]) -> User[Any]:
    """A User as scim2-models reads a server's answer."""
    model = User[EnterpriseUser] if ENTERPRISE in body["schemas"] else User
    return model.model_validate(body, scim_ctx=Context.RESOURCE_QUERY_RESPONSE)


def assert_group(body: dict[str, Any]) -> Group:
    return Group.model_validate(body, scim_ctx=Context.RESOURCE_QUERY_RESPONSE)


def assert_list(body: dict[str, Any]) -> ListResponse[Any]:
    return ListResponse[User[EnterpriseUser] | Group].model_validate(
        body, scim_ctx=Context.SEARCH_RESPONSE
    )
