"""Rule 13: SYSTEM_EDITOR manages what every organization holds, not the instance's accounts.

An editor (Unleash's Editor root role, ECE's deployments manager) asking for the instance's
user list is refused (native, unleash: 403 in the face's body) or shown only themselves (ECE,
whose list shows a caller without `system.users.get` only their own user), never another
account; a SYSTEM_VIEWER, who reads every account, is listed the other user: the refusal is
the role's, not the route's.
"""

from __future__ import annotations

from tests.rules.faces import Face, across_faces
from tests.rules.matrix import Refusal, Rig

REFUSED = Refusal.of(403)


@across_faces("list_accounts")
async def test_an_editor_lists_no_other_account(face: Face, rig: Rig) -> None:
    other = await rig.account(email=None)
    editor = await rig.account(system_role="SYSTEM_EDITOR")
    reply, listed = await face.list_accounts(await face.personal_token(editor))
    if reply.ok:
        assert [n.lower() for n in listed] == [editor.username.lower()], (face.name, listed)
    else:
        face.assert_error(reply, REFUSED, "editor lists the users")
    assert other.username.lower() not in [n.lower() for n in listed]
    viewer = await rig.account(system_role="SYSTEM_VIEWER")
    reply, listed = await face.list_accounts(await face.personal_token(viewer))
    assert reply.ok, reply
    assert other.username.lower() in [n.lower() for n in listed], (face.name, listed)
