"""The unleash face's one error table: every domain error as Unleash's body {id, name,
message, details}, with the names, statuses and messages Unleash 8.2 uses."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from typing import Any

from fastapi import Request
from fastapi.responses import HTMLResponse, Response

from tenantry.errors import (
    Conflict,
    DomainError,
    ElevationRequired,
    Forbidden,
    Invalid,
    NotFound,
    SignInRefused,
    Unauthenticated,
)
from tenantry.faces.http import DEFAULT_STATUS, JSONResponse
from tenantry.faces.unleash.pages import NO_PAGE_HEADERS, no_page
from tenantry.identity import passwords
from tenantry.identity.password_history import PasswordReused
from tenantry.identity.personal_tokens import MAX_DAYS

STATUS = dict(DEFAULT_STATUS)
LOGIN_PATH = "/auth/simple/login"
MISSING = (
    "You must log in to use Unleash. Your request had no authorization header, so we could "
    f"not authorize you. Try logging in at {LOGIN_PATH}"
)
BAD_CREDENTIAL = "You must log in to use Unleash."
# Unleash's user-service.loginUser, with the base path "" (every refusal of a sign-in).
SIGN_IN_REFUSED = (
    "The combination of password and username you provided is invalid. If you have forgotten "
    "your password, visit /forgotten-password or get in touch with your instance "
    "administrator."
)
VALIDATION = "Request validation failed: your request body or params contain invalid data"
NO_ROUTE = "no such route"
# Every Unleash route that needs a permission (user administration) needs ADMIN.
NEEDS_ADMIN = (
    "You don't have the required permissions to perform this operation. To perform this "
    'action, you need the "ADMIN" permission.'
)


@dataclass
class AuthenticationRequired(Unauthenticated):
    """No credential at all (Unleash answers with the login hint)."""


@dataclass
class ContentTypeError(Invalid):
    """A body in a content type other than JSON (415)."""


@dataclass
class MalformedJSON(Invalid):
    """A body that does not parse as JSON: Unleash answers with its parser's message alone."""


@dataclass
class OwaspValidationError(Invalid):
    """A password Unleash's strength test refuses (faces/unleash/owasp.py): 400 with every
    reason in `details[0].validationErrors`."""

    reasons: list[str] = field(default_factory=list, kw_only=True)


@dataclass
class PasswordUndefined(Invalid):
    """An empty password where one is set or validated (Unleash's PasswordUndefinedError)."""


class ForbiddenError(Forbidden):
    """A refusal Unleash words itself (not a missing permission): 403 ForbiddenError."""


class PasswordMismatch(Unauthenticated):
    """A sign-in Unleash refuses with its one answer (unknown user, wrong password, and here
    also a name or password no account can have)."""


class NoSuchPage(NotFound):
    """A method no route serves outside /api: Express's own HTML 404 (`Cannot PUT /x`)."""

    def __init__(self, method: str, path: str) -> None:
        super().__init__(f"Cannot {method} {path}")
        self.method = method
        self.path = path


class UnleashJSON(JSONResponse):
    """Every JSON answer of Unleash (Express) names its charset."""

    media_type = "application/json; charset=utf-8"


@dataclass
class Bare(Invalid):
    """A refusal Unleash answers with its status alone, no body (GET /user/roles without a
    projectId)."""


STATUS[ContentTypeError] = 415

# Domain refusals in Unleash's words, by the (field, code) of the domain's FieldError. Each is
# a 400 BadDataError with the message alone, as Unleash's services answer.
WORDS: dict[tuple[str, str], str] = {
    ("username", "conflict"): "User already exists",
    ("email", "conflict"): "User already exists",
    ("expiresAt", "past"): "The expiry date should be in future.",
    ("expiresAt", "out_of_range"): f"The expiry date should be within {MAX_DAYS} days.",
    ("name", "invalid"): "The description is too long.",  # a PAT's description is its name
}
# The domain's password policy (identity/passwords.py) where it is stricter than Unleash's test,
# by the code of its FieldError, in the test's manner: answered as OwaspValidationError.
POLICY_WORDS: dict[str, str] = {
    "too_short": f"The password must be at least {passwords.MIN_LENGTH} characters long.",
    "too_long": f"The password must be at most {passwords.MAX_LENGTH} characters long.",
    "too_common": "The password is one of the most common passwords.",
    "matches_username": "The password may not be the username.",
}
OLD_PASSWORD_REFUSED = (
    "The old password you provided is invalid. If you have forgotten your password, visit "  # noqa: S105
    "/forgotten-password or get in touch with your instance administrator."
)
PASSWORD_UNDEFINED = "Password cannot be empty or undefined"  # noqa: S105
PASSWORD_REUSED = "You've previously used this password. Please use a new password."  # noqa: S105


def _body(name: str, message: str, details: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    return {
        "id": str(uuid.uuid4()),
        "name": name,
        "message": message,
        "details": details if details is not None else [{"message": message}],
    }


def _bad_data(message: str) -> dict[str, Any]:
    return _body("BadDataError", f"{VALIDATION}: {message}", [{"message": message}])


def _owasp(reasons: list[str]) -> dict[str, Any]:
    return _body(
        "OwaspValidationError", reasons[0], [{"validationErrors": reasons, "message": reasons[0]}]
    )


def _policy_reasons(exc: DomainError) -> list[str]:
    return [
        POLICY_WORDS[f.code] for f in exc.fields if f.field == "password" and f.code in POLICY_WORDS
    ]


def _in_words(exc: DomainError) -> str | None:
    return next((WORDS[key] for f in exc.fields if (key := (f.field, f.code)) in WORDS), None)


def _not_found(request: Request, exc: NotFound) -> dict[str, Any]:
    if exc.message != NO_ROUTE:
        return _body("NotFoundError", exc.message)
    path = request.scope.get("root_path", "") + request.scope.get("path", "")
    if request.scope.get("path", "").startswith(request.scope.get("root_path", "")):
        path = request.scope.get("path", "")
    return _body("NotFoundError", f"The path you were looking for ({path}) is not available.")


def _invalid(exc: Invalid) -> dict[str, Any]:
    if not exc.fields:
        return _bad_data(exc.message)
    details = [
        {"path": f.field, "message": f.message} if f.field else {"message": f.message}
        for f in exc.fields
    ]
    return _body(
        "BadDataError", f"{VALIDATION}. Refer to the `details` list for more information.", details
    )


# The refusals Unleash's middleware answers (authentication, the route's permission, the
# content type, its schema validator, a path no route serves) carry an `id`; those its services
# raise (rendered by routes/util.js handleErrors: name, message, details) carry none.
_MIDDLEWARE = frozenset(
    {"AuthenticationRequired", "UnauthorizedError", "PermissionError", "ContentTypeError"}
)


def _from_middleware(exc: DomainError, body: dict[str, Any]) -> bool:
    if body.get("name") in _MIDDLEWARE:
        return True
    if isinstance(exc, NotFound) and exc.message == NO_ROUTE:
        return True
    # the schema validator's errors name a JSON path (/body/..., /params/...)
    return isinstance(exc, Invalid) and any(f.field.startswith("/") for f in exc.fields)


def answer(request: Request, status: int, exc: DomainError) -> tuple[int, dict[str, Any] | None]:
    """The status and body Unleash gives `exc` (`status`: the one the face's table gives),
    with an `id` where Unleash's would have one."""
    status, body = _answer(request, status, exc)
    if body is not None and "details" in body and not _from_middleware(exc, body):
        del body["id"]
    return status, body


def _answer(request: Request, status: int, exc: DomainError) -> tuple[int, dict[str, Any] | None]:
    if isinstance(exc, AuthenticationRequired):
        login_hint = {"path": LOGIN_PATH, "type": "password", "defaultHidden": False}
        return status, {**_body("AuthenticationRequired", MISSING), **login_hint}
    if isinstance(exc, PasswordMismatch) or (
        isinstance(exc, SignInRefused) and exc.method == "login"
    ):
        return 401, _body("PasswordMismatch", SIGN_IN_REFUSED)
    if isinstance(exc, Unauthenticated):
        return status, _body("UnauthorizedError", BAD_CREDENTIAL)
    if isinstance(exc, ElevationRequired):  # Unleash has no elevation: its generic refusal
        return status, _body("NoAccessError", exc.message)
    if isinstance(exc, ForbiddenError):
        return 403, _body("ForbiddenError", exc.message)
    if isinstance(exc, Forbidden):
        return status, {**_body("PermissionError", NEEDS_ADMIN), "permissions": ["ADMIN"]}
    if isinstance(exc, Bare):
        return status, None
    if isinstance(exc, OwaspValidationError):
        return 400, _owasp(exc.reasons)
    if isinstance(exc, PasswordUndefined):
        details = [{"validationErrors": [], "message": PASSWORD_UNDEFINED}]
        return 400, _body("PasswordUndefinedError", PASSWORD_UNDEFINED, details)
    if isinstance(exc, PasswordReused):
        return 400, _body("PasswordPreviouslyUsedError", PASSWORD_REUSED)
    if any((f.field, f.code) == ("currentPassword", "invalid") for f in exc.fields):
        # a wrong or missing proof of your own password (accounts.set_password)
        return 401, _body("PasswordMismatch", OLD_PASSWORD_REFUSED)
    if isinstance(exc, Invalid) and (reasons := _policy_reasons(exc)):
        return 400, _owasp(reasons)
    if isinstance(exc, MalformedJSON):
        return status, {"message": exc.message}
    if isinstance(exc, ContentTypeError):
        return status, _body("ContentTypeError", exc.message)
    if isinstance(exc, NotFound):
        return status, _not_found(request, exc)
    if any((f.field, f.code) == ("name", "conflict") for f in exc.fields):  # a PAT's description
        return 409, _body("NameExistsError", "PAT description already exists.")
    if isinstance(exc, Invalid | Conflict) and (words := _in_words(exc)) is not None:
        return 400, _bad_data(words)
    if isinstance(exc, Invalid):
        return status, _invalid(exc)
    if isinstance(exc, Conflict):
        return status, _body("NameExistsError", exc.message)
    names = {413: "ContentTooLarge", 429: "RateLimitError"}
    return status, _body(names.get(status, "UnknownError"), exc.message)


def render(request: Request, status: int, exc: DomainError) -> Response:
    if isinstance(exc, NoSuchPage):
        content = no_page(exc.method, exc.path)
        return HTMLResponse(content, status_code=404, headers=NO_PAGE_HEADERS)
    status, body = answer(request, status, exc)
    if body is None:
        return Response(status_code=status)
    return UnleashJSON(body, status_code=status)
