"""The SCIM schemas this face serves (RFC 7643 §4, §8.7.1): exactly the attributes it keeps,
as data. `/Schemas` renders them, requests are read and checked against them (names are
case-insensitive; values must have their type), and `attributes`/`excludedAttributes` and
PATCH paths resolve through them."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from tenantry.faces.scim.errors import ScimError

USER = "urn:ietf:params:scim:schemas:core:2.0:User"
GROUP = "urn:ietf:params:scim:schemas:core:2.0:Group"
ENTERPRISE = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"
LIST_RESPONSE = "urn:ietf:params:scim:api:messages:2.0:ListResponse"
PATCH_OP = "urn:ietf:params:scim:api:messages:2.0:PatchOp"
BULK_REQUEST = "urn:ietf:params:scim:api:messages:2.0:BulkRequest"
BULK_RESPONSE = "urn:ietf:params:scim:api:messages:2.0:BulkResponse"
SCHEMA_SCHEMA = "urn:ietf:params:scim:schemas:core:2.0:Schema"
RESOURCE_TYPE_SCHEMA = "urn:ietf:params:scim:schemas:core:2.0:ResourceType"
SPC_SCHEMA = "urn:ietf:params:scim:schemas:core:2.0:ServiceProviderConfig"


class SchemaViolation(ScimError):
    """A request that does not fit the schema: a ScimError, 400 invalidValue unless said."""

    def __init__(self, detail: str, scim_type: str = "invalidValue", status: int = 400) -> None:
        super().__init__(status, scim_type, detail)


@dataclass(frozen=True)
class Attr:
    name: str
    type: str = "string"  # string | boolean | complex | reference | dateTime | integer
    multi: bool = False
    sub: tuple[Attr, ...] = ()
    required: bool = False
    mutability: str = "readWrite"
    returned: str = "default"
    uniqueness: str = "none"
    case_exact: bool = False
    canonical: tuple[str, ...] = ()
    reference_types: tuple[str, ...] = ()
    description: str = ""

    def child(self, name: str) -> Attr | None:
        return _by_name(self.sub).get(name.lower())

    def as_scim(self) -> dict[str, Any]:
        body: dict[str, Any] = {
            "name": self.name,
            "type": self.type,
            "multiValued": self.multi,
            "description": self.description or self.name,
            "required": self.required,
            "mutability": self.mutability,
            "returned": self.returned,
        }
        if self.type in ("string", "reference", "binary"):
            body["caseExact"] = self.case_exact
            body["uniqueness"] = self.uniqueness
        if self.canonical:
            body["canonicalValues"] = list(self.canonical)
        if self.reference_types:
            body["referenceTypes"] = list(self.reference_types)
        if self.sub:
            body["subAttributes"] = [s.as_scim() for s in self.sub]
        return body


def _by_name(attrs: Sequence[Attr]) -> dict[str, Attr]:
    return {a.name.lower(): a for a in attrs}


@dataclass(frozen=True)
class Schema:
    id: str
    name: str
    description: str
    attributes: tuple[Attr, ...]
    # Attributes of the RFC's schema this face does not serve but identity providers send
    # anyway (Okta: `password`, `groups`; Entra ID: `roles`): accepted and not kept.
    ignored: tuple[str, ...] = ()
    by_name: Mapping[str, Attr] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "by_name", _by_name(self.attributes))

    def attr(self, name: str) -> Attr | None:
        return self.by_name.get(name.lower())

    def as_scim(self, location: str) -> dict[str, Any]:
        return {
            "schemas": [SCHEMA_SCHEMA],
            "id": self.id,
            "name": self.name,
            "description": self.description,
            "attributes": [a.as_scim() for a in self.attributes],
            "meta": {"resourceType": "Schema", "location": location},
        }


def _multi(name: str, types: tuple[str, ...]) -> Attr:
    return Attr(
        name,
        "complex",
        multi=True,
        sub=(
            Attr("value"),
            Attr("display"),
            Attr("type", canonical=types),
            Attr("primary", "boolean"),
        ),
    )


USER_SCHEMA = Schema(
    USER,
    "User",
    "User Account",
    (
        Attr("userName", required=True, uniqueness="server"),
        Attr(
            "name",
            "complex",
            sub=(
                Attr("formatted"),
                Attr("familyName"),
                Attr("givenName"),
                Attr("middleName"),
                Attr("honorificPrefix"),
                Attr("honorificSuffix"),
            ),
        ),
        Attr("displayName"),
        Attr("nickName"),
        Attr("profileUrl", "reference", reference_types=("external",)),
        Attr("title"),
        Attr("userType"),
        Attr("preferredLanguage"),
        Attr("locale"),
        Attr("timezone"),
        Attr("active", "boolean"),
        _multi("emails", ("work", "home", "other")),
        _multi("phoneNumbers", ("work", "home", "mobile", "fax", "pager", "other")),
        # The teams the account is a member of: read-only (RFC 7643 §4.1.2), so a POST's or
        # PUT's value is ignored (Okta sends `groups: []`) and a PATCH of it is `mutability`.
        Attr(
            "groups",
            "complex",
            multi=True,
            mutability="readOnly",
            sub=(
                Attr("value", mutability="readOnly", case_exact=True),
                Attr("$ref", "reference", mutability="readOnly", reference_types=("Group",)),
                Attr("display", mutability="readOnly"),
                Attr("type", mutability="readOnly", canonical=("direct", "indirect")),
            ),
        ),
    ),
    ignored=(
        "password",
        "roles",
        "entitlements",
        "x509certificates",
        "addresses",
        "ims",
        "photos",
    ),
)

ENTERPRISE_SCHEMA = Schema(
    ENTERPRISE,
    "EnterpriseUser",
    "Enterprise User",
    (
        Attr("employeeNumber"),
        Attr("costCenter"),
        Attr("organization"),
        Attr("division"),
        Attr("department"),
        Attr(
            "manager",
            "complex",
            sub=(
                Attr("value"),
                Attr("$ref", "reference", reference_types=("User",)),
                Attr("displayName", mutability="readOnly"),
            ),
        ),
    ),
)

GROUP_SCHEMA = Schema(
    GROUP,
    "Group",
    "Group",
    (
        Attr("displayName", required=True, uniqueness="server"),
        Attr(
            "members",
            "complex",
            multi=True,
            sub=(
                Attr("value", mutability="immutable", case_exact=True),
                Attr(
                    "$ref", "reference", mutability="immutable", reference_types=("User", "Group")
                ),
                Attr("display", mutability="readOnly"),
                Attr("type", mutability="immutable", canonical=("User",)),
            ),
        ),
    ),
)

SCHEMAS = (USER_SCHEMA, ENTERPRISE_SCHEMA, GROUP_SCHEMA)
SCHEMAS_BY_ID = {s.id.lower(): s for s in SCHEMAS}
# Attributes every resource has (RFC 7643 §3.1): never in the body's checked part.
COMMON = ("schemas", "id", "externalId", "meta")


# --- reading requests ------------------------------------------------------------------------


def coerce(attr: Attr, value: Any, where: str) -> Any:
    """`value` as `attr` says, names canonical; SchemaViolation otherwise."""
    if attr.multi:
        if not isinstance(value, list):
            raise SchemaViolation(f"{where} must be a list")
        return [_single(attr, item, f"{where}[{i}]") for i, item in enumerate(value)]
    return _single(attr, value, where)


def _single(attr: Attr, value: Any, where: str) -> Any:
    if value is None:
        return None
    if attr.type == "complex":
        if not isinstance(value, dict):
            raise SchemaViolation(f"{where} must be an object")
        out: dict[str, Any] = {}
        for key, item in value.items():
            child = attr.child(str(key))
            if child is None:
                raise SchemaViolation(f"unknown attribute {where}.{key}", "invalidSyntax")
            if child.mutability != "readOnly":
                out[child.name] = _single(child, item, f"{where}.{child.name}")
        return out
    if attr.type == "boolean":
        return boolean(value, where)
    if not isinstance(value, str):
        raise SchemaViolation(f"{where} must be a string")
    return value


def boolean(value: Any, where: str) -> bool:
    """A boolean; also the strings "True"/"False" in any case (what Entra ID sends)."""
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.lower() in ("true", "false"):
        return value.lower() == "true"
    raise SchemaViolation(f"{where} must be a boolean")


def read_resource(payload: Any, core: Schema, extensions: Sequence[Schema] = ()) -> dict[str, Any]:
    """The writable attributes of a request body, with their canonical names, checked; the
    common attributes (id, meta, schemas) dropped, externalId kept."""
    if not isinstance(payload, dict):
        raise SchemaViolation("the body must be a JSON object", "invalidSyntax")
    ext = {e.id.lower(): e for e in extensions}
    out: dict[str, Any] = {}
    for key, value in payload.items():
        low = str(key).lower()
        if low in ("schemas", "id", "meta"):
            continue
        if low == "externalid":
            if value is not None and not isinstance(value, str):
                raise SchemaViolation("externalId must be a string")
            out["externalId"] = value
            continue
        if low in ext:
            out[ext[low].id] = _extension(ext[low], value)
            continue
        if low in core.ignored:
            continue
        attr = core.attr(low)
        if attr is None:
            raise SchemaViolation(f"unknown attribute {key}", "invalidSyntax")
        if attr.mutability != "readOnly":
            out[attr.name] = coerce(attr, value, attr.name)
    return out


def _extension(schema: Schema, value: Any) -> dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise SchemaViolation(f"{schema.id} must be an object")
    out: dict[str, Any] = {}
    for key, item in value.items():
        if str(key).lower() == "schemas":  # some clients repeat it inside the extension
            continue
        attr = schema.attr(str(key))
        if attr is None:
            raise SchemaViolation(f"unknown attribute {schema.id}:{key}", "invalidSyntax")
        if attr.mutability != "readOnly":
            out[attr.name] = coerce(attr, item, attr.name)
    return out


def drop_empty(resource: dict[str, Any]) -> dict[str, Any]:
    """Without null values, empty lists and empty objects (RFC 7643 §2.5: unassigned)."""
    out: dict[str, Any] = {}
    for key, value in resource.items():
        if isinstance(value, dict):
            value = drop_empty(value)
        elif isinstance(value, list):
            value = [drop_empty(v) if isinstance(v, dict) else v for v in value]
            value = [v for v in value if v not in (None, {}, "")]
        if value not in (None, {}, []):
            out[key] = value
    return out
