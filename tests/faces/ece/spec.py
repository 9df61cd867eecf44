"""Validate ece bodies against the definitions of the ECE Swagger 2.0 document."""

from __future__ import annotations

import functools
import json
from datetime import datetime
from pathlib import Path
from typing import Any

import jsonschema

FORMATS = jsonschema.FormatChecker()


@FORMATS.checks("date-time", raises=ValueError)
def _date_time(value: object) -> bool:
    """RFC 3339 with an explicit offset, as ECE renders it."""
    if not isinstance(value, str) or "T" not in value:
        return False
    return datetime.fromisoformat(value).tzinfo is not None


SPECS = Path(__file__).parents[2] / "reference" / "specs" / "elastic-ece"


@functools.cache
def document(name: str = "apidocs.json") -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads((SPECS / name).read_text())
    return loaded


def assert_ece(body: Any, definition: str, spec: str = "apidocs.json") -> None:
    """Raise unless `body` matches `#/definitions/<definition>` of the spec."""
    definitions = document(spec)["definitions"]
    schema = {"$ref": f"#/definitions/{definition}", "definitions": definitions}
    jsonschema.validate(
        body,
        schema,
        cls=jsonschema.Draft4Validator,
        format_checker=FORMATS,
    )


def operation_ids(spec: str = "apidocs.json") -> set[str]:
    paths = document(spec)["paths"]
    return {
        op["operationId"]
        for item in paths.values()
        for method, op in item.items()
        if method != "parameters"
    }


def assert_error(response: Any, status: int, code: str) -> dict[str, Any]:
    """An ECE failure: the status, {errors: [...]} per BasicFailedReply and the header."""
    assert response.status_code == status, response.text
    body: dict[str, Any] = response.json()
    assert_ece(body, "BasicFailedReply")
    assert body["errors"][0]["code"] == code, body
    assert response.headers["x-cloud-error-codes"] == code
    return body
