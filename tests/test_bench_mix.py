"""The mix benchmark's pure parts and its clients, on small fixed inputs (no Tenantry server,
no database, < 3 s): rotation in wrk's Lua script and in the asyncio client, the grid, the
grading, the writer against a tiny fake server, and the report rows."""

from __future__ import annotations

import asyncio
import json
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest
from bench import loadgen, mix, report, suite
from bench.loadgen import LoadSpec, LoadStats

Respond = Callable[[bytes, bytes], Awaitable[tuple[int, bytes]]]


@asynccontextmanager
async def tiny_server(respond: Respond) -> AsyncIterator[str]:
    """A keep-alive HTTP/1.1 server on a free port; `respond(head, body)` -> (status, body)."""

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                length = 0
                for line in head.split(b"\r\n"):
                    if line.lower().startswith(b"content-length:"):
                        length = int(line.split(b":", 1)[1])
                body = await reader.readexactly(length) if length else b""
                status, out = await respond(head, body)
                writer.write(
                    b"HTTP/1.1 %d X\r\ncontent-type: application/json\r\n"
                    b"content-length: %d\r\n\r\n" % (status, len(out)) + out
                )
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            writer.close()

    srv = await asyncio.start_server(handle, "127.0.0.1", 0)
    try:
        yield f"http://127.0.0.1:{srv.sockets[0].getsockname()[1]}"
    finally:
        srv.close()
        await srv.wait_closed()


def header(head: bytes, name: bytes) -> str | None:
    for line in head.split(b"\r\n")[1:]:
        key, _, value = line.partition(b":")
        if key.strip().lower() == name:
            return value.strip().decode()
    return None


# --- rotation ------------------------------------------------------------------------------------


def test_wrk_script_rotates_header_values_in_chunks_walked_by_every_thread() -> None:
    tokens = [f"Bearer tnt_{i}" for i in range(loadgen.LUA_CHUNK * 2 + 5)]
    spec = LoadSpec("http://x", ["/v1/users/self"], {"Accept": "*/*"}, 20, 1, 0, threads=2)
    spec.rotate = {"Authorization": tokens}
    script = loadgen.wrk_script(spec)
    assert f"local turns = {len(tokens)}" in script and "local threads = 2" in script
    # three chunks, each a function of its own (LuaJIT's limit on constants per function)
    assert script.count('append(rotated["Authorization"], (function() return {') == 3
    assert '"Bearer tnt_0", "Bearer tnt_1"' in script and f'"{tokens[-1]}"}}' in script
    assert 'thread:set("thread_place", numbered)' in script
    assert "place * math.floor(turns / threads) + n - 1" in script
    assert "request = function()" in script
    assert "local fixed = #paths == 1 and #bodies <= 1" in script and "built[turn] =" in script
    # one header, no rotation: wrk's own pre-built request, as before
    plain = loadgen.wrk_script(LoadSpec("http://x", ["/a"], {"Authorization": "Bearer t"}))
    assert "local turns = 0" in plain and '["Authorization"] = "Bearer t"' in plain
    assert loadgen.wrk_threads(LoadSpec("http://x", ["/a"], connections=1, threads=2)) == 1


def test_rotated_lists_must_be_as_long_as_each_other() -> None:
    spec = LoadSpec("http://x", ["/a"], rotate={"A": ["1", "2"], "B": ["1"]})
    with pytest.raises(ValueError, match="as many values"):
        spec.turns()
    with pytest.raises(ValueError, match="exactly once"):
        loadgen._start_wrk(LoadSpec("http://x", ["/a"], once=True), 1)


def test_asyncio_requests_carry_the_rotated_values_in_turn() -> None:
    spec = LoadSpec("http://x", ["/s"], {"Accept": "a"}, rotate={"Authorization": ["A", "B", "C"]})
    raw = loadgen.requests(spec, "x:1")
    assert len(raw) == 3
    assert raw[1] == b"GET /s HTTP/1.1\r\nHost: x:1\r\nAccept: a\r\nAuthorization: B\r\n\r\n"


async def test_asyncio_client_sends_every_caller_once_before_any_twice() -> None:
    seen: list[str | None] = []

    async def respond(head: bytes, _: bytes) -> tuple[int, bytes]:
        seen.append(header(head, b"authorization"))
        return 200, b"{}"

    tokens = [f"Bearer t{i}" for i in range(40)]
    async with tiny_server(respond) as base:
        spec = LoadSpec(base, ["/s"], connections=4, seconds=0.3, warmup=0.0)
        spec.rotate = {"Authorization": tokens}
        stats = await loadgen.generate(spec)
        assert stats.ok > 80 and stats.errors == 0
        # the connections share one counter: the first 40 requests are 40 distinct callers
        assert sorted(seen[:40], key=lambda t: int(str(t)[8:])) == tokens
        seen.clear()
        spec.once = True
        once = await loadgen.generate(spec)
    assert Counter(seen) == Counter(tokens)  # each exactly once
    assert (once.requests, once.ok, once.errors) == (40, 40, 0)


async def test_once_counts_a_refused_caller_as_an_error_and_sends_it_only_once() -> None:
    seen: list[str | None] = []

    async def respond(head: bytes, _: bytes) -> tuple[int, bytes]:
        token = header(head, b"authorization")
        seen.append(token)
        return (401 if token == "Bearer bad" else 200), b"{}"

    async with tiny_server(respond) as base:
        spec = LoadSpec(base, ["/s"], connections=2, once=True)
        spec.rotate = {"Authorization": ["Bearer a", "Bearer bad", "Bearer c"]}
        stats = await loadgen.generate(spec)
    assert (stats.ok, stats.errors, stats.detail["status_401"]) == (2, 1, 1)
    assert sorted(map(str, seen)) == ["Bearer a", "Bearer bad", "Bearer c"]


def test_reader_spec_rotates_the_tokens_even_just_one() -> None:
    opts = mix.Options(connections=7, seconds=3.0, warmup=1.0)
    many = mix.reader_spec("http://x", ["a", "b"], opts, once=False)
    assert many.rotate == {"Authorization": ["Bearer a", "Bearer b"]} and many.headers == {}
    assert (many.connections, many.seconds, many.warmup, many.once) == (7, 3.0, 1.0, False)
    one = mix.reader_spec("http://x", ["a"], opts, once=True)
    assert one.headers == {} and one.rotate == {"Authorization": ["Bearer a"]}
    assert "request = function()" in loadgen.wrk_script(one)  # as much Lua as for many
    assert (one.seconds, one.warmup, one.once) == (0.0, 0.0, True)


# --- the grid ------------------------------------------------------------------------------------


def test_quick_grid() -> None:
    cases = mix.plan(["postgres", "sqlite"], [1, 2], [2000], [0, 20, 100], quick=True)
    pg1 = [c.name() for c in cases if c.db == "postgres" and c.workers == 1]
    assert pg1 == [
        "one token, no changes (baseline)",
        "2k callers, no changes",
        "2k callers, 20/s elsewhere",
        "2k callers, 20/s own org",
        "2k callers, 100/s own org",
        "2k callers, cache off, no changes",
        "2k callers, cache off, 20/s own org",
    ]
    pg2 = [c.name() for c in cases if c.db == "postgres" and c.workers == 2]
    assert pg2 == pg1[:-1]  # the cold path with writes only where graded
    assert {(c.db, c.workers) for c in cases} == {("postgres", 1), ("postgres", 2), ("sqlite", 1)}
    assert len(cases) == 7 + 6 + 6


def test_full_grid() -> None:
    cases = mix.plan(["postgres", "sqlite"], [1, 2], [2000, 20000], [0, 20, 100])
    pg1 = [(c.callers, c.rate, c.where, c.cache) for c in cases if c.graded]
    assert pg1 == [
        (1, 0, "", True),
        (2000, 0, "", True),
        (2000, 20, "elsewhere", True),
        (2000, 20, "own", True),
        (2000, 100, "elsewhere", True),
        (2000, 100, "own", True),
        (20000, 0, "", True),
        (20000, 20, "elsewhere", True),
        (20000, 20, "own", True),
        (2000, 0, "", False),
        (2000, 20, "own", False),
    ]
    sqlite2 = [c.name() for c in cases if c.db == "sqlite" and c.workers == 2]
    assert "20k callers, 20/s own org" in sqlite2 and len(sqlite2) == 8
    assert mix.steps(cases, 100_000) == 2 + len(cases) + 1
    assert mix.Case("sqlite", 2, 20_000, 100, "elsewhere").name() == "20k callers, 100/s elsewhere"


# --- grading -------------------------------------------------------------------------------------


def seen(**kw: Any) -> mix.Observed:
    base = {"req_s": 5000.0, "p99_ms": 10.0, "errors": 0, "ratio": 0.6, "probes": 9, "stale": 0}
    return mix.Observed(**(base | kw))


def test_the_issue_targets_for_two_thousand_callers_at_twenty_changes() -> None:
    case = mix.Case("postgres", 1, 2000, 20, "own")
    assert mix.grade(case, seen()) == ("≥ 0.5x one-token, p99 ≤ 20 ms, 0 stale", True)
    assert mix.grade(case, seen(ratio=0.49))[1] is False
    assert mix.grade(case, seen(ratio=None))[1] is False
    assert mix.grade(case, seen(p99_ms=20.5))[1] is False
    assert mix.grade(case, seen(stale=1))[1] is False
    assert mix.grade(case, seen(probes=0))[1] is False  # nothing was checked: not a pass
    assert mix.grade(case, seen(errors=3))[1] is False
    elsewhere = mix.Case("postgres", 1, 2000, 20, "elsewhere")
    assert mix.grade(elsewhere, seen()) == mix.grade(case, seen())


def test_other_rows_and_configurations() -> None:
    many = mix.Case("postgres", 1, 20_000)
    assert mix.grade(many, seen(ratio=0.41)) == ("≥ 0.4x one-token", True)
    assert mix.grade(many, seen(ratio=0.39))[1] is False
    writing = mix.Case("postgres", 1, 20_000, 20, "own")
    assert mix.grade(writing, seen(ratio=0.41))[0] == "≥ 0.4x one-token, 0 stale"
    cold = mix.Case("postgres", 1, 2000, cache=False)
    assert mix.grade(cold, seen(req_s=2000.0)) == ("≥ 2 000 req/s", True)
    assert mix.grade(cold, seen(req_s=1999.0))[1] is False
    # elsewhere: only "never stale", on every database and worker count
    for case in (mix.Case("postgres", 2, 2000, 20, "own"), mix.Case("sqlite", 1, 2000, 100, "own")):
        assert mix.grade(case, seen(ratio=0.1, p99_ms=500.0)) == ("0 stale", True)
        assert mix.grade(case, seen(stale=2))[1] is False
    assert mix.grade(mix.Case("postgres", 1, 2000, 100, "own"), seen())[0] == "0 stale"
    assert mix.grade(mix.Case("postgres", 1, 1), seen()) == (None, None)
    assert mix.grade(mix.Case("sqlite", 1, 2000), seen()) == (None, None)


def test_writer_target() -> None:
    case = mix.Case("postgres", 1, 2000, 20, "elsewhere")
    assert mix.write_target(case) == "p99 ≤ 50 ms, ≥ 90% of 20/s"
    assert mix.write_passed(case, 18.0, 50.0, 0) is True
    assert mix.write_passed(case, 17.9, 10.0, 0) is False
    assert mix.write_passed(case, 20.0, 50.1, 0) is False
    assert mix.write_passed(case, 20.0, 10.0, 1) is False
    for other in (mix.Case("sqlite", 1, 2000, 20, "own"), mix.Case("postgres", 2, 2000, 20, "own")):
        assert mix.write_target(other) is None and mix.write_passed(other, 1, 999, 0) is None
    assert mix.write_target(mix.Case("postgres", 1, 2000, 20, "own", cache=False)) is None


# --- role bodies and freshness -------------------------------------------------------------------


def test_role_body_from_rows_and_the_toggled_marker() -> None:
    rows = [
        ("WORKSPACE_AUTHOR", "WORKSPACE", "w1", None, None, None),
        ("WORKSPACE_OWNER", "WORKSPACE", "wm", None, None, None),
        ("DEPLOYMENT_ADMIN", "DEPLOYMENT", "w1", "d1", None, None),
        ("DAG_VIEWER", "DAG", "w1", "d1", "etl", None),
        ("DAG_AUTHOR", "DAG_TAG", "w1", "d1", None, "pii"),
    ]
    body = mix.role_body("ORGANIZATION_MEMBER", rows)
    assert body == {
        "organizationRole": "ORGANIZATION_MEMBER",
        "workspaceRoles": [
            {"workspaceId": "w1", "role": "WORKSPACE_AUTHOR"},
            {"workspaceId": "wm", "role": "WORKSPACE_OWNER"},
        ],
        "deploymentRoles": [{"deploymentId": "d1", "role": "DEPLOYMENT_ADMIN"}],
        "dagRoles": [
            {"deploymentId": "d1", "role": "DAG_VIEWER", "dagId": "etl"},
            {"deploymentId": "d1", "role": "DAG_AUTHOR", "dagTag": "pii"},
        ],
    }
    assert mix.marker_role(body, "wm") == "WORKSPACE_OWNER" and mix.marker_role(body, "x") is None
    changed = mix.with_marker(body, "wm", "WORKSPACE_MEMBER")
    assert changed["workspaceRoles"] == [
        {"workspaceId": "w1", "role": "WORKSPACE_AUTHOR"},
        {"workspaceId": "wm", "role": "WORKSPACE_MEMBER"},
    ]
    assert changed["dagRoles"] == body["dagRoles"] and body["workspaceRoles"][1]["role"] == (
        "WORKSPACE_OWNER"
    )  # the base is left as it was
    assert mix.next_role(None) == "WORKSPACE_MEMBER"
    assert mix.next_role("WORKSPACE_OWNER") == "WORKSPACE_MEMBER"
    assert mix.next_role("WORKSPACE_MEMBER") == "WORKSPACE_AUTHOR"
    assert mix.next_role("WORKSPACE_AUTHOR") == "WORKSPACE_MEMBER"


def self_body(*roles: tuple[str, str, str]) -> dict[str, Any]:
    return {"roles": [{"role": r, "scope": {"type": t, "entityId": e}} for r, t, e in roles]}


def test_a_fresh_answer_shows_the_new_role_and_only_it() -> None:
    org = ("ORGANIZATION_MEMBER", "ORGANIZATION", "o1")
    new = ("WORKSPACE_AUTHOR", "WORKSPACE", "wm")
    assert mix.shows(self_body(org, new), "wm", "WORKSPACE_AUTHOR")
    assert not mix.shows(self_body(org, ("WORKSPACE_MEMBER", "WORKSPACE", "wm")), "wm", new[0])
    assert not mix.shows(self_body(org, new, ("WORKSPACE_MEMBER", "WORKSPACE", "wm")), "wm", new[0])
    assert not mix.shows(self_body(org, ("WORKSPACE_AUTHOR", "WORKSPACE", "w2")), "wm", new[0])
    assert not mix.shows(self_body(org, ("WORKSPACE_AUTHOR", "DEPLOYMENT", "wm")), "wm", new[0])
    assert not mix.shows({"errors": []}, "wm", new[0]) and not mix.shows([], "wm", new[0])


# --- cache counters ------------------------------------------------------------------------------


def test_counters_are_summed_over_workers_and_the_warm_up_taken_out(tmp_path: Path) -> None:
    one = {"hits": {"principal": 1, "answer": 900}, "misses": {"principal": 2, "answer": 2050}}
    two = {"hits": {"answer": 100}, "misses": {"answer": 50}, "dropped": 7, "entries": 3}
    (tmp_path / "11.json").write_text(json.dumps(one | {"dropped": 1, "entries": 2000}))
    (tmp_path / "12.json").write_text(json.dumps(two))
    counters, files = mix.read_counters(tmp_path)
    assert files == 2
    assert counters == {
        "hits": {"principal": 1, "answer": 1000},
        "misses": {"principal": 2, "answer": 2100},
        "dropped": 8,
        "entries": 2003,
        "writes": [],
    }
    # 2 000 warm-up look-ups were misses; 1 000 hits and 100 misses in the window
    assert mix.hit_rate(counters, 2000) == pytest.approx(90.9)
    assert mix.hit_rate(counters) == pytest.approx(32.3)
    assert mix.hit_rate(counters, 5000) is None  # fewer misses than warm-up look-ups: not ours
    assert mix.hit_rate({"hits": {}, "misses": {}}) is None
    assert mix.read_counters(tmp_path / "none")[1] == 0


def test_the_workers_write_phases_are_pooled(tmp_path: Path) -> None:
    """Each worker's WriteTrace records [total, before, held, after]; the case reports the
    p50 and p99 of each over all workers."""
    one = [[10.0 + k, 1.0, 8.0 + k, 1.0] for k in range(99)]
    (tmp_path / "11.json").write_text(json.dumps({"writes": one}))
    (tmp_path / "12.json").write_text(json.dumps({"writes": [[500.0, 2.0, 490.0, 8.0]]}))
    counters, _ = mix.read_counters(tmp_path)
    assert len(counters["writes"]) == 100
    phases = mix.write_phases(counters["writes"])
    assert phases is not None
    assert phases["server_total_p50_ms"] == 59.0 and phases["server_held_p50_ms"] == 57.0
    assert phases["server_total_p99_ms"] == 500.0  # nearest rank: of 100, the slowest
    assert phases["server_after_p99_ms"] == 8.0 and phases["server_before_p50_ms"] == 1.0
    assert mix.write_phases([]) is None


# --- the writer ----------------------------------------------------------------------------------


class FakeDirectory:
    """POST roles stores the member's marker role; GET self answers the caller's role, or
    (stale=True) the one before the last change."""

    def __init__(self, stale: bool = False) -> None:
        self.stale = stale
        self.roles: dict[str, list[str]] = {}
        self.posts: list[tuple[str, str, Any]] = []  # (path, Authorization, body)

    async def respond(self, head: bytes, body: bytes) -> tuple[int, bytes]:
        method, path = head.split(b" ")[:2]
        auth = header(head, b"authorization") or ""
        if method == b"POST":
            sent = json.loads(body)
            self.posts.append((path.decode(), auth, sent))
            user = path.decode().split("/users/")[1].split("/")[0]
            marker = next(w["role"] for w in sent["workspaceRoles"] if w["workspaceId"] == "wm")
            self.roles.setdefault(user, []).append(marker)
            return 200, b"{}"
        user = auth.removeprefix("Bearer reader-")
        held = self.roles.get(user, ["WORKSPACE_OWNER"])
        role = held[-2] if self.stale and len(held) > 1 else held[-1]
        answer = {"roles": [{"role": role, "scope": {"type": "WORKSPACE", "entityId": "wm"}}]}
        return 200, json.dumps(answer).encode()


def writer_spec(base: str) -> dict[str, Any]:
    def body(user: str) -> dict[str, Any]:
        roles = [{"workspaceId": "w1", "role": "WORKSPACE_OWNER"}]
        return {"organizationRole": "ORGANIZATION_MEMBER", "workspaceRoles": roles, "u": user}

    return {
        "base": base,
        "rate": 50,
        "max_seconds": 0.6,
        "org": "o1",
        "owner_token": "owner",
        "marker": "wm",
        "probe_every": 5,
        "max_in_flight": 4,
        "writes": [{"user": f"t{i}", "body": body(f"t{i}"), "last": None} for i in range(6)],
        "probes": [
            {"user": "p1", "body": body("p1"), "last": "WORKSPACE_MEMBER", "reader": "reader-p1"}
        ],
    }


async def test_writer_keeps_its_rate_toggles_roles_and_finds_no_stale_answer() -> None:
    fake = FakeDirectory()
    async with tiny_server(fake.respond) as base:
        result = await mix.Writer(writer_spec(base)).run(asyncio.Event())
    assert 25 <= result.attempted <= 31  # 50/s for 0.6 s
    assert result.ok == result.attempted and result.errors == 0
    assert result.achieved == pytest.approx(50, rel=0.2)
    assert result.probes == result.attempted // 5 and result.stale == 0
    assert result.statuses == {"200": result.attempted}
    path, auth, body = fake.posts[0]
    assert (path, auth) == ("/v1/organizations/o1/users/t0/roles", "Bearer owner")
    assert body["workspaceRoles"] == [
        {"workspaceId": "w1", "role": "WORKSPACE_OWNER"},
        {"workspaceId": "wm", "role": "WORKSPACE_MEMBER"},
    ]
    # every write changes the role: member, author, member, ... for each user
    assert fake.roles["t0"][:3] == ["WORKSPACE_MEMBER", "WORKSPACE_AUTHOR", "WORKSPACE_MEMBER"]
    assert fake.roles["p1"][0] == "WORKSPACE_AUTHOR"  # it held WORKSPACE_MEMBER
    assert result.last["o1/t0"] == fake.roles["t0"][-1]
    assert result.last["o1/p1"] == fake.roles["p1"][-1]
    assert result.p50_ms > 0 and result.p99_ms >= result.p50_ms


async def test_writer_counts_stale_answers_and_failed_writes() -> None:
    fake = FakeDirectory(stale=True)
    async with tiny_server(fake.respond) as base:
        spec = writer_spec(base)
        spec["probe_every"] = 2
        result = await mix.Writer(spec).run(asyncio.Event())
    # the first probe of p1 has nothing older to show; every later one is stale
    assert result.probes >= 5 and result.stale == result.probes - 1
    assert any(e.startswith("stale: p1 was given") for e in result.examples)

    async def refuse(head: bytes, _: bytes) -> tuple[int, bytes]:
        return 403, b'{"message":"no","statusCode":403}'

    async with tiny_server(refuse) as base:
        stop = asyncio.Event()
        asyncio.get_running_loop().call_later(0.2, stop.set)
        refused = await mix.Writer(writer_spec(base)).run(stop)
    assert refused.ok == 0 and refused.errors == refused.attempted > 0
    assert refused.statuses == {"403": refused.attempted}
    assert refused.seconds < 0.5  # the stop event ends it before max_seconds
    assert "HTTP 403" in refused.examples[0] and "owner" not in " ".join(refused.examples)


# --- the report ----------------------------------------------------------------------------------


def stats(req_s: float, p99: float, errors: int = 0) -> LoadStats:
    return LoadStats("python", 20, 5.0, 100, 100, errors, req_s, 1.0, 2.0, p99, 9.0)


def writer(achieved: float, p99: float, stale: int = 0) -> mix.WriterResult:
    return mix.WriterResult(
        20, 5.0, 100, 100, achieved, 5.0, p99, 90.0, 0, {"200": 100}, 10, stale, 3.0, [], {}
    )


def test_mix_rows_in_the_report() -> None:
    base = mix.CaseResult(mix.Case("postgres", 1, 1), stats(10_000, 3.0), None, None, 99.9, None, 1)
    busy = mix.CaseResult(
        mix.Case("postgres", 1, 2000, 20, "own"),
        stats(6000, 12.0),
        stats(900, 20.0),
        None,
        97.5,
        writer(19.0, 120.0),
        10,
    )
    stale = mix.CaseResult(
        mix.Case("postgres", 2, 2000, 20, "own"), stats(9000, 5.0), None, None, 90.0,
        writer(20.0, 10.0, stale=2), 10, "cache counters from 1 of 2 workers",
    )  # fmt: skip
    memory = mix.MemoryResult(100_000, 150.0, 240.4, 950, 200_000, 99.0, stats(900, 30.0), 99)
    run = mix.MixRun([base, busy, stale], memory)
    figures = suite.mix_figures(run)
    by = {(f["group"], f["name"], f["workers"]): f for f in figures}
    row = by["mix", "2k callers, 20/s own org", 1]
    assert (row["ratio"], row["pass"], row["hit_pct"], row["writes_s"]) == (0.6, True, 97.5, 19.0)
    assert (row["write_p99_ms"], row["stale"], row["probes"]) == (120.0, 0, 10)
    assert row["target"] == "≥ 0.5x one-token, p99 ≤ 20 ms, 0 stale"
    # two workers, no baseline of their own: no ratio, and only "0 stale" is graded
    two = by["mix", "2k callers, 20/s own org", 2]
    assert (two["ratio"], two["target"], two["pass"]) == (None, "0 stale", False)
    assert "no baseline measured" in two["note"] and "1 of 2 workers" in two["note"]
    writes = by["mix-writes", "role changes, 2k callers, 20/s own org", 1]
    assert (writes["req_s"], writes["p99_ms"], writes["ratio"], writes["pass"]) == (
        19.0, 120.0, 0.95, False,
    )  # fmt: skip
    rss = by["mix-memory", "worker RSS with 100k callers, each used once", 1]
    assert (rss["value"], rss["pass"], rss["bytes_per_caller"]) == (240.4, True, 950)
    text = report.markdown({"figures": figures})
    assert "### Many callers while roles change (`GET /v1/users/self`, issue 15)" in text
    head = next(ln for ln in text.splitlines() if ln.startswith("| figure") and "hit %" in ln)
    assert "| hit % | writes/s | write p99 ms | probes | stale |" in head
    line = next(ln for ln in text.splitlines() if ln.startswith("| 2k callers, 20/s own org"))
    assert "| 97.5 | 19.0 | 120 | 10 | 0 |" in line and line.endswith("| ✅ |")
    assert "| 100k | 240 MB | 950 | 150 | ≤ 250 MB | ✅ |" in text
    assert "200,000 cache entries at shutdown" in text
