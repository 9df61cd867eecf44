"""What a refusal says, one helper per face: the face's own error body (`assert_face_error`)
with the status, and the reason it gives (message, name, field), so that a test fails when
the right status comes for the wrong reason. (ECE's: tests/faces/ece/spec.py `assert_error`,
which checks the code.)

`message` is the whole message, `part` a fragment of it; `fields` the fields named, in order.
Each returns the body for anything further a test checks."""

from __future__ import annotations

from typing import Any

import httpx

from tests.faces.routes import assert_face_error

# The messages the domain refuses a bearer credential with (identity/principals.py,
# faces/http.py): the same whether the token is unknown, expired, revoked or its user disabled.
BAD_TOKEN = "invalid or expired token"
NO_TOKEN = "missing bearer token"
# A body that does not parse (faces/http.py): its field is a character position, not a name.
NOT_JSON = "request body is not valid JSON"


def _message(body: dict[str, Any], key: str, message: str | None, part: str | None) -> None:
    if message is not None:
        assert body[key] == message, body
    if part is not None:
        assert part in body[key], body


def astro_error(
    r: httpx.Response,
    status: int,
    message: str | None = None,
    *,
    part: str | None = None,
    fields: list[str] | None = None,
) -> dict[str, Any]:
    """Astro's {message, requestId, statusCode, fieldErrors?}."""
    assert_face_error("astro", r, status)
    body: dict[str, Any] = r.json()
    _message(body, "message", message, part)
    if fields is not None:
        assert [e["field"] for e in body.get("fieldErrors", [])] == fields, body
    return body


def astro_invalid(r: httpx.Response, field: str | None) -> dict[str, Any]:
    """Astro's 400 for a bad parameter or body naming `field` alone; None: a body that is not
    JSON at all."""
    if field is None:
        return astro_error(r, 400, NOT_JSON)
    return astro_error(r, 400, fields=[field])


def native_error(
    r: httpx.Response,
    status: int,
    detail: str | None = None,
    *,
    part: str | None = None,
    fields: list[str] | None = None,
    code: str | None = None,
) -> dict[str, Any]:
    """The native face's RFC 9457 problem: `detail` is its message; `code` one of its
    errors[].code."""
    assert_face_error("native", r, status)
    body: dict[str, Any] = r.json()
    _message(body, "detail", detail, part)
    if fields is not None:
        assert [e["field"] for e in body.get("errors", [])] == fields, body
    if code is not None:
        assert code in [e["code"] for e in body.get("errors", [])], body
    return body


def unleash_error(
    r: httpx.Response,
    status: int,
    name: str,
    message: str | None = None,
    *,
    part: str | None = None,
) -> dict[str, Any]:
    """Unleash's {id, name, message, details}."""
    assert_face_error("unleash", r, status)
    body: dict[str, Any] = r.json()
    assert body["name"] == name, body
    _message(body, "message", message, part)
    return body


# --- for the sweeps over every route (tests/faces/test_bad_input.py) ---------------------------


def named_fields(face: str, r: httpx.Response) -> list[str]:
    """The fields a face's error body blames (astro fieldErrors, native errors, ece fields,
    unleash details' paths)."""
    body: dict[str, Any] = r.json()
    if face == "astro":
        return [e["field"] for e in body.get("fieldErrors", [])]
    if face == "ece":
        return [f for e in body["errors"] for f in e.get("fields", [])]
    if face == "unleash":
        return [d["path"] for d in body.get("details", []) if "path" in d]
    return [e["field"] for e in body.get("errors", [])]


def messages(face: str, r: httpx.Response) -> list[str]:
    """Every message of a face's error body, the main one first."""
    body: dict[str, Any] = r.json()
    if face == "astro":
        return [body["message"], *(e["message"] for e in body.get("fieldErrors", []))]
    if face == "ece":
        return [e["message"] for e in body["errors"]]
    if face == "unleash":
        return [body["message"], *(d["message"] for d in body.get("details", []))]
    return [body["detail"], *(e["message"] for e in body.get("errors", []))]
