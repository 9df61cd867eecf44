"""What identity providers send most costs as few statements as bench/scim.py found it could:
Okta's `filter=userName eq` before every create runs no count (a short first page is the
whole result), a POST /Users looks its name up once; and the totals stay exact when the
count is skipped or needed."""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any
from urllib.parse import quote

from sqlalchemy import event

from tests.faces.scim.conftest import Idp, assert_list, assert_scim_error, new_user
from tests.factories import World

COUNT = re.compile(r"\bcount\(", re.IGNORECASE)
NAME_LOOKUP = re.compile(r"FROM users\s+WHERE users\.username_key = ", re.IGNORECASE)


@contextmanager
def statements(world: World) -> Iterator[list[str]]:
    """Every SQL statement the server sends while the block runs."""
    seen: list[str] = []

    def note(_conn: Any, _cursor: Any, sql: str, *_args: Any) -> None:
        seen.append(sql)

    engine = world.database.engine.sync_engine
    event.listen(engine, "before_cursor_execute", note)
    try:
        yield seen
    finally:
        event.remove(engine, "before_cursor_execute", note)


def _filter(name: str) -> str:
    return "/Users?filter=" + quote(f'userName eq "{name}"')


async def test_username_filter_runs_no_count(idp: Idp, world: World) -> None:
    await idp.create_user("ada@acme.test")
    for name, found in (("ada@acme.test", 1), ("ADA@acme.test", 1), ("nobody@acme.test", 0)):
        with statements(world) as seen:
            r = await idp.get(_filter(name))
        assert r.status_code == 200, r.text
        body = r.json()
        assert (body["totalResults"], len(body["Resources"])) == (found, found)
        assert not [s for s in seen if COUNT.search(s)], seen


async def test_totals_stay_exact_whether_counted_or_not(idp: Idp, world: World) -> None:
    for n in range(5):
        await idp.create_user(f"user{n}@acme.test")
    cases = [  # (query, counted, totalResults, ids on the page)
        ("?count=2", True, 5, 2),  # a full page: more may follow
        ("?startIndex=4&count=10", False, 5, 2),  # a short page with rows: the end
        ("?startIndex=9&count=10", True, 5, 0),  # past the end: counted
        ("?count=0", True, 5, 0),
        ("?count=10", False, 5, 5),
    ]
    for query, counted, total, shown in cases:
        with statements(world) as seen:
            r = await idp.get("/Users" + query)
        assert r.status_code == 200, r.text
        listed = assert_list(r.json())
        assert (listed.total_results, len(listed.resources or [])) == (total, shown), query
        assert bool([s for s in seen if COUNT.search(s)]) is counted, (query, seen)


async def test_a_create_looks_its_name_up_once_and_a_taken_one_still_conflicts(
    idp: Idp, world: World
) -> None:
    with statements(world) as seen:
        r = await idp.post("/Users", new_user("grace@acme.test"))
    assert r.status_code == 201, r.text
    assert len([s for s in seen if NAME_LOOKUP.search(s)]) == 1, seen
    taken = await idp.post("/Users", new_user("GRACE@acme.test"))
    assert_scim_error(taken, 409, "uniqueness")
    assert "grace" not in taken.text.lower()  # says nothing of whose
