"""SEAM (interim, to be replaced by faces/scim/patch.py's parser and `apply_patch`): a
minimal PATCH (RFC 7644 §3.5.2) applied to a resource as this face renders it.

Supports `add`, `replace` and `remove` (any case: Entra ID sends "Replace"), with no path (an
object of attributes to add or replace), or a path naming an attribute, a sub-attribute
(`name.givenName`) or an enterprise attribute (`urn:...:enterprise:2.0:User:department`),
and `members[value eq "..."]` for removing group members. Not supported until the real parser
lands: other value filters in paths (`emails[type eq "work"].value`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import orjson

from tenantry.faces.scim.schema import ENTERPRISE, PATCH_OP

OPS = ("add", "replace", "remove")
_MEMBER_FILTER = re.compile(r'^members\[\s*value\s+eq\s+("(?:[^"\\]|\\.)*")\s*\]$', re.I)
_FILTERED = re.compile(r"\[")


class PatchError(Exception):
    """Rendered as a SCIM error (faces/scim/render.ScimProblem)."""

    def __init__(self, detail: str, scim_type: str = "invalidValue") -> None:
        super().__init__(detail)
        self.status = 400
        self.scim_type: str | None = scim_type
        self.detail = detail


@dataclass(frozen=True)
class Operation:
    op: str  # add | replace | remove
    path: str | None
    value: Any


def parse_patch(payload: Any) -> list[Operation]:
    if not isinstance(payload, dict):
        raise PatchError("the body must be a PatchOp object", "invalidSyntax")
    schemas = {k.lower(): v for k, v in payload.items()}.get("schemas")
    if not isinstance(schemas, list) or PATCH_OP not in schemas:
        raise PatchError(f"schemas must name {PATCH_OP}", "invalidSyntax")
    found = {k.lower(): v for k, v in payload.items()}.get("operations")
    if not isinstance(found, list) or not found:
        raise PatchError("Operations must be a non-empty list", "invalidSyntax")
    return [_operation(item) for item in found]


def _operation(item: Any) -> Operation:
    if not isinstance(item, dict):
        raise PatchError("each operation must be an object", "invalidSyntax")
    lowered = {str(k).lower(): v for k, v in item.items()}
    op = lowered.get("op")
    if not isinstance(op, str) or op.lower() not in OPS:
        raise PatchError("op must be add, replace or remove", "invalidSyntax")
    path = lowered.get("path")
    if path is not None and (not isinstance(path, str) or not path.strip()):
        raise PatchError("path must be a non-empty string", "invalidPath")
    if op.lower() == "remove" and path is None:
        raise PatchError("remove needs a path", "noTarget")
    if op.lower() != "remove" and "value" not in lowered:
        raise PatchError(f"{op} needs a value", "invalidValue")
    return Operation(op.lower(), path, lowered.get("value"))


def member_changes(ops: list[Operation]) -> tuple[list[str], list[str]] | None:
    """(added, removed) member ids when every operation adds or removes members only."""
    added: list[str] = []
    removed: list[str] = []
    for op in ops:
        path = (op.path or "").strip()
        filtered = _MEMBER_FILTER.match(path)
        if op.op == "add" and path.lower() == "members":
            added.extend(_values(op.value))
        elif op.op == "remove" and filtered:
            removed.append(orjson.loads(filtered.group(1)))
        elif op.op == "remove" and path.lower() == "members" and op.value is not None:
            removed.extend(_values(op.value))  # Entra ID: a list of values to remove
        else:
            return None
    return added, removed


def _values(value: Any) -> list[str]:
    items = value if isinstance(value, list) else [value]
    out = []
    for item in items:
        found = item.get("value") if isinstance(item, dict) else None
        if not isinstance(found, str):
            raise PatchError("each member needs a value")
        out.append(found)
    return out


def apply_patch(resource: dict[str, Any], ops: list[Operation]) -> dict[str, Any]:
    """A copy of `resource` with every operation applied, in order."""
    result: dict[str, Any] = orjson.loads(orjson.dumps(resource))
    for op in ops:
        _apply(result, op)
    return result


def _apply(resource: dict[str, Any], op: Operation) -> None:
    if op.path is None:
        if not isinstance(op.value, dict):
            raise PatchError("a patch without a path needs an object value")
        for key, value in op.value.items():
            _apply(resource, Operation(op.op, str(key), value))
        return
    path = op.path.strip()
    filtered = _MEMBER_FILTER.match(path)
    if filtered is not None:
        if op.op != "remove":
            raise PatchError("unsupported path (interim PATCH)", "invalidPath")
        wanted = orjson.loads(filtered.group(1))
        resource["members"] = [m for m in resource.get("members", []) if m.get("value") != wanted]
        return
    if _FILTERED.search(path):
        raise PatchError("unsupported path (interim PATCH)", "invalidPath")
    container, name = _target(resource, path)
    key = _key(container, name)
    if op.op == "remove":
        if key is None:
            return
        if op.value is not None and isinstance(container.get(key), list):
            drop = op.value if isinstance(op.value, list) else [op.value]
            container[key] = [v for v in container[key] if v not in drop]
        else:
            del container[key]
        return
    if op.op == "add" and key is not None and isinstance(container[key], list):
        extra = op.value if isinstance(op.value, list) else [op.value]
        container[key] = container[key] + [v for v in extra if v not in container[key]]
        return
    merge = key is not None and isinstance(container[key], dict) and isinstance(op.value, dict)
    if op.op == "add" and merge:
        assert key is not None
        container[key] = {**container[key], **op.value}
        return
    container[key or name] = op.value


def _target(resource: dict[str, Any], path: str) -> tuple[dict[str, Any], str]:
    """The object holding the path's last attribute, created as needed, and its name."""
    if path.lower().startswith(ENTERPRISE.lower()):
        rest = path[len(ENTERPRISE) :].lstrip(":")
        holder = _child(resource, ENTERPRISE)
        if not rest:
            return resource, ENTERPRISE
        return _nested(holder, rest)
    if path.lower().startswith("urn:"):
        # a core schema's URN prefix (urn:...:core:2.0:User:userName)
        path = path.rsplit(":", 1)[-1]
    return _nested(resource, path)


def _nested(holder: dict[str, Any], path: str) -> tuple[dict[str, Any], str]:
    parts = path.split(".")
    for part in parts[:-1]:
        holder = _child(holder, part)
    return holder, parts[-1]


def _child(holder: dict[str, Any], name: str) -> dict[str, Any]:
    key = _key(holder, name)
    if key is None:
        holder[name] = {}
        key = name
    found = holder[key]
    if not isinstance(found, dict):
        raise PatchError(f"{name} is not an object", "invalidPath")
    return found


def _key(holder: dict[str, Any], name: str) -> str | None:
    """The key of `holder` that is `name` case-insensitively (SCIM names are)."""
    low = name.lower()
    return next((k for k in holder if k.lower() == low), None)
