"""Astro Platform request bodies and (for the OpenAPI document) response shapes of
organizations, workspaces and deployments, as platform-v1beta1 defines them.

Deployment bodies keep every field, known or not: Tenantry runs no Airflow, so a deployment's
other fields are stored and echoed back. Known fields (the request schemas' and the response
fields a client may record, such as `namespace` or `webServerUrl`) are type-checked, so that
what is echoed always matches the Deployment schema; null removes a field.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import (
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    PlainSerializer,
    StrictBool,
    StrictInt,
    model_validator,
)

from tenantry.clock import iso_z
from tenantry.faces.astro.schemas import BasicSubjectProfile, Body
from tenantry.ids import ID_PATTERN

SupportPlan = Literal["TRIAL", "BASIC", "STANDARD", "PREMIUM", "BUSINESS_CRITICAL"]
Product = Literal["HOSTED", "HYBRID"]
OrganizationStatus = Literal["ACTIVE", "INACTIVE", "SUSPENDED"]
Executor = Literal["CELERY", "KUBERNETES"]
SchedulerSize = Literal["SMALL", "MEDIUM", "LARGE", "EXTRA_LARGE"]
DeploymentType = Literal["DEDICATED", "HYBRID", "STANDARD"]
CloudProvider = Literal["AWS", "AZURE", "GCP"]
DeploymentStatus = Literal[
    "CREATING", "DEPLOYING", "HEALTHY", "UNHEALTHY", "UNKNOWN", "HIBERNATING"
]
AstroMachine = Literal["A5", "A10", "A20", "A40", "A60", "A120", "A160"]
# A client-given instant, kept and echoed as YYYY-MM-DDTHH:MM:SSZ.
Timestamp = Annotated[AwareDatetime, PlainSerializer(iso_z, return_type=str)]
EntityId = Annotated[str, Field(pattern=ID_PATTERN)]

# --- organizations ---------------------------------------------------------------------------


class UpdateOrganizationRequest(Body):
    billingEmail: str = Field(max_length=320)
    isScimEnabled: StrictBool
    name: str = Field(min_length=1, max_length=50)


class Organization(BaseModel):
    billingEmail: str | None = None
    createdAt: datetime
    createdBy: BasicSubjectProfile
    id: str
    isScimEnabled: bool
    name: str
    product: Product | None = None
    status: OrganizationStatus | None = None
    supportPlan: SupportPlan
    updatedAt: datetime
    updatedBy: BasicSubjectProfile


class OrganizationsPaginated(BaseModel):
    limit: int
    offset: int
    organizations: list[Organization]
    totalCount: int


# --- workspaces ------------------------------------------------------------------------------


class CreateWorkspaceRequest(Body):
    cicdEnforcedDefault: StrictBool | None = None
    description: str | None = None
    name: str = Field(min_length=1, max_length=50)


class UpdateWorkspaceRequest(Body):
    cicdEnforcedDefault: StrictBool
    description: str
    name: str = Field(min_length=1, max_length=50)


class Workspace(BaseModel):
    cicdEnforcedDefault: bool
    createdAt: datetime
    createdBy: BasicSubjectProfile | None = None
    description: str | None = None
    id: str
    name: str
    organizationId: str
    organizationName: str | None = None
    updatedAt: datetime
    updatedBy: BasicSubjectProfile | None = None


class WorkspacesPaginated(BaseModel):
    limit: int
    offset: int
    totalCount: int
    workspaces: list[Workspace]


# --- deployments: request parts --------------------------------------------------------------


class SpecPart(BaseModel):
    """A part of a deployment body: unknown fields are kept, known ones type-checked."""

    model_config = ConfigDict(extra="allow", str_max_length=4096)


class DeploymentEnvironmentVariableRequest(SpecPart):
    isSecret: StrictBool
    key: str = Field(min_length=1, max_length=256)
    value: str | None = None


class WorkerQueueRequest(SpecPart):
    """Standard/dedicated queues name an `astroMachine`, hybrid ones a `nodePoolId`."""

    id: str | None = None
    isDefault: StrictBool
    maxWorkerCount: StrictInt = Field(ge=1)
    minWorkerCount: StrictInt = Field(ge=0)
    name: str = Field(min_length=1, max_length=63)
    workerConcurrency: StrictInt = Field(ge=1)
    astroMachine: AstroMachine | None = None
    nodePoolId: str | None = None
    podCpu: str | None = None
    podMemory: str | None = None

    @model_validator(mode="after")
    def _counts(self) -> WorkerQueueRequest:
        if self.minWorkerCount > self.maxWorkerCount:
            raise ValueError("minWorkerCount must not exceed maxWorkerCount")
        return self


class DeploymentHibernationSchedule(SpecPart):
    description: str | None = Field(default=None, max_length=200)
    hibernateAtCron: str = Field(min_length=1)
    isEnabled: StrictBool
    wakeAtCron: str = Field(min_length=1)


class DeploymentHibernationOverrideRequest(SpecPart):
    isActive: StrictBool | None = None
    isHibernating: StrictBool | None = None
    overrideUntil: Timestamp | None = None


class DeploymentHibernationSpecRequest(SpecPart):
    override: DeploymentHibernationOverrideRequest | None = None
    schedules: list[DeploymentHibernationSchedule] | None = Field(default=None, max_length=10)


class DeploymentScalingSpecRequest(SpecPart):
    hibernationSpec: DeploymentHibernationSpecRequest | None = None


class DeploymentInstanceSpecRequest(SpecPart):
    au: StrictInt = Field(ge=5, le=24)
    replicas: StrictInt = Field(ge=1, le=4)


class DeploymentHibernationStatusRequest(SpecPart):
    isHibernating: StrictBool
    nextEventAt: Timestamp | None = None
    nextEventType: Literal["HIBERNATE", "WAKE"] | None = None
    reason: str | None = None


class DeploymentScalingStatusRequest(SpecPart):
    hibernationStatus: DeploymentHibernationStatusRequest | None = None


# Fields of the Deployment response that Tenantry owns: never taken from a request body.
SERVER_OWNED = frozenset(
    {"id", "organizationId", "workspaceName", "createdAt", "createdBy", "updatedAt", "updatedBy"}
)
# Fields that have columns of their own rather than a place in the spec.
COLUMNS = frozenset({"name", "description", "workspaceId"})


class DeploymentBody(SpecPart):
    """Every field of the create and update requests (standard, dedicated and hybrid) and the
    response fields a client may record; all optional, so only what was sent is kept."""

    # create/update request fields
    astroRuntimeVersion: str | None = None
    cloudProvider: CloudProvider | None = None
    clusterId: str | None = None
    contactEmails: list[str] | None = None
    defaultTaskPodCpu: str | None = None
    defaultTaskPodMemory: str | None = None
    description: str | None = Field(default=None, max_length=1000)
    environmentVariables: list[DeploymentEnvironmentVariableRequest] | None = None
    executor: Executor | None = None
    isCicdEnforced: StrictBool | None = None
    isDagDeployEnabled: StrictBool | None = None
    isDevelopmentMode: StrictBool | None = None
    isHighAvailability: StrictBool | None = None
    name: str | None = Field(default=None, min_length=1, max_length=500)
    region: str | None = None
    resourceQuotaCpu: str | None = None
    resourceQuotaMemory: str | None = None
    scalingSpec: DeploymentScalingSpecRequest | None = None
    scheduler: DeploymentInstanceSpecRequest | None = None
    schedulerSize: SchedulerSize | None = None
    taskPodNodePoolId: str | None = None
    type: DeploymentType | None = None
    workerQueues: list[WorkerQueueRequest] | None = Field(default=None, min_length=1)
    workloadIdentity: str | None = None
    workspaceId: EntityId | None = None
    # response fields a client may record (Tenantry cannot know them)
    airflowVersion: str | None = None
    clusterName: str | None = None
    dagTarballVersion: str | None = None
    desiredDagTarballVersion: str | None = None
    externalIPs: list[str] | None = None
    imageRepository: str | None = None
    imageTag: str | None = None
    imageVersion: str | None = None
    namespace: str | None = None
    oidcIssuerUrl: str | None = None
    runtimeVersion: str | None = None
    scalingStatus: DeploymentScalingStatusRequest | None = None
    schedulerAu: StrictInt | None = Field(default=None, ge=0)
    schedulerCpu: str | None = None
    schedulerMemory: str | None = None
    schedulerReplicas: StrictInt | None = Field(default=None, ge=0)
    status: DeploymentStatus | None = None
    statusReason: str | None = None
    webServerAirflowApiUrl: str | None = None
    webServerCpu: str | None = None
    webServerIngressHostname: str | None = None
    webServerMemory: str | None = None
    webServerReplicas: StrictInt | None = Field(default=None, ge=0)
    webServerUrl: str | None = None

    def spec(self) -> dict[str, Any]:
        """What the client sent, less the columns and the fields Tenantry owns. (Python mode:
        JSON mode would turn a NaN into null, where the service should see and refuse it.)"""
        sent = self.model_dump(exclude_unset=True)
        return {k: v for k, v in sent.items() if k not in COLUMNS and k not in SERVER_OWNED}


class CreateDeploymentRequest(DeploymentBody):
    name: str = Field(min_length=1, max_length=500)
    workspaceId: EntityId


class UpdateDeploymentRequest(DeploymentBody):
    """Fields not sent keep their values; `workspaceId`, when sent, must be the current one."""


# --- deployments: response shapes ------------------------------------------------------------


class DeploymentEnvironmentVariable(BaseModel):
    isSecret: bool
    key: str
    updatedAt: str
    value: str | None = None


class WorkerQueue(BaseModel):
    astroMachine: str | None = None
    id: str
    isDefault: bool
    maxWorkerCount: int
    minWorkerCount: int
    name: str
    nodePoolId: str | None = None
    podCpu: str
    podMemory: str
    workerConcurrency: int


class DeploymentHibernationOverride(BaseModel):
    isActive: bool | None = None
    isHibernating: bool | None = None
    overrideUntil: str | None = None


class DeploymentHibernationSpec(BaseModel):
    override: DeploymentHibernationOverride | None = None
    schedules: list[DeploymentHibernationSchedule] | None = None


class DeploymentScalingSpec(BaseModel):
    hibernationSpec: DeploymentHibernationSpec | None = None


class DeploymentHibernationStatus(BaseModel):
    isHibernating: bool
    nextEventAt: str | None = None
    nextEventType: Literal["HIBERNATE", "WAKE"] | None = None
    reason: str | None = None


class DeploymentScalingStatus(BaseModel):
    hibernationStatus: DeploymentHibernationStatus | None = None


class Deployment(BaseModel):
    """Also carries, unchanged, any other field the client sent."""

    model_config = ConfigDict(extra="allow")

    airflowVersion: str
    astroRuntimeVersion: str
    cloudProvider: CloudProvider | None = None
    clusterId: str | None = None
    clusterName: str | None = None
    contactEmails: list[str] | None = None
    createdAt: datetime
    createdBy: BasicSubjectProfile
    dagTarballVersion: str | None = None
    defaultTaskPodCpu: str | None = None
    defaultTaskPodMemory: str | None = None
    description: str | None = None
    desiredDagTarballVersion: str | None = None
    environmentVariables: list[DeploymentEnvironmentVariable] | None = None
    executor: Executor | None = None
    externalIPs: list[str] | None = None
    id: str
    imageRepository: str
    imageTag: str
    imageVersion: str | None = None
    isCicdEnforced: bool
    isDagDeployEnabled: bool
    isDevelopmentMode: bool | None = None
    isHighAvailability: bool | None = None
    name: str
    namespace: str
    oidcIssuerUrl: str | None = None
    organizationId: str
    region: str | None = None
    resourceQuotaCpu: str | None = None
    resourceQuotaMemory: str | None = None
    runtimeVersion: str
    scalingSpec: DeploymentScalingSpec | None = None
    scalingStatus: DeploymentScalingStatus | None = None
    schedulerAu: int | None = None
    schedulerCpu: str
    schedulerMemory: str
    schedulerReplicas: int
    schedulerSize: SchedulerSize | None = None
    status: DeploymentStatus
    statusReason: str | None = None
    taskPodNodePoolId: str | None = None
    type: DeploymentType | None = None
    updatedAt: datetime
    updatedBy: BasicSubjectProfile
    webServerAirflowApiUrl: str
    webServerCpu: str
    webServerIngressHostname: str
    webServerMemory: str
    webServerReplicas: int | None = None
    webServerUrl: str
    workerQueues: list[WorkerQueue] | None = None
    workloadIdentity: str | None = None
    workspaceId: str
    workspaceName: str | None = None


class DeploymentsPaginated(BaseModel):
    deployments: list[Deployment]
    limit: int
    offset: int
    totalCount: int
