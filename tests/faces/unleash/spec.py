"""Unleash's OpenAPI 3.0.3 schemas as JSON Schema, and the recorded Unleash 8.2 captures."""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path
from typing import Any

from jsonschema import Draft7Validator

REFERENCE = Path(__file__).resolve().parents[2] / "reference"
SPEC = REFERENCE / "specs" / "unleash" / "openapi.json"
CAPTURES = REFERENCE / "unleash-8.2-captures"


def _convert(node: Any) -> Any:
    """OpenAPI 3.0's `nullable` → JSON Schema's null type; everything else as is."""
    if isinstance(node, list):
        return [_convert(item) for item in node]
    if not isinstance(node, dict):
        return node
    out = {k: _convert(v) for k, v in node.items() if k not in ("nullable", "example")}
    if node.get("nullable") is True:
        if isinstance(out.get("type"), str):
            out["type"] = [out["type"], "null"]
            if "enum" in out:
                out["enum"] = [*out["enum"], None]
        else:
            out = {"anyOf": [out, {"type": "null"}]}
    return out


@cache
def _components() -> dict[str, Any]:
    document = json.loads(SPEC.read_text())
    converted: dict[str, Any] = _convert(document["components"])
    return converted


def validator(name: str) -> Draft7Validator:
    """A validator for `#/components/schemas/<name>`, its $refs resolved in the document."""
    schema = {"$ref": f"#/components/schemas/{name}", "components": _components()}
    return Draft7Validator(schema)


def errors(name: str, body: Any) -> list[str]:
    return [f"{list(e.absolute_path)}: {e.message}" for e in validator(name).iter_errors(body)]


def capture(number: int) -> dict[str, Any]:
    (path,) = CAPTURES.glob(f"{number:02d}_*.json")
    loaded: dict[str, Any] = json.loads(path.read_text())
    return loaded


def response(number: int) -> tuple[int, dict[str, str], Any]:
    r = capture(number)["response"]
    headers = {k.lower(): v for k, v in r["headers"]}
    return r["status"], headers, r["body_json"]


VOLATILE = frozenset(
    {"id", "createdAt", "secret", "imageUrl", "inviteLink", "activeSessions", "userId"}
)
# Set or not depending on what happened before the capture (Unleash's seenAt is the previous
# sign-in; ours is updated on use): only presence is compared.
UNSTABLE = frozenset({"seenAt"})


def shape(body: Any, volatile: frozenset[str] = VOLATILE) -> Any:
    """The body with ids, timestamps and secrets replaced by their JSON type (so a field
    present with a value of the wrong kind still differs)."""
    if isinstance(body, dict):
        return {
            k: (
                "~"
                if k in UNSTABLE
                else type(v).__name__
                if k in volatile and v is not None
                else shape(v, volatile)
            )
            for k, v in body.items()
        }
    if isinstance(body, list):
        return [shape(item, volatile) for item in body]
    return body


VALIDATION = "Request validation failed: your request body or params contain invalid data"


def error(r: Any, status: int) -> dict[str, Any]:
    """An Unleash error body {id?, name, message, details} with `status`, without its id (the
    errors of Unleash's middleware have one, those of its services none)."""
    assert r.status_code == status, r.text
    body: dict[str, Any] = r.json()
    assert isinstance(body.pop("id", ""), str), body
    return body


def bad_data(message: str) -> dict[str, Any]:
    """Unleash's 400 for a refusal its services raise (a message, no field)."""
    return {
        "name": "BadDataError",
        "message": f"{VALIDATION}: {message}",
        "details": [{"message": message}],
    }
