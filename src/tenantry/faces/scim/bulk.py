"""POST /Bulk (RFC 7644 §3.7): many operations on /Users and /Groups in one request.

Each operation is answered by the very route that answers it alone (users.py, groups.py),
called with a sub-request that carries the operation's body and `If-Match` (its `version`):
one implementation, the same checks, the same error bodies. They all run in the request's one
transaction, each in its own SAVEPOINT: a failed operation rolls back only its own writes, and
the request commits once at the end (a process killed half-way leaves nothing written).

`bulkId:<id>` in an operation's path or data is the id of the resource the POST with that
bulkId created; a reference to a later POST runs that POST first (RFC 7644 §3.7.2). A
reference to a bulkId no POST of the request has, to one that failed, or a circular one is
that operation's 409 (the RFC lets a server stop after one attempt). The request's shape is
checked before anything runs: a malformed one is one 400 and writes nothing.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, TypeGuard

import orjson
from fastapi import APIRouter, Request
from fastapi.responses import Response
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.types import Message

from tenantry.errors import DomainError
from tenantry.faces.http import Db, status_for
from tenantry.faces.scim import groups, render, users
from tenantry.faces.scim.errors import ScimError
from tenantry.faces.scim.render import ScimProblem, ScimResponse, error_body
from tenantry.faces.scim.schema import BULK_REQUEST, BULK_RESPONSE, SchemaViolation
from tenantry.faces.scim.wire import ScimCaller, ScimRoute, base_url, body_of
from tenantry.identity.principals import Principal

router = APIRouter(route_class=ScimRoute, tags=["Bulk"])

MAX_OPERATIONS = 1000
MAX_CHAIN = 100  # forward references followed one after another
METHODS = ("POST", "PUT", "PATCH", "DELETE")
RESOURCES = {"users": "Users", "groups": "Groups"}
REFERENCE = "bulkId:"
JSON = dict[str, Any]


@dataclass(frozen=True)
class Operation:
    """One checked operation: `resource` is "Users" or "Groups", `target` the id its path
    names (None for a POST; it may be a `bulkId:` reference)."""

    method: str
    resource: str
    target: str | None
    bulk_id: str | None
    version: str | None
    data: Any
    references: frozenset[str]


@dataclass(frozen=True)
class BulkRequest:
    operations: list[Operation]
    fail_on_errors: int | None


# --- reading the request -----------------------------------------------------------------------


def read_bulk(payload: Any) -> BulkRequest:
    """The request's operations, checked; SchemaViolation (400) for any malformed part and
    413 for more than MAX_OPERATIONS (RFC 7644 §3.7.4)."""
    if not isinstance(payload, dict):
        raise SchemaViolation("the body must be a BulkRequest object", "invalidSyntax")
    lowered = {str(k).lower(): v for k, v in payload.items()}
    schemas = lowered.get("schemas")
    if not isinstance(schemas, list) or BULK_REQUEST.lower() not in _lowered(schemas):
        raise SchemaViolation(f"schemas must list {BULK_REQUEST}", "invalidSyntax")
    raw = lowered.get("operations")
    if not isinstance(raw, list):
        raise SchemaViolation("Operations must be a list", "invalidSyntax")
    if len(raw) > MAX_OPERATIONS:
        raise ScimError(413, None, f"more than maxOperations ({MAX_OPERATIONS}) operations")
    operations = [_operation(item, i) for i, item in enumerate(raw)]
    _check_bulk_ids(operations)
    return BulkRequest(operations, _fail_on_errors(lowered.get("failonerrors")))


def _lowered(values: list[Any]) -> list[str]:
    return [v.lower() for v in values if isinstance(v, str)]


def _fail_on_errors(value: Any) -> int | None:
    if value is None:
        return None
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise SchemaViolation("failOnErrors must be an integer of 1 or more")
    return value


def _operation(item: Any, index: int) -> Operation:
    where = f"Operations[{index}]"
    if not isinstance(item, dict):
        raise SchemaViolation(f"{where} must be an object", "invalidSyntax")
    op = {str(k).lower(): v for k, v in item.items()}
    method = op.get("method")
    if not isinstance(method, str) or method.upper() not in METHODS:
        raise SchemaViolation(f"{where}.method must be one of {', '.join(METHODS)}")
    method = method.upper()
    resource, target = _path(op.get("path"), method, where)
    bulk_id = _text(op.get("bulkid"), f"{where}.bulkId")
    if method == "POST" and bulk_id is None:
        raise SchemaViolation(f"{where}.bulkId is required for a POST")
    data = op.get("data")
    if method != "DELETE" and not isinstance(data, dict):
        raise SchemaViolation(f"{where}.data must be an object for a {method}")
    references = _references(data) | ({target[len(REFERENCE) :]} if _is_ref(target) else set())
    return Operation(
        method,
        resource,
        target,
        bulk_id,
        _text(op.get("version"), f"{where}.version"),
        data if method != "DELETE" else None,
        frozenset(references),
    )


def _text(value: Any, where: str) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str) or not value.strip():
        raise SchemaViolation(f"{where} must be a non-empty string")
    return value


def _path(value: Any, method: str, where: str) -> tuple[str, str | None]:
    """("Users" | "Groups", the id or None): a POST names the collection, the others one
    resource of it. Anything else (/Bulk itself, discovery, a sub-path) is invalidPath."""
    if not isinstance(value, str) or not value.startswith("/"):
        raise SchemaViolation(f"{where}.path must be a path such as /Users", "invalidPath")
    parts = value[1:].split("/")
    resource = RESOURCES.get(parts[0].lower())
    wanted = 1 if method == "POST" else 2
    if resource is None or len(parts) != wanted or not all(parts):
        shape = "/Users or /Groups" if method == "POST" else "/Users/{id} or /Groups/{id}"
        raise SchemaViolation(f"{where}.path of a {method} must be {shape}", "invalidPath")
    return resource, (parts[1] if wanted == 2 else None)


def _is_ref(value: Any) -> TypeGuard[str]:
    return isinstance(value, str) and value.startswith(REFERENCE)


def _references(data: Any) -> set[str]:
    if _is_ref(data):
        return {data[len(REFERENCE) :]}
    items = data.values() if isinstance(data, dict) else data if isinstance(data, list) else ()
    found: set[str] = set()
    for item in items:
        found |= _references(item)
    return found


def _check_bulk_ids(operations: list[Operation]) -> None:
    seen: set[str] = set()
    for op in operations:
        if op.bulk_id is not None and op.bulk_id in seen:
            raise SchemaViolation(f"bulkId {op.bulk_id} is used twice", "uniqueness")
        if op.bulk_id is not None:
            seen.add(op.bulk_id)


def _resolved(data: Any, ids: dict[str, str]) -> Any:
    """`data` with every `bulkId:` reference replaced by its resource's id."""
    if _is_ref(data):
        return ids[data[len(REFERENCE) :]]
    if isinstance(data, dict):
        return {k: _resolved(v, ids) for k, v in data.items()}
    if isinstance(data, list):
        return [_resolved(v, ids) for v in data]
    return data


# --- running it ----------------------------------------------------------------------------


class _Stop(Exception):
    """failOnErrors reached: the operations not yet run stay unprocessed."""


@dataclass
class _Run:
    request: Request
    caller: Principal
    db: AsyncSession
    bulk: BulkRequest
    ids: dict[str, str] = field(default_factory=dict)  # bulkId -> the created resource's id
    results: dict[int, JSON] = field(default_factory=dict)
    errors: int = 0
    posts: dict[str, int] = field(default_factory=dict)  # bulkId -> the index of its POST

    def __post_init__(self) -> None:
        for i, op in enumerate(self.bulk.operations):
            if op.method == "POST" and op.bulk_id is not None:
                self.posts[op.bulk_id] = i

    async def all(self) -> list[JSON]:
        try:
            for i in range(len(self.bulk.operations)):
                await self.one(i, frozenset())
        except _Stop:
            pass
        return [self.results[i] for i in sorted(self.results)]

    async def one(self, i: int, waiting: frozenset[int]) -> None:
        """Operation i, after the POSTs it references (`waiting`: the operations that wait
        for it, to tell a circular reference)."""
        if i in self.results:
            return
        op = self.bulk.operations[i]
        for ref in sorted(op.references):
            j = self.posts.get(ref)
            circular = j is not None and (j == i or j in waiting)
            # Each forward reference nests a call: a bound keeps a chain of them off the
            # interpreter's recursion limit.
            deep = len(waiting) >= MAX_CHAIN
            if j is not None and not circular and not deep:
                await self.one(j, waiting | {i})
            if ref not in self.ids:
                why = "is missing" if j is None else "is circular" if circular else "failed"
                why = f"is more than {MAX_CHAIN} forward references away" if deep else why
                self.conflict(i, f"bulkId:{ref} cannot be resolved: its POST {why}")
                return
        await self.run(i, op)

    def conflict(self, i: int, detail: str) -> None:
        body = error_body(409, "invalidValue", detail)
        self.record(i, self.bulk.operations[i], 409, None, {"response": body})

    def record(self, i: int, op: Operation, status: int, location: str | None, extra: JSON) -> None:
        result: JSON = {"method": op.method}
        if op.bulk_id is not None:
            result["bulkId"] = op.bulk_id
        if location is not None:
            result["location"] = location
        result.update(extra)
        result["status"] = str(status)
        self.results[i] = result
        if status >= 400:
            self.errors += 1
            if self.bulk.fail_on_errors is not None and self.errors >= self.bulk.fail_on_errors:
                raise _Stop

    async def run(self, i: int, op: Operation) -> None:
        target = self.ids[op.target[len(REFERENCE) :]] if _is_ref(op.target) else op.target
        sub = _sub_request(self.request, op, target, _resolved(op.data, self.ids))
        base = base_url(self.request)
        location = None if target is None else f"{base}/{op.resource}/{target}"
        try:
            async with self.db.begin_nested():
                response = await _route(op, sub, self.caller, self.db, target)
        except DomainError as exc:
            self._refused(i, op, location, render.render(sub, status_for(exc, render.STATUS), exc))
            return
        except Exception as exc:
            if not isinstance(exc, ScimProblem):
                raise
            self._refused(i, op, location, render.problem(exc))
            return
        self._answered(i, op, location, response)

    def _refused(self, i: int, op: Operation, location: str | None, response: Response) -> None:
        body = orjson.loads(bytes(response.body))
        self.record(i, op, response.status_code, location, {"response": body})

    def _answered(self, i: int, op: Operation, location: str | None, response: Response) -> None:
        extra: JSON = {}
        meta = orjson.loads(bytes(response.body)).get("meta") if response.body else None
        if isinstance(meta, dict):
            location = meta.get("location", location)
            extra["version"] = meta.get("version")
            if op.method == "POST" and op.bulk_id is not None and location is not None:
                self.ids[op.bulk_id] = location.rsplit("/", 1)[-1]
        elif "etag" in response.headers:
            extra["version"] = response.headers["etag"]
        self.record(i, op, response.status_code, location, extra)


def _sub_request(outer: Request, op: Operation, target: str | None, data: Any) -> Request:
    """The request the route would have received for this operation alone."""
    body = b"" if data is None else orjson.dumps(data)
    path = f"/{op.resource}" + ("" if target is None else f"/{target}")
    # The host (the resources' locations); not the credential: the caller is passed as is.
    headers = [(k, v) for k, v in outer.scope["headers"] if k == b"host"]
    headers.append((b"content-type", render.MEDIA_TYPE.encode()))
    if op.version is not None:
        headers.append((b"if-match", op.version.encode()))
    root = str(outer.scope.get("root_path", ""))
    scope = {
        **outer.scope,
        "method": op.method,
        "path": root + path,
        "raw_path": (root + path).encode(),
        "query_string": b"",
        "headers": headers,
    }

    async def receive() -> Message:
        return {"type": "http.request", "body": body, "more_body": False}

    return Request(scope, receive)


async def _route(
    op: Operation, sub: Request, caller: Principal, db: AsyncSession, target: str | None
) -> Response:
    """The single-resource route that answers this operation."""
    the_id = target or ""
    match (op.resource, op.method):
        case ("Users", "POST"):
            return await users.create_user(sub, caller, db)
        case ("Users", "PUT"):
            return await users.replace_user(sub, caller, db, the_id)
        case ("Users", "PATCH"):
            return await users.patch_user(sub, caller, db, the_id)
        case ("Users", "DELETE"):
            return await users.delete_user(sub, caller, db, the_id)
        case ("Groups", "POST"):
            return await groups.create_group(sub, caller, db)
        case ("Groups", "PUT"):
            return await groups.replace_group(sub, caller, db, the_id)
        case ("Groups", "PATCH"):
            return await groups.patch_group(sub, caller, db, the_id)
        case _:
            return await groups.delete_group(sub, caller, db, the_id)


@router.post("/Bulk")
async def bulk(request: Request, caller: ScimCaller, db: Db) -> Response:
    checked = read_bulk(await body_of(request))
    results = await _Run(request, caller, db, checked).all()
    return ScimResponse({"schemas": [BULK_RESPONSE], "Operations": results})
