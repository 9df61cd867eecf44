"""Conditions on a directory's records, and the SQL they compile to.

A face that lets its callers search (a SCIM `filter`, say) translates their expression into
this small tree over *domain field names*; the use case that runs the query names the column
each field is, and `compile_predicate` builds the WHERE clause. No vendor's operator or
attribute name appears here.

The logic is two-valued on purpose: every leaf is true or false, never NULL, so `Not` means
"everything the inner condition does not match", rows lacking the field included. A field that
holds no value compares like null: `eq` and the ordering and substring operators never match
it, `ne` always does (an absent value is not identical to any given one), `Present` does not.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal

from sqlalchemy import Boolean, DateTime, Numeric, String, and_, false, func, not_, or_, true
from sqlalchemy.orm import QueryableAttribute
from sqlalchemy.sql.elements import ColumnElement
from sqlalchemy.types import Integer, TypeDecorator, TypeEngine

from tenantry.errors import FieldError, Invalid

Op = Literal["eq", "ne", "contains", "starts", "ends", "gt", "ge", "lt", "le"]
Value = str | int | float | bool | None

OPS: frozenset[str] = frozenset({"eq", "ne", "contains", "starts", "ends", "gt", "ge", "lt", "le"})
_ORDERING = frozenset({"gt", "ge", "lt", "le"})
_SUBSTRING = frozenset({"contains", "starts", "ends"})
# Deeper trees than any face builds (SCIM's parser stops at 32); the bound keeps the
# recursion below finite for a tree built by anyone else.
MAX_DEPTH = 64
# The escape character of the LIKE patterns: not a backslash, which PostgreSQL's and
# SQLite's string syntaxes treat differently.
_ESCAPE = "/"


@dataclass(frozen=True, slots=True)
class Compare:
    field: str
    op: Op
    value: Value


@dataclass(frozen=True, slots=True)
class Present:
    """The field holds a value: not null and, for text, not the empty string."""

    field: str


@dataclass(frozen=True, slots=True)
class And:
    terms: tuple[Predicate, ...]


@dataclass(frozen=True, slots=True)
class Or:
    terms: tuple[Predicate, ...]


@dataclass(frozen=True, slots=True)
class Not:
    term: Predicate


@dataclass(frozen=True, slots=True)
class Constant:
    """Always true or always false (what a condition on a value every record shares
    reduces to, e.g. an e-mail's type when every address is a work address)."""

    value: bool


Predicate = Compare | Present | And | Or | Not | Constant
# A mapped attribute (User.email) or any column expression.
Column = ColumnElement[Any] | QueryableAttribute[Any]


@dataclass(frozen=True)
class Field:
    """How a field is queried.

    `case_exact`: text compares as written (otherwise case-insensitively, as `lower()` of
    the database folds it: all of Unicode on PostgreSQL, ASCII only on SQLite).
    `exists`: the field is one of many values per record (a group's members), held in
    `column` of another table; given the condition on one such value, it returns the
    correlated EXISTS that says some value of the record meets it.
    """

    column: Column
    case_exact: bool = False
    exists: Callable[[ColumnElement[bool]], ColumnElement[bool]] | None = None


class InvalidPredicate(Invalid):
    """A condition the field cannot answer: an operator its type has no meaning for, or a
    value of the wrong type (a date that is not ISO 8601, text compared with a number)."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message, [FieldError(field, "invalid", message)])
        self.field = field


Kind = Literal["text", "datetime", "boolean", "number"]


def compile_predicate(
    predicate: Predicate, columns: Mapping[str, Column | Field]
) -> ColumnElement[bool]:
    """The WHERE clause matching exactly the rows `predicate` describes, for the columns
    that `columns` names for each field. A field it does not name is an InvalidPredicate."""
    return _compile(predicate, columns, 0)


def _compile(
    predicate: Predicate, columns: Mapping[str, Column | Field], depth: int
) -> ColumnElement[bool]:
    if depth > MAX_DEPTH:
        raise InvalidPredicate("", f"the condition nests more than {MAX_DEPTH} levels")
    match predicate:
        case Constant(value):
            return true() if value else false()
        case And(terms):
            return and_(*(_compile(t, columns, depth + 1) for t in terms)) if terms else true()
        case Or(terms):
            return or_(*(_compile(t, columns, depth + 1) for t in terms)) if terms else false()
        case Not(term):
            return not_(_compile(term, columns, depth + 1))
        case Present(name):
            spec = _field(columns, name)
            return _many(spec, _present(spec.column, _kind(name, spec.column)))
        case Compare(name, op, value):
            return _compare(name, _field(columns, name), op, value)
    raise TypeError(f"not a predicate: {predicate!r}")


def _field(columns: Mapping[str, Column | Field], name: str) -> _Spec:
    spec = columns.get(name)
    if spec is None:
        raise InvalidPredicate(name, f"{name!r} cannot be searched")
    if not isinstance(spec, Field):
        return _Spec(_expression(spec), False, None)
    return _Spec(_expression(spec.column), spec.case_exact, spec.exists)


def _expression(column: Column) -> ColumnElement[Any]:
    return column if isinstance(column, ColumnElement) else column.expression


@dataclass(frozen=True, slots=True)
class _Spec:
    """A Field whose column is an expression."""

    column: ColumnElement[Any]
    case_exact: bool
    exists: Callable[[ColumnElement[bool]], ColumnElement[bool]] | None


def _many(spec: _Spec, condition: ColumnElement[bool]) -> ColumnElement[bool]:
    return condition if spec.exists is None else spec.exists(condition)


def _compare(name: str, spec: _Spec, op: str, value: Value) -> ColumnElement[bool]:
    if op not in OPS:
        raise InvalidPredicate(name, f"unknown operator {op!r}")
    kind = _kind(name, spec.column)
    if op in _SUBSTRING and kind != "text":
        raise InvalidPredicate(name, f"{op} has no meaning for {name}")
    if value is None:
        # Comparing with null asks whether the field holds a value at all.
        if op not in ("eq", "ne"):
            raise InvalidPredicate(name, f"{op} needs a value, not null")
        present = _many(spec, _present(spec.column, kind))
        return not_(present) if op == "eq" else present
    if op == "ne":
        # Not equal = not (some value equals): rows without the field match too.
        return not_(_many(spec, _matches(name, spec, kind, "eq", value)))
    return _many(spec, _matches(name, spec, kind, op, value))


def _matches(name: str, spec: _Spec, kind: Kind, op: str, value: Value) -> ColumnElement[bool]:
    """The condition on one value, false (not NULL) where the column is null."""
    column = spec.column
    match kind:
        case "text":
            condition = _text(name, column, op, value, spec.case_exact)
        case "datetime":
            condition = _ordered(name, column, op, _datetime(name, value))
        case "number":
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise InvalidPredicate(name, f"{name} compares numbers")
            condition = _ordered(name, column, op, value)
        case "boolean":
            if not isinstance(value, bool):
                raise InvalidPredicate(name, f"{name} compares true or false")
            if op != "eq":
                raise InvalidPredicate(name, f"{op} has no meaning for true or false")
            condition = column == value
    return and_(column.is_not(None), condition)


def _text(
    name: str, column: ColumnElement[Any], op: str, value: Value, case_exact: bool
) -> ColumnElement[bool]:
    if not isinstance(value, str):
        raise InvalidPredicate(name, f"{name} compares text")
    left: ColumnElement[Any] = column if case_exact else func.lower(column)
    right = value if case_exact else value.lower()
    if op in _SUBSTRING:
        return _exact_substring(column, op, value) if case_exact else _like(left, op, right)
    return _ordered(name, left, op, right)


def _like(left: ColumnElement[Any], op: str, value: str) -> ColumnElement[bool]:
    """`lower(column) LIKE pattern` with the value's %, _ and escape character escaped, so
    that `co "50%_off"` finds that text and not "50 percent off"."""
    escaped = (
        value.replace(_ESCAPE, _ESCAPE * 2).replace("%", _ESCAPE + "%").replace("_", _ESCAPE + "_")
    )
    pattern = {"contains": f"%{escaped}%", "starts": f"{escaped}%", "ends": f"%{escaped}"}[op]
    return left.like(pattern, escape=_ESCAPE)


def _exact_substring(column: ColumnElement[Any], op: str, value: str) -> ColumnElement[bool]:
    """Case-exact substring tests without LIKE, which SQLite folds ASCII case in."""
    if not value:
        return true()
    size = len(value)
    if op == "starts":
        return func.substr(column, 1, size) == value
    if op == "ends":
        return and_(
            func.length(column) >= size,
            func.substr(column, func.length(column) - size + 1) == value,
        )
    # Removing every occurrence changes the text exactly when it occurs.
    return func.replace(column, value, "") != column


def _ordered(
    name: str, left: ColumnElement[Any], op: str, right: str | float | datetime
) -> ColumnElement[bool]:
    match op:
        case "eq":
            return left == right
        case "gt":
            return left > right
        case "ge":
            return left >= right
        case "lt":
            return left < right
        case "le":
            return left <= right
    raise InvalidPredicate(name, f"{op} has no meaning for {name}")


def _present(column: ColumnElement[Any], kind: Kind) -> ColumnElement[bool]:
    if kind == "text":
        return and_(column.is_not(None), column != "")
    return column.is_not(None)


def _datetime(name: str, value: Value) -> datetime:
    """An ISO 8601 timestamp; one without a zone is read as UTC, the directory's zone."""
    if not isinstance(value, str):
        raise InvalidPredicate(name, f"{name} compares ISO 8601 timestamps")
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise InvalidPredicate(name, f"{value!r} is not an ISO 8601 timestamp") from None
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment


def _kind(name: str, column: ColumnElement[Any]) -> Kind:
    type_: TypeEngine[Any] = column.type
    if isinstance(type_, TypeDecorator):
        type_ = type_.impl_instance
    if isinstance(type_, Boolean):
        return "boolean"
    if isinstance(type_, DateTime):
        return "datetime"
    if isinstance(type_, Integer | Numeric):
        return "number"
    if isinstance(type_, String):
        return "text"
    raise InvalidPredicate(name, f"{name} cannot be searched")
