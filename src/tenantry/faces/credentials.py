"""The one reader of a request's `Authorization` header, for every face and the hot path.

A request carries at most one `Authorization` header. With two, one reader could take the
first and another the last: the hot path once cached the first one's answer under the last
one's digest, and any made-up second value then authenticated as the first's owner (issue 14,
finding 5). So every reader (the hot path's cache key, `bearer_secret`, ECE's ApiKey, Bearer
and Basic, Unleash's raw token) goes through `authorization`, and more than one header is
refused with `AmbiguousCredential`, a 401 in the face's own error body.

A header and a session cookie together are not ambiguous: the header wins and the cookie is
not read (a browser sends a stale cookie whether the client wants it or not; a client that
sets a header means it). Only the Unleash face accepts a cookie (see faces/unleash/auth.py).
"""

from __future__ import annotations

from collections.abc import Iterable

from starlette.types import Scope

from tenantry.errors import Unauthenticated

AUTHORIZATION = b"authorization"
AMBIGUOUS = "exactly one Authorization header is allowed"


class AmbiguousCredential(Unauthenticated):
    """More than one Authorization header: which one is the caller is not for us to guess."""

    def __init__(self) -> None:
        super().__init__(AMBIGUOUS)


def raw_authorization(headers: Iterable[tuple[bytes, bytes]]) -> bytes | None:
    """The value of the one Authorization header (ASGI's raw, lower-cased header pairs); None
    without one. Raises AmbiguousCredential when there are several, even with equal values."""
    found: bytes | None = None
    for name, value in headers:
        if name == AUTHORIZATION:
            if found is not None:
                raise AmbiguousCredential()
            found = value
    return found


def authorization(scope: Scope) -> str:
    """The request's Authorization value as text (latin-1, as Starlette decodes headers),
    "" without one. Raises AmbiguousCredential when there are several."""
    value = raw_authorization(scope.get("headers", ()))
    return "" if value is None else value.decode("latin-1")


def scheme_and_value(scope: Scope) -> tuple[str, str]:
    """(`scheme` lower-cased, the rest stripped) of the Authorization value: ("bearer", "x")
    for `Bearer  x `; ("", "") without a header."""
    scheme, _, value = authorization(scope).strip().partition(" ")
    return scheme.lower(), value.strip()
