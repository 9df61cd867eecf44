"""SCIM filters: the parse tree of every example of RFC 7644 §3.4.2.2, the refusals, and the
translation into the directory's predicates (run against the users table in
tests/directory/test_predicates.py and at the end of this file)."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scim2_models.path import (
    AttrPath,
    CompareOperator,
    Comparison,
    FilterNode,
    LogicalExpr,
    LogicalOperator,
    Not,
    Present,
    ValuePath,
)
from sqlalchemy import select

from tenantry.db.engine import Database
from tenantry.db.models import User
from tenantry.directory import predicates as p
from tenantry.directory.predicates import InvalidPredicate, Value, compile_predicate
from tenantry.faces.scim.errors import ScimError
from tenantry.faces.scim.filter import (
    MAX_FILTER_LENGTH,
    filter_depth,
    filter_error,
    parse_filter,
    to_predicate,
)
from tests.directory.test_predicates import COLUMNS, EVERYONE, WITHOUT_MAIL, seed_users

CORE = "urn:ietf:params:scim:schemas:core:2.0:User"
ENTERPRISE = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"


def attr(name: str) -> AttrPath:
    """`name.sub` or `urn:...:name` as the parser splits it."""
    uri = None
    if name.lower().startswith("urn:"):
        uri, _, name = name.rpartition(":")
    head, _, sub = name.partition(".")
    return AttrPath(head, sub or None, uri)


def cmp(name: str, op: str, value: Any) -> Comparison:
    return Comparison(attr(name), CompareOperator(op), value)


def pr(name: str) -> Present:
    return Present(attr(name))


def and_(*terms: FilterNode) -> LogicalExpr:
    return LogicalExpr(LogicalOperator.and_, terms)


def or_(*terms: FilterNode) -> LogicalExpr:
    return LogicalExpr(LogicalOperator.or_, terms)


def vp(name: str, inner: FilterNode) -> ValuePath:
    return ValuePath(attr(name), inner)


WORK_EXAMPLE = vp("emails", and_(cmp("type", "eq", "work"), cmp("value", "co", "@example.com")))

# Every example filter of RFC 7644 §3.4.2.2, in the order the RFC lists them.
RFC_EXAMPLES: list[tuple[str, FilterNode]] = [
    ('userName eq "bjensen"', cmp("userName", "eq", "bjensen")),
    ('name.familyName co "O\'Malley"', cmp("name.familyName", "co", "O'Malley")),
    ('userName sw "J"', cmp("userName", "sw", "J")),
    (f'{CORE}:userName sw "J"', cmp(f"{CORE}:userName", "sw", "J")),
    ("title pr", pr("title")),
    (
        'meta.lastModified gt "2011-05-13T04:42:34Z"',
        cmp("meta.lastModified", "gt", "2011-05-13T04:42:34Z"),
    ),
    (
        'meta.lastModified ge "2011-05-13T04:42:34Z"',
        cmp("meta.lastModified", "ge", "2011-05-13T04:42:34Z"),
    ),
    (
        'meta.lastModified lt "2011-05-13T04:42:34Z"',
        cmp("meta.lastModified", "lt", "2011-05-13T04:42:34Z"),
    ),
    (
        'meta.lastModified le "2011-05-13T04:42:34Z"',
        cmp("meta.lastModified", "le", "2011-05-13T04:42:34Z"),
    ),
    ('title pr and userType eq "Employee"', and_(pr("title"), cmp("userType", "eq", "Employee"))),
    ('title pr or userType eq "Intern"', or_(pr("title"), cmp("userType", "eq", "Intern"))),
    (f'schemas eq "{ENTERPRISE}"', cmp("schemas", "eq", ENTERPRISE)),
    (
        'userType eq "Employee" and (emails co "example.com" or emails.value co "example.org")',
        and_(
            cmp("userType", "eq", "Employee"),
            or_(cmp("emails", "co", "example.com"), cmp("emails.value", "co", "example.org")),
        ),
    ),
    (
        'userType ne "Employee" and not (emails co "example.com" or emails.value co "example.org")',
        and_(
            cmp("userType", "ne", "Employee"),
            Not(or_(cmp("emails", "co", "example.com"), cmp("emails.value", "co", "example.org"))),
        ),
    ),
    (
        'userType eq "Employee" and (emails.type eq "work")',
        and_(cmp("userType", "eq", "Employee"), cmp("emails.type", "eq", "work")),
    ),
    (
        'userType eq "Employee" and emails[type eq "work" and value co "@example.com"]',
        and_(cmp("userType", "eq", "Employee"), WORK_EXAMPLE),
    ),
    (
        'emails[type eq "work" and value co "@example.com"] or '
        'ims[type eq "xmpp" and value co "@foo.com"]',
        or_(
            WORK_EXAMPLE,
            vp("ims", and_(cmp("type", "eq", "xmpp"), cmp("value", "co", "@foo.com"))),
        ),
    ),
]


def test_the_rfc_lists_seventeen_examples() -> None:
    assert len(RFC_EXAMPLES) == 17


@pytest.mark.parametrize(("text", "tree"), RFC_EXAMPLES, ids=[t for t, _ in RFC_EXAMPLES])
def test_rfc_example_parses_into_its_tree(text: str, tree: FilterNode) -> None:
    assert parse_filter(text) == tree


@pytest.mark.parametrize(
    ("text", "tree"),
    [
        # not binds tighter than and, and tighter than or.
        ("a pr or b pr and c pr", or_(pr("a"), and_(pr("b"), pr("c")))),
        ("a pr and b pr or c pr", or_(and_(pr("a"), pr("b")), pr("c"))),
        ("not (a pr) and b pr", and_(Not(pr("a")), pr("b"))),
        ("not (a pr) or not (b pr) and c pr", or_(Not(pr("a")), and_(Not(pr("b")), pr("c")))),
        ("(a pr or b pr) and c pr", and_(or_(pr("a"), pr("b")), pr("c"))),
        ("a pr and b pr and c pr", and_(pr("a"), pr("b"), pr("c"))),
        ("((a pr))", pr("a")),
        ("not(a pr)", Not(pr("a"))),
        # Operators, keywords and literals in any case.
        ('userName EQ "x"', cmp("userName", "eq", "x")),
        ("title PR AND NOT (active Eq TRUE) OR x Ne False", None),
        ("a gt 1 and b ge -2 and c lt 3.5 and d le 1e3", None),
        # Sub-attributes, URN-qualified attributes, Entra's value-path comparison.
        (f'{ENTERPRISE}:department eq "Tour"', cmp(f"{ENTERPRISE}:department", "eq", "Tour")),
        (f"{ENTERPRISE}:manager.value pr", pr(f"{ENTERPRISE}:manager.value")),
        (
            'emails[type eq "work"].value eq "a@b"',
            vp("emails", and_(cmp("type", "eq", "work"), cmp("value", "eq", "a@b"))),
        ),
        ('emails[not (type eq "work")]', vp("emails", Not(cmp("type", "eq", "work")))),
    ],
)
def test_precedence_case_and_paths(text: str, tree: FilterNode | None) -> None:
    parsed = parse_filter(text)
    if tree is not None:
        assert parsed == tree
    else:
        assert isinstance(parsed, LogicalExpr)


def test_mixed_case_keywords_parse_like_lower_case() -> None:
    upper = parse_filter("title PR AND NOT (active Eq TRUE) OR x Ne False")
    lower = parse_filter("title pr and not (active eq true) or x ne false")
    assert (
        upper
        == lower
        == or_(and_(pr("title"), Not(cmp("active", "eq", True))), cmp("x", "ne", False))
    )


@pytest.mark.parametrize(
    ("literal", "value"),
    [
        (r'"plain"', "plain"),
        (r'"quote \" backslash \\ slash \/"', 'quote " backslash \\ slash /'),
        (r'"\b\f\n\r\t"', "\b\f\n\r\t"),
        (r'"\u00e9\u4e2d"', "é中"),
        ('"é literal"', "é literal"),
        ('""', ""),
        ("0", 0),
        ("42", 42),
        ("-7", -7),
        ("1.5", 1.5),
        ("-1.5e3", -1500.0),
        ("2E-2", 0.02),
        ("true", True),
        ("false", False),
        ("null", None),
        ("NULL", None),
    ],
)
def test_literals_are_json(literal: str, value: Any) -> None:
    node = parse_filter(f"x eq {literal}")
    assert isinstance(node, Comparison)
    assert node.value == value
    assert type(node.value) is type(value)


@pytest.mark.parametrize(
    "text",
    [
        # unbalanced parentheses
        '(userName eq "a"',
        'userName eq "a")',
        '((userName eq "a") and (title pr)',
        'emails[type eq "work"',
        'emails type eq "work"]',
        # unknown operators
        'userName xx "a"',
        'userName equals "a"',
        'userName == "a"',
        'userName eq "a" xor title pr',
        # missing value or operand
        "userName eq",
        "userName",
        'eq "a"',
        'userName eq "a" and',
        'or userName eq "a"',
        "not ()",
        "()",
        # bad literals
        "userName eq bjensen",
        "userName eq 'bjensen'",
        'userName eq "unterminated',
        r'userName eq "bad \x escape"',
        r'userName eq "short \u12"',
        'userName eq "raw\ncontrol"',
        "userName eq tru",
        "userName eq 01",
        "userName eq 1.",
        "userName eq .5",
        "userName eq +1",
        "userName eq 1e999",
        "userName eq [1]",
        # trailing garbage
        'userName eq "a" extra',
        'userName eq "a" "b"',
        "title pr pr",
        'userName eq "a";',
        # not without its parentheses, a value filter inside a value filter, and a value
        # filter whose attribute has a sub-attribute
        'not userName eq "a"',
        'emails[type[value eq "x"] eq "y"]',
        'name.familyName[value eq "x"]',
        # attribute names the ABNF does not allow
        '1userName eq "a"',
        'user name eq "a"',
        'urn: eq "a"',
        # nothing at all
        "",
        "   ",
    ],
)
def test_malformed_filters_are_invalid_filter(text: str) -> None:
    with pytest.raises(ScimError) as caught:
        parse_filter(text)
    error = caught.value
    assert (error.status, error.scim_type) == (400, "invalidFilter")
    assert error.body()["scimType"] == "invalidFilter"


def test_error_body_is_rfc_7644_json() -> None:
    with pytest.raises(ScimError) as caught:
        parse_filter('userName eq "a" extra')
    body = caught.value.body()
    assert body["schemas"] == ["urn:ietf:params:scim:api:messages:2.0:Error"]
    assert body["status"] == "400"
    assert body["scimType"] == "invalidFilter"
    assert isinstance(body["detail"], str) and body["detail"]


def test_error_without_scim_type_has_no_scim_type_member() -> None:
    assert ScimError(404, None, "no such user").body() == {
        "schemas": ["urn:ietf:params:scim:api:messages:2.0:Error"],
        "status": "404",
        "detail": "no such user",
    }


def test_a_filter_longer_than_the_limit_is_refused() -> None:
    clause = 'userName eq "a" or '
    text = clause * (MAX_FILTER_LENGTH // len(clause) + 1) + "title pr"
    assert len(text) > MAX_FILTER_LENGTH
    with pytest.raises(ScimError, match="longer than"):
        parse_filter(text)
    # ... while one just within it parses.
    fitting = clause * ((MAX_FILTER_LENGTH - len("title pr")) // len(clause)) + "title pr"
    assert MAX_FILTER_LENGTH - len(clause) < len(fitting) <= MAX_FILTER_LENGTH
    assert isinstance(parse_filter(fitting), LogicalExpr)


def _nested_nots(depth: int) -> str:
    return "not (" * depth + "title pr" + ")" * depth


def test_nesting_deeper_than_the_limit_is_refused() -> None:
    assert filter_depth(parse_filter(_nested_nots(30))) == 31
    with pytest.raises(ScimError) as caught:
        parse_filter(_nested_nots(40))
    assert caught.value.scim_type == "invalidFilter"


def test_alternating_and_or_nesting_is_bounded_too() -> None:
    deep = "title pr"
    for level in range(40):
        joiner = "and" if level % 2 else "or"
        deep = f"(x pr {joiner} {deep})"
    with pytest.raises(ScimError, match="nests more than"):
        parse_filter(deep)


def test_a_smaller_depth_can_be_asked_for() -> None:
    parse_filter("a pr and (b pr or c pr)", max_depth=3)
    with pytest.raises(ScimError):
        parse_filter("a pr and (b pr or not (c pr))", max_depth=3)


def test_redundant_parentheses_cost_no_depth_and_no_recursion() -> None:
    # 2 000 levels of parentheses fit the length limit and leave no node in the tree.
    text = "(" * 2000 + "title pr" + ")" * 2000
    assert parse_filter(text) == pr("title")


@settings(max_examples=300, deadline=None)
@given(
    st.text(alphabet=st.sampled_from(list('ab ()[]"\\.:-_0123456789eqnotrpuAND\n')), max_size=80)
)
def test_any_text_parses_or_is_invalid_filter(text: str) -> None:
    try:
        outcome: object = parse_filter(text)
    except ScimError as error:
        outcome = error.scim_type
    assert outcome == "invalidFilter" or isinstance(outcome, FilterNode)


# ---- translation into the directory's predicates

ATTRIBUTES = {
    "userName": "username",
    "emails.value": "email",
    "externalId": "external_id",
    "displayName": "full_name",
    "active": "active",
    "meta.lastModified": "updated_at",
    "id": "id",
    f"{ENTERPRISE}:department": "department",
}
FIXED: dict[str, Value] = {"emails.type": "work", "emails.primary": True}


def translate(text: str) -> p.Predicate:
    return to_predicate(parse_filter(text), ATTRIBUTES, fixed=FIXED, schema=CORE)


@pytest.mark.parametrize(
    ("text", "predicate"),
    [
        ('userName eq "bjensen"', p.Compare("username", "eq", "bjensen")),
        ('USERNAME Eq "bjensen"', p.Compare("username", "eq", "bjensen")),
        (f'{CORE}:userName sw "J"', p.Compare("username", "starts", "J")),
        (f'{CORE.upper()}:username sw "J"', p.Compare("username", "starts", "J")),
        (f'{ENTERPRISE}:Department co "Tour"', p.Compare("department", "contains", "Tour")),
        ('emails co "example.com"', p.Compare("email", "contains", "example.com")),
        ('emails.value ew ".org"', p.Compare("email", "ends", ".org")),
        ('externalId ne "x"', p.Compare("external_id", "ne", "x")),
        ("displayName pr", p.Present("full_name")),
        ("emails pr", p.Present("email")),
        ("active eq false", p.Compare("active", "eq", False)),
        ("externalId eq null", p.Compare("external_id", "eq", None)),
        (
            'meta.lastModified gt "2011-05-13T04:42:34Z"',
            p.Compare("updated_at", "gt", "2011-05-13T04:42:34Z"),
        ),
        (
            'not (id eq "a") or userName le "m" and active eq true',
            p.Or(
                (
                    p.Not(p.Compare("id", "eq", "a")),
                    p.And((p.Compare("username", "le", "m"), p.Compare("active", "eq", True))),
                )
            ),
        ),
        # The one work address: conditions on its fixed type and primary flag.
        ('emails.type eq "work"', p.Present("email")),
        ('emails.type eq "WORK"', p.Present("email")),
        ('emails.type eq "home"', p.Constant(False)),
        ('emails.type ne "home"', p.Constant(True)),
        ('emails.type ne "work"', p.Not(p.Present("email"))),
        ('emails.type sw "wo"', p.Present("email")),
        ("emails.primary eq true", p.Present("email")),
        ("emails.type pr", p.Present("email")),
        (
            'emails[type eq "work" and value co "@example.com"]',
            p.And(
                (
                    p.Present("email"),
                    p.And((p.Present("email"), p.Compare("email", "contains", "@example.com"))),
                )
            ),
        ),
        (
            'emails[type eq "work"].value eq "a@b.c"',
            p.And(
                (p.Present("email"), p.And((p.Present("email"), p.Compare("email", "eq", "a@b.c"))))
            ),
        ),
        ('emails[type eq "home"]', p.And((p.Present("email"), p.Constant(False)))),
        ("emails[value pr]", p.And((p.Present("email"), p.Present("email")))),
    ],
)
def test_translation(text: str, predicate: p.Predicate) -> None:
    assert translate(text) == predicate


@pytest.mark.parametrize(
    "text",
    [
        "title pr",  # an attribute Tenantry does not search
        'userType eq "Employee"',
        'name.familyName co "x"',
        f'{ENTERPRISE}:manager eq "x"',
        'urn:example:other:2.0:User:userName eq "x"',  # a schema not the resource's
        'ims[type eq "xmpp"]',  # no single-entry mapping for ims
        'emails[display eq "x"]',  # a sub-attribute Tenantry keeps nothing for
        'emails.display eq "x"',
        "emails.type gt 1",  # the fixed type is text
        "emails.primary gt true",  # no ordering of booleans
        "emails.type co null",
        'emails[urn:x:y:type eq "work"]',
    ],
)
def test_untranslatable_filters_are_invalid_filter(text: str) -> None:
    with pytest.raises(ScimError) as caught:
        translate(text)
    assert caught.value.scim_type == "invalidFilter"


def test_without_a_schema_a_core_urn_prefix_is_unknown() -> None:
    node = parse_filter(f'{CORE}:userName eq "x"')
    with pytest.raises(ScimError):
        to_predicate(node, ATTRIBUTES)
    assert to_predicate(node, {f"{CORE}:userName": "username"}) == p.Compare("username", "eq", "x")


def test_every_rfc_example_translates_or_is_refused_as_invalid_filter() -> None:
    # Tenantry keeps no title, userType or ims: those examples are refused, the rest translate.
    translated, refusals = [], set()
    for text, _ in RFC_EXAMPLES:
        try:
            translate(text)
        except ScimError as error:
            refusals.add(error.scim_type)
        else:
            translated.append(text)
    assert refusals == {"invalidFilter"}
    assert translated == [
        'userName eq "bjensen"',
        'userName sw "J"',
        f'{CORE}:userName sw "J"',
        'meta.lastModified gt "2011-05-13T04:42:34Z"',
        'meta.lastModified ge "2011-05-13T04:42:34Z"',
        'meta.lastModified lt "2011-05-13T04:42:34Z"',
        'meta.lastModified le "2011-05-13T04:42:34Z"',
    ]


def test_a_directory_refusal_reads_as_invalid_filter() -> None:
    error = filter_error(InvalidPredicate("updated_at", "'x' is not an ISO 8601 timestamp"))
    assert (error.status, error.scim_type) == (400, "invalidFilter")
    assert "ISO 8601" in error.detail


# ---- end to end: SCIM filter text -> predicate -> SQL on the users table

SEARCH_ATTRIBUTES = {key: value for key, value in ATTRIBUTES.items() if value != "department"}


async def _search(database: Database, text: str) -> set[str]:
    where = compile_predicate(
        to_predicate(parse_filter(text), SEARCH_ATTRIBUTES, fixed=FIXED), COLUMNS
    )
    async with database.transaction() as db:
        return set((await db.scalars(select(User.username).where(where))).all())


SEARCHES: list[tuple[str, set[str]]] = [
    ('userName eq "BJENSEN@example.com"', {"BJensen@Example.com"}),
    ('emails[type eq "work" and value co "@EXAMPLE.org"]', {"jsmith@example.org"}),
    ('emails[type eq "work"].value eq "bjensen@example.com"', {"BJensen@Example.com"}),
    ('emails.type eq "work" and not (active eq true)', {"jsmith@example.org"}),
    ("not (emails pr)", WITHOUT_MAIL),
    ('emails.type ne "work"', WITHOUT_MAIL),
    ('emails[type eq "home"]', set()),
    ('not (emails[type eq "home"])', EVERYONE),
    ('displayName co "50%_off"', {"sale"}),
    ('meta.lastModified gt "2011-05-13T04:42:34Z"', {"jsmith@example.org", "sale"}),
    ('externalId eq "BJENSEN"', set()),
    ('externalId eq "bjensen"', {"BJensen@Example.com"}),
    ('externalId ne "bjensen"', EVERYONE - {"BJensen@Example.com"}),
    ('userName sw "b" or displayName ew "OFF"', {"BJensen@Example.com", "percent", "underscore"}),
]


async def test_filters_select_the_rows_they_describe(database: Database) -> None:
    await seed_users(database)
    found = {text: await _search(database, text) for text, _ in SEARCHES}
    assert found == dict(SEARCHES)


async def test_a_bad_timestamp_in_a_filter_is_refused_before_any_query(database: Database) -> None:
    predicate = to_predicate(parse_filter('meta.lastModified gt "yesterday"'), SEARCH_ATTRIBUTES)
    with pytest.raises(InvalidPredicate) as caught:
        compile_predicate(predicate, COLUMNS)
    assert filter_error(caught.value).scim_type == "invalidFilter"
