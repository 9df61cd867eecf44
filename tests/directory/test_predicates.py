"""Predicates compiled to SQL and run against the real users table on SQLite and PostgreSQL:
which rows each condition selects, down to case, LIKE's wildcards, NULLs and timestamps."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from sqlalchemy import exists, select, update

from tenantry.db.engine import Database
from tenantry.db.models import Team, TeamMember, User
from tenantry.directory.predicates import (
    MAX_DEPTH,
    And,
    Column,
    Compare,
    Constant,
    Field,
    InvalidPredicate,
    Not,
    Or,
    Predicate,
    Present,
    compile_predicate,
)
from tests.factories import World

COLUMNS: dict[str, Column | Field] = {
    "username": User.username,
    "email": User.email,
    "full_name": User.full_name,
    "external_id": Field(User.external_id, case_exact=True),
    "id": Field(User.id, case_exact=True),
    "active": User.enabled,
    "updated_at": User.updated_at,
    "seq": User.seq,
}

T0 = datetime(2011, 5, 13, 4, 42, 34, tzinfo=UTC)

# username: (email, full_name, external_id, enabled, updated_at)
ROWS: dict[str, tuple[str | None, str, str | None, bool, datetime]] = {
    "BJensen@Example.com": ("BJensen@Example.com", "Barbara Jensen", "bjensen", True, T0),
    "jsmith@example.org": (
        "jsmith@example.org",
        "James Smith",
        None,
        False,
        T0.replace(microsecond=500_000),
    ),
    "nomail": (None, "", "", True, datetime(2010, 1, 1, tzinfo=UTC)),
    "sale": (None, "50%_off sale", None, True, datetime(2012, 1, 1, tzinfo=UTC)),
    "percent": (None, "50 percent off", None, True, datetime(2009, 1, 1, tzinfo=UTC)),
    "underscore": (None, "50%Xoff", None, True, datetime(2009, 1, 1, tzinfo=UTC)),
    "slash": (None, "a/b", None, True, datetime(2009, 1, 1, tzinfo=UTC)),
    "ab": (None, "ab", None, True, datetime(2009, 1, 1, tzinfo=UTC)),
}
EVERYONE = set(ROWS)
WITHOUT_MAIL = {"nomail", "sale", "percent", "underscore", "slash", "ab"}


async def seed_users(database: Database) -> None:
    """The rows above, made by the factories and then given the exact column values."""
    world = World(database)
    for username, (email, full_name, external_id, enabled, updated_at) in ROWS.items():
        user = await world.user(username, full_name)
        async with database.transaction() as db:
            await db.execute(
                update(User)
                .where(User.id == user.id)
                .values(
                    email=email,
                    email_key=email.lower() if email else None,
                    external_id=external_id,
                    enabled=enabled,
                    updated_at=updated_at,
                )
            )


async def matching(database: Database, predicate: Predicate) -> set[str]:
    where = compile_predicate(predicate, COLUMNS)
    async with database.transaction() as db:
        return set((await db.scalars(select(User.username).where(where))).all())


@pytest.fixture
async def users(database: Database) -> Database:
    await seed_users(database)
    return database


def test_the_cases_have_distinct_labels() -> None:
    assert len({label for label, _, _ in CASES}) == len(CASES)


CASES: list[tuple[str, Predicate, set[str]]] = [
    # text: case-insensitive unless the field says otherwise
    ("eq ignores case", Compare("username", "eq", "bjensen@EXAMPLE.COM"), {"BJensen@Example.com"}),
    ("starts ignores case", Compare("username", "starts", "BJ"), {"BJensen@Example.com"}),
    ("ends ignores case", Compare("email", "ends", "@EXAMPLE.org"), {"jsmith@example.org"}),
    ("contains ignores case", Compare("full_name", "contains", "JENS"), {"BJensen@Example.com"}),
    ("lt orders folded text", Compare("username", "lt", "C"), {"BJensen@Example.com", "ab"}),
    ("ge orders folded text", Compare("username", "ge", "U"), {"underscore"}),
    ("case-exact eq", Compare("external_id", "eq", "bjensen"), {"BJensen@Example.com"}),
    ("case-exact eq, other case", Compare("external_id", "eq", "BJensen"), set()),
    ("case-exact contains", Compare("external_id", "contains", "jens"), {"BJensen@Example.com"}),
    ("case-exact contains, other case", Compare("external_id", "contains", "JENS"), set()),
    ("case-exact starts", Compare("external_id", "starts", "bje"), {"BJensen@Example.com"}),
    ("case-exact starts, other case", Compare("external_id", "starts", "BJE"), set()),
    ("case-exact ends", Compare("external_id", "ends", "sen"), {"BJensen@Example.com"}),
    ("case-exact ends, other case", Compare("external_id", "ends", "SEN"), set()),
    ("case-exact ends, longer", Compare("external_id", "ends", "xbjensen"), set()),
    (
        "case-exact contains empty",
        Compare("external_id", "contains", ""),
        {"BJensen@Example.com", "nomail"},
    ),
    # LIKE's wildcards and its escape character are matched as themselves
    ("contains % and _", Compare("full_name", "contains", "50%_off"), {"sale"}),
    ("starts 50%", Compare("full_name", "starts", "50%"), {"sale", "underscore"}),
    ("contains _", Compare("full_name", "contains", "_"), {"sale"}),
    ("contains %", Compare("full_name", "contains", "%"), {"sale", "underscore"}),
    ("contains the escape character", Compare("full_name", "contains", "a/b"), {"slash"}),
    ("ends with %_off sale", Compare("full_name", "ends", "%_OFF SALE"), {"sale"}),
    # NULLs and empty strings
    ("eq never matches null", Compare("email", "eq", "jsmith@example.org"), {"jsmith@example.org"}),
    (
        "ne matches null",
        Compare("email", "ne", "jsmith@example.org"),
        EVERYONE - {"jsmith@example.org"},
    ),
    (
        "not contains matches null",
        Not(Compare("email", "contains", "example")),
        WITHOUT_MAIL,
    ),
    (
        "not eq equals ne",
        Not(Compare("external_id", "eq", "bjensen")),
        EVERYONE - {"BJensen@Example.com"},
    ),
    ("present: not null", Present("email"), {"BJensen@Example.com", "jsmith@example.org"}),
    ("present: not empty", Present("external_id"), {"BJensen@Example.com"}),
    ("present: empty full_name", Present("full_name"), EVERYONE - {"nomail"}),
    ("not present", Not(Present("email")), WITHOUT_MAIL),
    ("eq null is absent", Compare("external_id", "eq", None), EVERYONE - {"BJensen@Example.com"}),
    ("ne null is present", Compare("external_id", "ne", None), {"BJensen@Example.com"}),
    ("gt on null", Compare("email", "gt", "a"), {"BJensen@Example.com", "jsmith@example.org"}),
    ("not gt on null", Not(Compare("email", "gt", "a")), WITHOUT_MAIL),
    # timestamps
    ("gt", Compare("updated_at", "gt", "2011-05-13T04:42:34Z"), {"jsmith@example.org", "sale"}),
    (
        "ge",
        Compare("updated_at", "ge", "2011-05-13T04:42:34Z"),
        {"BJensen@Example.com", "jsmith@example.org", "sale"},
    ),
    (
        "lt",
        Compare("updated_at", "lt", "2011-05-13T04:42:34Z"),
        {"nomail", "percent", "underscore", "slash", "ab"},
    ),
    (
        "le",
        Compare("updated_at", "le", "2011-05-13T04:42:34Z"),
        {"nomail", "percent", "underscore", "slash", "ab", "BJensen@Example.com"},
    ),
    ("eq", Compare("updated_at", "eq", "2011-05-13T04:42:34Z"), {"BJensen@Example.com"}),
    (
        "eq, other zone",
        Compare("updated_at", "eq", "2011-05-13T06:42:34+02:00"),
        {"BJensen@Example.com"},
    ),
    (
        "eq, no zone is UTC",
        Compare("updated_at", "eq", "2011-05-13T04:42:34"),
        {"BJensen@Example.com"},
    ),
    (
        "eq, fractions",
        Compare("updated_at", "eq", "2011-05-13T04:42:34.5Z"),
        {"jsmith@example.org"},
    ),
    ("ne", Compare("updated_at", "ne", "2011-05-13T04:42:34Z"), EVERYONE - {"BJensen@Example.com"}),
    (
        "date only",
        Compare("updated_at", "lt", "2010-01-01"),
        {"percent", "underscore", "slash", "ab"},
    ),
    ("present", Present("updated_at"), EVERYONE),
    # booleans and numbers
    ("eq false", Compare("active", "eq", False), {"jsmith@example.org"}),
    ("ne true", Compare("active", "ne", True), {"jsmith@example.org"}),
    ("not eq true", Not(Compare("active", "eq", True)), {"jsmith@example.org"}),
    ("number gt", Compare("seq", "gt", 0), EVERYONE),
    ("number lt", Compare("seq", "lt", 0), set()),
    # logic
    (
        "and / or / not",
        Or(
            (
                And((Compare("active", "eq", True), Compare("username", "ends", "example.com"))),
                Not(Present("updated_at")),
                Compare("full_name", "eq", "ab"),
            )
        ),
        {"BJensen@Example.com", "ab"},
    ),
    ("empty and is true", And(()), EVERYONE),
    ("empty or is false", Or(()), set()),
    ("constant true", Constant(True), EVERYONE),
    ("constant false", Constant(False), set()),
    ("not constant false", Not(Constant(False)), EVERYONE),
    ("double negation", Not(Not(Present("email"))), {"BJensen@Example.com", "jsmith@example.org"}),
]


async def test_rows_matched(users: Database) -> None:
    # One seeding per database for all the cases; every mismatch is reported at once.
    wrong = {}
    for label, predicate, expected in CASES:
        kept = await matching(users, predicate)
        if kept != expected:
            wrong[label] = (kept, expected)
        # Two-valued logic: no row is lost to NULL when a condition is negated.
        dropped = await matching(users, Not(predicate))
        if kept | dropped != EVERYONE or kept & dropped:
            wrong[f"not ({label})"] = (dropped, EVERYONE - kept)
    assert not wrong


@pytest.mark.parametrize(
    ("predicate", "message"),
    [
        (Compare("updated_at", "gt", "yesterday"), "ISO 8601"),
        (Compare("updated_at", "gt", "2011-13-45T00:00:00Z"), "ISO 8601"),
        (Compare("updated_at", "gt", 1305261754), "ISO 8601"),
        (Compare("updated_at", "contains", "2011"), "no meaning"),
        (Compare("active", "eq", "true"), "true or false"),
        (Compare("active", "gt", True), "no meaning"),
        (Compare("active", "contains", True), "no meaning"),
        (Compare("username", "eq", 5), "compares text"),
        (Compare("username", "eq", True), "compares text"),
        (Compare("seq", "eq", "1"), "compares numbers"),
        (Compare("seq", "eq", True), "compares numbers"),
        (Compare("username", "gt", None), "not null"),
        (Compare("username", "regex", "x"), "unknown operator"),  # type: ignore[arg-type]
        (Compare("password_hash", "eq", "x"), "cannot be searched"),
        (Present("nickname"), "cannot be searched"),
    ],
)
def test_conditions_a_field_cannot_answer(predicate: Predicate, message: str) -> None:
    with pytest.raises(InvalidPredicate, match=message) as caught:
        compile_predicate(predicate, COLUMNS)
    assert caught.value.fields and caught.value.fields[0].code == "invalid"


def test_a_column_of_an_unsearchable_type_is_refused() -> None:
    with pytest.raises(InvalidPredicate, match="cannot be searched"):
        compile_predicate(Present("attributes"), {"attributes": User.attributes})


def test_nesting_is_bounded() -> None:
    predicate: Predicate = Present("email")
    for _ in range(MAX_DEPTH + 1):
        predicate = Not(predicate)
    with pytest.raises(InvalidPredicate, match="nests more than"):
        compile_predicate(predicate, COLUMNS)


def test_values_are_bound_parameters_not_sql() -> None:
    where = compile_predicate(Compare("username", "eq", "x' OR '1'='1"), COLUMNS)
    assert "OR '1'" not in str(where)


# A field of many values per row: a team's members, through an EXISTS the caller writes.
TEAM_COLUMNS: dict[str, Column | Field] = {
    "name": Team.name,
    "members": Field(
        TeamMember.user_id,
        case_exact=True,
        exists=lambda condition: exists().where(TeamMember.team_id == Team.id, condition),
    ),
}


async def test_a_many_valued_field_matches_when_some_value_does(database: Database) -> None:
    world = World(database)
    org = await world.org()
    alice, _ = await world.member(org)
    bob, _ = await world.member(org)
    both = await world.team(org, "both", [alice, bob])
    just_bob = await world.team(org, "bob", [bob])
    await world.team(org, "empty", [])

    async def teams(predicate: Predicate) -> set[str]:
        where = compile_predicate(predicate, TEAM_COLUMNS)
        async with database.transaction() as db:
            return set((await db.scalars(select(Team.name).where(where))).all())

    assert await teams(Compare("members", "eq", alice.id)) == {"both"}
    assert await teams(Compare("members", "eq", bob.id)) == {"both", "bob"}
    assert await teams(Compare("members", "ne", alice.id)) == {"bob", "empty"}
    assert await teams(Compare("members", "eq", alice.id.upper())) == set()
    assert await teams(Present("members")) == {"both", "bob"}
    assert await teams(Not(Present("members"))) == {"empty"}
    assert await teams(
        And((Compare("members", "eq", alice.id), Compare("name", "eq", "BOTH")))
    ) == {"both"}
    assert {both.name, just_bob.name} == {"both", "bob"}
