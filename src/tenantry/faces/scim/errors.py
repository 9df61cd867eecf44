"""SCIM's error: an exception that carries the RFC 7644 §3.12 body it is answered with."""

from __future__ import annotations

from typing import Any

from scim2_models import SCIMException

ERROR_SCHEMA = "urn:ietf:params:scim:api:messages:2.0:Error"


class ScimError(Exception):
    """A refusal in SCIM's words: the HTTP status, the `scimType` of RFC 7644 Table 9
    (None for the statuses that have none, such as 404) and a human-readable detail."""

    def __init__(self, status: int, scim_type: str | None, detail: str) -> None:
        super().__init__(detail)
        self.status = status
        self.scim_type = scim_type
        self.detail = detail

    def body(self) -> dict[str, Any]:
        """The error response body (RFC 7644 §3.12): `status` is a string there."""
        body: dict[str, Any] = {
            "schemas": [ERROR_SCHEMA],
            "status": str(self.status),
            "detail": self.detail,
        }
        if self.scim_type is not None:
            body["scimType"] = self.scim_type
        return body

    @classmethod
    def from_library(cls, exc: SCIMException) -> ScimError:
        """The same refusal as one raised by scim2-models (its paths, filters, schemas)."""
        return cls(exc.status, exc.scim_type or None, exc.detail)

    def __repr__(self) -> str:
        return f"ScimError({self.status}, {self.scim_type!r}, {self.detail!r})"
