"""Rule 8: no existence oracle.

For a caller in organization A, a real id of organization B's organization, workspace,
deployment or member gets exactly the answer a made-up id gets (status and body, request ids
and the ids themselves aside): through native `check` (whose grantedBy is the explanation)
and `who-can`, and astro's GETs. And `who-can` at an organization, asked by its owner, does
not list the instance's SYSTEM_ADMIN holders.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

from tests.rules.faces import Face, across_faces
from tests.rules.matrix import Reply, Rig

_REQUEST_IDS = frozenset({"requestId", "id"})  # astro/native request ids; Unleash's error id


def _comparable(reply: Reply, ids: Iterable[str]) -> tuple[int, str]:
    """The status and body with request ids dropped and every named id replaced."""
    body: Any = reply.body
    if isinstance(body, dict):
        body = {k: v for k, v in body.items() if k not in _REQUEST_IDS}
    text = json.dumps(body, sort_keys=True) if body is not None else reply.text
    for value in ids:
        text = text.replace(value, "<id>")
    return reply.status, text


@across_faces("read_foreign")
async def test_a_foreign_id_answers_like_a_made_up_one(face: Face, rig: Rig) -> None:
    tenants = await rig.two_tenants()
    credential = await face.session(tenants.owner_a)
    real = await face.read_foreign(credential, tenants, made_up=False)
    made_up = await face.read_foreign(credential, tenants, made_up=True)
    ids = [*tenants.real.values(), *tenants.made_up.values()]
    assert _comparable(real, ids) == _comparable(made_up, ids), (
        f"B's real ids answer {real}; made-up ones {made_up}"
    )


@across_faces("who_can")
async def test_who_can_at_an_organization_hides_system_administrators(face: Face, rig: Rig) -> None:
    tenants = await rig.two_tenants()
    admin = await rig.account(system_role="SYSTEM_ADMIN")
    reply, holders = await face.who_can(await face.session(tenants.owner_a), tenants.org_a)
    assert reply.ok, reply
    assert tenants.owner_a.id in holders, holders
    assert admin.id not in holders, "who-can lists a SYSTEM_ADMIN to an organization owner"
