"""The permission engine in memory: inheritance down the scope tree, DAG tags, custom roles."""

from __future__ import annotations

from tenantry.authz import catalogue, scopes
from tenantry.authz.engine import Grant, Grants
from tenantry.authz.scopes import ScopeType

ORG, WS, WS2, DEP = "corg", "cws", "cws2", "cdep"


def grant(role: str, scope: scopes.Scope) -> Grant:
    return Grant(role, scope, "user", "cuser", "binding")


def test_org_owner_acts_as_workspace_owner_everywhere_in_its_org() -> None:
    g = Grants([grant("ORGANIZATION_OWNER", scopes.organization(ORG))])
    assert g.check("workspace.update", scopes.workspace(ORG, WS))
    assert g.check("deployment.delete", scopes.deployment(ORG, WS, DEP))
    assert g.check("deployment.airflow.dag.trigger", scopes.dag(ORG, WS, DEP, "etl"))
    assert not g.check("workspace.update", scopes.workspace("cother", WS))
    assert not g.check("system.users.list", scopes.SYSTEM_SCOPE)


def test_workspace_role_does_not_reach_up_or_sideways() -> None:
    g = Grants([grant("WORKSPACE_MEMBER", scopes.workspace(ORG, WS))])
    assert g.check("deployment.get", scopes.deployment(ORG, WS, DEP))
    assert not g.check("deployment.get", scopes.deployment(ORG, WS2, DEP))
    assert not g.check("organization.get", scopes.organization(ORG))
    assert not g.check("deployment.update", scopes.deployment(ORG, WS, DEP))


def test_dag_tag_role_applies_to_dags_carrying_the_tag() -> None:
    g = Grants([grant("DAG_AUTHOR", scopes.dag_tag(ORG, WS, DEP, "team-a"))])
    dag = scopes.dag(ORG, WS, DEP, "etl")
    assert g.check("deployment.airflow.dag.update", dag, dag_tags=["team-a"])
    assert not g.check("deployment.airflow.dag.update", dag, dag_tags=["team-b"])
    assert not g.check("deployment.airflow.dag.update", dag)


def test_system_admin_can_do_everything() -> None:
    g = Grants([grant("SYSTEM_ADMIN", scopes.SYSTEM_SCOPE)])
    for permission in catalogue.ALL_PERMISSIONS:
        assert g.check(permission, scopes.dag(ORG, WS, DEP, "x"))


def test_custom_role_permissions_come_from_the_organization() -> None:
    custom = {(ORG, "DEPLOY_READER"): frozenset({"deployment.get"})}
    g = Grants([grant("DEPLOY_READER", scopes.deployment(ORG, WS, DEP))], custom)
    assert g.check("deployment.get", scopes.deployment(ORG, WS, DEP))
    assert not g.check("deployment.update", scopes.deployment(ORG, WS, DEP))
    # the same name in another organization means nothing
    g2 = Grants([grant("DEPLOY_READER", scopes.deployment("cother", WS, DEP))], custom)
    assert not g2.check("deployment.get", scopes.deployment("cother", WS, DEP))


def test_explain_names_the_granting_bindings() -> None:
    owner = grant("ORGANIZATION_OWNER", scopes.organization(ORG))
    member = grant("WORKSPACE_MEMBER", scopes.workspace(ORG, WS))
    g = Grants([owner, member])
    assert g.explain("deployment.get", scopes.deployment(ORG, WS, DEP)) == [owner, member]
    assert g.explain("deployment.update", scopes.deployment(ORG, WS, DEP)) == [owner]
    assert g.explain("system.users.list", scopes.SYSTEM_SCOPE) == []


def test_effective_lists_each_permission_at_the_granting_scope() -> None:
    g = Grants([grant("DAG_VIEWER", scopes.dag(ORG, WS, DEP, "etl"))])
    effective = {(p, s.key) for p, s in g.effective()}
    assert effective == {(p, f"DAG:{DEP}:etl") for p in catalogue.ROLE_PERMISSIONS["DAG_VIEWER"]}


def test_every_builtin_role_is_valid_at_its_scope() -> None:
    for role in catalogue.BUILTIN_ROLES:
        assert role.permissions <= catalogue.ALL_PERMISSIONS
        assert role.permissions, role.name
    assert catalogue.roles_at(ScopeType.DAG_TAG) == ("DAG_AUTHOR", "DAG_VIEWER")
    strongest_first = [r.name for r in catalogue.BUILTIN_ROLES if r.scope is ScopeType.WORKSPACE]
    perms = [len(catalogue.ROLE_PERMISSIONS[r]) for r in strongest_first]
    assert perms == sorted(perms, reverse=True)


def test_check_agrees_with_explain_on_random_grants() -> None:
    """`check` is unrolled for speed; `explain` walks `Scope.ancestor_keys` plainly. They must
    agree on every permission, on scopes at every level, with and without DAG tags, on custom
    roles and on half-filled scopes (a DAG scope without its deployment, empty ids)."""
    import random

    rng = random.Random(20)
    orgs, wss, deps = [ORG, "corg2", ""], [WS, WS2, ""], [DEP, "cdep2", None]
    dags, tags = ["etl", "ml"], ["team-a", "team-b"]

    def any_scope() -> scopes.Scope:
        org, ws, dep = rng.choice(orgs), rng.choice(wss), rng.choice(deps)
        return rng.choice(
            [
                scopes.SYSTEM_SCOPE,
                scopes.organization(org),
                scopes.workspace(org, ws),
                scopes.Scope(ScopeType.DEPLOYMENT, org, ws, dep),
                scopes.Scope(ScopeType.DAG, org, ws, dep, dag_id=rng.choice(dags)),
                scopes.Scope(ScopeType.DAG_TAG, org, ws, dep, dag_tag=rng.choice(tags)),
            ]
        )

    roles = [*catalogue.ROLES, "DEPLOY_READER", "UNKNOWN"]
    custom = {(ORG, "DEPLOY_READER"): frozenset({"deployment.get", "deployment.airflow.dag.get"})}
    permissions = sorted(catalogue.ALL_PERMISSIONS)
    allowed = denied = 0
    for _ in range(60):
        g = Grants(
            [grant(rng.choice(roles), any_scope()) for _ in range(rng.randint(0, 4))], custom
        )
        for _ in range(40):
            scope = any_scope()
            dag_tags = rng.sample(tags, rng.randint(0, 2))
            for permission in rng.sample(permissions, 12):
                expected = bool(g.explain(permission, scope, dag_tags))
                assert g.check(permission, scope, dag_tags) is expected, (g.grants, scope)
                allowed += expected
                denied += not expected
    assert allowed > 500 and denied > 500
