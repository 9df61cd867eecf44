"""The rule matrix (issue 14): every security rule, once, through every face.

A rule lives once in the domain and every face merely translates it; these tests prove it.
Each `test_<rule>.py` states one rule and runs it through every face (astro, ece, unleash,
native) and the CLI, on SQLite and on PostgreSQL, over the real wire: HTTP against the app,
the CLI through typer's runner. A case is named `[<face>-<variant>-<db>]`.

How it fits together:
- `faces.py` has one adapter class per face. `Face` (at the top) is the contract: the
  operations the rules need, each naming its rule. An adapter performs each operation the way
  that face's clients would and returns a `Reply`, whose error body the rule checks as the
  face's own (`Face.assert_error`).
- A face without an operation lists it in its `gaps` table as `NotApplicable(reason, probe)`.
  Its case still runs, as `[<face>-n/a-<db>]`: it checks the probe (a route that must answer
  404/405, or a CLI command that must not exist), so a face that gains the operation without
  joining the rule fails. There are no silent skips.
- `matrix.py` is the plumbing: Reply, Account, Credential, Refusal, NotApplicable and the
  `Rig` (one app, one database, one mail outbox, with helpers to read what was written).

Joining the matrix with a new face (e.g. SCIM): write one `Face` subclass in faces.py,
implement what the face offers, list the rest in `gaps` with the reason, and add the class to
`FACES`. `test_matrix.py` fails until every operation is one or the other; then the cases
`[scim-...]` of each rule say what the new face must satisfy.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest

from tenantry.app import create_app
from tenantry.config import Settings, load_settings
from tenantry.db.engine import Database
from tests.factories import World
from tests.rules.faces import Face
from tests.rules.matrix import FakeMailer, Rig


def rules_settings(settings: Settings, **overrides: object) -> Settings:
    """The test settings with sign-in limits out of the way (rules sign in a lot)."""
    base: dict[str, object] = {
        "database_url": settings.database_url,
        "environment": "test",
        "max_body_bytes": 64 * 1024,
        "login_rate_per_account": 10_000,
        "login_rate_per_ip": 10_000,
        "invite_accept_rate_per_ip": 10_000,
        "lockout_threshold": 100,
    }
    return load_settings(**(base | overrides))


@pytest.fixture
def rig_settings(settings: Settings) -> Settings:
    """Overridden by a rule module that needs other settings (e.g. elevation required)."""
    return rules_settings(settings)


@pytest.fixture
async def rig(
    rig_settings: Settings, database: Database, world: World, monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[Rig]:
    mailer = FakeMailer()
    app = create_app(rig_settings, database, mailer)
    monkeypatch.setenv("TENANTRY_DATABASE_URL", rig_settings.database_url)  # for the CLI
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://tenantry.test") as c:
        yield Rig(c, world, database, rig_settings, mailer)


@pytest.fixture
def face(request: pytest.FixtureRequest, rig: Rig) -> Face:
    """The face of this case (parametrized by faces.across_faces)."""
    cls, variant = request.param
    adapter: Face = cls(rig, variant)
    return adapter
