"""Rule 2: one way to compare names and addresses, on every face that makes users.

- Look-alikes of an existing name (a Cyrillic a, a dotless i, full-width letters, a
  trailing zero-width space) are refused, 400 in the face's body, and nothing is written.
- `bob@stra\u00dfe.test` and `bob@strasse.test` are two users (no casefold merge); `Alice@X.test`
  and `alice@x.test` are one (the second create is the face's conflict).
- An invite address must be one plain address: lists and display forms are refused (400).
"""

from __future__ import annotations

import pytest

from tests.rules.faces import Face, across_faces
from tests.rules.matrix import Refusal, Rig, changed, unique

# name -> the existing account it imitates
LOOK_ALIKE_USERNAMES = {
    "cyrillic-a": ("\u0430dmin@x.test", "admin@x.test"),
    "dotless-i": ("adm\u0131n@x.test", "admin@x.test"),
    "full-width": ("\uff41\uff44\uff4d\uff49\uff4e", "admin"),
    "zero-width-space": ("admin\u200b", "admin"),
}
LOOK_ALIKE_EMAILS = {
    "cyrillic-a": "\u0430dmin@x.test",
    "dotless-i": "adm\u0131n@x.test",
    "full-width": "\uff41\uff44\uff4d\uff49\uff4e@x.test",
    "zero-width-space": "admin\u200b@x.test",
}
BAD_INVITE_ADDRESSES = {
    "comma-list": "a,b@x.test",
    "semicolon-list": "a;b@x.test",
    "display-form": '"x" <y@x.test>',
}


@across_faces("create_user")
@pytest.mark.parametrize("kind", LOOK_ALIKE_USERNAMES)
async def test_a_look_alike_username_is_refused(face: Face, rig: Rig, kind: str) -> None:
    name, imitated = LOOK_ALIKE_USERNAMES[kind]
    await rig.account(imitated)
    admin = await face.actor()
    before = await rig.snapshot()
    reply = await face.create_user(admin, name)
    face.assert_error(reply, Refusal.of(400), f"username {name!r}")
    assert not changed(before, await rig.snapshot())


@across_faces("create_user")
@pytest.mark.parametrize("kind", LOOK_ALIKE_EMAILS)
async def test_a_look_alike_email_is_refused(face: Face, rig: Rig, kind: str) -> None:
    await rig.account("admin@x.test")
    admin = await face.actor()
    before = await rig.snapshot()
    reply = await face.create_user(admin, unique(), LOOK_ALIKE_EMAILS[kind])
    face.assert_error(reply, Refusal.of(400), f"email {LOOK_ALIKE_EMAILS[kind]!r}")
    assert not changed(before, await rig.snapshot())


@across_faces("create_user")
async def test_sharp_s_and_ss_are_two_users(face: Face, rig: Rig) -> None:
    """The domain made `bob@straße.test`; the face makes `bob@strasse.test` beside it."""
    sharp = await rig.account("bob@stra\u00dfe.test")
    reply = await face.create_user(await face.actor(), "bob@strasse.test")
    assert reply.ok, reply
    made = await rig.user_named("bob@strasse.test")
    assert made is not None and made.id != sharp.id
    assert (await rig.user(sharp.id)).username == "bob@stra\u00dfe.test"


@across_faces("create_user")
async def test_case_alone_does_not_make_another_user(face: Face, rig: Rig) -> None:
    admin = await face.actor()
    first = await face.create_user(admin, "Alice@X.test")
    assert first.ok, first
    count = await rig.user_count()
    second = await face.create_user(admin, "alice@x.test")
    face.assert_error(second, face.conflict, "alice@x.test after Alice@X.test")
    assert await rig.user_count() == count


@across_faces("invite")
@pytest.mark.parametrize("kind", BAD_INVITE_ADDRESSES)
async def test_an_invite_goes_to_one_plain_address(face: Face, rig: Rig, kind: str) -> None:
    owner = await face.actor()
    before = await rig.snapshot()
    reply = await face.invite(owner, BAD_INVITE_ADDRESSES[kind])
    face.assert_error(reply, Refusal.of(400), kind)
    assert not changed(before, await rig.snapshot())
    assert rig.mailer.sent == []
