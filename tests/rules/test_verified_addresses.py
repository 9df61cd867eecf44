"""Rule 3: invites bind only to verified addresses.

A user who sets their own e-mail does not get it at once: the answer keeps the old address,
and the new one is pending until the link mailed to it is confirmed. Meanwhile an invite of
another organization for that address is not theirs: it is not among the `invites` of their
astro `GET /v1/users/self`, and they cannot accept it (whether the invite came before or
after their change).
"""

from __future__ import annotations

import re

import pytest

from tests.faces.routes import assert_face_error
from tests.factories import bearer
from tests.rules.faces import Face, across_faces
from tests.rules.matrix import NATIVE, Credential, Refusal, Rig

OLD, NEW = "mallory@x.test", "victim@x.test"


async def _invite(rig: Rig, org_id: str, owner: Credential, address: str) -> str:
    """An astro invite of `address`; the secret of the link mailed to it."""
    before = len(rig.mailer.sent)
    r = await rig.client.post(
        f"/v1/organizations/{org_id}/invites",
        json={"inviteeEmail": address, "role": "ORGANIZATION_MEMBER"},
        headers=bearer(owner.secret),
    )
    assert r.status_code == 200, r.text
    [mail] = [m for m in rig.mailer.sent[before:] if m.to == address]
    found = re.search(r"#(tni_[A-Za-z0-9_-]+)", mail.text)
    assert found is not None, mail.text
    return found.group(1)


@across_faces("set_own_email")
@pytest.mark.parametrize("order", ["invite-after-change", "invite-before-change"])
async def test_an_unconfirmed_address_binds_no_invite(face: Face, rig: Rig, order: str) -> None:
    mallory = await rig.account("mallory", email=OLD)
    org = await rig.world.org("Victim's employer")
    owner = await rig.account()
    await rig.world.roles(org, await rig.user(owner.id), "ORGANIZATION_OWNER")
    owner_session = await rig.native_session(owner)
    secret = ""
    if order == "invite-before-change":
        secret = await _invite(rig, org.id, owner_session, NEW)

    mails = len(rig.mailer.sent)
    reply = await face.set_own_email(mallory, NEW)
    if reply.ok:
        assert face.answered_email(reply) == OLD, reply
        confirmations = [m.to for m in rig.mailer.sent[mails:]]
        assert confirmations == [NEW], "no confirmation link went to the new address"
    else:  # a face may refuse self-service e-mail changes altogether
        face.assert_error(reply, Refusal.of(400, 403), "set own e-mail")
    assert (await rig.user(mallory.id)).email == OLD
    if order == "invite-after-change":
        secret = await _invite(rig, org.id, owner_session, NEW)

    session = await rig.native_session(mallory)
    me = await rig.client.get("/v1/users/self", headers=bearer(session.secret))
    assert me.status_code == 200, me.text
    assert [i["organizationId"] for i in me.json().get("invites", [])] == []
    accept = await rig.client.post(
        f"{NATIVE}/invites/accept", json={"secret": secret}, headers=bearer(session.secret)
    )
    assert accept.status_code in (403, 404), accept.text
    assert_face_error("native", accept)
    assert not await rig.is_member(org.id, mallory.id)
