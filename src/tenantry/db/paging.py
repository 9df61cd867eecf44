"""Offset pagination and `field:asc|desc` sorts shared by the list use cases."""

from __future__ import annotations

import base64
import binascii
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from sqlalchemy import ColumnElement
from sqlalchemy.orm import InstrumentedAttribute

from tenantry.errors import FieldError, Invalid

T = TypeVar("T")
MAX_LIMIT = 1000


@dataclass(frozen=True)
class Page(Generic[T]):
    items: list[T]
    total: int
    offset: int
    limit: int


@dataclass(frozen=True)
class Sort:
    field: str
    descending: bool


def parse_sorts(raw: Sequence[str], allowed: Sequence[str]) -> list[Sort]:
    """`["fullName:desc", "id:asc"]` -> sorts; anything else is a 400 naming the bad item."""
    sorts = []
    for index, item in enumerate(raw):
        field, sep, direction = item.partition(":")
        if not sep or field not in allowed or direction not in ("asc", "desc"):
            raise Invalid(
                f"invalid sort {item!r}: expected one of {', '.join(allowed)} "
                "followed by ':asc' or ':desc'",
                [
                    FieldError(
                        f"sorts[{index}]", "invalid", "must be '<field>:asc' or '<field>:desc'"
                    )
                ],
            )
        sorts.append(Sort(field, direction == "desc"))
    return sorts


def opaque_cursor(text: str) -> str:
    """`text` (ASCII) as a cursor clients pass back without reading: base64url, unpadded."""
    return base64.urlsafe_b64encode(text.encode("ascii")).decode("ascii").rstrip("=")


def cursor_text(cursor: str) -> str | None:
    """The text inside a cursor made by opaque_cursor, or None when it is not one."""
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        return base64.urlsafe_b64decode(padded.encode("ascii")).decode("ascii")
    except (UnicodeError, ValueError, binascii.Error):
        return None


def invalid_cursor() -> Invalid:
    return Invalid("invalid cursor", [FieldError("cursor", "invalid", "not a cursor we gave")])


def check_window(offset: int, limit: int) -> None:
    errors = []
    if offset < 0:
        errors.append(FieldError("offset", "out_of_range", "must be >= 0"))
    if not 0 <= limit <= MAX_LIMIT:
        errors.append(FieldError("limit", "out_of_range", f"must be between 0 and {MAX_LIMIT}"))
    if errors:
        raise Invalid("invalid pagination", errors)


def order_by(
    sorts: Sequence[Sort],
    columns: Mapping[str, InstrumentedAttribute[Any] | ColumnElement[Any]],
    tiebreak: InstrumentedAttribute[Any],
) -> list[ColumnElement[Any]]:
    """ORDER BY the requested sorts, then the id so that pages never overlap or skip.

    The id runs in the direction of the last sort: `(full_name DESC, id DESC)` is a backward
    scan of the (full_name, id) index, where `(full_name DESC, id ASC)` would need a sort."""
    clauses: list[ColumnElement[Any]] = [
        columns[s.field].desc() if s.descending else columns[s.field].asc() for s in sorts
    ]
    if not any(columns[s.field] is tiebreak for s in sorts):
        descending = bool(sorts) and sorts[-1].descending
        clauses.append(tiebreak.desc() if descending else tiebreak.asc())
    return clauses
