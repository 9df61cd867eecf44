"""Passwords: policy (NIST 800-63B / OWASP ASVS 5.0 ch. 6) and argon2id hashing off the loop.

Policy: 8..1024 characters, compared and hashed whole (no truncation), no composition rules,
and none of the 30 000 commonest passwords (zxcvbn's ranked list) nor the username itself.

The list is zxcvbn's own, extracted into common_passwords.txt.gz (tests/identity checks it
against the zxcvbn release pinned for development): importing zxcvbn loads every list it
ranks, English words and names among them, 13 MB in each worker for the one list used here.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import gzip
import importlib.resources
import itertools
import logging
import os
import socket
import threading
import unicodedata
import zlib
from collections.abc import AsyncIterator, Callable
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, TypeVar

import anyio
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from tenantry.config import HashPriority, PinLoop
from tenantry.db.priority import stepped_aside
from tenantry.errors import FieldError, Invalid

log = logging.getLogger("tenantry.hashing")
MIN_LENGTH = 8
MAX_LENGTH = 1024  # far above 128; longer inputs are refused before any hashing
COMMON_PASSWORDS = "common_passwords.txt.gz"


def _common() -> frozenset[str]:
    data = importlib.resources.files(__package__).joinpath(COMMON_PASSWORDS).read_bytes()
    return frozenset(gzip.decompress(data).decode().split("\n"))


_COMMON = _common()
T = TypeVar("T")


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


HASH_NICENESS = 10  # for `hash_priority="nice"` (Linux: per thread)


class _Placement:
    """Where and how eagerly hashing threads run, set by each thread on itself at start.

    "idle" (the default): Linux SCHED_IDLE, and each thread pinned to one CPU. An idle-class
    thread gives its CPU up the moment request handling wants it; a nice-10 thread is only
    preempted at the end of its slice (EEVDF's run-to-parity), which is milliseconds added to
    whichever request waits. Pinning keeps a busy hashing thread from wandering onto the CPU
    the event loop was just woken on (measured: GET /v1/users/self p99 beside one CPU-bound
    thread, 1.6-2 ms alone: nice 10 unpinned 5.0, SCHED_IDLE unpinned 5.0-6.4, SCHED_IDLE
    pinned 1.7). Each worker's hashing starts at its home CPU (`_home_cpu`): from its place
    among its server's siblings, counted from an offset derived from the host name, the first
    CPU that no other worker has claimed in the claims directory, so that workers, and
    servers sharing the directory, hash on different CPUs.
    The cost: on a CPU saturated by other work, sign-ins wait until it has a moment free.
    "nice": nice 10, not pinned. "normal": the scheduler's defaults.

    `pin_loop` (with "idle"): the event loop's thread joins its worker's first hashing thread
    on the home CPU. A woken loop then finds only idle-class work on its CPU and runs at once;
    unpinned, it is usually woken onto the CPU of whoever woke it (the client, PostgreSQL)
    and waits there, while the hashing CPU does not count as free: the kernel neither places
    the loop there nor pulls it over (docs/performance.md). "on" pins; "auto" pins only when
    the worker holds its home CPU's claim and its cgroup has no CPU quota, i.e. when it has
    reason to believe that no other server's loop was put there; "off" never pins."""

    def __init__(
        self, priority: HashPriority, pin_loop: PinLoop = "off", claims_dir: str = ""
    ) -> None:
        self.priority = priority
        self.pin_loop: PinLoop = pin_loop if priority == "idle" else "off"
        self._claims = Path(claims_dir) if claims_dir else None
        self._cpus = sorted(_allowed_cpus())
        self._started = itertools.count()
        self._home: tuple[int, bool] | None = None  # (index into _cpus, claimed)
        self._claim_fd: int | None = None
        self._lock = threading.Lock()

    def __call__(self) -> None:
        with contextlib.suppress(OSError, AttributeError):  # not Linux: leave the defaults
            if self.priority == "idle":
                os.sched_setscheduler(0, os.SCHED_IDLE, os.sched_param(0))
                if self._cpus:
                    n = self._home_cpu()[0] + next(self._started)
                    os.sched_setaffinity(0, {self._cpus[n % len(self._cpus)]})
            elif self.priority == "nice":
                os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), HASH_NICENESS)

    def place_loop(self) -> None:
        """Called on the event loop's thread before its first hash: pin it to its worker's
        home CPU if `pin_loop` says so. Threads it starts later inherit it."""
        if self.pin_loop == "off" or not self._cpus:
            return
        home, claimed = self._home_cpu()
        cpu = self._cpus[home]
        if self.pin_loop == "auto" and not claimed:
            log.info("event loop not pinned: CPU %d is claimed by another worker", cpu)
        elif self.pin_loop == "auto" and _cpu_quota():
            log.info("event loop not pinned: this process's cgroup has a CPU quota")
        else:
            with contextlib.suppress(OSError, AttributeError):
                os.sched_setaffinity(0, {cpu})
                log.info("event loop pinned to CPU %d beside its hashing thread", cpu)

    def release(self) -> None:
        with self._lock:
            if self._claim_fd is not None:
                os.close(self._claim_fd)
                self._claim_fd = None

    def _home_cpu(self) -> tuple[int, bool]:
        # At the first hash, not at start-up: by then every worker of the server exists, so
        # each finds its own place among them.
        with self._lock:
            if self._home is None:
                self._home = self._claim(_host_offset(len(self._cpus)) + _claim_turn())
            return self._home

    def _claim(self, turn: int) -> tuple[int, bool]:
        """The first CPU from `turn` on whose claim this process can take (held until it
        exits or `release`); without one, the CPU at `turn`, unclaimed."""
        count = len(self._cpus) or 1
        if self._claims is not None:
            for step in range(len(self._cpus)):
                index = (turn + step) % count
                fd = _lock_file(self._claims / f"tenantry-cpu{self._cpus[index]}.lock")
                if fd is not None:
                    self._claim_fd = fd
                    return index, True
        return turn % count, False


def _lock_file(path: Path) -> int | None:
    """A descriptor holding an exclusive flock on `path` (created if need be), or None when
    another process holds it or the file cannot be opened. The lock ends with the process."""
    try:
        import fcntl
    except ImportError:  # not Unix
        return None
    try:
        # Read-only and not through a link: a file planted there can only refuse the claim.
        fd = os.open(path, os.O_RDONLY | os.O_CREAT | os.O_NOFOLLOW, 0o644)
    except OSError:
        return None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        os.close(fd)
        return None
    return fd


def _cpu_quota(
    cgroup_root: Path = Path("/sys/fs/cgroup"), membership: Path = Path("/proc/self/cgroup")
) -> bool:
    """Whether this process's cgroup, or one above it, caps its CPU time (cgroup v2
    cpu.max, v1 cpu.cfs_quota_us): then the CPUs it may run on are shared with others (a
    container with a CPU limit), and no CPU is its own to pin the event loop to."""
    try:
        lines = membership.read_text().splitlines()
    except OSError:
        return False
    for line in lines:
        _, controllers, path = line.split(":", 2)
        if controllers == "":
            base, name = cgroup_root, "cpu.max"
        elif "cpu" in controllers.split(","):
            base, name = cgroup_root / controllers, "cpu.cfs_quota_us"
        else:
            continue
        folder = base / path.lstrip("/")
        for level in (folder, *folder.parents):
            if not level.is_relative_to(base):
                break
            if _caps(level / name):
                return True
    return False


def _caps(limit_file: Path) -> bool:
    try:
        first = limit_file.read_text().split()[0]
    except (OSError, IndexError):
        return False
    return first != "max" and not first.startswith("-")


def _host_offset(cpus: int) -> int:
    """Where this host's workers start counting CPUs: derived from the host name, so that
    containers that share a machine's CPUs but cannot see each other's claims (each has its
    own /dev/shm and its own name) start on different CPUs rather than all on the first.
    Workers of one host share it, and their claims keep them apart."""
    return zlib.crc32(socket.gethostname().encode()) % cpus if cpus else 0


def _claim_turn() -> int:
    """This process's place among its parent's children (0 for the first worker of a server, 1
    for the second, ...), so that each worker's hashing threads start on a different CPU. Read
    from /proc (Linux); elsewhere the process id stands in."""
    parent = Path(f"/proc/{os.getppid()}/task")
    try:
        siblings = sorted(
            int(pid) for task in parent.iterdir() for pid in (task / "children").read_text().split()
        )
        return siblings.index(os.getpid())
    except (OSError, ValueError):
        return os.getpid()


def _allowed_cpus() -> set[int]:
    try:
        return os.sched_getaffinity(0)
    except (OSError, AttributeError):
        return set()


class Hasher:
    """argon2id with the configured cost. Hashing runs in worker threads of its own, at the
    lowest CPU priority (see `_Placement`; argon2 releases the GIL), at most `concurrency` at a
    time per worker process, so logins never stall the event loop and a burst of logins takes
    at most concurrency * memory_cost of RAM per worker."""

    def __init__(
        self,
        time_cost: int,
        memory_kib: int,
        parallelism: int,
        concurrency: int | None = None,
        priority: HashPriority = "idle",
        *,
        pin_loop: PinLoop = "off",
        claims_dir: str = "",
    ) -> None:
        self._ph = PasswordHasher(
            time_cost=time_cost, memory_cost=memory_kib, parallelism=parallelism
        )
        # One core fewer than the machine has: hashing that took every core would starve the
        # event loop, and with it every other request of this worker.
        default = max(1, (os.cpu_count() or 1) - 1)
        self._limiter = anyio.CapacityLimiter(concurrency or default)
        self._placement = _Placement(priority, pin_loop, claims_dir)
        self._loop_placed = False
        self._threads = ThreadPoolExecutor(
            max_workers=concurrency or default,
            thread_name_prefix="argon2",
            initializer=self._placement,
        )

    def hash_sync(self, password: str) -> str:
        return self._ph.hash(normalize(password))

    async def hash(self, password: str) -> str:
        with stepped_aside():  # a hash is no database round trip (db/priority.py)
            async with self._limiter:
                return await self._off_loop(self.hash_sync, password)

    def _verify_sync(self, encoded: str, password: str) -> bool:
        try:
            return self._ph.verify(encoded, normalize(password))
        except (VerificationError, InvalidHashError):
            return False

    @asynccontextmanager
    async def slot(self) -> AsyncIterator[None]:
        """Hold one hashing slot across several steps. Sign-in takes it *before* it looks the
        user up, so that logins queueing for the hasher hold no database connection."""
        with stepped_aside():
            await self._limiter.acquire()
        try:
            yield
        finally:
            self._limiter.release()

    async def verify(self, encoded: str | None, password: str, *, in_slot: bool = False) -> bool:
        """Always does the work of one verification, even without a stored hash, so that
        an unknown user and a wrong password take the same time. `in_slot`: the caller
        already holds a slot (see `slot`)."""
        target = encoded or self._dummy()
        with stepped_aside():
            async with contextlib.nullcontext() if in_slot else self._limiter:
                ok = await self._off_loop(self._verify_sync, target, password)
        return ok and encoded is not None

    def close(self) -> None:
        self._threads.shutdown(wait=False)
        self._placement.release()

    async def _off_loop(self, work: Callable[..., T], *args: Any) -> T:
        if not self._loop_placed:  # at the first hash, when every worker of the server exists
            self._loop_placed = True
            self._placement.place_loop()
        return await asyncio.get_running_loop().run_in_executor(self._threads, work, *args)

    def needs_rehash(self, encoded: str) -> bool:
        try:
            return self._ph.check_needs_rehash(encoded)
        except InvalidHashError:
            return True

    @functools.cache  # noqa: B019  (one dummy per hasher; hashers live as long as the app)
    def _dummy(self) -> str:
        return self._ph.hash("tenantry-dummy-password-for-equal-timing")
