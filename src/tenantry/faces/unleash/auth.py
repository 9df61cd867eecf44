"""Unleash's credentials: the raw token as the whole Authorization value, `Bearer <token>`,
or the `unleash-session` cookie set by /auth/simple/login.

The Authorization header, when there is one, is the credential and the cookie is not read
(faces/credentials.py reads the header, and refuses more than one). A request authenticated
by the cookie alone is one a browser may have been tricked into sending (CSRF): when it would
change something (any method but GET, HEAD and OPTIONS) it must say `Content-Type:
application/json`, which a cross-site form cannot send and a cross-site script can send only
after a CORS preflight that Tenantry does not grant. Otherwise it is refused as Unleash
refuses a body in another content type: 415 ContentTypeError, before the route reads or
writes anything. Unleash's own web client sends that header on every call."""

from __future__ import annotations

from collections.abc import Awaitable
from dataclasses import dataclass
from typing import Annotated, Literal
from urllib.parse import unquote

from fastapi import Depends, Request

from tenantry.errors import Unauthenticated
from tenantry.faces.credentials import authorization
from tenantry.faces.http import SAFE_METHODS, Db, principal_from_secret, reading_principal
from tenantry.faces.unleash.errors import AuthenticationRequired, ContentTypeError
from tenantry.identity.principals import Principal

COOKIE = "unleash-session"
JSON = "application/json"


@dataclass(frozen=True, slots=True)
class Presented:
    secret: str
    source: Literal["header", "cookie"]


def presented(request: Request) -> Presented | None:
    """The credential the request presents, and where it came from."""
    header = authorization(request.scope).strip()
    if header:
        scheme, _, rest = header.partition(" ")
        if scheme.lower() == "bearer" and rest.strip():
            return Presented(rest.strip(), "header")
        return Presented(header, "header")
    cookie = request.cookies.get(COOKIE)
    if cookie:
        value = unquote(cookie)
        return Presented(value[2:] if value.startswith("s:") else value, "cookie")
    return None


def presented_secret(request: Request) -> str | None:
    found = presented(request)
    return None if found is None else found.secret


def content_type_error(kind: str) -> ContentTypeError:
    """Unleash's answer to a body in a content type it does not accept (capture 27)."""
    return ContentTypeError(
        f"We do not accept the content-type you provided ({kind or 'none'}). Try using one "
        f"of the content-types we do accept instead ({JSON}) and make sure the "
        "body is in the corresponding format."
    )


def media_type(request: Request) -> str:
    return request.headers.get("content-type", "").split(";")[0].strip().lower()


def require_json_for_cookie(request: Request, found: Presented) -> None:
    """A state change authenticated by the session cookie alone must be JSON (see above)."""
    if found.source != "cookie" or request.method in SAFE_METHODS:
        return
    kind = media_type(request)
    if kind != JSON:
        raise content_type_error(kind)


async def _authenticated(found: Presented, caller: Awaitable[Principal]) -> Principal:
    """The caller, or the refusal Unleash gives the credential: a session cookie it does not
    know (a stale one, after sign-out) is no credential at all to Unleash (no session user),
    so the login hint (`AuthenticationRequired` with `path`, `type`, `defaultHidden`) that the
    web client needs to show its sign-in page; a bad header is `UnauthorizedError`."""
    try:
        return await caller
    except Unauthenticated as refused:
        if found.source == "cookie":
            raise AuthenticationRequired("no session") from refused
        raise


async def unleash_principal(request: Request, db: Db) -> Principal:
    found = presented(request)
    if found is None:
        raise AuthenticationRequired("no credential")
    principal = await _authenticated(found, principal_from_secret(request, db, found.secret))
    # After authenticating, so that a bad cookie is the 401 every route answers; the refusal
    # rolls the request's transaction back (the credential's use stamp included).
    require_json_for_cookie(request, found)
    return principal


async def signing_out(request: Request, db: Db) -> Principal:
    """The caller of POST /logout, in the request's write transaction. Unleash's web client
    signs out with a plain HTML form (not JSON), so the JSON rule above does not apply here:
    a cross-site form cannot carry the SameSite=Lax cookie, and the worst it could do is sign
    someone out."""
    found = presented(request)
    if found is None:
        raise AuthenticationRequired("no credential")
    return await _authenticated(found, principal_from_secret(request, db, found.secret))


async def signed_in(request: Request) -> Principal:
    """The caller of a request that changes nothing whatever its method (Unleash's answers
    where no route serves the path): authenticated as a read, without the JSON rule above."""
    found = presented(request)
    if found is None:
        raise AuthenticationRequired("no credential")
    return await _authenticated(found, reading_principal(request, found.secret))


Caller = Annotated[Principal, Depends(unleash_principal)]
SigningOut = Annotated[Principal, Depends(signing_out)]
