"""POST /logout: Unleash's sign-out, and the pages around it.

Unleash (routes/logout.js) ends every session of the signed-in user (`deleteSessionsForUser`,
not only the one signing out), clears the `unleash-session` cookie and redirects to
`/signed-out` (302). Here the domain's `sessions.revoke_sessions` ends them (audited as
`auth.sessions.revoke`), on every worker at once: the old cookie is then a session nobody has
(AuthenticationRequired, with the login hint). Signing out with a personal token ends its
user's sessions too, as in Unleash; an API token has no user and no session: just the
redirect. Like all of Unleash's /logout, it needs a credential first (no credential: 401).

GET /logout (once signed in) and GET /signed-out are Unleash's web pages (faces/unleash/
pages.py); any other method there, Express's HTML 404."""

from __future__ import annotations

from fastapi import Request
from fastapi.responses import PlainTextResponse, Response

from tenantry.faces.http import Db, face_router
from tenantry.faces.unleash.auth import COOKIE, SigningOut, signed_in
from tenantry.faces.unleash.fallback import web_page_or_none
from tenantry.faces.unleash.simple import secure_cookies
from tenantry.identity import sessions

router = face_router(tags=["Auth"])
SIGNED_OUT = "/signed-out"
# The mounts of the outer app that lead here (exact paths: a Starlette Mount would redirect).
PATHS = ("/logout", "/logout/", SIGNED_OUT, SIGNED_OUT + "/")


@router.post("/logout", include_in_schema=False)
async def logout(request: Request, caller: SigningOut, db: Db) -> Response:
    if caller.user is not None:
        await sessions.revoke_sessions(db, caller, caller.user.id)
    response = PlainTextResponse(
        f"Found. Redirecting to {SIGNED_OUT}", status_code=302, headers={"location": SIGNED_OUT}
    )
    response.delete_cookie(
        COOKIE, path="/", httponly=True, samesite="lax", secure=secure_cookies(request)
    )
    return response


async def around_logout(request: Request) -> Response:
    """Every other method of /logout (after authentication, as Unleash guards all of it) and
    of /signed-out (which needs none)."""
    if request.url.path.startswith("/logout"):
        await signed_in(request)
    return await web_page_or_none(request)
