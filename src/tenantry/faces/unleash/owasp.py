"""Unleash's password strength test: the npm package owasp-password-strength-test (1.3.0) as
Unleash 8.2 configures it (`allowPassphrases: false`: every test applies to every length),
with its messages, for Unleash's `OwaspValidationError`.

Unleash accepts a password only if it passes all of these; Tenantry's own policy (the domain's,
identity/passwords.py: not among the commonest passwords, not the username, ...) applies on top
of it, so a password set through this face passes both. Lengths and character classes are
counted as JavaScript counts them (UTF-16 code units; ASCII letters and digits), so that the
answer is Unleash's for every input."""

from __future__ import annotations

import re

MIN_LENGTH = 10
MAX_LENGTH = 128
_LOWER = re.compile(r"[a-z]")
_UPPER = re.compile(r"[A-Z]")
_DIGIT = re.compile(r"[0-9]")
_SPECIAL = re.compile(r"[^A-Za-z0-9]")
_LINE_TERMINATORS = frozenset({0x0A, 0x0D, 0x2028, 0x2029})  # what JavaScript's `.` skips


def _units(password: str) -> list[int]:
    data = password.encode("utf-16-le", "surrogatepass")
    return [int.from_bytes(data[i : i + 2], "little") for i in range(0, len(data), 2)]


def _three_in_a_row(units: list[int]) -> bool:
    """JavaScript's /(.)\\1{2,}/ over the password's UTF-16 code units."""
    run, previous = 0, None
    for unit in units:
        run = run + 1 if unit == previous and unit not in _LINE_TERMINATORS else 1
        if run >= 3:
            return True
        previous = unit
    return False


def errors(password: str) -> list[str]:
    """What the test says of `password`, in its order; empty when it is strong."""
    units = _units(password)
    found = []
    if len(units) < MIN_LENGTH:
        found.append(f"The password must be at least {MIN_LENGTH} characters long.")
    if len(units) > MAX_LENGTH:
        found.append(f"The password must be fewer than {MAX_LENGTH} characters.")
    if _three_in_a_row(units):
        found.append("The password may not contain sequences of three or more repeated characters.")
    if not _LOWER.search(password):
        found.append("The password must contain at least one lowercase letter.")
    if not _UPPER.search(password):
        found.append("The password must contain at least one uppercase letter.")
    if not _DIGIT.search(password):
        found.append("The password must contain at least one number.")
    if not _SPECIAL.search(password):
        found.append("The password must contain at least one special character.")
    return found
