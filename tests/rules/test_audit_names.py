"""Rule 7: one change, one action name, with before and after, whichever face made it.

- Giving a user a SYSTEM role (native, ECE `security.roles`, Unleash `rootRole`, the CLI's
  `bootstrap`) records exactly one `user.system_roles.set`, details
  `{"before": [...], "after": [...]}` (SYSTEM role names); no `user.system_role.grant`.
- Changing a user's full name (native PATCH, ECE `full_name`, Unleash `name`) records exactly
  one `user.update`, details `{"changed": {"full_name": [old, new]}}`.
"""

from __future__ import annotations

from typing import Any

from tests.rules.faces import Face, across_faces
from tests.rules.matrix import Rig


def _sorted_lists(details: dict[str, Any]) -> dict[str, Any]:
    return {k: sorted(v) if isinstance(v, list) else v for k, v in details.items()}


@across_faces("give_system_admin")
async def test_a_system_role_change_is_one_event_with_before_and_after(
    face: Face, rig: Rig
) -> None:
    admin = await face.actor()
    target = await face.system_role_target()
    mark = await rig.audit_mark()
    reply = await face.give_system_admin(admin, target)
    assert reply.ok, reply
    user = await rig.user_named(target.username)
    assert user is not None
    assert await rig.system_roles(user.id) == ["SYSTEM_ADMIN"]
    events = await rig.events(mark, target_id=user.id)
    role_events = [e for e in events if e.action.startswith("user.system_role")]
    assert [e.action for e in role_events] == ["user.system_roles.set"], role_events
    expected = {"before": sorted(target.before), "after": ["SYSTEM_ADMIN"]}
    assert _sorted_lists(role_events[0].details) == expected


@across_faces("update_full_name")
async def test_a_full_name_change_is_one_update_saying_what_changed(face: Face, rig: Rig) -> None:
    admin = await face.actor()
    target = await rig.account(full_name="Old Name")
    mark = await rig.audit_mark()
    reply = await face.update_full_name(admin, target, "New Name")
    assert reply.ok, reply
    assert (await rig.user(target.id)).full_name == "New Name"
    events = await rig.events(mark, target_id=target.id)
    updates = [e.details for e in events if e.action == "user.update"]
    assert updates == [{"changed": {"full_name": ["Old Name", "New Name"]}}], updates
