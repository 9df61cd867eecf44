"""identity.names: one key for login names and addresses, and what it refuses."""

from __future__ import annotations

import pytest

from tenantry.errors import Invalid
from tenantry.identity import names


@pytest.mark.parametrize(
    ("left", "right"),
    [
        ("Alice@X.io", "alice@x.io"),
        ("bob@xn--strae-oqa.test", "Bob@Straße.test"),  # IDNA: punycode = its Unicode form
        ("müller@bücher.test", "Müller@xn--bcher-kva.test"),
        ("  Admin ", "admin"),
        ("\uff41dmin", "admin"),  # NFKC at look-up: full-width typing finds the same account
        ("e\u0301mile@x.test", "\u00e9mile@x.test"),  # decomposed and composed é
    ],
)
def test_one_key(left: str, right: str) -> None:
    assert names.username_key(left) == names.username_key(right)


@pytest.mark.parametrize(
    ("left", "right"),
    [
        ("Bob@Straße.test", "bob@strasse.test"),  # no casefold(): ß is not ss
        ("straße", "strasse"),
        ("bob@x.test", "bob@x.test.org"),
        ("\u0430dmin", "admin"),  # Cyrillic a
        ("adm\u0131n", "admin"),  # dotless i
    ],
)
def test_two_keys(left: str, right: str) -> None:
    assert names.username_key(left) != names.username_key(right)


def test_keys_of_addresses() -> None:
    assert names.username_key("Bob@Straße.test") == "bob@xn--strae-oqa.test"
    assert names.email_key("Alice@X.io") == "alice@x.io"
    assert names.email_key(None) is None and names.email_key("") is None


def test_invisible_text_has_no_key_and_unreachable_keys_are_never_produced() -> None:
    assert names.username_key("admin\u200b") == ""
    unreachable = names.unreachable_key("c" + "0" * 24)
    assert names.username_key(unreachable) == ""
    assert unreachable.startswith(names.UNREACHABLE)


@pytest.mark.parametrize(
    "name",
    [
        "\u0430dmin",  # Cyrillic a among Latin
        "adm\u0131n",  # dotless i
        "\u03bf",  # Greek omicron alone: it still looks like o
        "\uff41dmin",  # full-width
        "\ufb01le",  # ligature fi
        "admin\u200b",
        "\u200badmin",
        "ad\u00admin",  # soft hyphen
        "ad\u2060min",  # word joiner
        "ad\u3164min",  # Hangul filler
        "ad\u00a0min",  # no-break space
        "ad\nmin",
        "ad\x00min",
        "",
        "   ",
        "x" * 321,
    ],
)
def test_refused_usernames(name: str) -> None:
    with pytest.raises(Invalid) as refused:
        names.check_username(name)
    assert [f.field for f in refused.value.fields] == ["username"]


@pytest.mark.parametrize(
    "name", ["admin", "Ann Lee", "jørgen", "łukasz", "æble", "Straße", "müller", "太郎", "O'Brien"]
)
def test_allowed_usernames(name: str) -> None:
    assert names.check_username(name) == name


@pytest.mark.parametrize(
    "address",
    [
        "a,b@x.test",
        "a;b@x.test",
        '"x"<y@x.test>',
        "x <y@x.test>",
        '"a b"@x.test',
        "a@b@x.test",
        "a@x",
        "a@localhost",
        "p\u0430ypal@x.test",
        "bob@\u0430pple.test",
        "bob@xn--pple-43d.test",  # punycode of a Cyrillic look-alike
        "bob@x.test\u200b",
        "\uff42ob@x.test",
        "not an address",
    ],
)
def test_refused_addresses(address: str) -> None:
    with pytest.raises(Invalid) as refused:
        names.check_email(address, "inviteeEmail")
    assert [f.field for f in refused.value.fields] == ["inviteeEmail"]
    assert not names.looks_like_email(address)


def test_addresses_keep_their_text_and_are_mailed_normalized() -> None:
    address = names.check_email(" Bob@Straße.TEST ")
    assert address.text == "Bob@Straße.TEST"
    assert address.normalized == "Bob@straße.test"
    assert address.key == "bob@xn--strae-oqa.test"
    assert names.check_email("太郎@example.test").key == "太郎@example.test"
    assert names.check_username("Bob@Straße.test") == "Bob@Straße.test"
    with pytest.raises(Invalid) as refused:
        names.check_username("a,b@x.test")
    assert refused.value.fields[0].field == "username"
