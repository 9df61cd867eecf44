"""Issue 16's corpus replayed against Tenantry, compared with a real Unleash 8.2's recorded
answers (tests/reference/unleash-8.2-live, recorded by `python -m compare.unleash --against
URL --record`; compare/unleash/README.md).

The corpus runs in order on an in-process app seeded as Unleash starts (compare/unleash/
tenantry_side.py), and each answer is compared with the recorded one on the points of
compare/unleash/points.py, the same function the live harness uses. Steps in
KNOWN_DIFFERENCES must still differ (a step fixed is noticed: take it off the table), every
other step must match, and the figure is asserted.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from compare.unleash import fixtures, tenantry_side
from compare.unleash.corpus import CORPUS
from compare.unleash.points import POINTS, differences, points, shape
from compare.unleash.report import Comparison, compare, dates
from compare.unleash.runner import Step, run, scrub, scrub_set_cookie
from tenantry.app import create_app
from tenantry.config import Settings, load_settings
from tenantry.db.engine import Database

ALL = frozenset(POINTS)


@dataclass(frozen=True)
class Cause:
    """Why some steps still differ from Unleash, and on which points (points.py) they may."""

    name: str
    points: frozenset[str]
    reason: str
    steps: tuple[str, ...]


# The causes of the differences found by the live run (compare/unleash/README.md), each with the
# steps it explains. "Deliberate" marks Tenantry rules kept on purpose (issue 16: where Unleash
# is less safe, Tenantry keeps its rule). Take a step off a cause when the face is fixed; the test
# says which.
CAUSES: tuple[Cause, ...] = (
    Cause(
        "HEADER_AND_COOKIE",
        ALL,
        (
            "Deliberate: a bad Authorization header with a good cookie: Unleash authenticates "
            "by the cookie (200); Tenantry reads the header only (401), its documented rule: "
            "a credential that was presented and is wrong is refused, never replaced by "
            "another one the browser sent along."
        ),
        ("me.get.header_beats_cookie",),
    ),
    Cause(
        "ACCESS_TENANTS",
        frozenset({"body"}),
        (
            "Deliberate: GET /user-admin/access lists to a caller who may neither list nor "
            "search the instance's users (a Viewer) only the users they could list anyway, "
            "their organizations' members and themselves (tenants are isolated); Unleash, "
            "which has one tenant, lists every user to anyone signed in."
        ),
        ("user_admin.access.viewer_pat",),
    ),
    Cause(
        "USERNAME_CASE",
        ALL,
        (
            "Deliberate: Tenantry's usernames are case-insensitive ('ADMIN' signs in as admin, "
            "'PLAINUSER' is taken); Unleash's are not (401, 201)."
        ),
        (
            "user_admin.create.duplicate_username_other_case",
            "login.admin_upper_case",
        ),
    ),
    Cause(
        "PAT_DESCRIPTION_LENGTH",
        ALL,
        (
            "Deliberate: a PAT's description is the Tenantry token's name, at most 256 "
            "characters in every face (its column's size), so a longer one is 400 BadDataError "
            "'The description is too long.'; Unleash stores any length (201)."
        ),
        ("pats.create.long_description",),
    ),
    Cause(
        "PAT_MAX_DAYS",
        ALL,
        (
            "Deliberate: a PAT expires within 3650 days in Tenantry (400); Unleash takes any "
            "future date."
        ),
        ("pats.create.beyond_ten_years",),
    ),
    Cause(
        "TAKEN_EMAIL",
        ALL,
        (
            "Deliberate: PUT /user-admin/{id} with another user's e-mail: Unleash fails on its "
            "unique index (500 UnknownError); Tenantry refuses it as bad input (400 "
            "BadDataError), the 4xx a client can act on."
        ),
        ("user_admin.update.taken_email",),
    ),
    Cause(
        "WEAK_PASSWORD_AT_CREATE",
        ALL,
        (
            "Deliberate: Tenantry checks a password given at creation (400); Unleash stores it "
            "unchecked (201)."
        ),
        ("user_admin.create.weak_password",),
    ),
    Cause(
        "UNLEASH_500",
        ALL,
        (
            "Deliberate: Unleash answers 500 UnknownError (password of an unknown user; the "
            "admin token on roles, PAT deletion, feedback; a taken e-mail); Tenantry answers "
            "its 4xx (or accepts): to the admin token, a system API token and no user, 400 "
            "BadDataError 'User id is missing in request user object' (roles, feedback) and "
            "403 ForbiddenError 'PATs require an authenticated user.' (PAT deletion)."
        ),
        (
            "me.roles.admin_api",
            "user_admin.update.taken_email",
            "user_admin.set_password.unknown_user",
            "pats.delete.valid.admin_api",
            "pats.delete.invalid.admin_api",
            "feedback.create.valid.admin_api",
            "feedback.update.valid.admin_api",
        ),
    ),
    Cause(
        "SELF_SERVICE",
        ALL,
        (
            "Deliberate: an admin demoting or deleting themselves: Unleash does it (200, then "
            "403; the deleted admin's cookie still answers, without permissions); Tenantry "
            "refuses (400) and the admin stays one."
        ),
        (
            "self.admin2_demotes_self",
            "self.admin2_after_demotion",
            "self.admin3_deletes_self",
            "self.admin3_after_delete",
        ),
    ),
    Cause(
        "CSRF",
        ALL,
        (
            "Deliberate (docs/faces/unleash.md): a state change by cookie alone without "
            "Content-Type: application/json is 415 ContentTypeError in Tenantry; Unleash "
            "performs it."
        ),
        ("own.csrf_no_content_type",),
    ),
    Cause(
        "SESSION_SNAPSHOT",
        frozenset({"body"}),
        (
            "Deliberate: Unleash's session keeps the user as they were at sign-in (the admin's "
            "name set later is not in its meSchema); Tenantry shows the user as they are now, "
            "as its permissions are read now: a session never acts on a stale copy."
        ),
        ("self.final_me",),
    ),
)
KNOWN_DIFFERENCES: dict[str, str] = {
    step: "; ".join(f"{c.name}: {c.reason}" for c in CAUSES if step in c.steps)
    for step in dict.fromkeys(s for c in CAUSES for s in c.steps)
}
# The figure of the fixtures' replay at this commit (459 / 479 = 95.8 %); issue 16 asks for 0.95.
MATCH_FLOOR = 0.95


@pytest.fixture
async def corpus_client(
    settings: Settings, database: Database
) -> Any:  # AsyncIterator[tuple[httpx.AsyncClient, dict[str, str]]]
    """An app with the harness's settings (sign-in rate limits out of the way), seeded."""
    app_settings = load_settings(
        database_url=settings.database_url,
        environment="test",
        max_body_bytes=64 * 1024,
        **tenantry_side.SETTINGS,
    )
    variables = await tenantry_side.seed(database, app_settings)
    app = create_app(app_settings, database)
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://tenantry.test") as c:
        yield c, variables


async def replay(client: httpx.AsyncClient, variables: dict[str, str]) -> Comparison:
    recorded = fixtures.load()
    exchanges = await run(client, CORPUS, {**variables, **dates()})
    return compare(recorded.records, exchanges)


def test_fixtures_are_the_corpus() -> None:
    """One recorded answer per step, in the corpus's order, each for the corpus's request."""
    recorded = fixtures.load()
    assert list(recorded.records) == [s.name for s in CORPUS]
    for step in CORPUS:
        assert recorded.records[step.name]["request"] == step.request_record(), step.name
    assert len(CORPUS) >= 300
    assert recorded.meta["server"].startswith("Unleash 8.2")


SECRET_PATTERNS = (
    re.compile(r"unleash-insecure-admin-api-token"),
    re.compile(r"user:(?!0+\b)[0-9a-f]{20,}"),  # an Unleash PAT (not the corpus's all-zero one)
    re.compile(r"tnt_[A-Za-z0-9_-]{10,}"),  # a Tenantry secret
    re.compile(r"s%3A[A-Za-z0-9_-]{8,}"),  # a session cookie's value
    re.compile(r"token=[^\s\"<]"),  # an invite or reset link's token
)


def test_fixtures_hold_no_secrets() -> None:
    for path in sorted(fixtures.DIRECTORY.glob("*.json")):
        text = path.read_text()
        for pattern in SECRET_PATTERNS:
            assert not pattern.search(text), f"{path.name}: {pattern.pattern}"


def test_scrub_replaces_the_runs_secrets() -> None:
    secrets = {"pat_admin": "user:" + "ab" * 28, "cookie_admin": "s%3Aabcdefgh.sig"}
    body = {"secret": "user:x", "note": f"uses {secrets['pat_admin']}", "inviteLink": "http://x"}
    assert scrub(body, secrets) == {
        "secret": "<secret>",
        "note": "uses <pat_admin>",
        "inviteLink": "<invite-link>",
    }
    assert scrub({"inviteLink": ""}, secrets) == {"inviteLink": ""}
    cookie = "unleash-session=s%3Aabc.def; Path=/; HttpOnly"
    assert scrub_set_cookie(cookie) == "unleash-session=<session>; Path=/; HttpOnly"
    cleared = "unleash-session=; Path=/; Expires=Thu, 01 Jan 1970 00:00:00 GMT"
    assert scrub_set_cookie(cleared) == cleared


def answer(status: int, body: Any, content_type: str = "application/json; charset=utf-8") -> Any:
    kind = "empty" if body is None else "json"
    return {
        "status": status,
        "content_type": content_type,
        "headers": {},
        "body_kind": kind,
        "json": body,
    }


def test_points_ignore_values_but_not_shapes() -> None:
    unleash = answer(200, {"id": 1, "name": "A", "seenAt": None, "users": [{"id": 1}, {"id": 2}]})
    same = answer(200, {"id": 7, "name": "B", "seenAt": "2026-01-01", "users": [{"id": 9}]})
    assert differences(unleash, same) == []
    null_name = answer(200, {"id": 7, "name": None, "seenAt": None, "users": []})
    found = {d.point: str(d) for d in differences(unleash, null_name)}
    assert list(found) == ["body"]
    assert "name: Unleash string, Tenantry null" in found["body"]
    assert "users: Unleash non-empty, Tenantry []" in found["body"]
    missing = answer(200, {"id": 7, "seenAt": None, "users": [{"id": 1}]})
    assert "keys only in Unleash ['name']" in str(differences(unleash, missing)[0])


def test_points_of_errors() -> None:
    forbidden = {
        "id": "u",
        "name": "PermissionError",
        "message": "m",
        "details": [{"message": "m"}],
        "permissions": ["ADMIN"],
    }
    unleash = answer(403, forbidden)
    assert points(unleash)["error name"] == "PermissionError"
    assert points(unleash)["details"] == 1
    other = answer(
        403, {**forbidden, "name": "NoAccessError", "permissions": ["READ"]}, "application/json"
    )
    assert [d.point for d in differences(unleash, other)] == [
        "media type",
        "error name",
        "permissions",
    ]
    two = answer(403, {**forbidden, "details": [{"message": "a"}, {"message": "b"}]})
    assert [d.point for d in differences(unleash, two)] == ["details"]
    assert differences(unleash, answer(401, forbidden))[0].point == "status"
    redirect = {**answer(302, None, "text/plain"), "headers": {"location": "/signed-out"}}
    elsewhere = {**redirect, "headers": {"location": "http://h/other"}}
    assert [d.point for d in differences(redirect, elsewhere)] == ["location"]
    assert shape([{"a": 1}, {"a": 2}, {"a": "x"}]) == [{"a": "number"}, {"a": "string"}]


async def test_corpus_against_unleash_answers(corpus_client: Any) -> None:
    client, variables = corpus_client
    result = await replay(client, variables)
    assert not [r.name for r in result.results if r.stale], "re-record the fixtures"
    differing = result.differing()
    unexpected = {
        name: [str(d) for d in r.differences]
        for name, r in differing.items()
        if name not in KNOWN_DIFFERENCES
    }
    fixed = sorted(name for name in KNOWN_DIFFERENCES if name not in differing)
    assert not unexpected, "steps that differ from Unleash:\n" + json.dumps(unexpected, indent=1)
    assert not fixed, f"steps that now match Unleash: take them off CAUSES: {fixed}"
    # A known step may differ only on the points its causes account for.
    allowed = {
        step: frozenset().union(*(c.points for c in CAUSES if step in c.steps))
        for step in KNOWN_DIFFERENCES
    }
    beyond = {
        name: [str(d) for d in r.differences if d.point not in allowed[name]]
        for name, r in differing.items()
        if any(d.point not in allowed[name] for d in r.differences)
    }
    assert not beyond, "differences no cause accounts for:\n" + json.dumps(beyond, indent=1)
    assert result.matched == len(CORPUS) - len(KNOWN_DIFFERENCES)
    assert result.ratio >= MATCH_FLOOR, result.figure()


def test_known_differences_name_corpus_steps() -> None:
    names = {s.name for s in CORPUS}
    for cause in CAUSES:
        assert cause.steps, cause.name
        assert len(set(cause.steps)) == len(cause.steps), cause.name
        assert set(cause.steps) <= names, cause.name
        assert cause.points <= ALL and cause.reason.strip(), cause.name
    assert len({c.name for c in CAUSES}) == len(CAUSES)


def test_steps_are_unique_and_well_formed() -> None:
    assert len({s.name for s in CORPUS}) == len(CORPUS)
    assert all(isinstance(s, Step) and s.path.startswith("/") for s in CORPUS)


DOC = Path(__file__).parents[3] / "docs" / "faces" / "unleash.md"


def causes_table() -> str:
    """docs/faces/unleash.md's table of the remaining differences, as CAUSES says."""
    rows = ["| cause | steps | what differs, and why |", "|---|---:|---|"]
    rows += [f"| `{c.name}` | {len(c.steps)} | {c.reason} |" for c in CAUSES]
    return "\n".join(rows) + "\n"


def test_the_docs_list_every_remaining_difference() -> None:
    """The face's page shows this table as it is (print causes_table() to regenerate it)."""
    assert causes_table() in DOC.read_text(), causes_table()
