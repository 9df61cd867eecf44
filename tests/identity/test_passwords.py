"""Password policy and hashing."""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from tenantry.errors import Invalid
from tenantry.identity import passwords
from tenantry.identity.passwords import Hasher


def test_the_common_list_is_zxcvbns() -> None:
    """common_passwords.txt.gz holds exactly the ranked list of the zxcvbn release pinned
    for development (regenerate: "\\n".join(FREQUENCY_LISTS["passwords"]), gzip)."""
    from zxcvbn.frequency_lists import FREQUENCY_LISTS

    assert frozenset(FREQUENCY_LISTS["passwords"]) == passwords._COMMON
    assert len(passwords._COMMON) == 30_000


def test_a_worker_does_not_import_zxcvbn() -> None:
    found = subprocess.run(
        [sys.executable, "-c", "import sys, tenantry.app; print('zxcvbn' in sys.modules)"],
        capture_output=True,
        text=True,
        check=True,
    )
    assert found.stdout.strip() == "False"


@pytest.mark.parametrize(
    ("password", "code"),
    [
        ("short", "too_short"),
        ("password", "too_common"),
        ("qwerty123", "too_common"),
        ("P@ssw0rd", "too_common"),
        ("x" * 1025, "too_long"),
        ("alice", "too_short"),
    ],
)
def test_policy_rejects(password: str, code: str) -> None:
    with pytest.raises(Invalid) as info:
        passwords.validate(password)
    assert code in {f.code for f in info.value.fields}


def test_policy_rejects_the_username() -> None:
    with pytest.raises(Invalid) as info:
        passwords.validate("alice.liddell", "Alice.Liddell@example.com")
    assert {f.code for f in info.value.fields} == {"matches_username"}


@pytest.mark.parametrize(
    "password", ["correct horse battery staple", "8charsOK", "ünïcödé-pässwörd", "x" * 1024]
)
def test_policy_accepts_without_composition_rules(password: str) -> None:
    passwords.validate(password, "bob@example.com")


async def test_hash_is_argon2id_with_owasp_minimum_and_no_truncation() -> None:
    hasher = Hasher(time_cost=2, memory_kib=19456, parallelism=1)
    long_pw = "a" * 200 + "b"
    encoded = await hasher.hash(long_pw)
    assert encoded.startswith("$argon2id$") and "m=19456,t=2,p=1" in encoded
    assert await hasher.verify(encoded, long_pw)
    assert not await hasher.verify(encoded, "a" * 200 + "c")  # the 201st character counts
    assert not await hasher.verify(None, long_pw)
    assert not hasher.needs_rehash(encoded)
    stronger = Hasher(time_cost=3, memory_kib=19456, parallelism=1)
    assert stronger.needs_rehash(encoded)


async def test_hashing_does_not_block_the_event_loop() -> None:
    hasher = Hasher(time_cost=2, memory_kib=19456, parallelism=1)
    ticks = 0

    async def ticker() -> None:
        nonlocal ticks
        while True:
            await asyncio.sleep(0.001)
            ticks += 1

    task = asyncio.create_task(ticker())
    start = time.perf_counter()
    await asyncio.gather(*(hasher.hash(f"pw-{i}-long-enough") for i in range(8)))
    elapsed = time.perf_counter() - start
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
    # Had hashing blocked the loop, the ticker would have run only between hashes.
    assert ticks >= 0.3 * elapsed / 0.001


def _placement_in_a_hashing_thread(hasher: Hasher) -> tuple[int, int, int]:
    """(scheduling policy, number of CPUs allowed, niceness) as seen by a hashing thread."""

    def look() -> tuple[int, int, int]:
        tid = threading.get_native_id()
        return (
            os.sched_getscheduler(0),
            len(os.sched_getaffinity(0)),
            os.getpriority(os.PRIO_PROCESS, tid),
        )

    try:
        return hasher._threads.submit(look).result(timeout=10)
    finally:
        hasher.close()


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="per-thread scheduling: Linux")
def test_hashing_threads_yield_to_request_handling() -> None:
    """Default: SCHED_IDLE, pinned to one CPU (see passwords._Placement for the measurement);
    "nice": nice 10 on every CPU; the event loop's own thread is left as it was."""
    before = (os.sched_getscheduler(0), os.sched_getaffinity(0))
    policy, cpus, _ = _placement_in_a_hashing_thread(Hasher(2, 19456, 1))
    assert policy == os.SCHED_IDLE and cpus == 1
    policy, cpus, niceness = _placement_in_a_hashing_thread(Hasher(2, 19456, 1, priority="nice"))
    assert policy == os.SCHED_OTHER and cpus == len(before[1])
    assert niceness == passwords.HASH_NICENESS
    policy, _, niceness = _placement_in_a_hashing_thread(Hasher(2, 19456, 1, priority="normal"))
    assert policy == os.SCHED_OTHER and niceness == 0
    assert (os.sched_getscheduler(0), os.sched_getaffinity(0)) == before


def _turn_of_a_new_child() -> int:
    code = "from tenantry.identity import passwords; print(passwords._claim_turn())"
    done = subprocess.run(  # noqa: S603 - our own interpreter and code
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    return int(done.stdout)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
def test_worker_processes_of_one_server_start_hashing_on_different_cpus() -> None:
    """A worker's turn is its place among its parent's children: a child started beside
    a running sibling gets a later turn than a child started alone."""
    alone = _turn_of_a_new_child()
    with subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"]) as sibling:
        try:
            beside = _turn_of_a_new_child()
        finally:
            sibling.kill()
    assert 0 <= alone < beside < 64  # places, not process ids


def _loop_and_hasher_cpus(
    hasher: Hasher, *, close: bool = True
) -> tuple[set[int], set[int], set[int]]:
    """Run one hash from an event loop on a thread of its own (pinning must not reach the test
    runner's thread): the loop thread's CPUs before and after, and the hashing thread's."""
    seen: dict[str, set[int]] = {}

    async def sign_in() -> None:
        seen["before"] = os.sched_getaffinity(0)
        await hasher.verify(None, "whatever-password")
        seen["after"] = os.sched_getaffinity(0)
        seen["hasher"] = await asyncio.get_running_loop().run_in_executor(
            hasher._threads, os.sched_getaffinity, 0
        )

    runner = threading.Thread(target=asyncio.run, args=(sign_in(),))
    runner.start()
    runner.join(timeout=30)
    if close:
        hasher.close()
    return seen["before"], seen["after"], seen["hasher"]


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="per-thread affinity: Linux")
def test_pinned_event_loop_shares_the_cpu_of_its_first_hashing_thread() -> None:
    """TENANTRY_PIN_EVENT_LOOP=on: at its first hash the loop's thread moves to the CPU of the
    worker's first hashing thread; with "off" the loop keeps every CPU."""
    before, after, hasher_cpus = _loop_and_hasher_cpus(Hasher(2, 19456, 1, 1, pin_loop="on"))
    assert len(hasher_cpus) == 1 and after == hasher_cpus
    assert len(before) > 1 or before == after
    before, after, _ = _loop_and_hasher_cpus(Hasher(2, 19456, 1, 1, pin_loop="off"))
    assert after == before
    before, after, _ = _loop_and_hasher_cpus(Hasher(2, 19456, 1, 1, "nice", pin_loop="on"))
    assert after == before  # only beside an idle-class hasher


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="per-thread affinity: Linux")
def test_auto_pins_only_a_loop_whose_worker_claimed_its_cpu(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With "auto", each hasher (a worker) claims a CPU of its own in the claims directory and
    its loop joins it there; once every CPU is claimed, the next worker neither shares a CPU
    with another's loop nor pins; a closed hasher's claim is free again."""
    monkeypatch.setattr(passwords, "_cpu_quota", lambda: False)  # as on a host of its own
    cpus = os.sched_getaffinity(0)
    hashers = [Hasher(2, 19456, 1, 1, pin_loop="auto", claims_dir=str(tmp_path)) for _ in cpus]
    homes = []
    for hasher in hashers:
        _, after, hasher_cpus = _loop_and_hasher_cpus(hasher, close=False)
        assert after == hasher_cpus and len(after) == 1
        homes.append(after)
    assert set().union(*homes) == cpus  # every CPU claimed once
    assert {p.name for p in tmp_path.iterdir()} == {f"tenantry-cpu{c}.lock" for c in cpus}
    late = Hasher(2, 19456, 1, 1, pin_loop="auto", claims_dir=str(tmp_path))
    before, after, _ = _loop_and_hasher_cpus(late)
    assert after == before == cpus
    hashers[0].close()
    again = Hasher(2, 19456, 1, 1, pin_loop="auto", claims_dir=str(tmp_path))
    assert _loop_and_hasher_cpus(again)[1] == homes[0]
    for hasher in hashers[1:]:
        hasher.close()
    no_claims = Hasher(2, 19456, 1, 1, pin_loop="auto", claims_dir="")
    before, after, _ = _loop_and_hasher_cpus(no_claims)
    assert after == before


def test_hosts_start_counting_cpus_at_different_places(monkeypatch: pytest.MonkeyPatch) -> None:
    """Containers that share a machine's CPUs but not their claims (a private /dev/shm each)
    must not all start on the first CPU: the start depends on the host name."""
    offsets = set()
    for i in range(16):
        monkeypatch.setattr(socket, "gethostname", lambda i=i: f"tenantry-7d9f5-{i}")
        offsets.add(passwords._host_offset(8))
        assert passwords._host_offset(8) in offsets  # the same name, the same start
    assert len(offsets) > 1 and offsets <= set(range(8))
    assert passwords._host_offset(0) == 0


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="per-thread affinity: Linux")
def test_the_home_cpu_is_the_workers_turn_counted_from_the_host_offset(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    cpus = sorted(os.sched_getaffinity(0))
    monkeypatch.setattr(passwords, "_host_offset", lambda count: 1)
    monkeypatch.setattr(passwords, "_claim_turn", lambda: 0)
    _, after, hasher_cpus = _loop_and_hasher_cpus(Hasher(2, 19456, 1, 1, pin_loop="on"))
    assert after == hasher_cpus == {cpus[1 % len(cpus)]}


@pytest.mark.parametrize(
    ("membership", "files", "capped"),
    [
        ("0::/\n", {}, False),
        ("0::/kubepods/pod1/ctr\n", {"kubepods/pod1/ctr/cpu.max": "max 100000"}, False),
        ("0::/kubepods/pod1/ctr\n", {"kubepods/pod1/cpu.max": "50000 100000"}, True),
        ("0::/kubepods/pod1/ctr\n", {"kubepods/pod1/ctr/cpu.max": "200000 100000"}, True),
        ("4:cpu,cpuacct:/docker/abc\n", {"cpu,cpuacct/docker/abc/cpu.cfs_quota_us": "-1"}, False),
        ("4:cpu,cpuacct:/docker/abc\n", {"cpu,cpuacct/docker/cpu.cfs_quota_us": "20000"}, True),
        ("4:memory:/docker/abc\n", {"memory/docker/abc/cpu.cfs_quota_us": "20000"}, False),
    ],
)
def test_a_cpu_quota_is_found_in_the_cgroup_or_above_it(
    tmp_path: Path, membership: str, files: dict[str, str], capped: bool
) -> None:
    from tenantry.identity.passwords import _cpu_quota

    root = tmp_path / "cgroup"
    for name, text in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text + "\n")
    (tmp_path / "self").write_text(membership)
    assert _cpu_quota(root, tmp_path / "self") is capped


def test_pin_event_loop_setting_reaches_the_hasher(monkeypatch: pytest.MonkeyPatch) -> None:
    from pydantic import ValidationError

    from tenantry.config import Settings, load_settings
    from tenantry.identity.security import Security

    def placement(settings: Settings, serving: bool = True) -> passwords._Placement:
        return Security.from_settings(settings, serving=serving).hasher._placement

    pg = "postgresql+asyncpg://tenantry@db/tenantry"
    monkeypatch.delenv("TENANTRY_PIN_EVENT_LOOP")  # the suite's own "off" (conftest.py)
    assert placement(load_settings(database_url=pg)).pin_loop == "auto"
    assert placement(load_settings())._claims == Path(load_settings().cpu_claims_dir)
    assert placement(load_settings()).pin_loop == "off"  # SQLite: its threads stay free
    for word, meant in [("true", "on"), ("1", "on"), ("off", "off"), ("False", "off")]:
        monkeypatch.setenv("TENANTRY_PIN_EVENT_LOOP", word)
        assert placement(load_settings()).pin_loop == meant
    # Not serving (a CLI command, a script): no claims, never pinned, whatever the setting.
    monkeypatch.setenv("TENANTRY_PIN_EVENT_LOOP", "on")
    quiet = placement(load_settings(), serving=False)
    assert quiet.pin_loop == "off" and quiet._claims is None
    monkeypatch.setenv("TENANTRY_PIN_EVENT_LOOP", "sometimes")
    with pytest.raises(ValidationError):
        load_settings()
