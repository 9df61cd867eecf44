"""Realms (directory/realms.py): the identity sources people sign in from. System
administrators only; secrets go in, never out (an answer says `bindPasswordSet: true`)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Path, Request
from fastapi.responses import Response
from pydantic import Field

from tenantry.clock import iso_z
from tenantry.directory import realms
from tenantry.errors import FieldError, Invalid
from tenantry.faces.http import BearerCaller, Db, face_router, security
from tenantry.faces.native.schemas import Body

router = face_router(tags=["Realms"])
RealmId = Annotated[str, Path(max_length=64)]

# The native names of the domain's settings and secrets, per block.
SETTING_NAMES = {
    "url": "url",
    "bindDn": "bind_dn",
    "userBaseDn": "user_base_dn",
    "userFilter": "user_filter",
    "groupBaseDn": "group_base_dn",
    "startTls": "start_tls",
    "issuer": "issuer",
    "clientId": "client_id",
    "scopes": "scopes",
    "groupsClaim": "groups_claim",
    "idpMetadataUrl": "idp_metadata_url",
    "idpMetadataXml": "idp_metadata_xml",
    "groupsAttribute": "groups_attribute",
}
SECRET_NAMES = {
    "bindPassword": "bind_password",
    "clientSecret": "client_secret",
    "spPrivateKey": "sp_private_key",
}
NATIVE_NAME = {v: k for k, v in (SETTING_NAMES | SECRET_NAMES).items()}
# The block holding a type's settings (Active Directory is LDAP).
BLOCK = {"ldap": "ldap", "active_directory": "ldap", "oidc": "oidc", "saml": "saml"}
Setting = str | bool | list[str] | None


class MappingBody(Body):
    group: str = Field(min_length=1, max_length=1024)
    organizationRole: str | None = None
    workspaceId: str | None = Field(default=None, max_length=25)
    workspaceRole: str | None = None
    teamId: str | None = Field(default=None, max_length=25)


class BindingBody(Body):
    organizationId: str = Field(max_length=25)
    defaultRole: str = "ORGANIZATION_MEMBER"
    mappings: list[MappingBody] = Field(default_factory=list, max_length=realms.MAX_MAPPINGS)


class RealmBody(Body):
    id: str = Field(max_length=64)
    type: str = Field(max_length=32)
    name: str = Field(max_length=256)
    position: int = Field(default=0, ge=0, le=10_000)
    ldap: dict[str, Setting] | None = None
    oidc: dict[str, Setting] | None = None
    saml: dict[str, Setting] | None = None
    organizations: list[BindingBody] = Field(default_factory=list, max_length=realms.MAX_BINDINGS)


class UpdateRealmBody(RealmBody):
    id: str = Field(default="", max_length=64)  # the path names the realm


def to_spec(body: RealmBody, realm_id: str | None = None) -> realms.RealmSpec:
    """The native body as the domain's RealmSpec: the type's block split into settings and
    secrets, under the domain's names."""
    block_name = BLOCK.get(body.type)
    blocks = {"ldap": body.ldap, "oidc": body.oidc, "saml": body.saml}
    stray = [k for k, v in blocks.items() if v is not None and k != block_name]
    if stray:
        raise Invalid(
            "invalid realm",
            [FieldError(k, "unexpected", f"not a block of a {body.type} realm") for k in stray],
        )
    block = (blocks.get(block_name) if block_name else None) or {}
    settings: dict[str, Any] = {}
    secrets: dict[str, str] = {}
    for name, value in block.items():
        if name in SECRET_NAMES:
            if not isinstance(value, str):
                raise Invalid("invalid realm", [FieldError(name, "invalid", "a string")])
            secrets[SECRET_NAMES[name]] = value
        else:
            settings[SETTING_NAMES.get(name, name)] = value
    return realms.RealmSpec(
        id=realm_id if realm_id is not None else body.id,
        type=body.type,
        name=body.name,
        settings=settings,
        secrets=secrets,
        position=body.position,
        organizations=tuple(_binding(b) for b in body.organizations),
    )


def _binding(b: BindingBody) -> realms.Binding:
    return realms.Binding(
        organization_id=b.organizationId,
        default_role=b.defaultRole,
        mappings=tuple(
            realms.Mapping(
                group=m.group,
                organization_role=m.organizationRole,
                workspace_id=m.workspaceId,
                workspace_role=m.workspaceRole,
                team_id=m.teamId,
            )
            for m in b.mappings
        ),
    )


def render(found: realms.RealmView) -> dict[str, Any]:
    realm = found.realm
    block: dict[str, Any] = {NATIVE_NAME.get(k, k): v for k, v in realm.config.items()}
    for secret in realms.SECRETS[realm.type]:
        block[NATIVE_NAME[secret] + "Set"] = secret in found.secrets_set
    return {
        "id": realm.id,
        "type": realm.type,
        "name": realm.name,
        "position": realm.position,
        BLOCK[realm.type]: block,
        "organizations": [
            {
                "organizationId": b.organization_id,
                "defaultRole": b.default_role,
                "mappings": [
                    {NATIVE_NAME.get(k, _camel(k)): v for k, v in vars(m).items() if v is not None}
                    for m in b.mappings
                ],
            }
            for b in found.organizations
        ],
        "createdAt": iso_z(realm.created_at),
        "updatedAt": iso_z(realm.updated_at),
    }


def _camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(part.title() for part in rest)


@router.get("/realms")
async def list_realms(request: Request, caller: BearerCaller, db: Db) -> Any:
    found = await realms.list_realms(db, security(request).secrets, caller)
    return {"realms": [render(r) for r in found]}


@router.post("/realms", status_code=201)
async def create_realm(request: Request, caller: BearerCaller, db: Db, body: RealmBody) -> Any:
    made = await realms.create_realm(db, security(request).secrets, caller, to_spec(body))
    return render(made)


@router.get("/realms/{realmId}")
async def get_realm(request: Request, caller: BearerCaller, db: Db, realmId: RealmId) -> Any:
    return render(await realms.get_realm(db, security(request).secrets, caller, realmId))


@router.put("/realms/{realmId}")
async def update_realm(
    request: Request, caller: BearerCaller, db: Db, realmId: RealmId, body: UpdateRealmBody
) -> Any:
    if body.id and body.id != realmId:
        raise Invalid("invalid realm", [FieldError("id", "immutable", "the path names the realm")])
    spec = to_spec(body, realmId)
    return render(await realms.update_realm(db, security(request).secrets, caller, spec))


@router.delete("/realms/{realmId}", status_code=204)
async def delete_realm(caller: BearerCaller, db: Db, realmId: RealmId) -> Response:
    await realms.delete_realm(db, caller, realmId)
    return Response(status_code=204)
