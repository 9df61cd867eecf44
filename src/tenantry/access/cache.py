"""Per-process cache of who a token is and what the caller's own view looks like.

Every entry is tagged with the directory's generation stamp (db/generation.py) read *before*
the entry was loaded, and is used only while the stamp is unchanged: any committed change to
users, roles, memberships, teams or tokens — in any worker — makes every older entry unusable.
Entries also carry the moment they stop being true by themselves (a token's expiry, an
elevation ending, an invite expiring), so time alone never serves a stale answer.

Only safe (read) requests use it; a writing request always authenticates inside its own
transaction.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from tenantry.access.principals import Principal
from tenantry.db.generation import Generation

MAX_ENTRIES = 50_000


@dataclass(slots=True, frozen=True)
class _Entry:
    stamp: Any
    value: Any
    valid_until: datetime | None


class AuthCache:
    def __init__(self, generation: Generation, max_entries: int = MAX_ENTRIES) -> None:
        self.generation = generation
        self.max_entries = max_entries
        self._entries: dict[Any, _Entry] = {}
        self._stamp: Any = None

    def stamp(self) -> Any:
        """The stamp to tag an entry with: read it before loading what the entry holds."""
        return self.generation.stamp()

    def get(self, key: Any, now: datetime) -> Any:
        stamp = self.generation.stamp()
        if stamp is None:
            return None  # changes may go unseen: cache nothing
        if stamp != self._stamp:
            # Everything loaded under an older stamp is unusable: drop it all at once.
            self._entries.clear()
            self._stamp = stamp
            return None
        entry = self._entries.get(key)
        if entry is None or entry.stamp != stamp:
            return None
        if entry.valid_until is not None and entry.valid_until <= now:
            del self._entries[key]
            return None
        return entry.value

    def put(self, key: Any, value: Any, stamp: Any, valid_until: datetime | None = None) -> None:
        if stamp is None or stamp != self.generation.stamp():
            return  # changed while loading: the value may already be stale
        if len(self._entries) >= self.max_entries:
            self._entries.clear()
        self._stamp = stamp
        self._entries[key] = _Entry(stamp, value, valid_until)

    def principal(self, digest: str, now: datetime) -> Principal | None:
        found: Principal | None = self.get(("principal", digest), now)
        return found

    def remember_principal(self, digest: str, principal: Principal, stamp: Any) -> None:
        token = principal.token
        self.put(("principal", digest), principal, stamp, token.expires_at if token else None)
