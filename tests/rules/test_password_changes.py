"""Rule 1: changing a password proves who you are, ends the other sessions, is audited once.

- Your own password: native and Unleash want the current one (`currentPassword`,
  `oldPassword`) and refuse it missing or wrong (400 in the face's body); ECE wants an
  elevated session (`_elevate` with the password): from an API key or a session that is not
  elevated it answers 449 `root.unauthorized.rbac.elevated_permissions_required`. A refused
  change changes nothing: the old password still signs in.
- Every change (your own or an administrator's, any face, the CLI's `user set-password`) ends
  the user's other sessions and is audited as exactly one `user.password.set`, whose details
  are `{"self": true|false}` and nothing else (no secret).
- Your own change may not pick one of the account's last passwords (400 in the face's body);
  an administrator's may.
"""

from __future__ import annotations

import dataclasses

from tests.rules.faces import Face, across_faces
from tests.rules.matrix import NEW_PASSWORD, Account, Refusal, Rig

# What a password change may write to the audit log besides its one event: sign-in and
# elevation bookkeeping of the adapter's own requests, and tokens it mints.
_BOOKKEEPING = ("auth.", "token.")


async def _actions(rig: Rig, since: int, account: Account) -> list[tuple[str, object]]:
    events = await rig.events(since, target_id=account.id)
    return [(e.action, e.details) for e in events if not e.action.startswith(_BOOKKEEPING)]


@across_faces("unproven_own_password_changes")
async def test_an_own_password_change_without_proof_is_refused(face: Face, rig: Rig) -> None:
    account = await rig.account()
    attempts = await face.unproven_own_password_changes(account, NEW_PASSWORD)
    assert attempts, "no unproven way listed"
    for label, reply in attempts.items():
        face.assert_error(reply, face.unproven_password_refusal, label)
    assert await rig.signs_in(account.username, account.password), "the password changed"
    assert not await rig.signs_in(account.username, NEW_PASSWORD)


@across_faces("proven_own_password_change")
async def test_an_own_password_change_ends_other_sessions_and_is_audited_once(
    face: Face, rig: Rig
) -> None:
    account = await rig.account()
    other = await rig.native_session(account)
    await rig.warm(other)
    mark = await rig.audit_mark()
    reply = await face.proven_own_password_change(account, NEW_PASSWORD)
    assert reply.ok, reply
    assert not await rig.authenticates(other), "a session from before still works"
    assert await rig.signs_in(account.username, NEW_PASSWORD)
    assert await _actions(rig, mark, account) == [("user.password.set", {"self": True})]


@across_faces("set_password")
async def test_an_administrator_password_change_ends_sessions_and_is_audited_once(
    face: Face, rig: Rig
) -> None:
    admin = await face.actor()
    target = await rig.account()
    before = await rig.native_session(target)
    await rig.warm(before)
    mark = await rig.audit_mark()
    reply = await face.set_password(admin, target, NEW_PASSWORD)
    assert reply.ok, reply
    assert not await rig.authenticates(before), "the user's session from before still works"
    assert await rig.signs_in(target.username, NEW_PASSWORD)
    assert not await rig.signs_in(target.username, target.password)
    assert await _actions(rig, mark, target) == [("user.password.set", {"self": False})]


@across_faces("proven_own_password_change")
async def test_an_own_change_to_a_previous_password_is_refused(face: Face, rig: Rig) -> None:
    """Rule 1b (password history, identity/password_history.py): the holder may not set one
    of the account's last TENANTRY_PASSWORD_HISTORY passwords (the current one included): a
    400 in the face's body (Unleash: PasswordPreviouslyUsedError), nothing changes. An
    administrator setting it is recorded, not checked (as in Unleash)."""
    account = await rig.account()
    same = await face.proven_own_password_change(account, account.password)
    face.assert_error(same, Refusal.of(400), "the current password again")
    assert (await face.proven_own_password_change(account, NEW_PASSWORD)).ok
    changed = dataclasses.replace(account, password=NEW_PASSWORD)
    back = await face.proven_own_password_change(changed, account.password)
    face.assert_error(back, Refusal.of(400), "the previous password")
    assert await rig.signs_in(account.username, NEW_PASSWORD), "a refusal changed the password"
    assert not await rig.signs_in(account.username, account.password)


@across_faces("set_password")
async def test_an_administrator_may_set_a_previous_password(face: Face, rig: Rig) -> None:
    admin = await face.actor()
    target = await rig.account()
    assert (await face.set_password(admin, target, NEW_PASSWORD)).ok
    reply = await face.set_password(admin, target, NEW_PASSWORD)  # the current one again
    assert reply.ok, reply
    assert await rig.signs_in(target.username, NEW_PASSWORD)
