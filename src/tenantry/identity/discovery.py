"""Connection tests of the web-based realms: an OpenID provider's discovery document, a SAML
identity provider's metadata. Bounded by the realm's timeout (`seconds`); a failure says what
failed."""

from __future__ import annotations

import re
from typing import Any

import httpx

from tenantry.identity.ldap_client import ProbeStep

_ENTITY = re.compile(rb"<(?:\w+:)?EntityDescriptor[\s>]")


async def _fetch(url: str, seconds: float) -> tuple[ProbeStep, bytes | None]:
    try:
        async with httpx.AsyncClient(timeout=seconds, follow_redirects=False) as client:
            r = await client.get(url)
    except httpx.HTTPError as exc:
        return ProbeStep("fetch", False, f"{url}: {type(exc).__name__}"), None
    if r.status_code != 200:
        return ProbeStep("fetch", False, f"{url}: HTTP {r.status_code}"), None
    return ProbeStep("fetch", True, f"{url}: {len(r.content)} bytes"), r.content


async def probe_oidc(issuer: str, seconds: float) -> list[ProbeStep]:
    url = issuer.rstrip("/") + "/.well-known/openid-configuration"
    step, body = await _fetch(url, seconds)
    if body is None:
        return [step]
    try:
        doc = httpx.Response(200, content=body).json()
    except ValueError:
        return [step, ProbeStep("discovery", False, "the document is not JSON")]
    if not isinstance(doc, dict) or doc.get("issuer") != issuer:
        return [step, ProbeStep("discovery", False, "the document names another issuer")]
    missing = [k for k in ("authorization_endpoint", "token_endpoint", "jwks_uri") if k not in doc]
    if missing:
        return [step, ProbeStep("discovery", False, f"missing {', '.join(missing)}")]
    return [step, ProbeStep("discovery", True, "issuer, endpoints and keys are named")]


async def probe_saml(config: dict[str, Any], seconds: float) -> list[ProbeStep]:
    xml = config.get("idp_metadata_xml")
    if xml:
        step = ProbeStep("metadata", True, "metadata given inline")
        body: bytes | None = str(xml).encode()
    else:
        step, body = await _fetch(str(config.get("idp_metadata_url")), seconds)
    if body is None:
        return [step]
    if not _ENTITY.search(body[:4096]):
        return [step, ProbeStep("entity", False, "no EntityDescriptor in the metadata")]
    return [step, ProbeStep("entity", True, "an EntityDescriptor")]
