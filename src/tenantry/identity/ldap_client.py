"""Talking to an LDAP or Active Directory realm (ldap3; blocking, so every call runs in a
thread): the connection test behind `tenantry realm test`, and the password check of a sign-in
through a realm: bind as the service account, find the one entry the user filter names (the
username escaped, RFC 4515), bind as that entry with the password, read its groups.

Every network step has the realm's timeout. Errors never carry the password or the bind
password: ldap3's own messages are replaced by what failed."""

from __future__ import annotations

import asyncio
import math
import ssl
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field

import ldap3
from ldap3.core.exceptions import LDAPException, LDAPInvalidCredentialsResult, LDAPSocketOpenError
from ldap3.utils.conv import escape_filter_chars

from tenantry.errors import Unavailable

ATTRIBUTES = ("mail", "cn", "displayName", "uid", "sAMAccountName", "memberOf")


class LdapUnreachable(Unavailable):
    """The directory did not answer, refused the service account, or failed a search."""


@dataclass(frozen=True)
class LdapConfig:
    url: str
    user_base_dn: str
    user_filter: str
    bind_dn: str = ""
    bind_password: str = field(default="", repr=False)
    group_base_dn: str = ""
    start_tls: bool = False
    timeout: float = 5.0


@dataclass(frozen=True)
class LdapIdentity:
    dn: str
    email: str | None
    full_name: str
    groups: tuple[str, ...]


@dataclass(frozen=True)
class ProbeStep:
    step: str
    ok: bool
    message: str


def _whole(seconds: float) -> int:
    """ldap3 packs the receive timeout into SO_RCVTIMEO as whole seconds."""
    return max(1, math.ceil(seconds))


def _server(cfg: LdapConfig) -> ldap3.Server:
    tls = ldap3.Tls(validate=ssl.CERT_REQUIRED) if cfg.url.startswith("ldaps://") else None
    return ldap3.Server(cfg.url, connect_timeout=cfg.timeout, tls=tls, get_info=ldap3.NONE)


@contextmanager
def _service(cfg: LdapConfig) -> Iterator[ldap3.Connection]:
    """A connection bound as the service account (anonymous when there is none)."""
    conn = ldap3.Connection(
        _server(cfg),
        user=cfg.bind_dn or None,
        password=cfg.bind_password or None,
        receive_timeout=_whole(cfg.timeout),
        raise_exceptions=True,
        read_only=True,
    )
    try:
        conn.open()
        if cfg.start_tls:
            conn.start_tls()
        conn.bind()
        yield conn
    except LDAPSocketOpenError:
        raise LdapUnreachable("the LDAP server does not answer") from None
    except LDAPInvalidCredentialsResult:
        raise LdapUnreachable("the LDAP server refused the service account (bindDn)") from None
    except LDAPException as exc:
        raise LdapUnreachable(f"LDAP error: {type(exc).__name__}") from None
    finally:
        _close(conn)


def _close(conn: ldap3.Connection) -> None:
    """Unbind, and close the socket ldap3 keeps after a failed connect (it would leak)."""
    with suppress(LDAPException):
        conn.unbind()
    sock = getattr(conn, "socket", None)
    if sock is not None:
        sock.close()


def _find(
    conn: ldap3.Connection, cfg: LdapConfig, username: str
) -> tuple[str, dict[str, list[str]]] | None:
    query = cfg.user_filter.replace("{username}", escape_filter_chars(username))
    conn.search(cfg.user_base_dn, query, attributes=list(ATTRIBUTES), size_limit=2)
    entries = [e for e in conn.response or [] if e.get("type") == "searchResEntry"]
    if len(entries) != 1:  # nobody, or an ambiguous filter: no sign-in
        return None
    entry = entries[0]
    raw = entry.get("attributes", {})
    values = {k: [str(v) for v in (raw[k] if isinstance(raw[k], list) else [raw[k]])] for k in raw}
    return str(entry["dn"]), values


def _groups(
    conn: ldap3.Connection, cfg: LdapConfig, dn: str, attrs: dict[str, list[str]]
) -> tuple[str, ...]:
    """memberOf where the directory keeps it (AD, OpenLDAP's memberof overlay), else the
    groups under groupBaseDn that list the entry as member or uniqueMember."""
    found = set(attrs.get("memberOf", []))
    if not found and cfg.group_base_dn:
        who = escape_filter_chars(dn)
        conn.search(cfg.group_base_dn, f"(|(member={who})(uniqueMember={who}))", attributes=[])
        found = {str(e["dn"]) for e in conn.response or [] if e.get("type") == "searchResEntry"}
    return tuple(sorted(found))


def _first(attrs: dict[str, list[str]], *names: str) -> str | None:
    for name in names:
        if attrs.get(name):
            return attrs[name][0]
    return None


def _verify(cfg: LdapConfig, username: str, password: str) -> LdapIdentity | None:
    if not password:  # an empty password is an anonymous bind, which "succeeds" (RFC 4513 §5.1.2)
        return None
    with _service(cfg) as conn:
        found = _find(conn, cfg, username)
        if found is None:
            return None
        dn, attrs = found
        user = ldap3.Connection(
            _server(cfg),
            user=dn,
            password=password,
            receive_timeout=_whole(cfg.timeout),
            read_only=True,
        )
        try:
            user.open()
            if cfg.start_tls:
                user.start_tls()
            if not user.bind():
                return None
        except LDAPSocketOpenError:
            raise LdapUnreachable("the LDAP server does not answer") from None
        except LDAPException as exc:
            raise LdapUnreachable(f"LDAP error: {type(exc).__name__}") from None
        finally:
            _close(user)
        return LdapIdentity(
            dn=dn,
            email=_first(attrs, "mail"),
            full_name=_first(attrs, "displayName", "cn") or "",
            groups=_groups(conn, cfg, dn, attrs),
        )


async def verify(cfg: LdapConfig, username: str, password: str) -> LdapIdentity | None:
    """The user's entry when the directory accepts the password; None when it does not (or
    names nobody, or more than one entry); LdapUnreachable when it cannot tell."""
    return await asyncio.to_thread(_verify, cfg, username, password)


def _probe(cfg: LdapConfig) -> list[ProbeStep]:
    steps: list[ProbeStep] = []
    try:
        with _service(cfg) as conn:
            who = cfg.bind_dn or "anonymous"
            steps.append(ProbeStep("bind", True, f"bound as {who}"))
            for label, base in (("users", cfg.user_base_dn), ("groups", cfg.group_base_dn)):
                if not base:
                    continue
                try:
                    conn.search(base, "(objectClass=*)", search_scope=ldap3.BASE, attributes=[])
                    steps.append(ProbeStep(label, True, f"{base} exists"))
                except LDAPException as exc:
                    steps.append(ProbeStep(label, False, f"{base}: {type(exc).__name__}"))
    except LdapUnreachable as exc:
        steps.append(ProbeStep("bind", False, exc.message))
    return steps


async def probe(cfg: LdapConfig) -> list[ProbeStep]:
    """Connect, bind as the service account, and look at the user and group bases: each
    step with what it found or what failed."""
    return await asyncio.to_thread(_probe, cfg)
