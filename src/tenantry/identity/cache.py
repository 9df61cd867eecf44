"""Per-process cache of who a token is and what the caller's own view looks like.

Every entry names the scopes it was derived from (db/generation.py: its user, the teams they
are in, the custom roles they hold, the instance's flags; an API token's own bindings) and is
used only while none of them changed, in any worker or host; a change the writer could not
scope (deleting an organization) ends every entry. A change is seen from the writer's commit
on: an entry is kept only if its load began after every change the load could have missed
(the generation's stamp and epoch are read before the load and checked before keeping it).
Entries also carry the moment they stop being true by themselves (a token's expiry, an
elevation ending, an invite expiring), so time alone never serves a stale answer.

Only safe (read) requests use it; a writing request always authenticates inside its own
transaction. When full, the least recently used entry makes room: a worker serving more
callers than `max_entries` keeps its busiest ones warm instead of losing them all at once.
"""

from __future__ import annotations

import struct
from collections import OrderedDict
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from tenantry.db.generation import Generation, slot
from tenantry.identity.principals import Principal

MAX_ENTRIES = 200_000  # TENANTRY_CACHE_ENTRIES


@dataclass(slots=True, frozen=True)
class Mark:
    """What the generation said before a load: an entry is kept only if neither moved."""

    stamp: Any
    epoch: Any


@dataclass(slots=True, frozen=True)
class _Entry:
    value: Any
    valid_until: datetime | None
    slots: bytes  # the scope slots (db/generation.slot) whose changes end it, packed
    stamps: bytes  # their stamps when it was kept, packed


# Slots and stamps are kept packed, 2 and 8 bytes each: as tuples of Python ints they cost
# ~40 bytes an item, ~500 bytes a cached caller (a user's, their teams', the flags' slots;
# own and shared stamps of each), a third of an entry (bench/mix.py --mix-memory).
def _pack_slots(slots: tuple[int, ...]) -> bytes:
    return struct.pack(f"<{len(slots)}H", *slots)


def _unpack_slots(packed: bytes) -> tuple[int, ...]:
    return struct.unpack(f"<{len(packed) // 2}H", packed)


def _pack_stamps(stamps: tuple[Any, ...]) -> bytes:
    """Exactly as distinct as the tuples: unsigned 64-bit stamps (the shared file's are random
    values), and where the shared file gave none (None), which ones, after them."""
    packed = struct.pack(f"<{len(stamps)}Q", *[0 if s is None else s for s in stamps])
    if None in stamps:
        packed += b"N" + bytes([s is None for s in stamps])
    return packed


class AuthCache:
    def __init__(
        self, generation: Generation, max_entries: int = MAX_ENTRIES, *, enabled: bool = True
    ) -> None:
        self.generation = generation
        self.max_entries = max_entries
        self.enabled = enabled  # TENANTRY_CACHE=off: every look-up misses, nothing is kept
        self._entries: OrderedDict[Any, _Entry] = OrderedDict()
        self._stamp: Any = None
        # Look-ups by kind of entry ("principal", or "answer": a hot path's whole answer).
        self.hits = {"principal": 0, "answer": 0}
        self.misses = {"principal": 0, "answer": 0}
        self.dropped = 0  # entries dropped because what they derive from changed

    def stats(self) -> dict[str, Any]:
        """Counters since start, for benchmarks and operators."""
        return {
            "hits": dict(self.hits),
            "misses": dict(self.misses),
            "dropped": self.dropped,
            "entries": len(self._entries),
        }

    def mark(self) -> Mark:
        """Read it before loading what an entry will hold."""
        return Mark(self.generation.stamp(), self.generation.epoch())

    def get(self, key: Any, now: datetime) -> Any:
        found = self._get(key, now)
        kind = "principal" if isinstance(key, tuple) and key[0] == "principal" else "answer"
        (self.misses if found is None else self.hits)[kind] += 1
        return found

    def _get(self, key: Any, now: datetime) -> Any:
        stamp = self.generation.stamp()
        if stamp is None:
            return None  # changes may go unseen: cache nothing
        if stamp != self._stamp:
            # Everything loaded under an older stamp is unusable: drop it all at once.
            self.dropped += len(self._entries)
            self._entries.clear()
            self._stamp = stamp
            return None
        entry = self._entries.get(key)
        if entry is None:
            return None
        if (entry.valid_until is not None and entry.valid_until <= now) or (
            entry.slots
            and _pack_stamps(self.generation.slot_stamps(_unpack_slots(entry.slots)))
            != entry.stamps
        ):
            self.dropped += 1
            del self._entries[key]
            return None
        self._entries.move_to_end(key)
        return entry.value

    def put(
        self,
        key: Any,
        value: Any,
        mark: Mark,
        valid_until: datetime | None = None,
        scopes: Iterable[str] = (),
    ) -> None:
        """Keep `value`, loaded since `mark`, until its `scopes` or anything beyond them
        change. Kept only if nothing at all changed meanwhile (the mark's epoch): then the
        scopes' stamps now are the ones the load saw."""
        if not self.enabled or mark.stamp is None or mark != self.mark():
            return  # off, or changed while loading: the value may already be stale
        if mark.stamp != self._stamp:
            # All entries share one stamp (self._stamp): older ones go before a newer joins.
            self._entries.clear()
            self._stamp = mark.stamp
        elif key not in self._entries and len(self._entries) >= self.max_entries:
            self._entries.popitem(last=False)
        slots = tuple(sorted({slot(scope) for scope in scopes}))
        stamps = _pack_stamps(self.generation.slot_stamps(slots))
        self._entries[key] = _Entry(value, valid_until, _pack_slots(slots), stamps)
        self._entries.move_to_end(key)

    def principal(self, digest: str, now: datetime) -> Principal | None:
        found: Principal | None = self.get(("principal", digest), now)
        return found

    def remember_principal(self, digest: str, principal: Principal, mark: Mark) -> None:
        token = principal.token
        if token is not None:
            key = ("principal", digest)
            self.put(key, principal, mark, token.expires_at, principal.scopes)
