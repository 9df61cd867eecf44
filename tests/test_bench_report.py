"""The benchmark suite's report step and parsers, on small fixed inputs (no servers, < 2 s)."""

from __future__ import annotations

import argparse
import asyncio
import json
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest
from bench import loadgen, login, login_ab, report, sched_blame, suite
from bench.list_users import Measurement, Run

X = "\N{MULTIPLICATION SIGN}"
RESULTS: dict[str, Any] = {
    "schema": 1,
    "file": "20260101T000000Z.json",
    "started": "2026-01-01T00:00:00+00:00",
    "seconds": 123.4,
    "machine": {"cpus": 2, "commit": "abc1234", "load_average_at_start": [0.3, 0.2, 0.1]},
    "load_average_at_end": [0.4, 0.3, 0.2],
    "settings": {"quick": True, "loadgen_tool": "wrk", "connections": 20, "seconds": 5.0},
    "figures": [
        suite.figure(
            "ceiling",
            "ceiling (bare ASGI app)",
            endpoint="GET (any path)",
            db="none",
            workers=1,
            req_s=9000.0,
            p50_ms=1.5,
            p99_ms=9.0,
            errors=0,
        ),
        suite.figure(
            "ceiling",
            "astro GET /v1/users/self",
            endpoint="GET /v1/users/self",
            db="postgres",
            workers=1,
            users=10_000,
            req_s=5000.0,
            p50_ms=3.0,
            p99_ms=12.0,
            errors=0,
            target="≥ 0.5x the ceiling (50%)",
            ratio=0.56,
            **{"pass": True},
        ),
        suite.figure(
            "issue-4",
            "ece GET /api/v1/user",
            endpoint="GET /api/v1/user",
            db="postgres",
            workers=1,
            users=10_000,
            req_s=1200.0,
            p50_ms=15.0,
            p99_ms=40.0,
            errors=0,
            target="≥ 1 500 req/s",
            ratio=4.0,
            **{"pass": False},
        ),
        suite.figure(
            "rss",
            "peak RSS of a worker under list load",
            db="postgres",
            workers=1,
            users=1_000_000,
            value=150.2,
            unit="MB",
            target="≤ 200 MB",
            note="RSS before the load 120 MB",
            **{"pass": True},
        ),
        {  # a figure from bench.engine, with a key of its own
            **suite.figure("engine", "check", users=10_000, p50_ms=0.01, p99_ms=0.02),
            "calls_per_s": 90000.0,
        },
    ],
    "not_run": [{"group": "login", "reason": "left out (--only / --skip)"}],
    "failures": [{"group": "listing", "error": "server did not start"}],
}


def test_markdown_has_tables_with_targets_and_marks() -> None:
    text = report.markdown(RESULTS)
    assert text.startswith("## Results (generated)")
    assert "**2 targets met ✅, 1 missed ❌**, 2 figures without a target" in text
    assert "### HTTP: Tenantry against the ceiling and fastapi-users (1 worker)" in text
    row = next(line for line in text.splitlines() if line.startswith("| astro GET"))
    assert "| `GET /v1/users/self` | postgres | 1 | 10k | 5,000 |" in row
    assert row.endswith(f"| 0.56{X} | ≥ 0.5x the ceiling (50%) | ✅ |")
    ece = next(line for line in text.splitlines() if line.startswith("| ece GET"))
    assert ece.endswith(f"| 4.00{X} | ≥ 1 500 req/s | ❌ |")
    assert "| 150 MB | ≤ 200 MB | ✅ |" in text
    assert "| 1M |" in text
    assert "- peak RSS of a worker under list load: RSS before the load 120 MB" in text
    # an engine figure's own numeric column is kept
    engine = text.split("### Permission engine")[1]
    assert "calls per s" in engine and "90,000" in engine
    assert "- login: not run — left out (--only / --skip)" in text
    assert "- listing: **failed** — server did not start" in text
    assert "`--quick` smoke run" in text
    for line in text.splitlines():  # every table row has as many cells as its header
        if line.startswith("|"):
            assert line.endswith("|")


def test_figures_without_target_are_marked_as_such() -> None:
    text = report.markdown(RESULTS)
    ceiling = next(line for line in text.splitlines() if line.startswith("| ceiling"))
    assert ceiling.endswith("| — | — |")


def test_replace_section_keeps_hand_written_parts(tmp_path: Path) -> None:
    doc = "# Performance\n\nHand-written intro.\n\n## Later\n\nMore prose.\n"
    once = report.replace_section(doc, "## Results (generated)\n\nold\n")
    assert once.startswith(doc.rstrip())
    assert report.BEGIN in once and report.END in once
    twice = report.replace_section(once, "## Results (generated)\n\nnew\n")
    assert "new" in twice and "old" not in twice
    assert twice.count(report.BEGIN) == 1 and "More prose." in twice
    # a section in the middle stays where it is
    middle = "intro\n" + report.BEGIN + "\nx\n" + report.END + "\n\n## After\nprose\n"
    replaced = report.replace_section(middle, "y")
    assert replaced == "intro\n" + report.BEGIN + "\ny\n" + report.END + "\n\n## After\nprose\n"


def test_report_cli_reads_a_results_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "20260101T000000Z.json"
    path.write_text(json.dumps(RESULTS))
    assert report.main([str(path)]) == 0
    assert "| ✅ |" in capsys.readouterr().out


def test_listing_figures_apply_the_postgres_targets() -> None:
    def m(case: str, kind: str, users: int, p50: float, p95: float) -> Measurement:
        return Measurement(
            "postgres", users, case, "/v1/organizations/o1/users", {}, 10, p50, p95,
            p50, p50, p95, users, 20, kind,
        )  # fmt: skip

    small = Run("postgres", 10_000, 0.4, {}, 13_000, 700, 180)
    small.measurements = [m("list (first page)", "page", 10_000, 4.0, 5.0)]
    small.measurements.append(m("offset=9980", "other", 10_000, 7.0, 8.0))
    big = Run("postgres", 1_000_000, 61.0, {}, 1_300_000, 75_000, 18_000)
    big.measurements = [m("list (first page)", "page", 1_000_000, 5.0, 25.0)]
    big.measurements.append(m("offset=10000", "other", 1_000_000, 10.0, 12.0))
    big.rss = {"workers": 1, "before_mb": 120.0, "peak_mb": 210.0, "peak_sum_mb": 210.0}
    big.rss["load"] = {"req_s": 50.0, "p50_ms": 300.0, "p99_ms": 900.0, "errors": 0}
    big.rss["load"] |= {"seconds": 15, "connections": 20, "tool": "wrk"}
    figures = suite.listing_figures([small, big])
    by = {(f["group"], f["name"], f["users"]): f for f in figures}
    assert by["listing", "list (first page)", 1_000_000]["pass"] is False  # p95 25 > 20
    assert by["listing", "offset=10000", 1_000_000]["pass"] is True  # 12 <= 50
    growth = by["listing-growth", "offset=10000", 1_000_000]
    assert growth["ratio"] == pytest.approx(10 / 7, abs=0.01)
    assert growth["pass"] is True
    assert (
        by["bulk-load", "bulk load (users, memberships, role bindings)", 1_000_000]["pass"] is False
    )
    assert by["rss", "peak RSS of a worker under list load", 1_000_000]["pass"] is False
    text = report.markdown({"figures": figures})
    assert "| 61.0 s |" in text and "| 210 MB | ≤ 200 MB | ❌ |" in text


def test_parse_wrk_summary() -> None:
    output = (
        "Running 5s test @ http://127.0.0.1:1/v1/users/self\n"
        + loadgen.MARK
        + '{"requests":1000,"duration_us":5000000,"connect":0,"read":1,"write":0,'
        '"status":9,"timeout":2,"p50_us":1500,"p95_us":4000,"p99_us":8000,"max_us":20000}\n'
    )
    stats = loadgen.parse_wrk(output, 20)
    assert stats.ok == 991 and stats.errors == 12
    assert stats.req_s == pytest.approx(198.2)
    assert (stats.p50_ms, stats.p95_ms, stats.p99_ms) == (1.5, 4.0, 8.0)
    script = loadgen.wrk_script(
        loadgen.LoadSpec("http://x", ["/a", '/b"c'], {"Authorization": "Bearer t"})
    )
    assert '"/b\\"c"' in script and '["Authorization"] = "Bearer t"' in script


WRK_TEXT = """Running 15s test @ http://127.0.0.1:8941/v1/users/self
  2 threads and 20 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency     0.96ms    1.70ms  1.20s    90.42%
    Req/Sec     4.29k     2.65k    7.49k    60.00%
  Latency Distribution
     50%  275.00us
     75%    1.04ms
     90%    2.61ms
     99%    7.20ms
  60000 requests in 15.00s, 0.92MB read
  Socket errors: connect 0, read 3, write 0, timeout 4
  Non-2xx or 3xx responses: 10
Requests/sec:   4000.00
Transfer/sec:      0.91MB
"""


def test_parse_wrk_latency_text_without_the_lua_summary() -> None:
    stats = loadgen.parse_wrk(WRK_TEXT, 20)
    assert (stats.requests, stats.ok, stats.errors) == (60000, 59990, 17)
    assert stats.req_s == pytest.approx(59990 / 15, abs=0.1)
    assert (stats.p50_ms, stats.p99_ms, stats.max_ms) == (0.28, 7.2, 1200.0)
    assert stats.p95_ms != stats.p95_ms  # wrk prints no p95: NaN


Respond = Callable[[bytes, asyncio.StreamReader], Awaitable[bytes]]


@asynccontextmanager
async def tiny_server(respond: Respond) -> AsyncIterator[str]:
    """A keep-alive HTTP/1.1 server on a free port; `respond(head, reader)` answers each
    request (and reads its body, if any)."""

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                writer.write(await respond(head, reader))
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            writer.close()

    srv = await asyncio.start_server(handle, "127.0.0.1", 0)
    try:
        yield f"http://127.0.0.1:{srv.sockets[0].getsockname()[1]}"
    finally:
        srv.close()
        await srv.wait_closed()


async def test_asyncio_load_generator_against_a_tiny_server() -> None:
    body = b'{"ok":true}'

    async def respond(head: bytes, _: asyncio.StreamReader) -> bytes:
        status = b"200 OK" if b"Bearer t" in head else b"401 Unauthorized"
        return b"HTTP/1.1 " + status + b"\r\ncontent-length: %d\r\n\r\n" % len(body) + body

    async with tiny_server(respond) as base:
        spec = loadgen.LoadSpec(base, ["/a", "/b"], {"Authorization": "Bearer t"}, 4, 0.3, 0.1)
        stats = await loadgen.generate(spec)
        assert stats.ok > 10 and stats.errors == 0 and stats.p50_ms > 0
        refused = await loadgen.generate(loadgen.LoadSpec(base, ["/a"], {}, 2, 0.2, 0.0))
        assert refused.ok == 0 and refused.errors == refused.requests > 0


def test_wrk_script_posts_the_bodies_in_turn() -> None:
    bodies = ['{"username":"a@x","password":"p\\"1"}', '{"username":"b@x","password":"p2"}']
    spec = loadgen.LoadSpec("http://x", ["/login"], method="POST", bodies=bodies)
    script = loadgen.wrk_script(spec)
    assert 'wrk.method = "POST"' in script
    assert '"{\\"username\\":\\"a@x\\",\\"password\\":\\"p\\\\\\"1\\"}"' in script
    assert "request = function()" in script  # several bodies: a Lua call per request
    single = loadgen.wrk_script(loadgen.LoadSpec("http://x", ["/a"]))
    assert "local bodies = {}" in single and 'wrk.method = "GET"' in single


async def test_asyncio_load_generator_posts_each_body_in_turn() -> None:
    received: list[bytes] = []

    async def respond(head: bytes, reader: asyncio.StreamReader) -> bytes:
        length = int(head.lower().split(b"content-length: ")[1].split(b"\r\n")[0])
        received.append(head.split(b" ", 1)[0] + b" " + await reader.readexactly(length))
        return b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n"

    async with tiny_server(respond) as base:
        spec = loadgen.LoadSpec(
            base,
            ["/login"],
            {"Content-Type": "application/json"},
            connections=1,
            seconds=0.2,
            warmup=0.0,
            method="POST",
            bodies=['{"n":1}', '{"n":22}', "{}"],
        )
        stats = await loadgen.generate(spec)
    assert stats.ok >= 3 and stats.errors == 0
    assert received[:4] == [b'POST {"n":1}', b'POST {"n":22}', b"POST {}", b'POST {"n":1}']


def test_login_rows_from_either_load_generator() -> None:
    stats = loadgen.LoadStats("wrk", 20, 10.0, 105, 100, 7, 10.0, 500.0, 700.0, 800.04, 900.0)
    row = login.as_result(stats)
    assert row.statuses == {"200": 100, "non-2xx": 5} and row.errors == 2  # 2 socket errors
    assert (row.rate, row.p50_ms, row.p99_ms) == (10.0, 500.0, 800.0)
    detail = {"status_200": 100, "status_429": 3, "socket": 1, "timeout": 0}
    python = loadgen.LoadStats("python", 20, 10.0, 103, 100, 4, 10.0, 1, 2, 3, 4, detail)
    row = login.as_result(python)
    assert row.statuses == {"200": 100, "429": 3} and row.errors == 1


TIMEHIST = """           time    cpu  task name              wait time  sch delay   run time
                        [tid/pid]                 (msec)     (msec)     (msec)
--------------- ------  ---------------------  ---------  ---------  ---------
      10.002000 [0001]  kdamond.0[71]                       5.000      0.000      2.000
      10.002500 [0000]  python[31/30]                       0.000      0.000      2.500
      10.003000 [0001]  python[40]                          0.000      0.000      1.000
      10.004000 [0001]  python[20]                          0.100      3.000      1.000
      10.004100 [0000]  python[20]                          0.100      0.050      0.050
"""


def test_sched_blame_names_what_ran_while_a_thread_waited() -> None:
    runs = list(sched_blame.parse(TIMEHIST.splitlines()))
    assert len(runs) == 5 and runs[0].task == "kdamond.0[71]"
    waits, waited, same, other = sched_blame.blame(runs, 20, 0.5)
    # python[20] waited 10.000-10.003 s on CPU 1: kdamond 2 ms, then python[40] 1 ms; CPU 0
    # ran the hashing thread python[31/30] from 10.000 to 10.0025 s.
    assert (waits, round(waited, 6)) == (1, 0.003)
    assert {k: round(v * 1000, 3) for k, v in same.items()} == {
        "kdamond.#[#]": 2.0,
        "python[40]": 1.0,
    }
    assert {k: round(v * 1000, 3) for k, v in other.items()} == {"python[31/30]": 2.5}
    assert sched_blame.blame(runs, 20, 5.0)[0] == 0  # no wait that long


def test_login_ab_variants_and_their_median_ratio() -> None:
    one, two = login_ab.parse_variants(
        '{"a": {}, "b": {"workers": 2, "env": {"TENANTRY_HASH_PRIORITY": "nice", "N": 3}}}'
    )
    assert (one.name, one.workers, one.env) == ("a", 1, {})
    assert (two.workers, two.env) == (2, {"TENANTRY_HASH_PRIORITY": "nice", "N": "3"})
    two.rounds = [(2.0, 5.0), (1.0, 1.5), (2.0, 4.0)]
    assert two.ratios() == [2.5, 1.5, 2.0]
    assert two.summary().startswith("b: median ratio 2.00x  rounds [2.5, 1.5, 2.0]")
    assert "p99 alone 2.00 ms, under load 4.00 ms" in two.summary()
    assert one.summary() == "a: no rounds"


def test_charts_are_written(tmp_path: Path) -> None:
    results = {
        **RESULTS,
        "figures": [
            *RESULTS["figures"],
            *(
                suite.figure("scale-out", "astro", workers=w, req_s=1000.0 * w, users=10_000)
                for w in (1, 2, 4)
            ),
            *(
                suite.figure("listing", "first page", db=db, users=u, p50_ms=4.0, p95_ms=5.0)
                for db in ("postgres", "sqlite")
                for u in (10_000, 1_000_000)
            ),
        ],
    }
    written = report.charts(results, tmp_path)
    assert {p.name for p in written} == {
        "bench-scale-out.png",
        "bench-list-cost.png",
        "bench-http.png",
    }
    assert all(p.read_bytes().startswith(b"\x89PNG") for p in written)


def test_sign_in_target_is_graded_on_the_median_of_paired_rounds() -> None:
    args = argparse.Namespace(connections=20)
    steady = login_ab.Variant("1 worker(s)", 1, {}, [(1.0, 1.9), (1.2, 3.0), (1.0, 1.8)])
    row = suite._round_figure(steady, args)
    assert (row["ratio"], row["pass"], row["p99_ms"]) == (1.9, True, 1.9)
    assert row["target"] == "p99 ≤ 2x alone"
    assert "[1.9, 2.5, 1.8]" in row["note"] and "default settings" in row["name"]
    crowded = login_ab.Variant("2 worker(s)", 2, {}, [(1.0, 2.5)] * 3)
    row = suite._round_figure(crowded, args)
    assert (row["ratio"], row["pass"]) == (2.5, False) and "stricter" in row["target"]
    unpinned = login_ab.Variant("1 worker(s), unpinned", 1, dict(suite.UNPINNED), [(1.0, 2.5)])
    row = suite._round_figure(unpinned, args)
    assert (row["ratio"], row["pass"]) == (2.5, None)  # reported beside the graded row
    assert "TENANTRY_PIN_EVENT_LOOP=off" in row["name"] and row["target"].startswith("reported")
