"""Password history (identity/password_history.py): the holder may not set one of the last N
passwords (the current one included); an administrator's set is recorded, not checked; 0 is
off; older passwords fall out of the history."""

from __future__ import annotations

import pytest

from tenantry.config import load_settings
from tenantry.db.models import User
from tenantry.identity.password_history import PasswordReused, replace
from tenantry.identity.passwords import Hasher
from tenantry.identity.policy import SecurityPolicy

A, B, C = "first-Passw0rd!", "second-Passw0rd!", "third-Passw0rd!"


@pytest.fixture(scope="module")
def hasher() -> Hasher:
    return Hasher(time_cost=2, memory_kib=19456, parallelism=1)


async def _user(hasher: Hasher, password: str) -> User:
    return User(username="h", username_key="h", password_hash=await hasher.hash(password))


async def test_the_last_passwords_are_refused_and_older_ones_fall_out(hasher: Hasher) -> None:
    user = await _user(hasher, A)
    with pytest.raises(PasswordReused) as refused:
        await replace(hasher, user, A, 2)
    assert [(f.field, f.code) for f in refused.value.fields] == [("password", "reused")]
    await replace(hasher, user, B, 2)
    assert await hasher.verify(user.password_hash, B)
    with pytest.raises(PasswordReused):
        await replace(hasher, user, A, 2)
    assert await hasher.verify(user.password_hash, B), "a refusal changed the password"
    await replace(hasher, user, C, 2)
    assert len(user.previous_password_hashes or []) == 1  # the current one and one before
    await replace(hasher, user, A, 2)  # three changes ago: forgotten with 2
    assert await hasher.verify(user.password_hash, A)


async def test_an_administrator_set_is_not_checked_but_remembered(hasher: Hasher) -> None:
    user = await _user(hasher, A)
    await replace(hasher, user, A, 5, by_holder=False)
    await replace(hasher, user, B, 5, by_holder=False)
    with pytest.raises(PasswordReused):
        await replace(hasher, user, A, 5)


async def test_zero_turns_it_off(hasher: Hasher) -> None:
    user = await _user(hasher, A)
    await replace(hasher, user, A, 0)
    assert await hasher.verify(user.password_hash, A)
    assert user.previous_password_hashes == []


def test_the_setting_reaches_the_policy() -> None:
    assert SecurityPolicy().password_history == 5
    settings = load_settings(database_url="sqlite+aiosqlite://", password_history=3)
    assert SecurityPolicy.from_settings(settings).password_history == 3
    with pytest.raises(ValueError, match="password_history"):
        load_settings(database_url="sqlite+aiosqlite://", password_history=-1)
