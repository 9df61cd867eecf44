"""The scope tree: SYSTEM > ORGANIZATION > WORKSPACE > DEPLOYMENT > DAG / DAG_TAG."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum


class ScopeType(StrEnum):
    SYSTEM = "SYSTEM"
    ORGANIZATION = "ORGANIZATION"
    WORKSPACE = "WORKSPACE"
    DEPLOYMENT = "DEPLOYMENT"
    DAG = "DAG"
    DAG_TAG = "DAG_TAG"


DEPTH = {
    ScopeType.SYSTEM: 0,
    ScopeType.ORGANIZATION: 1,
    ScopeType.WORKSPACE: 2,
    ScopeType.DEPLOYMENT: 3,
    ScopeType.DAG: 4,
    ScopeType.DAG_TAG: 4,
}


@dataclass(frozen=True, slots=True)
class Scope:
    """A node of the tree with all its ancestors' ids, so that inheritance needs no query."""

    type: ScopeType
    organization_id: str | None = None
    workspace_id: str | None = None
    deployment_id: str | None = None
    dag_id: str | None = None
    dag_tag: str | None = None

    @property
    def entity_id(self) -> str | None:
        """The id Astro shows as scope.entityId (the deployment for DAG scopes)."""
        match self.type:
            case ScopeType.SYSTEM:
                return None
            case ScopeType.ORGANIZATION:
                return self.organization_id
            case ScopeType.WORKSPACE:
                return self.workspace_id
            case _:
                return self.deployment_id

    @property
    def key(self) -> str:
        match self.type:
            case ScopeType.SYSTEM:
                return "SYSTEM"
            case ScopeType.DAG:
                return f"DAG:{self.deployment_id}:{self.dag_id}"
            case ScopeType.DAG_TAG:
                return f"DAG_TAG:{self.deployment_id}:{self.dag_tag}"
            case _:
                return f"{self.type}:{self.entity_id}"

    def ancestor_keys(self, dag_tags: Iterable[str] = ()) -> tuple[str, ...]:
        """Keys of this scope and every scope above it. A DAG also sits inside the
        DAG_TAG scopes of the tags it carries, when the caller knows them."""
        keys = ["SYSTEM"]
        if self.organization_id:
            keys.append(f"ORGANIZATION:{self.organization_id}")
        if self.workspace_id:
            keys.append(f"WORKSPACE:{self.workspace_id}")
        if self.deployment_id:
            keys.append(f"DEPLOYMENT:{self.deployment_id}")
        if self.type is ScopeType.DAG:
            keys.append(self.key)
            keys.extend(f"DAG_TAG:{self.deployment_id}:{tag}" for tag in dag_tags)
        elif self.type is ScopeType.DAG_TAG:
            keys.append(self.key)
        return tuple(keys)


SYSTEM_SCOPE = Scope(ScopeType.SYSTEM)


def organization(org_id: str) -> Scope:
    return Scope(ScopeType.ORGANIZATION, organization_id=org_id)


def workspace(org_id: str, ws_id: str) -> Scope:
    return Scope(ScopeType.WORKSPACE, organization_id=org_id, workspace_id=ws_id)


def deployment(org_id: str, ws_id: str, dep_id: str) -> Scope:
    return Scope(
        ScopeType.DEPLOYMENT, organization_id=org_id, workspace_id=ws_id, deployment_id=dep_id
    )


def dag(org_id: str, ws_id: str, dep_id: str, dag_id: str) -> Scope:
    return Scope(ScopeType.DAG, org_id, ws_id, dep_id, dag_id=dag_id)


def dag_tag(org_id: str, ws_id: str, dep_id: str, tag: str) -> Scope:
    return Scope(ScopeType.DAG_TAG, org_id, ws_id, dep_id, dag_tag=tag)
