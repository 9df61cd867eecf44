"""Unleash's request bodies: read as JSON the way Unleash's server reads them, then parsed by
one pydantic model per body schema (createUserSchema, passwordSchema, createPatSchema, ...).
A body that does not fit is a domain error (ContentTypeError, MalformedJSON, Invalid) with
the field errors in Unleash's own words (its OpenAPI validator's messages), which the face's
one error table (errors.py) renders; routes never answer an error themselves."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta, timezone
from typing import Annotated, Any, ClassVar, TypeVar

from fastapi import Request
from pydantic import BaseModel, BeforeValidator, ConfigDict, PlainValidator, ValidationError
from pydantic_core import ErrorDetails, PydanticCustomError

from tenantry.errors import FieldError, Invalid
from tenantry.faces.unleash.errors import ContentTypeError, MalformedJSON

# The names createUserSchema's rootRole enum allows ("Owner", "Member" and "Reader" pass the
# schema but are project roles, refused afterwards as "Could not find rootRole").
ROOT_ROLE_NAMES = ("Admin", "Editor", "Viewer", "Owner", "Member", "Reader")
SECRET_FIELDS = frozenset({"password", "confirmPassword", "oldPassword"})  # never echoed


async def json_object(request: Request) -> dict[str, Any]:
    """The JSON object in the request body (content type first, then syntax, as Unleash)."""
    kind = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if kind != "application/json":
        raise ContentTypeError(
            f"We do not accept the content-type you provided ({kind or 'none'}). Try using one "
            "of the content-types we do accept instead (application/json) and make sure the "
            "body is in the corresponding format."
        )
    try:
        body = json.loads(await request.body())
    except (ValueError, RecursionError):  # RecursionError: nested too deep to parse
        raise MalformedJSON("Unexpected end of JSON input") from None
    if not isinstance(body, dict):
        raise Invalid(
            "invalid body",
            [FieldError("/body", "type", "The `/body` property must be object.")],
        )
    try:  # a lone surrogate (e.g. a \ud800 escape) is valid JSON but no storable text
        json.dumps(body, ensure_ascii=False).encode()
    except UnicodeEncodeError:
        raise Invalid(
            "invalid body",
            [FieldError("/body", "format", "The body contains a lone surrogate (not Unicode).")],
        ) from None
    return body


# --- value types -------------------------------------------------------------------------------


def _not_null(expected: str) -> BeforeValidator:
    """An optional property that, when present, must not be null (Unleash's schemas declare
    these properties without `nullable`), else coerced to `expected` as Unleash's validator
    coerces (see _coerced)."""

    def check(value: Any) -> Any:
        if value is None:
            raise PydanticCustomError("type", "must be {expected}", {"expected": expected})
        return _coerced(value, expected)

    return BeforeValidator(check)


def _js_number(value: int | float) -> str:
    """A JSON number as JavaScript's String() writes it (5.0 is "5")."""
    if isinstance(value, float) and value.is_integer() and abs(value) < 1e21:
        return str(int(value))
    return str(value)


def _coerced(value: Any, expected: str) -> Any:
    """Unleash's request validator runs with `coerce: true` (services/openapi-service.ts, ajv's
    coerceTypes): a scalar of another type becomes the schema's type when it converts (5 is
    the string "5", "true" the boolean true, "2" the integer 2); anything else is left for the
    type check to refuse. Null is kept (refused above): Unleash was not observed with it."""
    if expected == "string" and isinstance(value, bool):
        return "true" if value else "false"
    if expected == "string" and isinstance(value, int | float):
        return _js_number(value)
    if expected == "boolean" and isinstance(value, str) and value in ("true", "false"):
        return value == "true"
    if expected == "boolean" and isinstance(value, int) and not isinstance(value, bool):
        return {0: False, 1: True}.get(value, value)
    return value


def _integer_text(value: Any) -> Any:
    """A decimal integer sent as a string ("2") as ajv coerces it to `integer`."""
    if isinstance(value, str) and re.fullmatch(r"-?[0-9]+", value.strip()):
        return int(value)
    return value


def _root_role(value: Any) -> int | str:
    """oneOf: an integer >= 0, or one of ROOT_ROLE_NAMES (which one it names is decided by
    the face afterwards)."""
    value = _integer_text(value)  # "2" is 2 (coerced), as Unleash answers rootRole 2 for it
    if isinstance(value, int) and not isinstance(value, bool):
        if value < 0:
            raise PydanticCustomError("minimum", "must be >= 0")
        return value
    if isinstance(value, str) and value in ROOT_ROLE_NAMES:
        return value
    raise PydanticCustomError("root_role", "not a root role")


# RFC 3339 date-time as Unleash's validator (ajv-formats 3, "full" formats) checks it: a date,
# `T`, `t` or a space, a time with seconds, and an offset (`Z` or ±hh[:mm]); a date alone, or a
# time without its offset, is no date-time.
_RFC3339 = re.compile(
    r"(\d{4})-(\d\d)-(\d\d)[Tt\s](\d\d):(\d\d):(\d\d)(?:\.(\d+))?"
    r"(?:([Zz])|([+-])(\d\d)(?::?(\d\d))?)",
    re.ASCII,
)


def _user_number(value: Any) -> int:
    """A user's number in a list: an integer >= 0 (idsSchema: `number`, `minimum: 0`)."""
    if not isinstance(value, int) or isinstance(value, bool):
        raise PydanticCustomError("type", "must be {expected}", {"expected": "number"})
    if value < 0:
        raise PydanticCustomError("minimum", "must be >= 0")
    return value


def _date_time(value: Any) -> datetime:
    if not isinstance(value, str):
        raise PydanticCustomError("type", "must be {expected}", {"expected": "string"})
    found = _RFC3339.fullmatch(value)
    if found is None:
        raise PydanticCustomError("date_time", "not a date-time")
    year, month, day, hour, minute, second, fraction, zulu, sign, tz_h, tz_m = found.groups()
    try:
        offset = timedelta(0)
        if not zulu:
            offset = timedelta(hours=int(tz_h), minutes=int(tz_m or 0))
            if int(tz_h) > 23 or int(tz_m or 0) > 59:
                raise ValueError("offset")
        moment = datetime(
            int(year),
            int(month),
            int(day),
            int(hour),
            int(minute),
            int(second),
            int((fraction or "0")[:6].ljust(6, "0")),
            tzinfo=timezone(-offset if sign == "-" else offset),
        )
    except ValueError:  # no such day or time (a leap second included: not representable)
        raise PydanticCustomError("date_time", "not a date-time") from None
    return moment.astimezone(UTC)


def _nullable_date_time(value: Any) -> datetime | None:
    return None if value is None else _date_time(value)


String = Annotated[str, BeforeValidator(lambda value: _coerced(value, "string"))]
NullableString = Annotated[str | None, BeforeValidator(lambda value: _coerced(value, "string"))]
NullableFlag = Annotated[bool | None, BeforeValidator(lambda value: _coerced(value, "boolean"))]
Text = Annotated[str | None, _not_null("string")]
Flag = Annotated[bool | None, _not_null("boolean")]
RootRole = Annotated[int | str, PlainValidator(_root_role)]
OptionalRootRole = Annotated[int | str | None, PlainValidator(_root_role)]
DateTime = Annotated[datetime, PlainValidator(_date_time)]
NullableDateTime = Annotated[datetime | None, PlainValidator(_nullable_date_time)]


# --- the bodies --------------------------------------------------------------------------------


class Body(BaseModel):
    # Strict: JSON types as sent (no "2" for 2, no 1 for true), like Unleash's validator.
    model_config = ConfigDict(strict=True, extra="ignore")
    first_error_only: ClassVar[bool] = False  # Unleash lists every error of most bodies


class Closed(Body):
    """A schema with `additionalProperties: false` (or one Tenantry keeps closed)."""

    model_config = ConfigDict(strict=True, extra="forbid")


class CreateUser(Closed):
    """createUserSchema (POST /user-admin)."""

    rootRole: RootRole
    username: Text = None
    email: Text = None
    name: Text = None
    password: Text = None
    sendEmail: Flag = None


class UpdateUser(Body):
    """updateUserSchema (PUT /user-admin/{id}): open (no `additionalProperties: false`), so
    other properties are ignored, as Unleash ignores them (a client may send back the user it
    read, `id` and `username` included)."""

    email: Text = None
    name: Text = None
    rootRole: OptionalRootRole = None


class Password(Closed):
    """passwordSchema (`additionalProperties: false`), the one body of POST
    /user-admin/validate-password, /user-admin/{id}/change-password and /user/change-password:
    the last one reads `confirmPassword` and `oldPassword`, the others ignore them, but all
    three routes refuse them when they are not strings, as Unleash's schema validator does."""

    password: String
    oldPassword: Text = None
    confirmPassword: Text = None


class Email(Closed):
    """idSchema (POST /user-admin/reset-password): `id` is the user's e-mail address."""

    id: String


class Ids(Closed):
    """idsSchema (POST /user-admin/inactive/delete)."""

    ids: list[Annotated[int, PlainValidator(_user_number)]]


def _login_text(value: Any) -> Any:
    """A sign-in field as Unleash's validator coerces it (`5` is "5", `true` "true", and null
    the empty string): a password that is no string is then just a wrong password."""
    return "" if value is None else _coerced(value, "string")


LoginText = Annotated[str, BeforeValidator(_login_text)]


class Login(Closed):
    """loginSchema (POST /auth/simple/login); the domain bounds the lengths. Unleash reports
    only the first error here (`{}`: the username is required)."""

    first_error_only: ClassVar[bool] = True

    username: LoginText
    password: LoginText


class CreatePat(Body):
    """createPatSchema (POST /user/tokens): open (no `additionalProperties: false`), so other
    properties are ignored, as Unleash ignores them."""

    description: String
    expiresAt: DateTime


class Feedback(Body):
    """feedbackUpdateSchema (PUT /feedback/{id}): the id comes from the path."""

    feedbackId: NullableString = None
    neverShow: NullableFlag = None
    given: NullableDateTime = None
    userId: int | None = None  # ignored: the state is always the caller's


class CreateFeedback(Feedback):
    """feedbackCreateSchema (POST /feedback): `feedbackId` is required."""

    feedbackId: String


Model = TypeVar("Model", bound=Body)


def parse(model: type[Model], raw: dict[str, Any]) -> Model:
    """`raw` as `model`, or Invalid with Unleash's messages (unknown properties first, then
    the schema's properties in order, as Unleash lists them)."""
    try:
        return model.model_validate(raw)
    except ValidationError as exc:
        found = sorted(exc.errors(include_url=False), key=lambda e: e["type"] != "extra_forbidden")
        fields = [f for e in found for f in _unleash_errors(e)]
        raise Invalid("invalid body", fields[:1] if model.first_error_only else fields) from None


# --- pydantic's errors in Unleash's words ------------------------------------------------------

_TYPES = {"string_type": "string", "bool_type": "boolean", "int_type": "integer"}


def _shown(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False)


def _unleash_errors(error: ErrorDetails) -> list[FieldError]:
    name = "/".join(str(part) for part in error["loc"])
    path = f"/body/{name}"
    kind = error["type"]
    if kind == "missing":
        return [
            FieldError(
                path,
                "required",
                f"The `{path}` property is required. It was not present on the data you sent.",
            )
        ]
    if kind == "extra_forbidden":
        return [
            FieldError(
                path,
                "additional",
                "The `/body` object of the request body does not allow additional properties. "
                f"Your request included the `{path}` property.",
            )
        ]
    if kind == "minimum":
        return [FieldError(path, "minimum", "must be >= 0")]
    if kind == "root_role":
        return _root_role_errors(name, error["input"])
    if kind == "date_time":
        sent = _shown(error["input"])
        message = f'The `{path}` property must match format "date-time". You sent {sent}.'
        return [FieldError(path, "format", message)]
    expected = _TYPES.get(kind) or str(error.get("ctx", {}).get("expected", ""))
    if expected:
        sent = "" if name in SECRET_FIELDS else f" You sent {_shown(error['input'])}."
        return [FieldError(path, "type", f"The `{path}` property must be {expected}.{sent}")]
    return [FieldError(path, kind, error["msg"])]


def _root_role_errors(name: str, value: Any) -> list[FieldError]:
    """What Unleash's validator says of a rootRole matching neither of its oneOf options."""
    allowed = ", ".join(f'"{n}"' for n in ROOT_ROLE_NAMES)
    shown = _shown(value)
    return [
        FieldError(
            f"/body/{name}",
            "type",
            f"The `/body/{name}` property must be integer. You sent {shown}.",
        ),
        FieldError(
            name,
            "enum",
            f"The `{name}` property must be equal to one of the allowed values: {allowed}. "
            f"You provided {shown}, which is not valid. Please use one of the allowed values "
            "instead..",
        ),
        FieldError(
            f"/body/{name}",
            "oneOf",
            f'The "/body/{name}" property must match exactly one schema in oneOf. The data '
            "you provided matches more than one option in the schema. These options are "
            "mutually exclusive. Please refer back to the schema and remove any excess "
            "properties.",
        ),
    ]
