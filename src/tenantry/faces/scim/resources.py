"""Users and Groups as SCIM resources, and back: the face's mapping (docs/faces/scim.md).

User: `id` = the account's id, `userName` = its login name, `externalId`, `active` = enabled,
`displayName` (else the full name), `emails` (the primary one, else the first, is the
account's address; its full name is `displayName`, else `name.formatted`, else given and
family name); every other attribute it serves (name parts, title, locale, phone numbers, the
enterprise extension: employeeNumber, department, manager, ...) is kept as the identity
provider sent it, in the account's provisioning profile.

Group: a team of the organization; `displayName` = its name, `members` = its members (users
the organization manages).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from tenantry.clock import iso_z
from tenantry.db.models import Team, User
from tenantry.directory.provisioning import PROFILE, ProvisionedGroup, ProvisionedUser, version_of
from tenantry.faces.scim.schema import (
    ENTERPRISE,
    ENTERPRISE_SCHEMA,
    GROUP,
    GROUP_SCHEMA,
    USER,
    USER_SCHEMA,
    SchemaViolation,
    drop_empty,
    read_resource,
)

JSON = dict[str, Any]
# What the account's own columns hold, never the profile ("active" is kept there as whether
# the identity provider gave it: a removed or never given `active` is not shown).
_OWN = ("userName", "externalId")


def etag(obj: User | Team) -> str:
    return f'W/"{version_of(obj)}"'


def _meta(kind: str, obj: User | Team, base: str) -> JSON:
    plural = "Users" if kind == "User" else "Groups"
    return {
        "resourceType": kind,
        "created": iso_z(obj.created_at),
        "lastModified": iso_z(obj.updated_at),
        "location": f"{base}/{plural}/{obj.id}",
        "version": etag(obj),
    }


def user(u: User, base: str, groups: Sequence[Team] = ()) -> JSON:
    """The User resource; `groups`: the Groups it is a member of (RFC 7643 §4.1.2, read-only:
    a team's membership is the Group's to change)."""
    profile: JSON = dict((u.attributes or {}).get(PROFILE) or {})
    enterprise = profile.pop(ENTERPRISE, None)
    body: JSON = {"schemas": [USER], "id": u.id}
    if u.external_id is not None:
        body["externalId"] = u.external_id
    body["userName"] = u.username
    body.update(profile)
    if "displayName" not in body and u.full_name:
        body["displayName"] = u.full_name
    if "emails" not in body and u.email:
        body["emails"] = [{"value": u.email, "primary": True}]
    if "active" in body or not u.enabled:
        body["active"] = u.enabled
    if groups:
        body["groups"] = [_group_of(t, base) for t in groups]
    if enterprise:
        body["schemas"] = [USER, ENTERPRISE]
        body[ENTERPRISE] = enterprise
    body["meta"] = _meta("User", u, base)
    return body


def _group_of(t: Team, base: str) -> JSON:
    # Tenantry's teams hold users only, so every membership is direct.
    return {"value": t.id, "$ref": f"{base}/Groups/{t.id}", "display": t.name, "type": "direct"}


def read_user(payload: Any) -> ProvisionedUser:
    """A full User from a POST or PUT body (or a patched resource)."""
    found = drop_empty(read_resource(payload, USER_SCHEMA, [ENTERPRISE_SCHEMA]))
    username = found.get("userName")
    if not isinstance(username, str) or not username.strip():
        raise SchemaViolation("userName is required")
    emails = found.get("emails") or []
    primary = [e for e in emails if e.get("primary")]
    if len(primary) > 1:
        raise SchemaViolation("at most one of emails may be primary")
    address = (primary or emails or [{}])[0].get("value")
    name = found.get("name") or {}
    full_name = (
        found.get("displayName")
        or name.get("formatted")
        or " ".join(p for p in (name.get("givenName"), name.get("familyName")) if p)
    )
    profile = {k: v for k, v in found.items() if k not in _OWN}
    if "active" in profile:
        profile["active"] = True  # the account's `enabled` says which
    return ProvisionedUser(
        username=username,
        full_name=full_name,
        email=address,
        active=found.get("active", True),
        external_id=found.get("externalId"),
        profile=profile,
    )


def group(t: Team, members: Sequence[User], base: str) -> JSON:
    body: JSON = {"schemas": [GROUP], "id": t.id}
    if t.external_id is not None:
        body["externalId"] = t.external_id
    body["displayName"] = t.name
    if members:
        body["members"] = [_member(m, base) for m in members]
    body["meta"] = _meta("Group", t, base)
    return body


def _member(u: User, base: str) -> JSON:
    return {"value": u.id, "$ref": f"{base}/Users/{u.id}", "type": "User"}


def read_group(payload: Any) -> ProvisionedGroup:
    found = drop_empty(read_resource(payload, GROUP_SCHEMA))
    name = found.get("displayName")
    if not isinstance(name, str) or not name.strip():
        raise SchemaViolation("displayName is required")
    return ProvisionedGroup(
        display_name=name,
        external_id=found.get("externalId"),
        member_ids=member_ids(found.get("members") or []),
    )


def member_ids(members: Iterable[Any]) -> list[str]:
    ids = []
    for member in members:
        value = member.get("value") if isinstance(member, dict) else None
        if not isinstance(value, str) or not value:
            raise SchemaViolation("every member needs a value")
        ids.append(value)
    return ids
