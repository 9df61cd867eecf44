"""bench/engine.py compares Tenantry's permission engine with pycasbin: this proves the casbin
policy it exports is equivalent, on a small bulk organization (SQLite): the same allow/deny for
a mix of (user, permission, scope) and the same users from who_can."""

from __future__ import annotations

from pathlib import Path

import pytest
from bench.engine import (
    casbin_request,
    casbin_who_can,
    make_enforcer,
    policy_lines,
    query_mix,
    read_org,
)

from tenantry.authz import scopes
from tenantry.authz.engine import Grants, load_user_grants, who_can
from tenantry.authz.scopes import ScopeType
from tenantry.db.engine import Database
from tenantry.devdata.bulk import load_organization


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
async def test_casbin_export_answers_like_tenantry(database: Database, tmp_path: Path) -> None:
    info = await load_organization(
        database, users=150, workspaces=4, deployments_per_workspace=2, seed=3
    )
    org = await read_org(database, info.organization_id)
    users = [info.owner_id, *[u for u in org.user_ids if u in org.held][:40]]
    grants: dict[str, Grants] = {}
    async with database.transaction(write=False) as db:
        for user in users:
            grants[user] = await load_user_grants(db, user)
    enforcer = make_enforcer(policy_lines(org.assignments), tmp_path)

    queries = query_mix(org, users, 600, seed=1)
    answers = [
        (grants[u].check(p, s, t), bool(enforcer.enforce(*casbin_request(u, p, s, t))))
        for u, p, s, t in queries
    ]
    assert [q for q, (ours, theirs) in zip(queries, answers, strict=True) if ours != theirs] == []
    allowed = [q for q, (ours, _) in zip(queries, answers, strict=True) if ours]
    assert 0 < len(allowed) < len(queries)
    levels = {s.type for _, _, s, _ in allowed}
    assert {ScopeType.ORGANIZATION, ScopeType.WORKSPACE, ScopeType.DEPLOYMENT} <= levels
    assert any(s.type is ScopeType.DAG and t for _, _, s, t in allowed), "a dagTag case"

    # who_can: the same users through casbin's role-in-domain look-ups
    ws = scopes.workspace(org.organization_id, info.workspace_ids[0])
    for permission in ("workspace.get", "workspace.update"):
        async with database.transaction(write=False) as db:
            holders = {h.subject_id for h in await who_can(db, permission, ws)}
        assert holders and holders == casbin_who_can(enforcer, permission, ws)

    # The comparison can fail: without the owner's membership casbin stops agreeing.
    owner_key = f"ORGANIZATION:{org.organization_id}"
    broken = [a for a in org.assignments if not (a[0] == info.owner_id and a[2] == owner_key)]
    assert len(broken) == len(org.assignments) - 1
    other = make_enforcer(policy_lines(broken), tmp_path)
    owner_ws = casbin_request(info.owner_id, "workspace.update", ws)
    assert grants[info.owner_id].check("workspace.update", ws)
    assert enforcer.enforce(*owner_ws) and not other.enforce(*owner_ws)
