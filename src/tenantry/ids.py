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


_RANDOM_SPAN = 36**16  # 16 base-36 digits, about 82.7 bits


def _random_digits() -> int:
    """Uniform in [0, 36**16) from one call to the OS's generator (not one per digit):
    rejection sampling over 83 random bits, accepted 82% of the time."""
    while True:
        number = secrets.randbits(83)
        if number < _RANDOM_SPAN:
            return number


def new_id() -> str:
    """'c' + 8 chars of milliseconds + 16 random chars (~82 bits): sortable and unguessable."""
    millis = time.time_ns() // 1_000_000
    return "c" + _base36(millis, 8) + _base36(_random_digits(), 16)


def is_id(value: str) -> bool:
    return bool(_ID_RE.match(value))
