"""SCIM filters (RFC 7644 §3.4.2.2): parsing, and translation into the directory's predicates.

The grammar is scim2-models' (a lark LALR parser of the RFC's ABNF with its errata, and
Microsoft Entra's `emails[type eq "work"].value eq "x"`); this module bounds what it is given,
words its refusals as SCIM's `invalidFilter`, and maps the attribute paths of a parsed filter
onto the domain field names a caller names, so that the directory never sees a SCIM name.

Tenantry keeps one e-mail address per user, a work address. The value filter
`emails[type eq "work" and value co "@example.com"]` is therefore a condition on that one
address: the caller says which sub-attributes every such entry holds with one value
(`fixed={"emails.type": "work", "emails.primary": True}`), and a comparison on one of them
reduces to "the user has an address" or to a constant.
"""

from __future__ import annotations

from collections.abc import Mapping

from scim2_models import InvalidFilterException, ScimFilter
from scim2_models.path import (
    AttrPath,
    CompareOperator,
    Comparison,
    FilterNode,
    LogicalExpr,
    LogicalOperator,
    Not,
    Present,
    ValuePath,
)

from tenantry.directory import predicates as p
from tenantry.directory.predicates import InvalidPredicate, Predicate, Value
from tenantry.faces.scim.errors import ScimError

__all__ = [
    "MAX_FILTER_DEPTH",
    "MAX_FILTER_LENGTH",
    "AttrPath",
    "Comparison",
    "FilterNode",
    "LogicalExpr",
    "Not",
    "Present",
    "ValuePath",
    "filter_depth",
    "filter_error",
    "parse_filter",
    "to_predicate",
]

MAX_FILTER_LENGTH = 4096
MAX_FILTER_DEPTH = 32

_OPS: dict[CompareOperator, p.Op] = {
    CompareOperator.eq: "eq",
    CompareOperator.ne: "ne",
    CompareOperator.co: "contains",
    CompareOperator.sw: "starts",
    CompareOperator.ew: "ends",
    CompareOperator.gt: "gt",
    CompareOperator.ge: "ge",
    CompareOperator.lt: "lt",
    CompareOperator.le: "le",
}


def invalid_filter(detail: str) -> ScimError:
    return ScimError(400, "invalidFilter", detail)


def parse_filter(
    text: str, *, max_length: int = MAX_FILTER_LENGTH, max_depth: int = MAX_FILTER_DEPTH
) -> FilterNode:
    """The syntax tree of a filter, or ScimError(400, invalidFilter). Operators, `and`,
    `or`, `not`, `pr` and the literals true/false/null are case-insensitive; attribute
    names keep their spelling (compare them with `.lower()`)."""
    if len(text) > max_length:
        raise invalid_filter(f"the filter is longer than {max_length} characters")
    if not text.strip():
        raise invalid_filter("the filter is empty")
    try:
        node = ScimFilter(text).ast
    except InvalidFilterException as exc:
        raise invalid_filter(exc.detail) from exc
    if filter_depth(node) > max_depth:
        raise invalid_filter(f"the filter nests more than {max_depth} expressions")
    return node


def filter_depth(node: FilterNode) -> int:
    """How many expressions nest in a filter, counted without recursion (the parser already
    refuses trees deeper than 32; this lets a caller ask for less)."""
    deepest = 0
    stack: list[tuple[FilterNode, int]] = [(node, 1)]
    while stack:
        current, depth = stack.pop()
        deepest = max(deepest, depth)
        if isinstance(current, LogicalExpr):
            stack.extend((term, depth + 1) for term in current.terms)
        elif isinstance(current, Not):
            stack.append((current.expr, depth + 1))
        elif isinstance(current, ValuePath):
            stack.append((current.val_filter, depth + 1))
    return deepest


def filter_error(exc: InvalidPredicate) -> ScimError:
    """The directory's refusal of a condition (a bad date, a number compared with text) in
    SCIM's words: the filter, not the resource, is what is wrong."""
    return invalid_filter(exc.message)


def to_predicate(
    node: FilterNode,
    attributes: Mapping[str, str],
    *,
    fixed: Mapping[str, Value] | None = None,
    schema: str | None = None,
) -> Predicate:
    """The directory predicate a parsed filter stands for.

    `attributes` maps SCIM attribute paths (any case; a multi-valued attribute by its
    sub-attribute, `emails.value`) to domain field names. `fixed` gives sub-attributes that
    every entry of a single-entry attribute holds with one value (`emails.type`: "work"); the
    entry exists when its `.value` field is present. `schema` is the resource's core schema
    URN, which may prefix an attribute (`urn:ietf:params:scim:schemas:core:2.0:User:userName`).
    An attribute neither names is ScimError(400, invalidFilter).
    """
    return _Translator(attributes, fixed or {}, schema).translate(node, None)


class _Translator:
    def __init__(
        self, attributes: Mapping[str, str], fixed: Mapping[str, Value], schema: str | None
    ) -> None:
        self.attributes = {key.lower(): field for key, field in attributes.items()}
        self.fixed = {key.lower(): value for key, value in fixed.items()}
        self.schema = schema.lower() if schema else None

    def translate(self, node: FilterNode, within: str | None) -> Predicate:
        """`within`: the multi-valued attribute whose brackets `node` stands in."""
        if isinstance(node, LogicalExpr):
            terms = tuple(self.translate(term, within) for term in node.terms)
            return p.And(terms) if node.op == LogicalOperator.and_ else p.Or(terms)
        if isinstance(node, Not):
            return p.Not(self.translate(node.expr, within))
        if isinstance(node, Comparison):
            return self._comparison(node, within)
        if isinstance(node, Present):
            return self._present(node, within)
        if isinstance(node, ValuePath) and within is None and node.sub_attr is None:
            return self._value_path(node)
        raise invalid_filter(f"unsupported filter expression: {node}")

    def _comparison(self, node: Comparison, within: str | None) -> Predicate:
        key = self._key(node.attr_path, within)
        op = _OPS[node.op]
        if key in self.fixed:
            return self._on_fixed(key, op, node.value)
        return p.Compare(self._field(key, node.attr_path), op, node.value)

    def _present(self, node: Present, within: str | None) -> Predicate:
        key = self._key(node.attr_path, within)
        if key in self.fixed:
            value = self.fixed[key]
            held = value is not None and value != ""
            return p.Present(self._entry(key)) if held else p.Constant(False)
        return p.Present(self._field(key, node.attr_path))

    def _value_path(self, node: ValuePath) -> Predicate:
        head = self._key(node.attr_path, None)
        entry = self.attributes.get(f"{head}.value")
        if entry is None:
            raise invalid_filter(f"{node.attr_path} cannot be filtered by its values")
        return p.And((p.Present(entry), self.translate(node.val_filter, head)))

    def _key(self, attr_path: AttrPath, within: str | None) -> str:
        if within is not None:
            if attr_path.uri is not None or attr_path.sub_attr is not None:
                raise invalid_filter(f"{attr_path} is not a sub-attribute of {within}")
            return f"{within}.{attr_path.attr.lower()}"
        name = str(AttrPath(attr_path.attr, attr_path.sub_attr)).lower()
        uri = attr_path.uri.lower() if attr_path.uri else None
        return name if uri is None or uri == self.schema else f"{uri}:{name}"

    def _field(self, key: str, attr_path: AttrPath) -> str:
        field = self.attributes.get(key)
        # A multi-valued attribute compares its values: `emails co "x"` is emails.value's.
        if field is None and attr_path.sub_attr is None:
            field = self.attributes.get(f"{key}.value")
        if field is None:
            raise invalid_filter(f"{attr_path} is not an attribute that can be filtered")
        return field

    def _entry(self, key: str) -> str:
        entry = self.attributes.get(f"{key.rpartition('.')[0]}.value")
        if entry is None:
            raise invalid_filter(f"{key} is not an attribute that can be filtered")
        return entry

    def _on_fixed(self, key: str, op: p.Op, value: Value) -> Predicate:
        """A comparison on a sub-attribute every entry holds with the same value: true for
        the records that have the entry (or for those that lack it, as null compares)."""
        with_entry = _static(key, self.fixed[key], op, value)
        without = _static(key, None, op, value)
        if with_entry == without:
            return p.Constant(with_entry)
        present = p.Present(self._entry(key))
        return present if with_entry else p.Not(present)


def _static(key: str, actual: Value, op: p.Op, expected: Value) -> bool:
    """`actual op expected` by the rules the directory applies to a stored value."""
    if expected is None or actual is None:
        if op not in ("eq", "ne") and expected is None:
            raise invalid_filter(f"{key}: {op} needs a value, not null")
        equal = actual is None and expected is None
        return equal if op == "eq" else (not equal if op == "ne" else False)
    if isinstance(actual, bool) or isinstance(expected, bool):
        if not (isinstance(actual, bool) and isinstance(expected, bool)) or op not in (
            "eq",
            "ne",
        ):
            raise invalid_filter(f"{key} compares true or false with eq or ne")
        return (actual == expected) == (op == "eq")
    if not (isinstance(actual, str) and isinstance(expected, str)):
        raise invalid_filter(f"{key} compares text")
    return _static_text(actual.lower(), op, expected.lower())


def _static_text(left: str, op: p.Op, right: str) -> bool:
    match op:
        case "eq":
            return left == right
        case "ne":
            return left != right
        case "contains":
            return right in left
        case "starts":
            return left.startswith(right)
        case "ends":
            return left.endswith(right)
        case "gt":
            return left > right
        case "ge":
            return left >= right
        case "lt":
            return left < right
    return left <= right
