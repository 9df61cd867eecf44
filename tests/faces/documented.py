"""What the vendors' specs document each route of the ece and astro faces to answer, read from
the spec files by code, and the machinery the table-driven tests built on it share
(tests/faces/ece/test_documented_errors.py, tests/faces/astro/test_documented_errors.py).

A route is matched to its vendor operation by operationId (both faces use the vendors' own).
ECE: the statuses of `apidocs.json` and of the 2023 spec `apidocs-pre-ms89-with-elevate.json`
(the last with `_elevate`, whose elevated-permissions answer, 449, the newer one dropped with
the feature), and per error status the codes its `x-cloud-error-codes` header enumerates.
Astro: the statuses of the 2024 IAM and Platform YAMLs and the 2023 IAM YAML, and for the v1
operations none of them has (`GET /users/self`) the "Responses:" line of astro-v1.md.

Each documented answer is a `Key`: (operationId, status, code), the code None where the spec
states none (successes, and every Astro answer).
"""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import yaml
from fastapi import FastAPI
from starlette.routing import Mount

from tenantry.config import load_settings
from tenantry.db.engine import Database
from tenantry.faces import astro, ece
from tests.faces.routes import FaceRoute, Snapshot, diff, routes_of, snapshot

REFERENCE = Path(__file__).resolve().parents[1] / "reference"
SPECS = REFERENCE / "specs"
ECE_SPECS = ("apidocs.json", "apidocs-pre-ms89-with-elevate.json")
ASTRO_SPECS = (
    "iam-v1beta1.openapi.yaml",
    "platform-v1beta1.openapi.yaml",
    "iam-v1beta1-2023-12.openapi.yaml",
)
ASTRO_V1 = "astro-v1.md"
METHODS = ("get", "put", "post", "delete", "patch", "head", "options")

Key = tuple[str, int, str | None]


@dataclass(frozen=True)
class Answer:
    """One documented response of one operation of a face."""

    operation: str
    method: str
    path: str  # the face's template, e.g. /users/{user_name}
    status: int
    codes: tuple[str, ...]  # the error codes stated for the status (ECE); () none
    schema: str | None  # the definition / component schema its body is documented as
    specs: tuple[str, ...]  # the documents stating it

    def documented(self) -> list[Key]:
        return [(self.operation, self.status, c) for c in self.codes or (None,)]


@dataclass
class Operation:
    """A face route and what its vendor documents it to answer."""

    operation: str
    route: FaceRoute
    answers: dict[int, Answer] = field(default_factory=dict)

    def documents(self, status: int, code: str | None = None) -> bool:
        """Whether the spec documents `status` (and, where it states codes, `code`)."""
        answer = self.answers.get(status)
        if answer is None:
            return False
        return not answer.codes or code in answer.codes


# --- the faces' own operation ids ----------------------------------------------------------------


def _face_operations(app: FastAPI) -> dict[tuple[str, str], str]:
    """(METHOD, face path) -> operationId, from the face's own OpenAPI document."""
    found = {}
    for path, item in app.openapi()["paths"].items():
        for method, op in item.items():
            if method in METHODS:
                found[(method.upper(), path)] = op["operationId"]
    return found


def _operations_of(face: str, app: FastAPI) -> dict[str, FaceRoute]:
    ids = _face_operations(app)
    return {ids[(r.method, r.path)]: r for r in routes_of(face)}


# --- ECE ---------------------------------------------------------------------------------------


@functools.cache
def ece_document(name: str) -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads((SPECS / "elastic-ece" / name).read_text())
    return loaded


@functools.cache
def _ece_validator(spec: str, definition: str) -> Any:
    """A validator of `#/definitions/<definition>` of an ECE spec, built once (building one
    over the whole document takes about a second)."""
    from jsonschema import Draft4Validator

    from tests.faces.ece.spec import FORMATS

    schema = {
        "$ref": f"#/definitions/{definition}",
        "definitions": ece_document(spec)["definitions"],
    }
    return Draft4Validator(schema, format_checker=FORMATS)


def assert_ece_body(body: Any, definition: str, spec: str) -> None:
    """Raise unless `body` matches the definition of the ECE spec."""
    _ece_validator(spec, definition).validate(body)


def _ref_name(schema: Any) -> str | None:
    if isinstance(schema, dict) and isinstance(schema.get("$ref"), str):
        return str(schema["$ref"]).rsplit("/", 1)[-1]
    return None


def _vendor_operations(paths: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    """operationId -> the operation object."""
    return {
        op["operationId"]: op
        for item in paths.values()
        for method, op in item.items()
        if method in METHODS and isinstance(op, dict) and "operationId" in op
    }


@functools.cache
def ece_operations() -> dict[str, Operation]:
    """Every route of the ece face, with the answers ECE's two specs document for it."""
    routes = _operations_of("ece", ece.build(64 * 1024))
    found = {op: Operation(op, route) for op, route in routes.items()}
    for spec in ECE_SPECS:
        vendor = _vendor_operations(ece_document(spec)["paths"])
        for op, operation in found.items():
            for status, response in vendor.get(op, {}).get("responses", {}).items():
                if not status.isdigit():
                    continue
                header = response.get("headers", {}).get("x-cloud-error-codes", {})
                codes = tuple(header.get("enum", ()))
                _merge(operation, int(status), codes, _ref_name(response.get("schema")), spec)
    return found


def _merge(
    operation: Operation, status: int, codes: Iterable[str], schema: str | None, spec: str
) -> None:
    known = operation.answers.get(status)
    route = operation.route
    if known is None:
        operation.answers[status] = Answer(
            operation.operation, route.method, route.path, status, tuple(codes), schema, (spec,)
        )
        return
    merged = tuple(dict.fromkeys((*known.codes, *codes)))
    operation.answers[status] = Answer(
        known.operation,
        known.method,
        known.path,
        status,
        merged,
        known.schema or schema,
        (*known.specs, spec),
    )


# --- Astro -------------------------------------------------------------------------------------


@functools.cache
def astro_document(name: str) -> dict[str, Any]:
    with open(SPECS / "astronomer" / name) as f:
        loaded: dict[str, Any] = yaml.safe_load(f)
    return loaded


def _astro_v1_text() -> str:
    return (REFERENCE / ASTRO_V1).read_text()


_V1_SECTION = re.compile(r"^## .*?\b(GET|POST|DELETE|PUT|PATCH) (/\S+?)\)?(?: → (\w+))?$", re.M)
_V1_RESPONSES = re.compile(r"Responses: ([\d, ]+)\.")


def astro_v1_answers() -> dict[tuple[str, str], tuple[list[int], str | None]]:
    """(METHOD, path without /v1) -> (statuses, success schema) of every section of astro-v1.md
    that names an operation and its responses."""
    text = _astro_v1_text()
    sections = list(_V1_SECTION.finditer(text))
    found = {}
    for i, match in enumerate(sections):
        end = sections[i + 1].start() if i + 1 < len(sections) else len(text)
        listed = _V1_RESPONSES.search(text, match.end(), end)
        if listed is None:
            continue
        path = match[2].removeprefix("/v1")
        statuses = [int(s) for s in listed[1].replace(" ", "").split(",")]
        found[(match[1], path)] = (statuses, match[3])
    return found


def astro_error_schema() -> str:
    """The one schema every error response of Astro's YAMLs is documented as (astro-v1.md's
    `Error` too)."""
    names = {
        _ref_name(response.get("content", {}).get("application/json", {}).get("schema"))
        for spec in ASTRO_SPECS
        for op in _vendor_operations(astro_document(spec)["paths"]).values()
        for status, response in op["responses"].items()
        if status.isdigit() and int(status) >= 400
    }
    assert len(names) == 1, names
    (name,) = names
    assert name is not None and f"`{name} {{message" in _astro_v1_text()
    return name


@functools.cache
def astro_operations() -> dict[str, Operation]:
    """Every route of the astro face, with the answers Astro's specs document for it."""
    routes = _operations_of("astro", astro.build(64 * 1024))
    found = {op: Operation(op, route) for op, route in routes.items()}
    for spec in ASTRO_SPECS:
        vendor = _vendor_operations(astro_document(spec)["paths"])
        for op, operation in found.items():
            for status, response in vendor.get(op, {}).get("responses", {}).items():
                if not status.isdigit():  # ranges (4XX): none on the face's operations
                    continue
                schema = response.get("content", {}).get("application/json", {}).get("schema")
                _merge(operation, int(status), (), _ref_name(schema), spec)
    v1 = astro_v1_answers()
    error = astro_error_schema()
    for operation in found.values():
        listed = v1.get((operation.route.method, operation.route.path))
        if listed is None:
            continue
        statuses, success = listed
        for status in statuses:
            schema = success if status < 300 else error
            _merge(operation, status, (), schema, ASTRO_V1)
    return found


def astro_unreachable_is_403() -> dict[str, Operation]:
    """The astro operations under an organization whose spec documents a 403 but no 404:
    there an organization the caller cannot reach (or one that does not exist) is the 403
    (faces/astro/errors.py `unreachable_is_forbidden`), everywhere else the 404."""
    return {
        op: operation
        for op, operation in astro_operations().items()
        if 403 in operation.answers
        and 404 not in operation.answers
        and "organizationId" in operation.route.params
    }


def documented_keys(operations: Mapping[str, Operation]) -> set[Key]:
    answers = [a for op in operations.values() for a in op.answers.values()]
    return {key for answer in answers for key in answer.documented()}


# --- running the table ---------------------------------------------------------------------------


def face_app(app: FastAPI, prefix: str) -> FastAPI:
    """The face's own FastAPI application mounted at `prefix` of the whole app."""
    for route in app.routes:
        if isinstance(route, Mount) and route.path == prefix:
            assert isinstance(route.app, FastAPI)
            return route.app
    raise AssertionError(f"no face mounted at {prefix}")


class Fault(Exception):
    """Raised on purpose inside a request, to see the face's answer to a server error."""


def raises(exc: BaseException) -> Callable[[], Any]:
    """A dependency override that fails the request with `exc`."""

    async def failing() -> Any:
        raise exc

    return failing


@dataclass
class Outcome:
    """What one documented answer's request got, and whether it wrote anything."""

    response: httpx.Response
    wrote: str  # the rows it changed ("" when none)


class Recorder:
    """Sends the requests of a table's cases, noting for each what it changed in the database:
    a refusal must change nothing (apart from what a refused password keeps: its failure count
    and audit event, which a case says it expects)."""

    def __init__(self, database: Database) -> None:
        self.database = database
        self.before: Snapshot | None = None

    async def mark(self) -> None:
        self.before = await snapshot(self.database)

    async def send(self, request: Callable[[], Any]) -> Outcome:
        await self.mark()
        response = await request()
        assert self.before is not None
        after = await snapshot(self.database)
        return Outcome(response, diff(self.before, after) if after != self.before else "")


def settings_like(database: Database, **changes: Any) -> Any:
    """The test settings of `database`, with `changes`."""
    current = database.settings
    return load_settings(
        database_url=current.database_url,
        environment="test",
        max_body_bytes=current.max_body_bytes,
        **changes,
    )
