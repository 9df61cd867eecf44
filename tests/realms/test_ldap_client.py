"""The LDAP client against a real slapd: the password check (escaping, ambiguity, empty
passwords), groups through memberOf and through groupBaseDn, and the connection test."""

from __future__ import annotations

import pytest

from tenantry.identity import ldap_client
from tenantry.identity.ldap_client import LdapConfig, LdapUnreachable
from tests import ldap_server as ls


def config(slapd: ls.Slapd, **changes: object) -> LdapConfig:
    values: dict[str, object] = {
        "url": slapd.url,
        "user_base_dn": ls.PEOPLE,
        "user_filter": "(uid={username})",
        "bind_dn": ls.ADMIN_DN,
        "bind_password": ls.ADMIN_PASSWORD,
        "group_base_dn": ls.GROUPS,
        "timeout": 3.0,
    }
    return LdapConfig(**(values | changes))  # type: ignore[arg-type]


async def test_the_right_password_gives_the_entry_and_its_groups(slapd: ls.Slapd) -> None:
    password, mail, cn, _ = ls.USERS["alice"]
    found = await ldap_client.verify(config(slapd), "alice", password)
    assert found is not None
    assert found.dn == ls.person_dn("alice") and found.email == mail and found.full_name == cn
    assert found.groups == (ls.group_dn("admins"), ls.group_dn("devs"))
    assert await ldap_client.verify(config(slapd), "alice", "wrong") is None
    assert await ldap_client.verify(config(slapd), "nobody", password) is None


async def test_an_empty_password_is_never_an_anonymous_bind(slapd: ls.Slapd) -> None:
    assert await ldap_client.verify(config(slapd), "alice", "") is None


@pytest.mark.parametrize("username", ["*", "a*", "alice)(uid=*", "*)(|(uid=*"])
async def test_the_username_is_escaped_in_the_filter(slapd: ls.Slapd, username: str) -> None:
    """A filter metacharacter matches itself only: no wildcard, no injected clause."""
    for password, *_ in ls.USERS.values():
        assert await ldap_client.verify(config(slapd), username, password) is None


async def test_a_username_with_a_star_signs_in_as_itself(slapd: ls.Slapd) -> None:
    found = await ldap_client.verify(config(slapd), "star*", ls.USERS["star*"][0])
    assert found is not None and found.dn == ls.person_dn("star*")


async def test_an_ambiguous_filter_signs_nobody_in(slapd: ls.Slapd) -> None:
    loose = config(slapd, user_filter="(|(uid={username})(objectClass=inetOrgPerson))")
    assert await ldap_client.verify(loose, "alice", ls.USERS["alice"][0]) is None


async def test_groups_from_the_group_base_without_member_of(slapd: ls.Slapd) -> None:
    """Directories without memberOf: the groups under groupBaseDn naming the entry."""
    ldif = (
        f"dn: uid=dave,{ls.PEOPLE}\nobjectClass: inetOrgPerson\nuid: dave\ncn: Dave\nsn: D\n"
        "userPassword: dave-Pa55word!\n\n"
        f"dn: cn=uniq,{ls.GROUPS}\nobjectClass: groupOfUniqueNames\ncn: uniq\n"
        f"uniqueMember: uid=dave,{ls.PEOPLE}\n"
    )
    slapd.add(ldif)
    found = await ldap_client.verify(config(slapd), "dave", "dave-Pa55word!")
    assert found is not None and found.groups == (f"cn=uniq,{ls.GROUPS}",)


async def test_unreachable_and_refused_service_accounts_say_so(slapd: ls.Slapd) -> None:
    closed = config(slapd, url="ldap://127.0.0.1:9", timeout=1.0)
    with pytest.raises(LdapUnreachable, match="does not answer"):
        await ldap_client.verify(closed, "alice", ls.USERS["alice"][0])
    wrong = config(slapd, bind_password="not-it")
    with pytest.raises(LdapUnreachable, match="service account") as caught:
        await ldap_client.verify(wrong, "alice", ls.USERS["alice"][0])
    assert "not-it" not in str(caught.value) and ls.USERS["alice"][0] not in str(caught.value)


async def test_the_probe_names_each_step(slapd: ls.Slapd) -> None:
    ok = await ldap_client.probe(config(slapd))
    assert [(s.step, s.ok) for s in ok] == [("bind", True), ("users", True), ("groups", True)]
    missing = await ldap_client.probe(config(slapd, group_base_dn=f"ou=nowhere,{ls.SUFFIX}"))
    assert [(s.step, s.ok) for s in missing][-1] == ("groups", False)
    refused = await ldap_client.probe(config(slapd, bind_password="nope"))
    assert [(s.step, s.ok) for s in refused] == [("bind", False)]
    assert "nope" not in refused[0].message
