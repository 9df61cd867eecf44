"""Rule 6: every failed sign-in is audited the same, on every password path.

A wrong password for a real account records one `auth.login.failure` event with target_type
"user" and target_id the account, and counts towards its lockout (login_attempts + 1); an
unknown account records one `auth.login.failure` naming no account. The details carry the
same keys whichever face was used (the native sign-in is the reference).
"""

from __future__ import annotations

from tests.rules.faces import Face, Native, across_faces
from tests.rules.matrix import WRONG_PASSWORD, Refusal, Rig, unique

FAILURE = "auth.login.failure"


async def _reference_keys(rig: Rig, username: str) -> set[str]:
    """The details keys of a native sign-in failure for `username`."""
    mark = await rig.audit_mark()
    await Native(rig).sign_in(username, WRONG_PASSWORD)
    [event] = await rig.events(mark, action=FAILURE)
    return set(event.details)


@across_faces("sign_in")
async def test_a_wrong_password_is_one_failure_of_that_account(face: Face, rig: Rig) -> None:
    account = await rig.account()
    mark = await rig.audit_mark()
    reply = await face.sign_in(account.username, WRONG_PASSWORD)
    face.assert_error(reply, Refusal.of(401), "wrong password")
    events = await rig.events(mark, action=FAILURE)
    assert [(e.target_type, e.target_id) for e in events] == [("user", account.id)], events
    assert (await rig.user(account.id)).login_attempts == 1
    reference = await _reference_keys(rig, (await rig.account()).username)
    assert set(events[0].details) == reference, events[0].details


@across_faces("sign_in")
async def test_an_unknown_account_is_one_failure_naming_no_one(face: Face, rig: Rig) -> None:
    mark = await rig.audit_mark()
    reply = await face.sign_in(f"{unique('nobody')}@example.com", WRONG_PASSWORD)
    face.assert_error(reply, Refusal.of(401), "unknown account")
    events = await rig.events(mark, action=FAILURE)
    assert [e.target_id for e in events] == [None], [(e.target_type, e.target_id) for e in events]
    reference = await _reference_keys(rig, f"{unique('nobody')}@example.com")
    assert set(events[0].details) == reference, events[0].details
