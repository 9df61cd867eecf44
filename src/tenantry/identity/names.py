"""How usernames and e-mail addresses are compared: one key per login name."""

from __future__ import annotations

import re

_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")


def username_key(username: str) -> str:
    """Usernames are unique ignoring case: `Alice@X.io` and `alice@x.io` are one user."""
    return username.strip().casefold()


def looks_like_email(value: str) -> bool:
    return bool(_EMAIL.match(value))
