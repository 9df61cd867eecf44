"""Identifiers: cuid-style ids (25 lowercase alphanumerics starting with 'c'), time-ordered."""

from __future__ import annotations

import re
import secrets
import time

_ALPHABET = "0123456789abcdefghijklmnopqrstuvwxyz"
ID_PATTERN = r"^c[0-9a-z]{24}$"
_ID_RE = re.compile(ID_PATTERN)


def _base36(number: int, width: int) -> str:
    digits = []
    for _ in range(width):
        number, rest = divmod(number, 36)
        digits.append(_ALPHABET[rest])
    return "".join(reversed(digits))


def new_id() -> str:
    """'c' + 8 chars of milliseconds + 16 random chars (~82 bits): sortable and unguessable."""
    millis = time.time_ns() // 1_000_000
    return "c" + _base36(millis, 8) + "".join(secrets.choice(_ALPHABET) for _ in range(16))


def is_id(value: str) -> bool:
    return bool(_ID_RE.match(value))
