"""Writes first (db/priority.py): reads wait for a worker's writes under way, never for long,
and never for a write's password hashing."""

from __future__ import annotations

import asyncio
import time

import httpx

from tenantry.app import TenantryApp
from tenantry.db.priority import (
    Message,
    Receive,
    Scope,
    Send,
    WritePriority,
    WriteTrace,
    stepped_aside,
)
from tenantry.identity.passwords import Hasher


async def test_a_read_waits_until_the_last_write_ends() -> None:
    priority = WritePriority(max_wait=5)
    with priority.held():
        read = asyncio.create_task(priority.wait())
        with priority.held():
            await asyncio.sleep(0.01)
            assert not read.done()
        await asyncio.sleep(0.01)
        assert not read.done(), "one write is still under way"
    await asyncio.wait_for(read, 1)
    assert priority.waited == 1 and not priority.busy


async def test_a_read_without_writes_does_not_wait() -> None:
    priority = WritePriority(max_wait=5)
    await asyncio.wait_for(priority.wait(), 0.1)
    assert priority.waited == 0


async def test_a_read_waits_max_wait_at_most() -> None:
    priority = WritePriority(max_wait=0.05)
    with priority.held():
        started = time.perf_counter()
        await priority.wait()
        waited = time.perf_counter() - started
        assert priority.busy
    assert 0.04 <= waited < 1


async def test_a_write_steps_aside_while_it_hashes() -> None:
    priority = WritePriority(max_wait=5)
    seen: list[bool] = []

    class Watched(Hasher):
        def hash_sync(self, password: str) -> str:
            seen.append(priority.busy)
            return super().hash_sync(password)

    hasher = Watched(time_cost=1, memory_kib=8, parallelism=1)
    try:
        with priority.held():
            assert priority.busy
            await hasher.hash("correct horse battery staple")
            assert priority.busy, "back in line after the hash"
            with stepped_aside():
                assert not priority.busy
                with stepped_aside():  # nested: nothing more to give back
                    assert not priority.busy
            assert priority.busy
    finally:
        hasher.close()
    assert seen == [False]
    assert not priority.busy


async def test_the_app_holds_reads_while_a_write_runs(
    app: TenantryApp, client: httpx.AsyncClient
) -> None:
    """Through the served app: a GET sent while a write transaction is open waits for it."""
    priority = app.priority
    assert priority is not None
    before = priority.waited
    kept, priority.max_wait = priority.max_wait, 5  # 50 ms could pass in a slow sleep below
    try:
        with priority.held():
            get = asyncio.create_task(client.get("/v1/users/self"))
            await asyncio.sleep(0.02)
            assert not get.done()
            assert priority.waited == before + 1
        answer = await asyncio.wait_for(get, 5)
    finally:
        priority.max_wait = kept
    assert answer.status_code == 401  # no credential: answered once the write was done


async def test_the_trace_times_a_write_requests_phases() -> None:
    """WriteTrace (the bench's view of a role change): before, in and after the write
    transaction, which is timed however often it is entered."""
    priority, trace = WritePriority(), WriteTrace()

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        await asyncio.sleep(0.01)  # before: body, authentication
        with priority.held():
            await asyncio.sleep(0.02)
        with priority.held():  # entered again: the time in both counts
            await asyncio.sleep(0.01)
        await asyncio.sleep(0.01)  # after: the answer
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"{}"})

    async def receive() -> Message:
        return {"type": "http.request", "body": b"", "more_body": False}

    sent: list[Message] = []

    async def send(message: Message) -> None:
        sent.append(message)

    await trace.around(app, {"type": "http", "method": "POST"}, receive, send)
    [(total, before, held, after)] = trace.dump()
    assert len(sent) == 2
    assert 10 <= before < 200 and 30 <= held < 300 and 10 <= after < 200
    assert total >= before + held + after - 0.01


async def test_the_trace_leaves_out_requests_without_a_write_transaction() -> None:
    trace = WriteTrace()

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        await send({"type": "http.response.start", "status": 401, "headers": []})
        await send({"type": "http.response.body", "body": b"{}"})

    async def ignore(message: Message) -> None:
        return None

    await trace.around(app, {"type": "http", "method": "POST"}, ignore, ignore)  # type: ignore[arg-type]
    assert trace.dump() == []


async def test_the_served_app_traces_its_writes(
    app: TenantryApp, client: httpx.AsyncClient
) -> None:
    """With TENANTRY_CACHE_STATS_DIR the app traces every write request (a refused one too,
    once it opened its transaction); reads are never traced."""
    kept, app.write_trace = app.write_trace, WriteTrace()
    try:
        await client.get("/v1/users/self")
        answer = await client.post(
            "/tenantry/v1/auth/login",
            json={"username": "nobody@example.com", "password": "wrong password 1"},
        )
        assert answer.status_code == 401
        [(total, before, held, after)] = app.write_trace.dump()
        assert held > 0 and before >= 0 and after >= 0 and total >= before + held + after - 0.01
    finally:
        app.write_trace = kept
