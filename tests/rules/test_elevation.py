"""Rule 4: with elevation required, every path to a strong grant needs an elevated session.

A strong grant is any SYSTEM role, or a role that lets its holder grant access (its
permissions include roles.update, tokens.create or invites.create: ORGANIZATION_OWNER,
WORKSPACE_OWNER, WORKSPACE_OPERATOR, DEPLOYMENT_ADMIN). Without elevation every such request
is refused in the face's body (403; ECE's 449 `elevated_permissions_required`) and writes
nothing; after the *session* is elevated (native `POST /auth/elevate`, ECE `_elevate`) the
same request succeeds with that session, while a
personal token of the same user (native token, ECE API key, Unleash PAT) is still refused:
elevation belongs to the credential, not to the user.
"""

from __future__ import annotations

import pytest

from tenantry.config import Settings
from tests.rules.conftest import rules_settings
from tests.rules.faces import Face, across_faces
from tests.rules.matrix import Rig, changed


@pytest.fixture
def rig_settings(settings: Settings) -> Settings:
    return rules_settings(settings, require_elevation=True)


@across_faces("strong_grant")
async def test_a_strong_grant_without_elevation_is_refused(face: Face, rig: Rig) -> None:
    granter = await face.actor()
    session = await face.session(granter)
    target = await face.strong_grant_target()
    before = await rig.snapshot()
    refused = await face.strong_grant(session, target)
    face.assert_error(refused, face.elevation_required, "without elevation")
    assert not changed(before, await rig.snapshot())


@across_faces("strong_grant")
async def test_elevation_belongs_to_the_session_not_to_the_user(face: Face, rig: Rig) -> None:
    granter = await face.actor()
    token = await face.personal_token(granter)
    session = await face.session(granter)
    elevated = await face.elevate(session, granter.password)
    target = await face.strong_grant_target()
    before = await rig.snapshot()
    with_token = await face.strong_grant(token, target)
    face.assert_error(
        with_token, face.elevation_required, "with a personal token of an elevated user"
    )
    assert not changed(before, await rig.snapshot())
    granted = await face.strong_grant(elevated, target)
    assert granted.ok, f"{face.name}: the elevated session was refused: {granted}"
