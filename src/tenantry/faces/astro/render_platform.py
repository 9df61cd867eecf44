"""Organizations, workspaces and deployments -> Astro Platform JSON (plain dicts)."""

from __future__ import annotations

from typing import Any

from tenantry.clock import iso_z
from tenantry.db.models import Deployment, Organization, Workspace
from tenantry.db.paging import Page
from tenantry.directory.deployments import DeploymentPage, DeploymentView
from tenantry.directory.organizations import OrganizationPage, OrganizationView
from tenantry.directory.subjects import Subjects
from tenantry.directory.workspaces import WorkspacePage, WorkspaceView
from tenantry.faces.astro import render_iam
from tenantry.faces.astro.schemas_platform import SERVER_OWNED

JSON = dict[str, Any]


def subject(subject_id: str | None, subjects: Subjects) -> JSON:
    return render_iam.subject(subjects, subject_id)


def _paginated(key: str, page: Page[Any], items: list[JSON]) -> JSON:
    return {key: items, "limit": page.limit, "offset": page.offset, "totalCount": page.total}


# --- organizations ---------------------------------------------------------------------------


def _organization(org: Organization, subjects: Subjects) -> JSON:
    body: JSON = {
        "createdAt": iso_z(org.created_at),
        "createdBy": subject(org.created_by, subjects),
        "id": org.id,
        "isScimEnabled": org.is_scim_enabled,
        "name": org.name,
        "status": org.status,
        "supportPlan": org.support_plan or "BASIC",
        "updatedAt": iso_z(org.updated_at),
        "updatedBy": subject(org.updated_by, subjects),
    }
    if org.billing_email is not None:
        body["billingEmail"] = org.billing_email
    if org.product is not None:
        body["product"] = org.product
    return body


def organization(view: OrganizationView) -> JSON:
    return _organization(view.organization, view.subjects)


def organizations_page(view: OrganizationPage) -> JSON:
    items = [_organization(o, view.subjects) for o in view.page.items]
    return _paginated("organizations", view.page, items)


# --- workspaces ------------------------------------------------------------------------------


def _workspace(ws: Workspace, organization_name: str, subjects: Subjects) -> JSON:
    return {
        "cicdEnforcedDefault": ws.cicd_enforced_default,
        "createdAt": iso_z(ws.created_at),
        "createdBy": subject(ws.created_by, subjects),
        "description": ws.description,
        "id": ws.id,
        "name": ws.name,
        "organizationId": ws.organization_id,
        "organizationName": organization_name,
        "updatedAt": iso_z(ws.updated_at),
        "updatedBy": subject(ws.updated_by, subjects),
    }


def workspace(view: WorkspaceView) -> JSON:
    return _workspace(view.workspace, view.organization_name, view.subjects)


def workspaces_page(view: WorkspacePage) -> JSON:
    items = [_workspace(w, view.organization_name, view.subjects) for w in view.page.items]
    return _paginated("workspaces", view.page, items)


# --- deployments -----------------------------------------------------------------------------

# Required Deployment fields that only a running Airflow could fill in. Tenantry runs none, so
# each renders as the client gave it or, if never given, as the neutral empty value of its type
# ("" / 0 / false, and status UNKNOWN). Nothing is invented.
NEUTRAL: JSON = {
    "airflowVersion": "",
    "astroRuntimeVersion": "",
    "imageRepository": "",
    "imageTag": "",
    "isCicdEnforced": False,
    "isDagDeployEnabled": False,
    "namespace": "",
    "runtimeVersion": "",
    "schedulerCpu": "",
    "schedulerMemory": "",
    "schedulerReplicas": 0,
    "status": "UNKNOWN",
    "webServerAirflowApiUrl": "",
    "webServerCpu": "",
    "webServerIngressHostname": "",
    "webServerMemory": "",
    "webServerUrl": "",
}
# A worker queue's required fields the request does not carry (`id` when the client gave none,
# `podCpu`/`podMemory`, which Astro derives from the machine type): neutral as well.
QUEUE_NEUTRAL: JSON = {"id": "", "podCpu": "", "podMemory": ""}


def _environment_variable(var: Any, updated_at: str) -> Any:
    """Secret values are never stored, so never shown; `updatedAt` is the deployment's."""
    if not isinstance(var, dict):
        return var
    body = {**var, "updatedAt": updated_at}
    if body.get("isSecret") is True:
        body.pop("value", None)
    return body


def _deployment(dep: Deployment, workspace_name: str | None, subjects: Subjects) -> JSON:
    """The Deployment schema: what the client sent (known and unknown fields alike), the neutral
    value of each required field it never sent, and the fields Tenantry owns."""
    spec: JSON = {k: v for k, v in (dep.spec or {}).items() if k not in SERVER_OWNED}
    body: JSON = NEUTRAL | spec
    # Fields the request spells differently from the response.
    if "runtimeVersion" not in spec and "astroRuntimeVersion" in spec:
        body["runtimeVersion"] = spec["astroRuntimeVersion"]  # its deprecated alias
    scheduler = spec.get("scheduler")
    if isinstance(scheduler, dict):  # hybrid deployments: {au, replicas}
        if "schedulerAu" not in spec and "au" in scheduler:
            body["schedulerAu"] = scheduler["au"]
        if "schedulerReplicas" not in spec and "replicas" in scheduler:
            body["schedulerReplicas"] = scheduler["replicas"]
    updated_at = iso_z(dep.updated_at)
    if isinstance(spec.get("environmentVariables"), list):
        body["environmentVariables"] = [
            _environment_variable(v, updated_at) for v in spec["environmentVariables"]
        ]
    if isinstance(spec.get("workerQueues"), list):
        body["workerQueues"] = [
            QUEUE_NEUTRAL | q if isinstance(q, dict) else q for q in spec["workerQueues"]
        ]
    body.update(
        {
            "createdAt": iso_z(dep.created_at),
            "createdBy": subject(dep.created_by, subjects),
            "description": dep.description,
            "id": dep.id,
            "name": dep.name,
            "organizationId": dep.organization_id,
            "updatedAt": updated_at,
            "updatedBy": subject(dep.updated_by, subjects),
            "workspaceId": dep.workspace_id,
        }
    )
    if workspace_name is not None:
        body["workspaceName"] = workspace_name
    return body


def deployment(view: DeploymentView) -> JSON:
    return _deployment(view.deployment, view.workspace_name, view.subjects)


def deployments_page(view: DeploymentPage) -> JSON:
    items = [
        _deployment(d, view.workspace_names.get(d.workspace_id), view.subjects)
        for d in view.page.items
    ]
    return _paginated("deployments", view.page, items)
