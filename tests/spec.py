"""Validate response bodies against the vendor specs kept in tests/reference/.

The astro schemas are the 2024 IAM/Platform YAMLs plus what astro-v1.md adds (SelfUser,
dagRoles, the OBSERVE organization roles); each addition is spelled out below.
"""

from __future__ import annotations

import copy
import functools
import re
from pathlib import Path
from typing import Any

import jsonschema
import yaml
from referencing import Registry, Resource

REF = Path(__file__).parent / "reference"
ASTRO_TS = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z$")
ORG_ROLES_V1 = [
    "ORGANIZATION_OWNER",
    "ORGANIZATION_OBSERVE_ADMIN",
    "ORGANIZATION_OBSERVE_MEMBER",
    "ORGANIZATION_BILLING_ADMIN",
    "ORGANIZATION_MEMBER",
]
_STATUS = {"type": "string", "enum": ["ACTIVE", "INACTIVE", "PENDING", "BANNED"]}
_DAG_ROLE = {
    "type": "object",
    "required": ["deploymentId", "role"],
    "properties": {
        "deploymentId": {"type": "string"},
        "role": {"type": "string"},
        "dagId": {"type": "string"},
        "dagTag": {"type": "string"},
    },
    "anyOf": [{"required": ["dagId"]}, {"required": ["dagTag"]}],
}
_SELF_USER = {
    "type": "object",
    "required": ["avatarUrl", "createdAt", "fullName", "id", "status", "updatedAt", "username"],
    "properties": {
        "avatarUrl": {"type": "string"},
        "createdAt": {"type": "string"},
        "fullName": {"type": "string"},
        "id": {"type": "string"},
        "status": _STATUS,
        "updatedAt": {"type": "string"},
        "username": {"type": "string"},
        "featureFlags": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["key", "value"],
                "properties": {"key": {"type": "string"}, "value": {"type": "boolean"}},
            },
        },
        "invites": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["expiresAt", "inviteId", "organizationId"],
                "properties": {
                    "expiresAt": {"type": "string"},
                    "inviteId": {"type": "string"},
                    "organizationId": {"type": "string"},
                },
            },
        },
        "isIdpManaged": {"type": "boolean"},
        "organizationId": {"type": "string"},
        "roles": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["role", "scope"],
                "properties": {
                    "role": {"type": "string"},
                    "scope": {
                        "type": "object",
                        "required": ["entityId", "type"],
                        "properties": {
                            "entityId": {"type": "string"},
                            "type": {"type": "string"},
                            "deploymentId": {"type": "string"},
                            "dagTag": {"type": "string"},
                        },
                    },
                },
            },
        },
    },
}


def _load(name: str) -> dict[str, Any]:
    with open(REF / "specs" / "astronomer" / name) as f:
        doc: dict[str, Any] = yaml.safe_load(f)
    return doc


@functools.cache
def astro_components() -> dict[str, Any]:
    """IAM + Platform component schemas, with the v1 additions applied."""
    schemas: dict[str, Any] = {}
    schemas.update(copy.deepcopy(_load("platform-v1beta1.openapi.yaml")["components"]["schemas"]))
    schemas.update(copy.deepcopy(_load("iam-v1beta1.openapi.yaml")["components"]["schemas"]))
    for name in ("User", "SubjectRoles", "UpdateUserRolesRequest", "Team", "Invite"):
        props = schemas[name].get("properties", {})
        if "organizationRole" in props:
            props["organizationRole"]["enum"] = ORG_ROLES_V1
    for name in ("User", "SubjectRoles"):
        schemas[name]["properties"]["dagRoles"] = {"type": "array", "items": _DAG_ROLE}
    # Roles may be DAG-scoped in v1 (DAG_AUTHOR, DAG_VIEWER and custom DAG roles).
    for name in ("Role", "RoleWithPermission", "DefaultRole", "RoleTemplate"):
        enum = schemas[name]["properties"]["scopeType"]["enum"]
        if "DAG" not in enum:
            enum.append("DAG")
    schemas["SelfUser"] = _SELF_USER
    return schemas


@functools.cache
def _registry() -> Registry:
    doc = {"components": {"schemas": astro_components()}}
    registry: Registry[Any] = Registry().with_resource("astro", Resource.opaque(doc))
    return registry


def _rewrite_refs(node: Any) -> Any:
    if isinstance(node, dict):
        return {
            k: (
                "astro" + v
                if k == "$ref" and isinstance(v, str) and v.startswith("#")
                else _rewrite_refs(v)
            )
            for k, v in node.items()
        }
    if isinstance(node, list):
        return [_rewrite_refs(v) for v in node]
    return node


def _timestamps_ok(body: Any, path: str = "") -> list[str]:
    bad: list[str] = []
    if isinstance(body, dict):
        for key, value in body.items():
            if key.endswith("At") and isinstance(value, str) and not ASTRO_TS.match(value):
                bad.append(f"{path}.{key}={value}")
            bad.extend(_timestamps_ok(value, f"{path}.{key}"))
    elif isinstance(body, list):
        for i, value in enumerate(body):
            bad.extend(_timestamps_ok(value, f"{path}[{i}]"))
    return bad


def assert_astro(body: Any, schema_name: str) -> None:
    """Fails with the validator's message when `body` does not match the named schema."""
    schema = _rewrite_refs(astro_components()[schema_name])
    jsonschema.Draft202012Validator(schema, registry=_registry()).validate(body)
    bad = _timestamps_ok(body)
    assert not bad, f"timestamps not YYYY-MM-DDTHH:MM:SSZ: {bad}"
