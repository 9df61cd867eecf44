"""What every SCIM route shares: the SCIM token caller, the body, paging, ETags, projection."""

from __future__ import annotations

import functools
from collections.abc import Callable, Coroutine, Mapping
from dataclasses import dataclass
from typing import Annotated, Any

import orjson
from fastapi import Depends, Request
from fastapi.responses import Response

from tenantry.directory.provisioning import Order
from tenantry.errors import Unauthenticated
from tenantry.faces.http import SAFE_METHODS, Db, JSONRoute, bearer_secret, database, security
from tenantry.faces.scim.render import ScimProblem, ScimResponse, problem
from tenantry.faces.scim.schema import ENTERPRISE, LIST_RESPONSE, SchemaViolation
from tenantry.identity.principals import Principal
from tenantry.identity.scim_tokens import authenticate_scim
from tenantry.identity.usage import touch
from tenantry.ids import ID_PATTERN

JSON = dict[str, Any]
PREFIX = "/scim/v2"
DEFAULT_COUNT = 100
MAX_COUNT = 1000


class ScimRoute(JSONRoute):
    """A route whose SCIM refusals raised outside the domain (parsers, schema checks) are
    answered as SCIM errors; the domain's go through the face's error table."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        @functools.wraps(handler)
        async def guarded(request: Request) -> Response:
            try:
                return await handler(request)
            except Exception as exc:
                if isinstance(exc, ScimProblem):
                    return problem(exc)
                raise

        return guarded


async def scim_principal(request: Request, db: Db) -> Principal:
    """The organization's SCIM token behind `Authorization: Bearer`; nothing else is good."""
    secret = bearer_secret(request)
    if secret is None:
        raise Unauthenticated("missing bearer token")
    principal = await authenticate_scim(db, secret, security(request).policy)
    writing = request.method not in SAFE_METHODS
    await touch(database(request), principal, db if writing else None)
    return principal


ScimCaller = Annotated[Principal, Depends(scim_principal)]


async def body_of(request: Request) -> Any:
    raw = await request.body()
    if not raw.strip():
        raise SchemaViolation("a JSON body is required", "invalidSyntax")
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError:
        raise SchemaViolation("the body is not valid JSON", "invalidSyntax") from None


def base_url(request: Request) -> str:
    """This face's base URL as the client reached it (the mount's prefix included)."""
    root = str(request.scope.get("root_path", "")).rstrip("/")
    if not root.endswith(PREFIX):
        root += PREFIX
    return f"{request.url.scheme}://{request.url.netloc}{root}"


def is_id(value: str) -> bool:
    import re

    return re.fullmatch(ID_PATTERN, value) is not None


def if_match(request: Request) -> list[str] | None:
    """The versions an If-Match header names ("*" for any), None without one."""
    header = request.headers.get("if-match")
    if header is None:
        return None
    found = []
    for part in header.split(","):
        tag = part.strip()
        if tag == "*":
            found.append("*")
            continue
        tag = tag.removeprefix("W/").strip()
        if len(tag) >= 2 and tag[0] == tag[-1] == '"':
            found.append(tag[1:-1])
    return found


def _integer(value: str | None, name: str, default: int) -> int:
    if value is None or value == "":
        return default
    try:
        return int(value)
    except ValueError:
        raise SchemaViolation(f"{name} must be an integer") from None


def paging(request: Request) -> tuple[int, int]:
    """(offset, count) from startIndex (1-based; below 1 is 1) and count (below 0 is 0)."""
    start = max(1, _integer(request.query_params.get("startIndex"), "startIndex", 1))
    count = _integer(request.query_params.get("count"), "count", DEFAULT_COUNT)
    return start - 1, max(0, min(count, MAX_COUNT))


@dataclass(frozen=True)
class Search:
    """A query's parameters, from the URL (GET) or a SearchRequest body (POST /.search)."""

    filter: str | None
    offset: int
    count: int
    attributes: list[str]
    excluded: list[str]
    sort_by: str | None = None
    descending: bool = False


def _descending(sort_order: Any) -> bool:
    """sortOrder (RFC 7644 §3.4.2.3): "ascending" (the default) or "descending"."""
    if sort_order is None or sort_order == "":
        return False
    if not isinstance(sort_order, str) or sort_order.lower() not in ("ascending", "descending"):
        raise SchemaViolation('sortOrder is "ascending" or "descending"')
    return sort_order.lower() == "descending"


def _sort_by(value: Any) -> str | None:
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        raise SchemaViolation("sortBy must be an attribute name")
    return value.strip()


def search_of_query(request: Request) -> Search:
    offset, count = paging(request)
    attributes, excluded = projection(request)
    params = request.query_params
    return Search(
        params.get("filter"),
        offset,
        count,
        attributes,
        excluded,
        _sort_by(params.get("sortBy")),
        _descending(params.get("sortOrder")),
    )


def search_of_body(payload: Any) -> Search:
    if not isinstance(payload, dict):
        raise SchemaViolation("the body must be a SearchRequest object", "invalidSyntax")
    lowered = {str(k).lower(): v for k, v in payload.items()}
    names = {}
    for key in ("attributes", "excludedattributes"):
        value = lowered.get(key) or []
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise SchemaViolation(f"{key} must be a list of attribute names")
        names[key] = value
    flt = lowered.get("filter")
    if flt is not None and not isinstance(flt, str):
        raise SchemaViolation("filter must be a string", "invalidFilter")
    start, count = lowered.get("startindex", 1), lowered.get("count", DEFAULT_COUNT)
    if not isinstance(start, int) or not isinstance(count, int):
        raise SchemaViolation("startIndex and count must be integers")
    return Search(
        flt,
        max(1, start) - 1,
        max(0, min(count, MAX_COUNT)),
        names["attributes"],
        names["excludedattributes"],
        _sort_by(lowered.get("sortby")),
        _descending(lowered.get("sortorder")),
    )


def sort_field(name: str, sortable: Mapping[str, str], core: str) -> str | None:
    """The directory field of the attribute `name` (any case, with or without the core
    schema's URN) among `sortable`, None if it is not there."""
    wanted = name.lower().removeprefix(core.lower() + ":")
    return next((f for a, f in sortable.items() if a.lower() == wanted), None)


def order_of(search: Search, sortable: Mapping[str, str], core: str) -> Order | None:
    """The directory order `sortBy` names, None without one; 400 invalidValue for an
    attribute the face cannot sort by (sorting silently otherwise would look like an
    answer)."""
    if search.sort_by is None:
        return None
    found = sort_field(search.sort_by, sortable, core)
    if found is None:
        known = ", ".join(sortable)
        raise SchemaViolation(f"cannot sort by {search.sort_by}; sortBy is one of {known}")
    return Order(found, search.descending)


def list_response(resources: list[JSON], total: int, offset: int) -> JSON:
    return {
        "schemas": [LIST_RESPONSE],
        "totalResults": total,
        "startIndex": offset + 1,
        "itemsPerPage": len(resources),
        "Resources": resources,
    }


def resource_response(body: JSON, status: int = 200) -> Response:
    headers = {"etag": body["meta"]["version"]}
    if status == 201:
        headers["location"] = body["meta"]["location"]
    return ScimResponse(body, status_code=status, headers=headers)


# --- attributes / excludedAttributes (RFC 7644 §3.9) --------------------------------------


def _names(value: str | None) -> list[str]:
    if not value:
        return []
    return [n.strip() for n in value.split(",") if n.strip()]


def projection(request: Request) -> tuple[list[str], list[str]]:
    params = request.query_params
    return _names(params.get("attributes")), _names(params.get("excludedAttributes"))


_ALWAYS = ("schemas", "id", "meta")


def _split(name: str, core: str) -> tuple[str, ...]:
    """An attribute name as a path: (urn?, attribute, sub-attribute?)."""
    low = name.lower()
    for urn in (ENTERPRISE, core):
        if low.startswith(urn.lower() + ":"):
            rest = name[len(urn) + 1 :]
            parts = tuple(rest.split(".", 1))
            return (urn, *parts) if urn == ENTERPRISE else parts
        if low == urn.lower():
            return (urn,)
    return tuple(name.split(".", 1))


def project(body: JSON, attributes: list[str], excluded: list[str], core: str) -> JSON:
    """The body with only `attributes` (and those always returned), or without `excluded`."""
    if attributes:
        return _keep(body, [_split(a, core) for a in attributes])
    if excluded:
        return _drop(body, [_split(a, core) for a in excluded])
    return body


def _get(holder: JSON, name: str) -> str | None:
    low = name.lower()
    return next((k for k in holder if k.lower() == low), None)


def _keep(body: JSON, paths: list[tuple[str, ...]]) -> JSON:
    out: JSON = {k: v for k, v in body.items() if k in _ALWAYS}
    for path in paths:
        _copy(body, out, path)
    return out


def _copy(source: JSON, target: JSON, path: tuple[str, ...]) -> None:
    key = _get(source, path[0])
    if key is None:
        return
    value = source[key]
    if len(path) == 1:
        target[key] = value
    elif isinstance(value, dict):
        _copy(value, target.setdefault(key, {}), path[1:])
    elif isinstance(value, list):
        kept = [{k: v for k, v in item.items() if k.lower() == path[1].lower()} for item in value]
        target[key] = [k for k in kept if k]


def _drop(body: JSON, paths: list[tuple[str, ...]]) -> JSON:
    out: JSON = orjson.loads(orjson.dumps(body))
    for path in paths:
        holder: Any = out
        for part in path[:-1]:
            key = _get(holder, part)
            holder = holder.get(key) if key is not None else None
            if not isinstance(holder, dict):
                break
        else:
            key = _get(holder, path[-1])
            if key is not None and key not in _ALWAYS:
                del holder[key]
    return out
