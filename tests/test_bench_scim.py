"""bench/scim.py (the suite's `scim` group) end to end at tiny sizes, on SQLite and PostgreSQL:
a real `tenantry serve`, the bulk-loaded managed accounts found by `filter=userName eq`, every
POSTed user in the database, the group PATCHes checked member by member count; then the
grading of the suite's rows and the plan parser on fixed inputs."""

from __future__ import annotations

from pathlib import Path

import pytest
from bench import report, scim, suite
from bench.loadgen import LoadStats

from tests.conftest import PG_URL

TINY = scim.Options(
    filter_users=80,
    provision=25,
    group=30,
    patch=10,
    rounds=2,
    connections=2,
    post_connections=4,
    seconds=1.0,
    warmup=0.2,
    names=20,
    workers=(1,),
    loadgen="python",
)


@pytest.fixture(params=["sqlite", "postgres"])
def kind(request: pytest.FixtureRequest) -> str:
    if request.param == "postgres":
        request.getfixturevalue("pg_server")
    return str(request.param)


def test_the_scim_group_runs_end_to_end(kind: str, tmp_path: Path) -> None:
    run = scim.run_one(kind, TINY, PG_URL or None, tmp_path, lambda _: None)
    assert (run.db, run.users) == (kind, 80)
    assert run.provisioned == run.expected == 25  # every POST made its account
    assert "users" in run.plan  # at 80 rows the planner may well scan: no index asserted
    [w] = run.runs
    assert w.provision.ok == 25 and w.provision.errors == 0
    assert w.provision.detail.get("status_201") == 25
    for stats in (w.filter_one, w.filter):
        assert stats.requests > 0 and stats.errors == 0
    assert w.filter_one.connections == 1 and w.filter.connections == 2
    assert run.group is not None
    assert (run.group.members, run.group.patch) == (30, 10)
    assert len(run.group.add_ms) == len(run.group.remove_ms) == 2
    assert all(ms > 0 for ms in run.group.add_ms + run.group.remove_ms)


def test_the_plan_names_the_index_it_reads() -> None:
    pg = ["Index Scan using uq_users_username_key on users (actual time=0.06..0.07 rows=1)"]
    assert scim.used_index(pg) == "uq_users_username_key"
    sqlite = ["SEARCH users USING INDEX sqlite_autoindex_users_3 (username_key=?)"]
    assert scim.used_index(sqlite) == "sqlite_autoindex_users_3"
    assert scim.used_index(["Seq Scan on users", "  Filter: (username_key = 'x')"]) is None


def test_bodies_are_distinct_and_as_identity_providers_send_them() -> None:
    a, b = scim.user_body(1, "w1", "x.test"), scim.user_body(2, "w1", "x.test")
    assert a["userName"] != b["userName"] and a["externalId"] != b["externalId"]
    assert a["schemas"] == [scim.USER_SCHEMA, scim.ENTERPRISE]
    assert a[scim.ENTERPRISE]["employeeNumber"] == "1"
    removal = scim.remove_members(["u1", "u2"])["Operations"][0]
    assert removal == {
        "op": "Remove",
        "path": "members",
        "value": [{"value": "u1"}, {"value": "u2"}],
    }


def _stats(p95: float, connections: int = 1, errors: int = 0) -> LoadStats:
    return LoadStats("wrk", connections, 10.0, 1000, 1000 - errors, errors, 100.0, 1, p95, 9, 9)


def _run(db: str, users: int, p95: float, add_ms: list[float]) -> scim.ScimRun:
    run = scim.ScimRun(db, users, 50.0, "Index Scan using uq_users_username_key", "uq_users_x")
    run.runs.append(scim.WorkerRun(1, _stats(p95), _stats(p95 * 3, 4), _stats(200, 16)))
    run.group = scim.GroupRun(10_000, 1_000, 3_000.0, add_ms, [40.0, 50.0])
    run.provisioned = run.expected = 1_000
    return run


def _row(figures: list[suite.Figure], name: str) -> suite.Figure:
    return next(f for f in figures if f["name"].startswith(name))


def test_targets_apply_to_postgres_at_a_million_and_grade_the_slowest_patch() -> None:
    met = suite.scim_figures(_run("postgres", 1_000_000, 4.9, [600.0, 900.0]))
    assert _row(met, "filter userName eq, 1 connection")["pass"] is True
    assert _row(met, "filter userName eq, 4")["target"] is None  # req/s: reported
    assert _row(met, "PATCH adding 1k")["pass"] is True
    assert _row(met, "PATCH adding 1k")["value"] == 900.0
    missed = suite.scim_figures(_run("postgres", 1_000_000, 5.1, [600.0, 1001.0]))
    assert _row(missed, "filter userName eq, 1 connection")["pass"] is False
    assert _row(missed, "PATCH adding 1k")["pass"] is False
    small = suite.scim_figures(_run("sqlite", 100_000, 50.0, [10.0]))
    assert _row(small, "filter userName eq, 1 connection")["target"] is None
    provisioning = _row(small, "provisioning")
    assert provisioning["endpoint"] == "POST /scim/v2/Users"
    assert "1,000 of 1,000 POSTed users in the database" in provisioning["note"]


def test_scim_rows_in_the_report() -> None:
    figures = suite.scim_figures(_run("postgres", 1_000_000, 4.0, [500.0]))
    text = report.markdown({"figures": figures, "machine": {}, "settings": {}})
    assert "### SCIM: `filter=userName eq` and provisioning" in text
    assert "### SCIM: group membership PATCHes" in text
    assert "p95 ≤ 5 ms (PostgreSQL, 1M)" in text and report.PASS in text


def test_suite_knows_the_group_and_its_quick_sizes() -> None:
    args = suite.parse_args(["--only", "scim", "--quick"])
    assert args.groups == ["scim"]
    assert args.scim_users == {"postgres": 100_000, "sqlite": 20_000}
    assert (args.scim_provision, args.scim_workers) == (2_000, [1])
    full = suite.parse_args(["--only", "scim"])
    assert full.scim_users == {"postgres": 1_000_000, "sqlite": 100_000}
    assert (full.scim_provision, full.scim_group, full.scim_patch) == (10_000, 10_000, 1_000)
    assert suite.scim_options(full, "sqlite").workers == (1,)
    assert suite.scim_options(full, "postgres").workers == (1, 2)
