"""Rule 10: a sign-in does not tell, by its work, whether the account exists.

Structural, not timed: on each password sign-in path, a wrong password for a known account
runs the same number of SQL statements as a sign-in for an unknown account (counted with
SQLAlchemy's before_cursor_execute on the app's engine). Each path is warmed up first, so
that first-use work is counted in neither.
"""

from __future__ import annotations

from tests.rules.faces import Face, across_faces
from tests.rules.matrix import WRONG_PASSWORD, Rig, unique


@across_faces("sign_in")
async def test_a_known_and_an_unknown_account_cost_the_same_statements(
    face: Face, rig: Rig
) -> None:
    account = await rig.account()
    await face.sign_in(account.username, WRONG_PASSWORD)
    await face.sign_in(f"{unique('nobody')}@example.com", WRONG_PASSWORD)
    with rig.statements() as known:
        refused = await face.sign_in(account.username, WRONG_PASSWORD)
    with rig.statements() as unknown:
        also = await face.sign_in(f"{unique('nobody')}@example.com", WRONG_PASSWORD)
    assert refused.status == also.status == 401, (refused, also)
    assert len(known) == len(unknown), "\n".join(
        ["known account:", *known, "unknown account:", *unknown]
    )
