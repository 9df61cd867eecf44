"""The compared points: what of an answer a client written for Unleash relies on.

One function for the live harness and for the replay test (tests/faces/unleash/
test_live_corpus.py), so that the figure quoted for a live run and the one the test asserts are
computed the same way. An answer is compared on

- `status`: the HTTP status;
- `media type`: the Content-Type header (lower case, one blank after each `;`; Unleash says
  `application/json; charset=utf-8`), or none;
- `body`: its JSON *shape*: objects by their keys, each value by its JSON type (string, number,
  boolean, null, object, array), arrays by the set of their elements' shapes (so the number of
  users listed does not matter, an empty list against a non-empty one does); a text body is
  `<text>`, no body `<empty>`. Values are not compared: ids, timestamps, secrets, names and
  messages differ by nature between two servers. `seenAt` is compared by presence alone (set
  or not depends on sign-in history, which the two servers record differently);
- `error name`: the `name` of an error body (status 400 and above);
- `details`: how many entries an error body's `details` list has (their shape is in `body`);
- `permissions`: the value of a top-level `permissions` (a 403's `["ADMIN"]`, meSchema's list),
  in any order;
- `location`: the path a redirect (3xx) points to.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

PRESENCE_ONLY = frozenset({"seenAt"})
POINTS = ("status", "media type", "body", "error name", "details", "permissions", "location")
EMPTY, TEXT = "<empty>", "<text>"


@dataclass(frozen=True)
class Difference:
    point: str
    expected: Any  # Unleash's
    actual: Any  # Tenantry's
    detail: str = ""

    def __str__(self) -> str:
        if self.detail:
            return f"{self.point}: {self.detail}"
        return f"{self.point}: Unleash {_short(self.expected)}, Tenantry {_short(self.actual)}"


def _short(value: Any, limit: int = 160) -> str:
    text = value if isinstance(value, str) else json.dumps(value, sort_keys=True)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _key(value: Any) -> str:
    return json.dumps(value, sort_keys=True)


def json_type(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    return "object"


def shape(value: Any) -> Any:
    """Objects keep their keys, arrays become the sorted set of their elements' shapes, every
    other value its JSON type."""
    if isinstance(value, dict):
        return {k: "<present>" if k in PRESENCE_ONLY else shape(v) for k, v in value.items()}
    if isinstance(value, list):
        unique = {_key(s): s for s in (shape(item) for item in value)}
        return [unique[k] for k in sorted(unique)]
    return json_type(value)


def media_type(content_type: str | None) -> str | None:
    if content_type is None:
        return None
    return "; ".join(part.strip() for part in content_type.lower().split(";"))


def _location(value: str | None) -> str | None:
    if value is None:
        return None
    parts = urlsplit(value)
    return parts.path + (f"?{parts.query}" if parts.query else "")


def points(response: dict[str, Any]) -> dict[str, Any]:
    """The compared points of a recorded response (runner.Response.record())."""
    status: int = response["status"]
    kind = response["body_kind"]
    body = response.get("json")
    obj: dict[str, Any] = body if isinstance(body, dict) and kind == "json" else {}
    error = bool(obj) and status >= 400
    headers = response.get("headers", {})
    permissions = obj.get("permissions")
    details = obj.get("details") if error else None
    return {
        "status": status,
        "media type": media_type(response.get("content_type")),
        "body": shape(body) if kind == "json" else (EMPTY if kind == "empty" else TEXT),
        "error name": obj.get("name") if error else None,
        "details": len(details) if isinstance(details, list) else None,
        "permissions": (
            sorted(permissions, key=_key) if isinstance(permissions, list) else permissions
        ),
        "location": _location(headers.get("location")) if 300 <= status < 400 else None,
    }


def shape_differences(expected: Any, actual: Any, path: str = "") -> list[str]:
    """Where two shapes differ, as `path: what` lines (at most a few per level)."""
    where = path or "(top)"
    if isinstance(expected, dict) and isinstance(actual, dict):
        out: list[str] = []
        missing = [k for k in expected if k not in actual]
        extra = [k for k in actual if k not in expected]
        if missing:
            out.append(f"{where}: keys only in Unleash {missing}")
        if extra:
            out.append(f"{where}: keys only in Tenantry {extra}")
        for k in expected:
            if k in actual and expected[k] != actual[k]:
                out += shape_differences(expected[k], actual[k], f"{path}.{k}" if path else k)
        return out
    if isinstance(expected, list) and isinstance(actual, list):
        if len(expected) == 1 and len(actual) == 1:
            return shape_differences(expected[0], actual[0], f"{path}[]")
        if not expected or not actual:
            return [
                f"{where}: Unleash {'[]' if not expected else 'non-empty'}, "
                f"Tenantry {'[]' if not actual else 'non-empty'}"
            ]
        return [f"{where}[]: element shapes Unleash {_short(expected)}, Tenantry {_short(actual)}"]
    if expected != actual:
        return [f"{where}: Unleash {_short(_kind(expected))}, Tenantry {_short(_kind(actual))}"]
    return []


def _kind(s: Any) -> Any:
    if isinstance(s, dict):
        return "object"
    if isinstance(s, list):
        return "array"
    return s


def differences(expected: dict[str, Any], actual: dict[str, Any]) -> list[Difference]:
    """Tenantry's answer (`actual`) against Unleash's (`expected`), both recorded responses."""
    want, got = points(expected), points(actual)
    out: list[Difference] = []
    for point in POINTS:
        if want[point] == got[point]:
            continue
        detail = ""
        if point == "body" and isinstance(want[point], dict | list):
            detail = "; ".join(shape_differences(want[point], got[point])[:6])
        out.append(Difference(point, want[point], got[point], detail))
    return out
