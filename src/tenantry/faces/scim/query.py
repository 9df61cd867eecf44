"""SEAM (interim, to be replaced): the SCIM `filter` parameter.

Supports only `<attribute> eq "<value>"` on userName, externalId, displayName and
emails.value (Users) or displayName and externalId (Groups): what Okta and Entra ID send
before every create. The full grammar (RFC 7644 §3.4.2.2: ne co sw ew pr gt ge lt le, and/or/
not, grouping, value paths) arrives with faces/scim/filter.py (`parse_filter`, `to_predicate`)
and directory/predicates.py (`compile_predicate`); `conditions` then becomes a call to them
and provisioning takes the compiled predicate instead of `Equals`.
"""

from __future__ import annotations

import re

import orjson

from tenantry.directory.provisioning import Equals

_EQ = re.compile(r'^\s*([A-Za-z][\w.:$-]*)\s+eq\s+("(?:[^"\\]|\\.)*")\s*$', re.IGNORECASE)
USER_ATTRIBUTES = {
    "username": "username",
    "externalid": "external_id",
    "displayname": "full_name",
    "emails.value": "email",
    "emails": "email",
    "urn:ietf:params:scim:schemas:core:2.0:user:username": "username",
}
GROUP_ATTRIBUTES = {
    "displayname": "full_name",
    "externalid": "external_id",
    "urn:ietf:params:scim:schemas:core:2.0:group:displayname": "full_name",
}
MAX_FILTER = 4096


class InvalidFilter(Exception):
    """Rendered as a SCIM error (faces/scim/render.ScimProblem)."""

    def __init__(self, detail: str) -> None:
        super().__init__(detail)
        self.status = 400
        self.scim_type: str | None = "invalidFilter"
        self.detail = detail


def conditions(text: str | None, attributes: dict[str, str]) -> list[Equals]:
    """The conditions of a filter ([] for none); InvalidFilter for anything else."""
    if text is None or not text.strip():
        return []
    if len(text) > MAX_FILTER:
        raise InvalidFilter("the filter is too long")
    match = _EQ.match(text)
    if match is None:
        raise InvalidFilter(f"unsupported filter: {text[:200]}")
    name = match.group(1).lower()
    if name not in attributes:
        raise InvalidFilter(f"unsupported filter attribute: {match.group(1)[:200]}")
    try:
        value = orjson.loads(match.group(2))
    except orjson.JSONDecodeError:
        raise InvalidFilter("the filter's value is not a valid string") from None
    return [Equals(attributes[name], value)]
