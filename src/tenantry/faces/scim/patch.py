"""SCIM PATCH (RFC 7644 §3.5.2): the PatchOp body parsed into operations, and the operations
applied to a resource's SCIM JSON.

Paths are parsed by scim2-models (the RFC's ABNF with errata 7122) and resolved against its
resource models (User with the enterprise extension, Group), which say which attributes are
multi-valued, complex, read-only, required or case-exact. The operations themselves are applied
here, on plain dicts: a group of 10 000 members is a list of dicts, and adding 1 000 more or
removing one by a filter takes a pass over it, not a revalidation of every member.

What the identity providers send beyond the letter of the RFC, and what is done with it:
- Microsoft Entra ID: `"op": "Replace"` (ops are case-insensitive); `active` as the strings
  "True"/"False" (made booleans, for `active` only); attribute paths as the keys of a path-less
  value (`{"name.givenName": "x"}`); a group member removed as
  `{"op": "Remove", "path": "members", "value": [{"value": "id"}]}` (the listed entries are
  removed, matched by their `value`; one that is not there is no error); `"$ref": null` in a
  member; an `add` whose value filter matches nothing (`emails[type eq "work"].value` on a user
  without one), which creates the entry the filter describes.
- Okta: `{"op": "replace", "value": {"active": false}}`, and a group rename that repeats the
  group's `id` in the value (a read-only attribute written with its own value is no change);
  removing a member that is not in the group (no error).
"""

from __future__ import annotations

from collections.abc import Collection, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from functools import lru_cache
from typing import Any, Literal

import orjson
from scim2_models import (
    CaseExact,
    EnterpriseUser,
    Group,
    InvalidPathException,
    Mutability,
    Path,
    Required,
    Resource,
    User,
)
from scim2_models.base import BaseModel
from scim2_models.path import (
    AttrPath,
    CompareOperator,
    Comparison,
    FilterNode,
    LogicalExpr,
    LogicalOperator,
    Not,
    PathNode,
    Present,
    ValuePath,
)

from tenantry.faces.scim.errors import ScimError

__all__ = [
    "MAX_OPERATIONS",
    "MAX_VALUES",
    "PATCH_SCHEMA",
    "PatchOperation",
    "apply_patch",
    "parse_patch",
]

PATCH_SCHEMA = "urn:ietf:params:scim:api:messages:2.0:PatchOp"
MAX_OPERATIONS = 1000
MAX_VALUES = 10_000
MAX_PATH_LENGTH = 4096
_CORE_USER = str(User.__schema__).lower()

Op = Literal["add", "replace", "remove"]


@dataclass(frozen=True, slots=True)
class PatchOperation:
    """One operation of a PatchOp body. `path` is None for a path-less add or replace (then
    `value` is an object of attributes); `target` is its syntax tree (scim2-models': an
    AttrPath, a ValuePath, or a bare comparison such as `emails.type eq "work"`)."""

    op: Op
    path: str | None
    value: Any = None
    target: PathNode | None = field(default=None, compare=False)


def _error(scim_type: str, detail: str, status: int = 400) -> ScimError:
    return ScimError(status, scim_type, detail)


# ---- parsing


def parse_patch(
    body: object, *, max_operations: int = MAX_OPERATIONS, max_values: int = MAX_VALUES
) -> tuple[PatchOperation, ...]:
    """The operations of a PatchOp request body (a decoded JSON value), or ScimError:
    invalidSyntax for a body that is no PatchOp, invalidPath for a path that does not parse,
    invalidValue or noTarget for an operation missing what its op needs, 413 for more than
    `max_operations` operations or a list of more than `max_values` values."""
    if not isinstance(body, dict):
        raise _error("invalidSyntax", "a PatchOp body is a JSON object")
    members = {str(key).lower(): value for key, value in body.items()}
    schemas = members.get("schemas")
    if not isinstance(schemas, list) or PATCH_SCHEMA.lower() not in _lowered(schemas):
        raise _error("invalidSyntax", f"schemas must list {PATCH_SCHEMA}")
    operations = members.get("operations")
    if not isinstance(operations, list) or not operations:
        raise _error("invalidSyntax", "Operations must be a list of one or more operations")
    if len(operations) > max_operations:
        raise ScimError(413, None, f"a PATCH request holds at most {max_operations} operations")
    return tuple(_operation(index, raw, max_values) for index, raw in enumerate(operations))


def _lowered(items: list[Any]) -> set[str]:
    return {item.lower() for item in items if isinstance(item, str)}


def _operation(index: int, raw: object, max_values: int) -> PatchOperation:
    where = f"Operations[{index}]"
    if not isinstance(raw, dict):
        raise _error("invalidSyntax", f"{where} is not an object")
    members = {str(key).lower(): value for key, value in raw.items()}
    op = members.get("op")
    if not isinstance(op, str) or op.lower() not in ("add", "replace", "remove"):
        raise _error("invalidSyntax", f"{where}: op must be add, replace or remove")
    kind: Op = op.lower()  # type: ignore[assignment]
    path, target = _path(where, members.get("path"))
    value = members.get("value")
    _check_members(where, kind, path, "value" in members, value)
    _check_sizes(where, value, max_values)
    return PatchOperation(kind, path, _normalise_active(where, path, value), target)


def _path(where: str, path: object) -> tuple[str | None, PathNode | None]:
    if path is None:
        return None, None
    if not isinstance(path, str):
        raise _error("invalidPath", f"{where}: path must be a string")
    if not path.strip():
        return None, None
    if len(path) > MAX_PATH_LENGTH:
        raise _error("invalidPath", f"{where}: the path is longer than {MAX_PATH_LENGTH}")
    try:
        return path, Path(path).ast
    except InvalidPathException as exc:
        raise _error("invalidPath", f"{where}: {exc.detail}") from exc


def _check_members(where: str, op: Op, path: str | None, has_value: bool, value: Any) -> None:
    """What RFC 7644 §3.5.2.1-3 requires of each op."""
    if op == "remove" and path is None:
        raise _error("noTarget", f"{where}: remove needs a path")
    if op == "add" and value is None:
        raise _error("invalidValue", f"{where}: add needs a value")
    if op == "replace" and not has_value:
        raise _error("invalidValue", f"{where}: replace needs a value")
    if op != "remove" and path is None and not isinstance(value, dict):
        raise _error("invalidValue", f"{where}: without a path, the value is an object")


def _check_sizes(where: str, value: Any, max_values: int) -> None:
    """No list in the value longer than `max_values`, looked at without recursion."""
    pending = [value]
    while pending:
        item = pending.pop()
        if isinstance(item, list):
            if len(item) > max_values:
                raise ScimError(413, None, f"{where}: a value lists at most {max_values} items")
            pending.extend(item)
        elif isinstance(item, dict):
            pending.extend(item.values())


def _normalise_active(where: str, path: str | None, value: Any) -> Any:
    """Entra sends `active` as "True"/"False": make them the booleans they stand for."""
    if path is not None:
        return _active(where, value) if _is_active(path) else value
    if isinstance(value, dict):
        return {key: _active(where, v) if _is_active(key) else v for key, v in value.items()}
    return value


def _is_active(path: str) -> bool:
    return path.lower() in ("active", f"{_CORE_USER}:active")


def _active(where: str, value: Any) -> Any:
    if isinstance(value, str) and value.lower() in ("true", "false"):
        return value.lower() == "true"
    if value is not None and not isinstance(value, bool):
        raise _error("invalidValue", f"{where}: active is true or false")
    return value


# ---- resolving paths against the resource's schema


@dataclass(frozen=True)
class _Target:
    """An attribute a path designates, by its canonical SCIM names."""

    text: str
    extension: str | None  # the extension URN whose object holds the attribute
    model: type[BaseModel]  # the resource or extension model declaring it
    field: str  # its Python name there (for its annotations)
    attr: str
    multi: bool
    entry: type[BaseModel] | None  # a complex attribute's (or each value's) model
    sub: str | None = None
    filter: FilterNode | None = None


def _model_for(resource: Mapping[str, Any]) -> type[Resource[Any]]:
    schemas = _lowered(list(resource.get("schemas") or []))
    if _CORE_USER in schemas:
        return User[EnterpriseUser]
    if str(Group.__schema__).lower() in schemas:
        return Group
    raise ValueError("the resource lists neither the User nor the Group schema")


def _alias(model: type[BaseModel], name: str) -> str:
    return model.model_fields[name].serialization_alias or name


@lru_cache(maxsize=1024)
def _find(model: type[BaseModel], name: str) -> str | None:
    """The Python field name of the attribute `name` (any case) of `model`."""
    lowered = name.lower()
    for field_name in model.model_fields:
        if _alias(model, field_name).lower() == lowered:
            return field_name
    return None


def _is_model(type_: Any) -> bool:
    return isinstance(type_, type) and issubclass(type_, BaseModel)


class _Schema:
    def __init__(self, model: type[Resource[Any]]) -> None:
        self.model = model
        self.extensions = {str(urn).lower(): str(urn) for urn in model.get_extension_models()}

    def models(self) -> Iterator[tuple[type[BaseModel], str]]:
        """The resource's model and its extensions', with the prefix of their paths."""
        yield self.model, ""
        for urn, extension in self.model.get_extension_models().items():
            yield extension, f"{urn}:"

    def extension(self, text: str) -> str | None:
        """The extension URN `text` names (a path or a key that is the schema itself)."""
        return self.extensions.get(text.lower())

    def resolve(self, text: str, node: PathNode | None = None) -> _Target:
        head, sub, filter_ = _split(node if node is not None else _parse(text))
        binding = Path.__class_getitem__(self.model)(str(head)).resolve()
        if binding is None:
            raise _error("invalidPath", f"{text!r} is not an attribute of the resource")
        entry = binding.field_type if _is_model(binding.field_type) else None
        target = _Target(
            text=text,
            extension=None if binding.model is self.model else str(binding.model.__schema__),
            model=binding.model,
            field=binding.field_name,
            attr=_alias(binding.model, binding.field_name),
            multi=binding.is_multivalued,
            entry=entry,
            filter=filter_,
        )
        return _with_sub(target, sub) if sub is not None else _checked(target)


def _parse(text: str) -> PathNode:
    try:
        node = Path(text).ast
    except InvalidPathException as exc:
        raise _error("invalidPath", exc.detail) from exc
    if node is None:
        raise _error("invalidPath", "empty path")
    return node


def _split(node: PathNode) -> tuple[AttrPath, str | None, FilterNode | None]:
    """(attribute, sub-attribute, value filter) of a path in any of errata 7122's forms."""
    if isinstance(node, AttrPath):
        return AttrPath(node.attr, None, node.uri), node.sub_attr, None
    if isinstance(node, ValuePath):
        return node.attr_path, node.sub_attr, node.val_filter
    # `emails.type eq "work"` selects like emails[type eq "work"].
    head = AttrPath(node.attr_path.attr, None, node.attr_path.uri)
    inner = AttrPath(node.attr_path.sub_attr or "value")
    if isinstance(node, Present):
        return head, None, Present(inner)
    return head, None, Comparison(inner, node.op, node.value)


def _with_sub(target: _Target, sub: str) -> _Target:
    name = _find(target.entry, sub) if target.entry is not None else None
    if target.entry is None or name is None:
        raise _error("invalidPath", f"{target.text!r}: {target.attr} has no sub-attribute {sub}")
    return _checked(replace(target, sub=_alias(target.entry, name)))


def _checked(target: _Target) -> _Target:
    if target.filter is not None and not (target.multi and target.entry is not None):
        detail = "only a multi-valued complex attribute takes a value filter"
        raise _error("invalidPath", f"{target.text!r}: {detail}")
    if target.filter is not None and target.entry is not None:
        _check_filter(target, target.filter, target.entry)
    if target.multi and target.sub is not None and target.filter is None:
        detail = f"a sub-attribute of the values of {target.attr} needs a filter to say which"
        raise _error("invalidPath", f"{target.text!r}: {detail}")
    return target


# ---- value filters on the entries of a multi-valued attribute


def _check_filter(target: _Target, node: FilterNode, model: type[BaseModel]) -> None:
    """A value filter names sub-attributes of the attribute it selects from, and nothing
    else: checked before any entry is looked at, so that the refusal does not depend on
    what the resource holds."""
    pending = [node]
    while pending:
        current = pending.pop()
        if isinstance(current, LogicalExpr):
            pending.extend(current.terms)
        elif isinstance(current, Not):
            pending.append(current.expr)
        elif isinstance(current, Comparison | Present):
            path = current.attr_path
            if path.uri or path.sub_attr or _find(model, path.attr) is None:
                detail = f"{path} is not a sub-attribute of {target.attr}"
                raise _error("invalidPath", f"{target.text!r}: {detail}")
        else:
            raise _error("invalidPath", f"{target.text!r}: a value filter inside a value filter")


def _key(entry: Mapping[str, Any], name: str) -> str | None:
    lowered = name.lower()
    return next((key for key in entry if key.lower() == lowered), None)


def _get(entry: Mapping[str, Any], name: str) -> Any:
    key = _key(entry, name)
    return None if key is None else entry[key]


@lru_cache(maxsize=1024)
def _case_exact(model: type[BaseModel], name: str) -> bool:
    field_name = _find(model, name)
    return field_name is not None and model.get_field_annotation(field_name, CaseExact) == (
        CaseExact.true
    )


def _matches(entry: Mapping[str, Any], node: FilterNode, model: type[BaseModel]) -> bool:
    if isinstance(node, LogicalExpr):
        results = (_matches(entry, term, model) for term in node.terms)
        return all(results) if node.op == LogicalOperator.and_ else any(results)
    if isinstance(node, Not):
        return not _matches(entry, node.expr, model)
    if isinstance(node, Present | Comparison) and not (
        node.attr_path.uri or node.attr_path.sub_attr
    ):
        actual = _get(entry, node.attr_path.attr)
        if isinstance(node, Present):
            return actual is not None and actual not in ("", [], {})
        return _compare(actual, node.op, node.value, _case_exact(model, node.attr_path.attr))
    raise _error("invalidPath", f"a value filter compares sub-attributes, not {node}")


def _compare(actual: Any, op: CompareOperator, expected: Any, case_exact: bool) -> bool:
    """The filter rules: a missing value equals only null, `ne` is `not eq`."""
    if op == CompareOperator.ne:
        return not _compare(actual, CompareOperator.eq, expected, case_exact)
    if actual is None or expected is None:
        return op == CompareOperator.eq and actual is None and expected is None
    if isinstance(actual, str) and isinstance(expected, str) and not case_exact:
        actual, expected = actual.lower(), expected.lower()
    if isinstance(actual, bool) != isinstance(expected, bool):
        return False
    try:
        return bool(_OPERATORS[op](actual, expected))
    except TypeError:  # text against a number: no match
        return False


_OPERATORS: dict[CompareOperator, Any] = {
    CompareOperator.eq: lambda a, b: a == b,
    CompareOperator.co: lambda a, b: isinstance(a, str) and isinstance(b, str) and b in a,
    CompareOperator.sw: lambda a, b: isinstance(a, str) and a.startswith(b),
    CompareOperator.ew: lambda a, b: isinstance(a, str) and a.endswith(b),
    CompareOperator.gt: lambda a, b: not isinstance(a, bool) and a > b,
    CompareOperator.ge: lambda a, b: not isinstance(a, bool) and a >= b,
    CompareOperator.lt: lambda a, b: not isinstance(a, bool) and a < b,
    CompareOperator.le: lambda a, b: not isinstance(a, bool) and a <= b,
}


def _described(node: FilterNode, model: type[BaseModel]) -> dict[str, Any] | None:
    """The entry a filter of `eq` comparisons joined by `and` describes, or None."""
    joined = isinstance(node, LogicalExpr) and node.op == LogicalOperator.and_
    terms = node.terms if isinstance(node, LogicalExpr) and joined else (node,)
    entry: dict[str, Any] = {}
    for term in terms:
        if not isinstance(term, Comparison) or term.op != CompareOperator.eq:
            return None
        name = _find(model, term.attr_path.attr)
        if name is None or term.attr_path.sub_attr or term.attr_path.uri:
            return None
        entry[_alias(model, name)] = term.value
    return entry


# ---- applying


def apply_patch(
    resource: Mapping[str, Any],
    operations: Sequence[PatchOperation],
    *,
    resource_type: type[Resource[Any]] | None = None,
    immutable: Collection[str] = (),
    remove_requires_match: bool = False,
) -> dict[str, Any]:
    """The resource (its SCIM JSON, as the face renders it) after the operations, in order;
    `resource` itself is left as it was. All or nothing: the first refusal is raised.

    `resource_type` defaults to User with the enterprise extension, or Group, after the
    resource's `schemas`. `immutable`: attribute paths the caller does not let change once
    they hold a value (RFC 7643's "immutable"), in addition to the schema's read-only ones
    (`id`, `meta`, `groups`), which no operation may change (writing their current value is
    no change). `remove_requires_match`: a `remove` whose value filter matches nothing is a
    400 noTarget (RFC 7644 Table 9's wording) rather than a successful no-op.

    Refusals (ScimError, 400): invalidPath (an attribute the schema does not declare, a
    malformed or misplaced filter), noTarget (a replace whose filter matches nothing, an add
    whose filter matches nothing and describes no entry), invalidValue (a value of the wrong
    shape), mutability (a read-only or immutable attribute changed, a required one removed).
    The result is not validated against the schema beyond that: the face does.
    """
    model = resource_type or _model_for(resource)
    patcher = _Patcher(resource, _Schema(model), remove_requires_match)
    guarded = patcher.guarded(immutable)
    before = {target.text: patcher.read(target) for target, _ in guarded}
    for operation in operations:
        patcher.apply(operation)
    patcher.tidy_extensions()
    for target, read_only in guarded:
        patcher.check_unchanged(target, before[target.text], read_only)
    return patcher.doc


class _Patcher:
    def __init__(
        self, resource: Mapping[str, Any], schema: _Schema, remove_requires_match: bool
    ) -> None:
        # A copy through JSON, which the resource is: several times faster than deepcopy.
        self.doc: dict[str, Any] = orjson.loads(orjson.dumps(resource))
        self.schema = schema
        self.remove_requires_match = remove_requires_match

    # -- dispatch

    def apply(self, operation: PatchOperation) -> None:
        if operation.path is None:
            self.write_object(operation.op, None, operation.value)
            return
        urn = self.schema.extension(operation.path)
        if urn is not None:
            self.on_extension(operation.op, urn, operation.value)
            return
        target = self.schema.resolve(operation.path, operation.target)
        if operation.op == "remove":
            self.remove(target, operation.value)
        else:
            self.write(operation.op, target, operation.value)

    def write_object(self, op: Op, urn: str | None, value: Mapping[str, Any]) -> None:
        """A path-less add or replace: each key an attribute (or a path, as Entra sends
        them), or an extension's URN holding an object of its attributes."""
        for key, item in value.items():
            if key.lower() == "schemas":
                continue
            extension = self.schema.extension(key) if urn is None else None
            if extension is not None:
                self.on_extension(op, extension, item)
                continue
            text = f"{urn}:{key}" if urn else key
            try:
                target = self.schema.resolve(text)
            except ScimError as exc:
                raise _error("invalidValue", f"{key!r}: {exc.detail}") from exc
            self.write(op, target, item)

    def on_extension(self, op: Op, urn: str, value: Any) -> None:
        if op == "remove" or value is None:
            self.doc.pop(urn, None)
        elif isinstance(value, dict):
            self.write_object(op, urn, value)
        else:
            raise _error("invalidValue", f"the value of {urn} is an object of its attributes")

    # -- where an attribute lives

    def host(self, target: _Target, *, create: bool) -> dict[str, Any] | None:
        if target.extension is None:
            return self.doc
        host = self.doc.get(target.extension)
        if not isinstance(host, dict):
            if not create:
                return None
            host = self.doc[target.extension] = {}
        return host

    def read(self, target: _Target) -> Any:
        host = self.host(target, create=False)
        value = None if host is None else host.get(target.attr)
        if target.sub is not None:
            return _get(value, target.sub) if isinstance(value, dict) else None
        return value

    # -- add and replace

    def write(self, op: Op, target: _Target, value: Any) -> None:
        if value is None and (target.filter is None or target.sub is None):
            self.remove(target, None)  # replace with null unassigns
            return
        if target.filter is not None:
            self.write_selected(op, target, value)
            return
        host = self.host(target, create=True)
        assert host is not None
        if target.sub is not None:
            parent = host.get(target.attr)
            host[target.attr] = _with(parent if isinstance(parent, dict) else {}, target.sub, value)
        elif target.multi:
            self.write_values(op, target, host, value)
        elif target.entry is not None:
            # A complex attribute takes sub-attributes, those not given are kept
            # (§3.5.2.1, §3.5.2.3).
            parent = host.get(target.attr)
            base = parent if isinstance(parent, dict) else {}
            host[target.attr] = {**base, **_complex(target, target.entry, value)}
        else:
            host[target.attr] = value

    def write_values(self, op: Op, target: _Target, host: dict[str, Any], value: Any) -> None:
        entries = [_value(target, item) for item in (value if isinstance(value, list) else [value])]
        current = host.get(target.attr) if op == "add" else None
        merged = _unique([*(current if isinstance(current, list) else []), *entries], target)
        if merged:
            host[target.attr] = _one_primary(merged, entries, target)
        else:  # an empty list is no value (RFC 7643 §2.5)
            host.pop(target.attr, None)

    def write_selected(self, op: Op, target: _Target, value: Any) -> None:
        """Write to the entries a value filter selects (`emails[type eq "work"].value`)."""
        assert target.filter is not None and target.entry is not None
        host = self.host(target, create=op == "add")
        entries = list(host.get(target.attr) or []) if host is not None else []
        chosen = [i for i, e in enumerate(entries) if self.selects(target, e)]
        if not chosen:
            chosen = [self.describe(op, target, host, entries)]
        for index in chosen:
            entries[index] = self.updated(target, entries[index], value)
        assert host is not None
        host[target.attr] = _one_primary(entries, [entries[i] for i in chosen], target)

    def describe(
        self, op: Op, target: _Target, host: dict[str, Any] | None, entries: list[Any]
    ) -> int:
        """An add whose filter matches nothing adds the entry the filter describes (RFC
        §3.5.2.1: a target that does not exist is added; Entra relies on it); a replace
        fails with noTarget, as §3.5.2.3 requires."""
        assert target.filter is not None and target.entry is not None
        described = _described(target.filter, target.entry) if op == "add" else None
        if described is None or host is None:
            raise _error("noTarget", f"no value of {target.attr} matches {target.text!r}")
        entries.append(described)
        return len(entries) - 1

    def updated(self, target: _Target, entry: Any, value: Any) -> dict[str, Any]:
        assert target.entry is not None and target.filter is not None
        if target.sub is not None:
            return _with(entry, target.sub, value)
        if not isinstance(value, dict):
            raise _error("invalidValue", f"{target.text!r}: the value is an object")
        merged = {**entry, **_complex(target, target.entry, value)}
        if not _matches(merged, target.filter, target.entry):
            raise _error("invalidValue", f"the value contradicts the filter of {target.text!r}")
        return merged

    def selects(self, target: _Target, entry: Any) -> bool:
        assert target.filter is not None and target.entry is not None
        return isinstance(entry, dict) and _matches(entry, target.filter, target.entry)

    # -- remove

    def remove(self, target: _Target, value: Any) -> None:
        if value is not None:
            self.remove_listed(target, value)
            return
        if target.filter is None and target.sub is None:
            _refuse_required(target)
        host = self.host(target, create=False)
        if host is None or target.attr not in host:
            return
        if target.filter is not None:
            self.remove_selected(target, host)
        elif target.sub is not None:
            parent = host[target.attr]
            if isinstance(parent, dict):
                parent.pop(_key(parent, target.sub) or target.sub, None)
                if not parent:
                    del host[target.attr]
        else:
            del host[target.attr]

    def remove_selected(self, target: _Target, host: dict[str, Any]) -> None:
        entries = host[target.attr] if isinstance(host[target.attr], list) else []
        chosen = [e for e in entries if self.selects(target, e)]
        if not chosen and self.remove_requires_match:
            raise _error("noTarget", f"no value of {target.attr} matches {target.text!r}")
        if target.sub is not None:
            for entry in chosen:
                entry.pop(_key(entry, target.sub) or target.sub, None)
            return
        removed = {id(entry) for entry in chosen}
        kept = [entry for entry in entries if id(entry) not in removed]
        if kept:
            host[target.attr] = kept
        else:
            del host[target.attr]

    def remove_listed(self, target: _Target, value: Any) -> None:
        """Entra's removal by value: `{"op": "Remove", "path": "members", "value":
        [{"value": "id"}]}` removes the entries whose `value` is listed (an entry without a
        `value` is matched on all it lists); a listed entry that is not there is no error."""
        listed = value if isinstance(value, list) else [value]
        if target.filter is not None or target.sub is not None or target.entry is None:
            raise _error("invalidValue", f"{target.text!r}: a remove takes no value here")
        if not all(isinstance(item, dict) and _held(item) for item in listed):
            raise _error("invalidValue", f"{target.text!r}: the values to remove are objects")
        host = self.host(target, create=False)
        if host is None or target.attr not in host:
            return
        selector = _Selector(target, listed)
        current = host[target.attr]
        if not target.multi:
            if isinstance(current, dict) and selector.selects(current):
                del host[target.attr]
            return
        kept = [e for e in current if not selector.selects(e)]
        if kept:
            host[target.attr] = kept
        else:
            del host[target.attr]

    # -- after the operations

    def tidy_extensions(self) -> None:
        """`schemas` lists the extensions the resource holds attributes of (RFC 7643 §3)."""
        schemas = [s for s in self.doc.get("schemas") or [] if isinstance(s, str)]
        for urn in self.schema.extensions.values():
            held = self.doc.get(urn)
            if isinstance(held, dict) and not [v for v in held.values() if v is not None]:
                del self.doc[urn]
                held = None
            listed = urn.lower() in _lowered(schemas)
            if held is not None and not listed:
                schemas.append(urn)
            elif held is None and listed:
                schemas = [s for s in schemas if s.lower() != urn.lower()]
        self.doc["schemas"] = schemas

    def guarded(self, immutable: Collection[str]) -> list[tuple[_Target, bool]]:
        """The attributes to compare before and after: (target, read-only?)."""
        targets = [(self.schema.resolve(path), False) for path in immutable]
        for model, prefix in self.schema.models():
            for name in model.model_fields:
                if _alias(model, name).lower() in self.schema.extensions:
                    continue
                if model.get_field_annotation(name, Mutability) == Mutability.read_only:
                    targets.append((self.schema.resolve(prefix + _alias(model, name)), True))
        return targets

    def check_unchanged(self, target: _Target, before: Any, read_only: bool) -> None:
        after = self.read(target)
        if after == before or (not read_only and before in (None, "", [], {})):
            return
        kind = "read-only" if read_only else "immutable"
        raise _error("mutability", f"{target.text} is {kind}")


def _with(entry: Mapping[str, Any], sub: str, value: Any) -> dict[str, Any]:
    """The entry with its sub-attribute `sub` (under any spelling) set to `value`, or
    without it for None."""
    updated = {key: item for key, item in entry.items() if key.lower() != sub.lower()}
    return updated if value is None else {**updated, sub: value}


def _refuse_required(target: _Target) -> None:
    if target.model.get_field_annotation(target.field, Required) == Required.true:
        raise _error("mutability", f"{target.attr} is required and cannot be removed")


def _complex(target: _Target, model: type[BaseModel], value: Any) -> dict[str, Any]:
    """A complex value with its keys in their canonical case. A bare value stands for
    `{"value": ...}` where the attribute has one (Entra sends the manager's id alone)."""
    if not isinstance(value, dict):
        if _find(model, "value") is None or isinstance(value, list):
            raise _error("invalidValue", f"{target.text!r}: the value is an object")
        value = {"value": value}
    canonical = {}
    for key, item in value.items():
        name = _find(model, key)
        canonical[_alias(model, name) if name is not None else key] = item
    return canonical


def _value(target: _Target, item: Any) -> Any:
    return _complex(target, target.entry, item) if target.entry is not None else item


def _identity(target: _Target, entry: Any) -> tuple[str, Any]:
    """What makes two values of a multi-valued attribute the same one: a reference (a
    group's member) is its `value` alone, whatever `display` or `$ref` come with it; any
    other entry is all it holds."""
    model = target.entry
    if model is not None and isinstance(entry, dict) and _find(model, "$ref"):
        key = _get(entry, "value")
        if isinstance(key, str) and not _case_exact(model, "value"):
            key = key.lower()
        if key is not None and not isinstance(key, dict | list):
            return ("ref", key)
    if isinstance(entry, dict):
        entry = {k: v for k, v in entry.items() if v is not None}
    return ("entry", orjson.dumps(entry, option=orjson.OPT_SORT_KEYS))


def _unique(entries: list[Any], target: _Target) -> list[Any]:
    """The entries without repeats, first occurrence kept (an add of a value already
    there changes nothing, RFC 7644 §3.5.2.1)."""
    seen: set[tuple[str, Any]] = set()
    unique = []
    for entry in entries:
        identity = _identity(target, entry)
        if identity not in seen:
            seen.add(identity)
            unique.append(entry)
    return unique


def _one_primary(entries: list[Any], written: list[Any], target: _Target) -> list[Any]:
    """A value just made primary unmarks the others (RFC 7644 §3.5.2)."""
    if target.entry is None or _find(target.entry, "primary") is None:
        return entries
    marked = [e for e in written if isinstance(e, dict) and _get(e, "primary") is True]
    if len(marked) > 1:
        raise _error("invalidValue", f"{target.attr}: more than one value marked primary")
    if not marked:
        return entries
    return [_unmarked(e) if e is not marked[0] else e for e in entries]


def _unmarked(entry: Any) -> Any:
    if isinstance(entry, dict) and _get(entry, "primary") is True:
        return {**entry, "primary": False}
    return entry


def _held(item: Mapping[str, Any]) -> bool:
    return any(value is not None for value in item.values())


class _Selector:
    """Entra's listed values to remove, matched by `value` through a set when they have one."""

    def __init__(self, target: _Target, listed: list[dict[str, Any]]) -> None:
        assert target.entry is not None
        self.entry_model = target.entry
        self.case_exact = _case_exact(target.entry, "value")
        self.values: set[Any] = set()
        self.filters: list[FilterNode] = []
        for item in listed:
            value = _get(item, "value")
            if value is not None:
                self.values.add(self.fold(value))
            else:
                self.filters.append(_all_of(item))

    def fold(self, value: Any) -> Any:
        return value.lower() if isinstance(value, str) and not self.case_exact else value

    def selects(self, entry: Any) -> bool:
        if not isinstance(entry, dict):
            return False
        value = _get(entry, "value")
        if value is not None and self.fold(value) in self.values:
            return True
        return any(_matches(entry, node, self.entry_model) for node in self.filters)


def _all_of(item: Mapping[str, Any]) -> FilterNode:
    try:
        terms = tuple(
            Comparison(AttrPath(key), CompareOperator.eq, value)
            for key, value in item.items()
            if value is not None
        )
    except ValueError as exc:  # a key that is no attribute name
        raise _error("invalidValue", str(exc)) from exc
    return LogicalExpr(LogicalOperator.and_, terms)
