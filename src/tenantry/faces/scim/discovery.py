"""/ServiceProviderConfig, /ResourceTypes and /Schemas (RFC 7644 §4): what this face serves,
built with scim2-models (configuration, resource types) and from faces/scim/schema.py."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response
from scim2_models import (
    AuthenticationScheme,
    Bulk,
    ChangePassword,
    Context,
    ETag,
    Filter,
    Meta,
    Patch,
    ResourceType,
    SchemaExtension,
    ServiceProviderConfig,
    Sort,
)

from tenantry.errors import NotFound
from tenantry.faces.scim import bulk
from tenantry.faces.scim.render import ScimResponse
from tenantry.faces.scim.schema import ENTERPRISE, GROUP, SCHEMAS, SCHEMAS_BY_ID, USER
from tenantry.faces.scim.wire import MAX_COUNT, ScimCaller, ScimRoute, base_url, list_response

router = APIRouter(route_class=ScimRoute, tags=["Discovery"])
_OUT = Context.RESOURCE_QUERY_RESPONSE


def _config(base: str, max_payload: int) -> dict[str, Any]:
    config = ServiceProviderConfig(
        documentation_uri=None,
        patch=Patch(supported=True),
        bulk=Bulk(supported=True, max_operations=bulk.MAX_OPERATIONS, max_payload_size=max_payload),
        filter=Filter(supported=True, max_results=MAX_COUNT),
        change_password=ChangePassword(supported=False),
        sort=Sort(supported=True),
        etag=ETag(supported=True),
        authentication_schemes=[
            AuthenticationScheme(
                type="oauthbearertoken",
                name="SCIM token",
                description="An organization's SCIM token: Authorization: Bearer tnt_...",
                primary=True,
            )
        ],
        meta=Meta(resource_type="ServiceProviderConfig", location=f"{base}/ServiceProviderConfig"),
    )
    return dict(config.model_dump(scim_ctx=_OUT))


def _resource_types(base: str) -> list[dict[str, Any]]:
    found = [
        ResourceType(
            id="User",
            name="User",
            description="User Account",
            endpoint="/Users",
            schema_=USER,
            schema_extensions=[SchemaExtension(schema_=ENTERPRISE, required=False)],
            meta=Meta(resource_type="ResourceType", location=f"{base}/ResourceTypes/User"),
        ),
        ResourceType(
            id="Group",
            name="Group",
            description="Group",
            endpoint="/Groups",
            schema_=GROUP,
            meta=Meta(resource_type="ResourceType", location=f"{base}/ResourceTypes/Group"),
        ),
    ]
    return [dict(r.model_dump(scim_ctx=_OUT)) for r in found]


@router.get("/ServiceProviderConfig")
async def service_provider_config(request: Request, caller: ScimCaller) -> Response:
    return ScimResponse(_config(base_url(request), request.app.state.max_body_bytes))


@router.get("/ResourceTypes")
async def resource_types(request: Request, caller: ScimCaller) -> Response:
    found = _resource_types(base_url(request))
    return ScimResponse(list_response(found, len(found), 0))


@router.get("/ResourceTypes/{name}")
async def resource_type(request: Request, caller: ScimCaller, name: str) -> Response:
    for found in _resource_types(base_url(request)):
        if found["id"].lower() == name.lower():
            return ScimResponse(found)
    raise NotFound("no such resource type")


def _schema(base: str, schema_id: str) -> dict[str, Any]:
    return SCHEMAS_BY_ID[schema_id.lower()].as_scim(f"{base}/Schemas/{schema_id}")


@router.get("/Schemas")
async def schemas(request: Request, caller: ScimCaller) -> Response:
    base = base_url(request)
    found = [_schema(base, s.id) for s in SCHEMAS]
    return ScimResponse(list_response(found, len(found), 0))


@router.get("/Schemas/{schema_id}")
async def schema(request: Request, caller: ScimCaller, schema_id: str) -> Response:
    if schema_id.lower() not in SCHEMAS_BY_ID:
        raise NotFound("no such schema")
    return ScimResponse(_schema(base_url(request), schema_id))
