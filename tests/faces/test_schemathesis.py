"""Schemathesis over each face's own OpenAPI document, in-process through the ASGI app.

For every operation of the astro face (/v1/openapi.json) and the native face
(/tenantry/v1/openapi.json), schemathesis generates requests (valid ones with random ids, valid
ones aimed at real objects, and invalid ones), each sent as a SYSTEM_ADMIN through the test
client (so the app shares the test's event loop and database on both SQLite and PostgreSQL).
Every response must not be a 5xx (`not_a_server_error`) and must match the schema the document
declares for its status (`response_schema_conformance`). Generation is derandomized and bounded,
so the run is stable and short; every failing operation is reported at once.
"""

from __future__ import annotations

import contextlib
from typing import Any, TypeAlias

import httpx
import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.core import NOT_SET, Body
from schemathesis.core.errors import InvalidSchema
from schemathesis.core.failures import FailureGroup
from schemathesis.core.result import Err, Ok
from schemathesis.specs.openapi.checks import response_schema_conformance

from tenantry.db.engine import Database
from tests.faces.routes import FACES, Tenant, build_tenant, routes_of
from tests.factories import World

# Examples per operation and generation mode; PostgreSQL runs fewer to bound the run time.
EXAMPLES = {"sqlite": 6, "postgres": 3}
CHECKS = [not_a_server_error, response_schema_conformance]
# Reads first, deletes last, so that one operation's writes disturb the others the least.
ORDER = {"GET": 0, "POST": 1, "PUT": 1, "PATCH": 1, "DELETE": 2}

Operation: TypeAlias = "schemathesis.APIOperation[Any, Any, Any, Any]"
Case: TypeAlias = "schemathesis.Case[Any]"


def _prefix(face: str) -> str:
    return next(p for p, f in FACES.items() if f == face)


def _draw(strategy: Any, count: int) -> list[Case]:
    """`count` cases from `strategy`, the same ones on every run."""
    drawn: list[Case] = []

    @given(strategy)
    @settings(
        max_examples=count,
        derandomize=True,
        database=None,
        deadline=None,
        phases=[Phase.explicit, Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    def collect(case: Case) -> None:
        drawn.append(case)

    collect()
    return drawn


def _cases(operation: Operation, tenant: Tenant, count: int) -> list[Case]:
    cases = _draw(operation.as_strategy(generation_mode=GenerationMode.POSITIVE), count)
    path_params = [p.name for p in operation.path_parameters]
    if path_params:  # the same, aimed at the tenant's real objects
        real = tenant.values(path_params)
        strategy = operation.as_strategy(
            generation_mode=GenerationMode.POSITIVE, path_parameters=real
        )
        cases += _draw(strategy, count)
    with contextlib.suppress(Unsatisfiable):  # an operation with nothing to make invalid
        cases += _draw(operation.as_strategy(generation_mode=GenerationMode.NEGATIVE), count)
    return cases


def _operation(result: Ok[Operation] | Err[InvalidSchema]) -> Operation:
    """The operation, or the error that kept schemathesis from reading it, raised."""
    if isinstance(result, Err):
        raise result.err()
    return result.ok()


def _shown(body: Body) -> str:
    """A case's body in a failure message: bytes as text, not as b'...'."""
    if body is NOT_SET:
        return "-"
    if isinstance(body, bytes):
        return body.decode("utf-8", "backslashreplace")
    return str(body)


def _wire(value: str | bytes) -> bytes:
    """A header key or value as httpx puts it on the wire (str values must be ASCII)."""
    return value if isinstance(value, bytes) else value.encode("ascii")


def _summary(message: object) -> str:
    """The first lines of a failure's explanation, without the schema dump that follows."""
    lines = [line for line in str(message).splitlines() if line.strip()]
    return " | ".join(lines[:2])[:400]


async def _send(
    client: httpx.AsyncClient, prefix: str, case: Case, auth: dict[str, str]
) -> httpx.Response:
    """Serialize the case exactly as schemathesis would put it on the wire, then send those
    bytes through the test client."""
    base_url = str(client.base_url).rstrip("/") + prefix
    kwargs = case.as_transport_kwargs(base_url=base_url, headers=auth)
    prepared = requests.Request(
        method=kwargs["method"],
        url=kwargs["url"],
        headers=kwargs.get("headers"),
        params=kwargs.get("params"),
        data=kwargs.get("data"),
        json=kwargs.get("json"),
        cookies=kwargs.get("cookies"),
    ).prepare()
    body = prepared.body.encode() if isinstance(prepared.body, str) else prepared.body
    assert body is None or isinstance(body, bytes), type(body)
    assert prepared.url is not None and prepared.method is not None
    headers = [(_wire(k), _wire(v)) for k, v in prepared.headers.items()]
    return await client.request(prepared.method, prepared.url, headers=headers, content=body)


@pytest.mark.parametrize("face", ["astro", "native"])
async def test_face_conforms_to_its_openapi_document(
    client: httpx.AsyncClient,
    world: World,
    database: Database,
    db_url: str,
    face: str,
) -> None:
    prefix = _prefix(face)
    count = EXAMPLES["sqlite" if db_url.startswith("sqlite") else "postgres"]
    admin_token = await world.token(await world.admin())
    auth = {"Authorization": f"Bearer {admin_token}"}
    tenant = await build_tenant(world, "S")
    probe = next(r for r in routes_of(face) if r.method == "GET" and not r.params)
    await _conforms(client, face, prefix, count, auth, tenant, probe.url({}))


# The ece and unleash faces: their own OpenAPI documents, probed with GET /user.
VENDOR_FACES = {"ece": "/api/v1", "unleash": "/api/admin"}


@pytest.mark.parametrize("face", sorted(VENDOR_FACES))
async def test_vendor_face_conforms_to_its_openapi_document(
    client: httpx.AsyncClient, world: World, db_url: str, face: str
) -> None:
    prefix = VENDOR_FACES[face]
    count = EXAMPLES["sqlite" if db_url.startswith("sqlite") else "postgres"]
    admin_token = await world.token(await world.admin("root@example.com"))
    auth = {"Authorization": f"Bearer {admin_token}"}
    tenant = await build_tenant(world, "S")
    await _conforms(client, face, prefix, count, auth, tenant, f"{prefix}/user")


async def _conforms(
    client: httpx.AsyncClient,
    face: str,
    prefix: str,
    count: int,
    auth: dict[str, str],
    tenant: Tenant,
    probe_url: str,
) -> None:
    document = (await client.get(f"{prefix}/openapi.json")).json()
    schema = schemathesis.openapi.from_dict(document)
    operations = [_operation(result) for result in schema.get_all_operations()]
    operations.sort(key=lambda op: (ORDER.get(op.method.upper(), 1), op.path))
    assert operations, f"{face}: no operations in {prefix}/openapi.json"

    failures: dict[str, list[str]] = {}
    sent = succeeded = 0
    for operation in operations:
        for case in _cases(operation, tenant, count):
            try:
                response = await _send(client, prefix, case, auth)
            except (httpx.InvalidURL, UnicodeEncodeError, httpx.LocalProtocolError):
                continue  # a generated value that no HTTP client can put on the wire
            sent += 1
            succeeded += response.status_code < 300
            try:
                case.validate_response(response, checks=CHECKS)
            except FailureGroup as group:
                label = f"{operation.method.upper()} {prefix}{operation.path}"
                for failure in group.exceptions:
                    text = (
                        f"{failure.title}: {case.method} {response.request.url} "
                        f"body={_shown(case.body)} "
                        f"-> {response.status_code} {response.text[:300]}"
                        f"\n      {_summary(failure.message)}"
                    )
                    failures.setdefault(label, [])
                    if len(failures[label]) < 3 and text not in failures[label]:
                        failures[label].append(text)
    assert sent > len(operations), "schemathesis sent (almost) nothing"
    assert succeeded, "no request succeeded: the run exercised nothing but error paths"
    # No generated request may have cost the admin its access (which would hide the rest).
    still = await client.get(probe_url, headers=auth)
    assert still.status_code == 200, f"the admin token stopped working: {still.text}"
    assert not failures, f"{face}: {len(failures)} operation(s) failed:\n" + "\n".join(
        f"- {label}\n    " + "\n    ".join(items) for label, items in failures.items()
    )
