"""Login names and e-mail addresses: the one place that validates and compares them.

Two names are the same account, and two addresses the same mailbox, exactly when their *keys*
are equal. The key never merges two mailboxes:

- e-mail-like text (it has an "@") -> the local part `.lower()` + "@" + the domain in IDNA ASCII
  (`Bob@Straße.test` -> `bob@xn--strae-oqa.test`, which is not `bob@strasse.test`);
- any other name -> its `.lower()`;
- both after NFKC, so a look-alike typed at sign-in finds only what the stored name is.

`casefold()` is not used: it maps `ß` to `ss` and so `straße.test` to another domain.

What is refused (`check_username`, `check_email`), because two different texts that look the
same would name two accounts a person cannot tell apart:
- control, format and invisible characters (Unicode Cc/Cf/Co/Cs/Cn, line and paragraph
  separators, zero-width and other default-ignorable code points, spaces other than U+0020);
- text that NFKC changes (full-width letters, ligatures, superscripts): its NFC form is kept,
  so a composed and a decomposed `é` are the same;
- mixed-script names or parts (`confusable_homoglyphs`' `is_dangerous`: Latin with Cyrillic);
- any non-ASCII character whose confusable prototype is one ASCII letter or digit (dotless i
  U+0131, Cyrillic a U+0430, Greek omicron U+03BF); `ü`, `é`, `ß`, `ø`, `ł` and `æ` (prototype
  "ae") stay allowed.

An address is one mailbox as email-validator reads it: no lists (`a,b@x`, `a;b@x`), no display
forms (`"x" <y@x>`), no quoted local parts, an IDNA-valid domain. Deliverability is not checked
(no DNS at request time), and `.test` domains are accepted (the test suite uses them).
"""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass
from functools import lru_cache

from confusable_homoglyphs import confusables
from email_validator import EmailNotValidError, ValidatedEmail, validate_email

from tenantry.errors import FieldError, Invalid

MAX_USERNAME = 320
MAX_EMAIL = 320
MAX_DOMAIN = 253

# Default-ignorable code points that Unicode does not file under C* (Hangul fillers, the
# combining grapheme joiner, Khmer inherent vowels, variation selectors, braille blank).
_IGNORABLE = frozenset(
    [
        *(0x034F, 0x115F, 0x1160, 0x17B4, 0x17B5, 0x2800, 0x3164, 0xFFA0),
        *range(0x180B, 0x1810),
        *range(0xFE00, 0xFE10),
        *range(0xE0100, 0xE01F0),
    ]
)
_BAD_CATEGORIES = frozenset({"Cc", "Cf", "Co", "Cs", "Cn", "Zl", "Zp"})
_ASCII_ALNUM = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789")
# Starts the `username_key` of an account no login name reaches: username_key() never returns
# text with a control character (see there), so no sign-in, look-up or rename can match it.
UNREACHABLE = "\x01"


def unreachable_key(user_id: str) -> str:
    """A unique key for an account that must hold no login name (see migration 0007 and
    directory.invites: a pending account for an address that another account uses as its
    login name)."""
    return f"{UNREACHABLE}{user_id}"


@dataclass(frozen=True)
class Address:
    """A validated single mailbox."""

    text: str  # as given (NFC, trimmed): what is stored and shown
    normalized: str  # what mail goes to: the local part as given, the domain lowercased
    key: str  # what comparisons use


def _invisible(ch: str) -> bool:
    if ch == " ":
        return False
    category = unicodedata.category(ch)
    return category in _BAD_CATEGORIES or category == "Zs" or ord(ch) in _IGNORABLE


@lru_cache(maxsize=4096)
def _ascii_look_alike(ch: str) -> bool:
    """A non-ASCII character that renders as one ASCII letter or digit."""
    found = confusables.is_confusable(ch, greedy=True, preferred_aliases=[]) or []
    return any(
        len(glyph["c"]) == 1 and glyph["c"] in _ASCII_ALNUM
        for entry in found
        for glyph in entry["homoglyphs"]
    )


def _problem(part: str) -> str | None:
    """Why `part` (NFC text: a name, a local part or a domain label) is refused, or None."""
    if any(_invisible(ch) for ch in part):
        return "invisible or control characters are not allowed"
    if unicodedata.normalize("NFKC", part) != part:
        return "compatibility characters (e.g. full-width letters) are not allowed"
    if part.isascii():
        return None
    if confusables.is_dangerous(part, preferred_aliases=[]):
        return "letters of several scripts that look alike are not allowed"
    if any(not ch.isascii() and _ascii_look_alike(ch) for ch in part):
        return "characters that look like other letters or digits are not allowed"
    return None


def _refuse(field: str, message: str) -> Invalid:
    return Invalid(f"invalid {field}: {message}", [FieldError(field, "invalid", message)])


def _validated(text: str) -> ValidatedEmail:
    return validate_email(
        text,
        check_deliverability=False,
        allow_display_name=False,
        allow_smtputf8=True,
        test_environment=True,
    )


def _address_key(valid: ValidatedEmail) -> str:
    return f"{valid.local_part.lower()}@{valid.ascii_domain}"


def check_email(value: str, field: str = "email") -> Address:
    """One mailbox, or Invalid(field). Returns its normalized text and its key."""
    text = unicodedata.normalize("NFC", value.strip())
    if not text or len(text) > MAX_EMAIL:
        raise _refuse(field, f"an e-mail address of at most {MAX_EMAIL} characters")
    # Before the validator: it would accept some of these (NFKC-mapping full-width letters).
    for part in [*text.split("@")[:-1], *text.rpartition("@")[2].split(".")]:
        if (problem := _problem(part)) is not None:
            raise _refuse(field, problem)
    try:
        valid = _validated(text)
    except EmailNotValidError as exc:
        raise _refuse(field, f"not a single e-mail address: {exc}") from None
    # The domain as the validator decoded it (`xn--pple-43d` is `apple` with a Cyrillic a).
    for label in valid.domain.split("."):
        if (problem := _problem(label)) is not None:
            raise _refuse(field, problem)
    return Address(text, valid.normalized, _address_key(valid))


def check_domain(value: str, field: str = "domain") -> str:
    """An e-mail domain as its addresses' keys hold it (IDNA ASCII, lower case, no trailing
    dot: `Straße.Test.` -> `xn--strae-oqa.test`), or Invalid(field); refused by the same
    rules as an address's domain, so that the domain of every valid address is valid here."""
    text = unicodedata.normalize("NFC", value.strip()).removesuffix(".")
    if not text or len(text) > MAX_DOMAIN:
        raise _refuse(field, f"a domain name of at most {MAX_DOMAIN} characters")
    if "@" in text:
        raise _refuse(field, "a domain name (example.com), not an address")
    for label in text.split("."):
        if (problem := _problem(label)) is not None:
            raise _refuse(field, problem)
    try:
        valid = _validated(f"postmaster@{text}")
    except EmailNotValidError:
        # The validator's message speaks of an address ("after the @-sign"): not this field's.
        raise _refuse(field, "not a domain name of the form example.com") from None
    for label in valid.domain.split("."):
        if (problem := _problem(label)) is not None:
            raise _refuse(field, problem)
    return valid.ascii_domain.lower()


def domain_of(address_key: str | None) -> str | None:
    """The domain of an address's key (email_key), None for none or a key without one."""
    if not address_key or "@" not in address_key:
        return None
    return address_key.rpartition("@")[2] or None


def check_username(value: str, field: str = "username") -> str:
    """The login name to store (NFC, trimmed), or Invalid(field). A name with an "@" must be
    one valid address: it is also the account's e-mail, and the key of an address-like name
    must mean exactly one mailbox."""
    text = unicodedata.normalize("NFC", value.strip())
    if "@" in text:
        return check_email(text, field).text
    if not text or len(text) > MAX_USERNAME:
        raise _refuse(field, f"1 to {MAX_USERNAME} characters")
    if (problem := _problem(text)) is not None:
        raise _refuse(field, problem)
    return text


def username_key(username: str) -> str:
    """The key of a login name as typed (total: never raises, so any sign-in attempt has one).
    `Alice@X.io` and `alice@x.io` are one account; `Bob@Straße.test` and `bob@strasse.test`
    are two. Text with invisible characters has the key "", which no account holds."""
    text = unicodedata.normalize("NFKC", username.strip())
    if any(_invisible(ch) for ch in text):
        return ""
    if "@" in text:
        try:
            return _address_key(_validated(text))
        except EmailNotValidError:
            pass
    return text.lower()


def email_key(address: str | None) -> str | None:
    """The key of a stored address (None for none); the same function as for login names, so
    an address and an address-like username compare equal exactly when they are one mailbox."""
    if not address:
        return None
    return username_key(address) or None


def looks_like_email(value: str) -> bool:
    """Whether `value` is one valid address by the rules above (no message; see check_email)."""
    try:
        check_email(value)
    except Invalid:
        return False
    return True
