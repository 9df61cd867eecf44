"""Passwords: policy (NIST 800-63B / OWASP ASVS 5.0 ch. 6) and argon2id hashing off the loop.

Policy: 8..1024 characters, compared and hashed whole (no truncation), no composition rules,
and none of the 30 000 commonest passwords (zxcvbn's ranked list) nor the username itself.
"""

from __future__ import annotations

import functools
import os
import unicodedata
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import anyio
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from zxcvbn.frequency_lists import FREQUENCY_LISTS

from tenantry.errors import FieldError, Invalid

MIN_LENGTH = 8
MAX_LENGTH = 1024  # far above 128; longer inputs are refused before any hashing
_COMMON = frozenset(FREQUENCY_LISTS["passwords"])


def normalize(password: str) -> str:
    """NFKC, so that the same password typed on another keyboard or OS still matches."""
    return unicodedata.normalize("NFKC", password)


def policy_errors(password: str, username: str | None = None) -> list[FieldError]:
    errors = []
    length = len(normalize(password))
    if length < MIN_LENGTH:
        errors.append(FieldError("password", "too_short", f"at least {MIN_LENGTH} characters"))
    if length > MAX_LENGTH:
        errors.append(FieldError("password", "too_long", f"at most {MAX_LENGTH} characters"))
    lowered = normalize(password).casefold()
    if lowered in _COMMON:
        errors.append(FieldError("password", "too_common", "one of the commonest passwords"))
    if username and lowered in {username.casefold(), username.casefold().split("@")[0]}:
        errors.append(FieldError("password", "matches_username", "must differ from username"))
    return errors


def validate(password: str, username: str | None = None) -> None:
    errors = policy_errors(password, username)
    if errors:
        raise Invalid("password does not meet the policy: " + errors[0].message, errors)


class Hasher:
    """argon2id with the configured cost. Hashing runs in worker threads (argon2 releases the
    GIL), at most `concurrency` at a time per worker process, so logins never stall the event
    loop and a burst of logins takes at most concurrency * memory_cost of RAM per worker."""

    def __init__(
        self, time_cost: int, memory_kib: int, parallelism: int, concurrency: int | None = None
    ) -> None:
        self._ph = PasswordHasher(
            time_cost=time_cost, memory_cost=memory_kib, parallelism=parallelism
        )
        # One core fewer than the machine has: hashing that took every core would starve the
        # event loop, and with it every other request of this worker.
        default = max(1, (os.cpu_count() or 1) - 1)
        self._limiter = anyio.CapacityLimiter(concurrency or default)

    def hash_sync(self, password: str) -> str:
        return self._ph.hash(normalize(password))

    async def hash(self, password: str) -> str:
        return await anyio.to_thread.run_sync(self.hash_sync, password, limiter=self._limiter)

    def _verify_sync(self, encoded: str, password: str) -> bool:
        try:
            return self._ph.verify(encoded, normalize(password))
        except (VerificationError, InvalidHashError):
            return False

    @asynccontextmanager
    async def slot(self) -> AsyncIterator[None]:
        """Hold one hashing slot across several steps. Sign-in takes it *before* it looks the
        user up, so that logins queueing for the hasher hold no database connection."""
        async with self._limiter:
            yield

    async def verify(self, encoded: str | None, password: str, *, in_slot: bool = False) -> bool:
        """Always does the work of one verification, even without a stored hash, so that
        an unknown user and a wrong password take the same time. `in_slot`: the caller
        already holds a slot (see `slot`)."""
        target = encoded or self._dummy()
        limiter = None if in_slot else self._limiter
        ok = await anyio.to_thread.run_sync(self._verify_sync, target, password, limiter=limiter)
        return ok and encoded is not None

    def needs_rehash(self, encoded: str) -> bool:
        try:
            return self._ph.check_needs_rehash(encoded)
        except InvalidHashError:
            return True

    @functools.cache  # noqa: B019  (one dummy per hasher; hashers live as long as the app)
    def _dummy(self) -> str:
        return self._ph.hash("tenantry-dummy-password-for-equal-timing")
