"""Realms: the identity sources people sign in from besides Tenantry's own passwords (LDAP,
Active Directory, OpenID Connect, SAML), whichever face or the CLI asks.

- Only system administrators manage them (`system.realms.*`; elevation when the instance
  demands it for create, update and delete); every change is audited (`realm.create`,
  `realm.update`, `realm.delete`) without a secret in its details.
- A realm's secrets (LDAP bind password, OpenID client secret, SAML private key) are sealed
  with TENANTRY_SECRET_KEY (identity/secretbox.py) and never returned: a realm answers which
  secrets it holds, not what they are. An update without a secret keeps the stored one.
- A realm is bound to organizations, each with a default organization role and mappings from a
  directory group (or a token claim / SAML attribute value) to an organization role, a
  workspace role or a team of that organization; every target is checked when it is set.
- Password sign-in asks the password realms (ldap, active_directory) in `position` order.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from tenantry.audit.log import record
from tenantry.authz.catalogue import ORGANIZATION_ROLES, WORKSPACE_ROLES
from tenantry.authz.scopes import SYSTEM_SCOPE
from tenantry.clock import utcnow
from tenantry.db.models import Organization, Realm, Team, Workspace
from tenantry.errors import Conflict, FieldError, Invalid, NotFound
from tenantry.identity import discovery, ldap_client
from tenantry.identity.principals import Principal
from tenantry.identity.secretbox import SecretBox

TYPES = ("ldap", "active_directory", "oidc", "saml")
PASSWORD_TYPES = ("ldap", "active_directory")
# Each type's settings: (name, required). Secrets are apart (SECRETS).
SETTINGS: dict[str, tuple[tuple[str, bool], ...]] = {
    "ldap": (
        ("url", True),
        ("bind_dn", False),
        ("user_base_dn", True),
        ("user_filter", False),
        ("group_base_dn", False),
        ("start_tls", False),
    ),
    "oidc": (("issuer", True), ("client_id", True), ("scopes", False), ("groups_claim", False)),
    "saml": (("idp_metadata_url", False), ("idp_metadata_xml", False), ("groups_attribute", False)),
}
SETTINGS["active_directory"] = SETTINGS["ldap"]
SECRETS: dict[str, tuple[str, ...]] = {
    "ldap": ("bind_password",),
    "active_directory": ("bind_password",),
    "oidc": ("client_secret",),
    "saml": ("sp_private_key",),
}
DEFAULT_USER_FILTER = {
    "ldap": "(uid={username})",
    "active_directory": "(sAMAccountName={username})",
}
ID = re.compile(r"^[a-z0-9][a-z0-9_-]{0,62}$")
RESERVED_IDS = ("native", "scim")
MAX_NAME = 256
MAX_BINDINGS = 100
MAX_MAPPINGS = 500


@dataclass(frozen=True)
class Mapping:
    """Holders of `group` get one of: an organization role, a workspace role, a team."""

    group: str
    organization_role: str | None = None
    workspace_id: str | None = None
    workspace_role: str | None = None
    team_id: str | None = None


@dataclass(frozen=True)
class Binding:
    organization_id: str
    default_role: str = "ORGANIZATION_MEMBER"
    mappings: tuple[Mapping, ...] = ()


@dataclass(frozen=True)
class RealmSpec:
    """A realm as a caller describes it. `secrets`: the type's secrets to store; a secret left
    out keeps the stored one (on update)."""

    id: str
    type: str
    name: str
    settings: dict[str, Any]
    secrets: dict[str, str] = field(default_factory=dict)
    organizations: tuple[Binding, ...] = ()
    position: int = 0


@dataclass(frozen=True)
class RealmView:
    """A realm as every answer shows it: the names of its stored secrets, never their values."""

    realm: Realm
    secrets_set: tuple[str, ...]
    organizations: tuple[Binding, ...]


# --- use cases ---------------------------------------------------------------------------------


async def create_realm(
    db: AsyncSession, box: SecretBox, actor: Principal, spec: RealmSpec
) -> RealmView:
    actor.require("system.realms.create", SYSTEM_SCOPE)
    actor.require_elevation()
    _check(spec)
    if await db.get(Realm, spec.id) is not None:
        raise Conflict(
            "a realm with this id exists", [FieldError("id", "taken", "choose another id")]
        )
    await _check_targets(db, spec.organizations)
    realm = Realm(
        id=spec.id,
        type=spec.type,
        name=spec.name,
        position=spec.position,
        config=_settings(spec),
        organizations=[_binding_json(b) for b in spec.organizations],
        sealed_secrets=box.seal(spec.secrets) if spec.secrets else None,
        created_by=actor.actor_id,
    )
    db.add(realm)
    await db.flush()
    await record(
        db,
        actor,
        "realm.create",
        target_type="realm",
        target_id=realm.id,
        details=_audit_details(spec),
    )
    return view(realm, tuple(sorted(spec.secrets)))


async def list_realms(db: AsyncSession, box: SecretBox, actor: Principal) -> list[RealmView]:
    actor.require("system.realms.list", SYSTEM_SCOPE)
    rows = await db.scalars(select(Realm).order_by(Realm.position, Realm.id))
    return [view(r, secret_names(box, r)) for r in rows]


async def get_realm(db: AsyncSession, box: SecretBox, actor: Principal, realm_id: str) -> RealmView:
    actor.require("system.realms.get", SYSTEM_SCOPE)
    realm = await _found(db, realm_id)
    return view(realm, secret_names(box, realm))


async def update_realm(
    db: AsyncSession, box: SecretBox, actor: Principal, spec: RealmSpec
) -> RealmView:
    """Replace the realm's settings, bindings and name; its type cannot change (delete and add
    instead); secrets left out are kept, an empty string removes one."""
    actor.require("system.realms.update", SYSTEM_SCOPE)
    actor.require_elevation()
    realm = await _found(db, spec.id)
    if spec.type != realm.type:
        raise Invalid(
            "a realm's type cannot change",
            [FieldError("type", "immutable", f"this realm is {realm.type}")],
        )
    _check(spec)
    await _check_targets(db, spec.organizations)
    kept = box.open(realm.sealed_secrets) if realm.sealed_secrets else {}
    merged = {k: v for k, v in (kept | spec.secrets).items() if v}
    realm.name = spec.name
    realm.position = spec.position
    realm.config = _settings(spec)
    realm.organizations = [_binding_json(b) for b in spec.organizations]
    realm.sealed_secrets = box.seal(merged) if merged else None
    realm.updated_at = utcnow()
    await db.flush()
    details = _audit_details(spec) | {"secrets_changed": sorted(spec.secrets)}
    await record(
        db, actor, "realm.update", target_type="realm", target_id=realm.id, details=details
    )
    return view(realm, tuple(sorted(merged)))


async def delete_realm(db: AsyncSession, actor: Principal, realm_id: str) -> None:
    """Remove the realm. Its users keep their accounts (realm recorded), but nobody signs in
    through it any more."""
    actor.require("system.realms.delete", SYSTEM_SCOPE)
    actor.require_elevation()
    realm = await _found(db, realm_id)
    await db.delete(realm)
    await db.flush()
    await record(db, actor, "realm.delete", target_type="realm", target_id=realm_id)


async def password_realms(db: AsyncSession) -> Sequence[Realm]:
    """The realms a password sign-in asks, in order (no permission: sign-in is anonymous).
    Read on every sign-in, known account or not, so that its work tells nothing (rule 11)."""
    rows = await db.scalars(
        select(Realm).where(Realm.type.in_(PASSWORD_TYPES)).order_by(Realm.position, Realm.id)
    )
    return rows.all()


# --- reading -----------------------------------------------------------------------------------


def view(realm: Realm, secrets_set: tuple[str, ...]) -> RealmView:
    return RealmView(realm, secrets_set, tuple(_binding_of(b) for b in realm.organizations))


def secret_names(box: SecretBox, realm: Realm) -> tuple[str, ...]:
    """Which secrets the realm holds; the expected ones if the key cannot open them (a list
    must not fail because one realm's key was rotated away)."""
    if not realm.sealed_secrets:
        return ()
    if not box.configured:
        return SECRETS[realm.type]
    try:
        return tuple(sorted(box.open(realm.sealed_secrets)))
    except Exception:
        return SECRETS[realm.type]


def secrets_of(box: SecretBox, realm: Realm) -> dict[str, str]:
    """The realm's secrets, to connect with (never to answer with)."""
    return box.open(realm.sealed_secrets) if realm.sealed_secrets else {}


async def _found(db: AsyncSession, realm_id: str) -> Realm:
    realm = await db.get(Realm, realm_id) if ID.match(realm_id) else None
    if realm is None:
        raise NotFound("realm not found")
    return realm


# --- checks ------------------------------------------------------------------------------------


def _check(spec: RealmSpec) -> None:
    errors: list[FieldError] = []
    if not ID.match(spec.id):
        errors.append(FieldError("id", "invalid", "lower-case letters, digits, - and _; 1-63"))
    elif spec.id in RESERVED_IDS:
        errors.append(FieldError("id", "reserved", f"{spec.id} is built in"))
    if spec.type not in TYPES:
        errors.append(FieldError("type", "invalid", f"one of {', '.join(TYPES)}"))
        raise Invalid("invalid realm", errors)
    if not spec.name.strip() or len(spec.name) > MAX_NAME or _has_control(spec.name):
        errors.append(FieldError("name", "invalid", f"1 to {MAX_NAME} printable characters"))
    errors += _check_settings(spec)
    unknown = set(spec.secrets) - set(SECRETS[spec.type])
    errors += [FieldError(s, "unknown", f"not a secret of a {spec.type} realm") for s in unknown]
    errors += _check_bindings(spec.organizations)
    if errors:
        raise Invalid("invalid realm", errors)


def _check_settings(spec: RealmSpec) -> list[FieldError]:
    known = dict(SETTINGS[spec.type])
    errors = [
        FieldError(name, "unknown", f"not a setting of a {spec.type} realm")
        for name in spec.settings
        if name not in known
    ]
    for name, required in known.items():
        value = spec.settings.get(name)
        if required and (value is None or value == ""):
            errors.append(FieldError(name, "required", "required"))
        elif value is not None and not isinstance(value, str | bool | list):
            errors.append(FieldError(name, "invalid", "must be a string"))
    if spec.type in PASSWORD_TYPES:
        errors += _check_ldap(spec.settings)
    issuer = str(spec.settings.get("issuer", ""))
    # http only on the loopback (a provider on the same host, e.g. in tests)
    if spec.type == "oidc" and not issuer.startswith(("https://", "http://127.0.0.1")):
        errors.append(FieldError("issuer", "invalid", "an https:// URL"))
    if spec.type == "saml" and not (
        spec.settings.get("idp_metadata_url") or spec.settings.get("idp_metadata_xml")
    ):
        errors.append(FieldError("idp_metadata_url", "required", "a metadata URL or XML"))
    return errors


def _check_ldap(settings: dict[str, Any]) -> list[FieldError]:
    errors = []
    url = str(settings.get("url", ""))
    if url and not url.startswith(("ldap://", "ldaps://")):
        errors.append(FieldError("url", "invalid", "an ldap:// or ldaps:// URL"))
    user_filter = settings.get("user_filter")
    if user_filter is not None and (
        "{username}" not in str(user_filter) or not str(user_filter).startswith("(")
    ):
        errors.append(FieldError("user_filter", "invalid", "an LDAP filter with {username}"))
    if settings.get("start_tls") not in (None, True, False):
        errors.append(FieldError("start_tls", "invalid", "true or false"))
    return errors


def _check_bindings(bindings: Sequence[Binding]) -> list[FieldError]:
    errors: list[FieldError] = []
    if len(bindings) > MAX_BINDINGS:
        return [FieldError("organizations", "too_many", f"at most {MAX_BINDINGS}")]
    seen = set()
    for i, b in enumerate(bindings):
        where = f"organizations[{i}]"
        if b.organization_id in seen:
            errors.append(FieldError(f"{where}.organizationId", "duplicate", "bound twice"))
        seen.add(b.organization_id)
        if b.default_role not in ORGANIZATION_ROLES:
            errors.append(FieldError(f"{where}.defaultRole", "invalid", "an organization role"))
        if len(b.mappings) > MAX_MAPPINGS:
            errors.append(FieldError(f"{where}.mappings", "too_many", f"at most {MAX_MAPPINGS}"))
        for j, m in enumerate(b.mappings):
            errors += _check_mapping(f"{where}.mappings[{j}]", m)
    return errors


def _check_mapping(where: str, m: Mapping) -> list[FieldError]:
    targets = [m.organization_role is not None, m.workspace_id is not None, m.team_id is not None]
    if not m.group or len(m.group) > 1024 or _has_control(m.group):
        return [FieldError(f"{where}.group", "invalid", "a group, claim or attribute value")]
    if sum(targets) != 1:
        return [FieldError(where, "invalid", "one of organizationRole, workspaceId, teamId")]
    if m.organization_role is not None and m.organization_role not in ORGANIZATION_ROLES:
        return [FieldError(f"{where}.organizationRole", "invalid", "an organization role")]
    if m.workspace_id is not None and m.workspace_role not in WORKSPACE_ROLES:
        return [FieldError(f"{where}.workspaceRole", "invalid", "a workspace role")]
    return []


async def _check_targets(db: AsyncSession, bindings: Sequence[Binding]) -> None:
    """Every organization, workspace and team a binding names exists, inside its organization."""
    errors: list[FieldError] = []
    for i, b in enumerate(bindings):
        where = f"organizations[{i}]"
        if await db.get(Organization, b.organization_id) is None:
            errors.append(
                FieldError(f"{where}.organizationId", "not_found", "no such organization")
            )
            continue
        for j, m in enumerate(b.mappings):
            if m.workspace_id is not None:
                ws = await db.get(Workspace, m.workspace_id)
                if ws is None or ws.organization_id != b.organization_id:
                    errors.append(
                        FieldError(
                            f"{where}.mappings[{j}].workspaceId",
                            "not_found",
                            "no such workspace in this organization",
                        )
                    )
            if m.team_id is not None:
                team = await db.get(Team, m.team_id)
                if team is None or team.organization_id != b.organization_id:
                    errors.append(
                        FieldError(
                            f"{where}.mappings[{j}].teamId",
                            "not_found",
                            "no such team in this organization",
                        )
                    )
    if errors:
        raise Invalid("invalid realm", errors)


def _has_control(text: str) -> bool:
    return any(ord(c) < 32 or ord(c) == 127 for c in text)


# --- storage shapes ----------------------------------------------------------------------------


def _settings(spec: RealmSpec) -> dict[str, Any]:
    settings = {k: v for k, v in spec.settings.items() if v is not None}
    if spec.type in PASSWORD_TYPES:
        settings.setdefault("user_filter", DEFAULT_USER_FILTER[spec.type])
    return settings


def _binding_json(b: Binding) -> dict[str, Any]:
    return {
        "organization_id": b.organization_id,
        "default_role": b.default_role,
        "mappings": [{k: v for k, v in vars(m).items() if v is not None} for m in b.mappings],
    }


def _binding_of(raw: dict[str, Any]) -> Binding:
    return Binding(
        organization_id=raw["organization_id"],
        default_role=raw["default_role"],
        mappings=tuple(Mapping(**m) for m in raw.get("mappings", ())),
    )


def _audit_details(spec: RealmSpec) -> dict[str, Any]:
    """What changed, for auditors: the settings and bindings (no secret is among them)."""
    return {
        "type": spec.type,
        "settings": _settings(spec),
        "organizations": [b.organization_id for b in spec.organizations],
    }


# --- connecting --------------------------------------------------------------------------------


def ldap_config(box: SecretBox, realm: Realm, timeout: float) -> ldap_client.LdapConfig:
    """How to reach an ldap / active_directory realm, its bind password unsealed."""
    c = realm.config
    return ldap_client.LdapConfig(
        url=str(c["url"]),
        user_base_dn=str(c["user_base_dn"]),
        user_filter=str(c.get("user_filter") or DEFAULT_USER_FILTER[realm.type]),
        bind_dn=str(c.get("bind_dn") or ""),
        bind_password=secrets_of(box, realm).get("bind_password", ""),
        group_base_dn=str(c.get("group_base_dn") or ""),
        start_tls=bool(c.get("start_tls")),
        timeout=timeout,
    )


async def test_realm(
    db: AsyncSession, box: SecretBox, actor: Principal, realm_id: str, seconds: float
) -> list[ldap_client.ProbeStep]:
    """Try the realm's connection with its stored settings: each step with what it found or
    what failed (`tenantry realm test`). Uses the secrets, so it needs update rights."""
    actor.require("system.realms.update", SYSTEM_SCOPE)
    realm = await _found(db, realm_id)
    if realm.type in PASSWORD_TYPES:
        return await ldap_client.probe(ldap_config(box, realm, seconds))
    if realm.type == "oidc":
        return await discovery.probe_oidc(str(realm.config["issuer"]), seconds)
    return await discovery.probe_saml(realm.config, seconds)
