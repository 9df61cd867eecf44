"""Password sign-in, whichever face asks: Tenantry's own password, or a password realm's.

- An account with a Tenantry password signs in with it (identity/sessions.login), and so does
  every account when no password realm is configured.
- A username without a Tenantry password is asked of the password realms (ldap,
  active_directory) in their order. A native account without a password is never taken over by
  a realm: only an unknown username, or an account that came from that very realm, signs in
  through it (account linking is for verified domains, DESIGN.md).
- The first sign-in provisions the user just in time (realm recorded, `idp_managed`, the
  directory's address not counted as verified); every sign-in re-applies the realm's mappings
  in each organization it is bound to, so leaving a directory group takes away what it gave:
  the organization role is the strongest of the default role and the mapped ones, workspace
  roles are the mapped ones, and each team a mapping names has the user exactly when the
  group does. The realm owns the roles of its users in the organizations it is bound to.
- Refusals read as every refused password does (SignInRefused), are counted toward lockout on
  an existing account, audited, and rate limited as Tenantry passwords are. A realm that does
  not answer is skipped in favour of the next; if none could tell, the answer is 503.
"""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from tenantry.audit.log import record
from tenantry.authz.catalogue import ORGANIZATION_ROLES, WORKSPACE_ROLES
from tenantry.db.models import Realm, TeamMember, User
from tenantry.directory import members, realms, teams, users
from tenantry.directory.members import RoleSet
from tenantry.directory.users import UserFields
from tenantry.errors import Invalid, NotFound
from tenantry.identity import lookup, sessions
from tenantry.identity.ldap_client import LdapIdentity, LdapUnreachable, verify
from tenantry.identity.principals import system_principal
from tenantry.identity.security import Security
from tenantry.identity.sessions import LoginOutcome


async def login(
    db: AsyncSession, sec: Security, *, username: str, password: str, ip: str | None
) -> LoginOutcome:
    """A session for the right password, Tenantry's or a realm's; SignInRefused otherwise."""
    found = await realms.password_realms(db)
    account = await lookup.find_by_username(db, username) if found else None
    if not found or (account is not None and not _from_a_realm(account)):
        return await sessions.login(
            db, sec.hasher, sec.policy, sec.limits, username=username, password=password, ip=ip
        )
    sessions.check_lengths(username, password)
    await sessions.throttle(db, sec.limits, ip, username)
    if account is not None and not sessions.may_try(account):
        raise await sessions.refuse_sign_in(db, sec.policy, username, account)
    asked = [r for r in found if account is None or account.realm_id == r.id]
    unreachable: LdapUnreachable | None = None
    for realm in asked:
        cfg = realms.ldap_config(sec.secrets, realm, sec.realm_timeout)
        try:
            identity = await verify(cfg, username, password)
        except LdapUnreachable as exc:  # the next realm may know the user
            unreachable = exc
            continue
        if identity is not None:
            user = await _provisioned(db, realm, username, identity, account)
            await apply_mappings(db, realm, user, identity.groups)
            return await sessions.signed_in(db, sec.policy, user.id, {"realm": realm.id})
    if unreachable is not None and account is None:
        raise unreachable
    raise await sessions.refuse_sign_in(db, sec.policy, username, account)


def _from_a_realm(account: User) -> bool:
    return account.password_hash is None and account.realm in realms.PASSWORD_TYPES


async def _provisioned(
    db: AsyncSession, realm: Realm, username: str, identity: LdapIdentity, account: User | None
) -> User:
    """The realm's user, made at first sign-in, its name and address refreshed each time."""
    fields = UserFields(full_name=identity.full_name, email=identity.email or "")
    if account is None:
        account = await users.add_user(
            db,
            system_principal(),
            username,
            fields,
            email_from_username=False,
            email_verified=False,
        )
        account.realm, account.realm_id, account.idp_managed = realm.type, realm.id, True
        await record(
            db,
            system_principal(),
            "user.provision",
            target_type="user",
            target_id=account.id,
            details={"realm": realm.id, "dn": identity.dn},
        )
        return account
    account.full_name = identity.full_name
    if identity.email and identity.email != account.email:
        account.email, account.email_verified = identity.email, False
    return account


def _strongest(candidates: list[str], order: tuple[str, ...]) -> str:
    return min(candidates, key=order.index)


async def apply_mappings(
    db: AsyncSession, realm: Realm, user: User, groups: tuple[str, ...]
) -> None:
    """Make the user's roles and mapped teams in each bound organization what the realm's
    mappings say for `groups` (compared case-insensitively, as directories compare DNs)."""
    held = {g.lower() for g in groups}
    for binding in realms.view(realm, ()).organizations:
        mapped = [m for m in binding.mappings if m.group.lower() in held]
        org_roles = [binding.default_role] + [
            m.organization_role for m in mapped if m.organization_role
        ]
        ws: dict[str, list[str]] = {}
        for m in mapped:
            if m.workspace_id and m.workspace_role:
                ws.setdefault(m.workspace_id, []).append(m.workspace_role)
        roles = RoleSet(
            _strongest(org_roles, ORGANIZATION_ROLES),
            [(w, _strongest(r, WORKSPACE_ROLES)) for w, r in sorted(ws.items())],
        )
        try:
            await members.replace_user_roles(
                db, system_principal(), binding.organization_id, user.id, roles
            )
        except (NotFound, Invalid):  # an organization or workspace gone since the realm was set
            continue
        await _sync_teams(db, binding, user, {m.team_id for m in mapped if m.team_id})


async def _sync_teams(
    db: AsyncSession, binding: realms.Binding, user: User, wanted: set[str]
) -> None:
    org_id = binding.organization_id
    for team_id in {m.team_id for m in binding.mappings if m.team_id}:
        inside = await db.get(TeamMember, (team_id, user.id)) is not None
        try:
            if team_id in wanted and not inside:
                await teams.add_team_members(db, system_principal(), org_id, team_id, [user.id])
            elif team_id not in wanted and inside:
                await teams.remove_team_member(db, system_principal(), org_id, team_id, user.id)
        except NotFound:  # the team is gone since the realm was set
            continue
