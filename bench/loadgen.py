"""HTTP load generation in a separate process: `wrk` where installed, else an asyncio client.

    from bench.loadgen import LoadSpec, run_load
    stats = run_load(LoadSpec(base, ["/v1/users/self"], headers={...}, connections=20,
                              seconds=15, warmup=2))

`wrk` (Debian package `wrk`) runs with a generated Lua script: it sets the method and headers,
rotates the paths, the request bodies and the `rotate`d header values (one caller's token after
another; each wrk thread walks all of them from its own start, evenly spread) when there are
several, and prints a JSON summary (requests, errors, p50/p95/p99 from wrk's histogram) from
its `done` hook. The warm-up is a separate, shorter wrk run. `start_load`
starts the same load without waiting for it, for a load that must run beside something else
(bench.login's sign-ins beside its probe). Without wrk, the fallback is this module run as a
program:

    python -m bench.loadgen --base http://127.0.0.1:8000 --path /v1/users/self \
        --header 'Authorization: Bearer tnt_…' --connections 20 --seconds 15 --warmup 2

a closed-loop HTTP/1.1 keep-alive client on raw asyncio streams (one task per connection,
uvloop when available; the connections take the requests in turn from one shared counter),
which prints the same JSON summary on its last line. Bodies and rotated header values are read
from files (`--bodies`, `--rotate`), never from the command line: they hold passwords and
tokens. `--once` sends each distinct request exactly once and stops (a warm-up that has every
caller seen once).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Generic, TypeVar
from urllib.parse import urlsplit

from bench.common import ROOT, percentile

MARK = "BENCH_LOADGEN_JSON "
T = TypeVar("T")


@dataclass
class LoadSpec:
    base: str
    paths: list[str]
    headers: dict[str, str] = field(default_factory=dict)
    connections: int = 20
    seconds: float = 15.0
    warmup: float = 2.0
    threads: int = 2  # wrk only
    timeout: float = 10.0
    method: str = "GET"
    bodies: list[str] = field(default_factory=list)  # rotated, one per request; none: no body
    # Headers whose value changes from one request to the next, in turn (every list as long
    # as the others): {"Authorization": ["Bearer tnt_a", "Bearer tnt_b", ...]}.
    rotate: dict[str, list[str]] = field(default_factory=dict)
    once: bool = False  # asyncio client only: each distinct request once, then stop

    def turns(self) -> int:
        """How many values each rotated header takes (0: none rotates)."""
        lengths = {len(values) for values in self.rotate.values()}
        if len(lengths) > 1:
            raise ValueError("every rotated header needs as many values as the others")
        return lengths.pop() if lengths else 0


@dataclass
class LoadStats:
    tool: str
    connections: int
    seconds: float
    requests: int  # completed in the window, any status
    ok: int  # 2xx
    errors: int  # non-2xx + socket errors + timeouts
    req_s: float  # 2xx per second
    p50_ms: float
    p95_ms: float
    p99_ms: float
    max_ms: float
    detail: dict[str, int] = field(default_factory=dict)


def wrk_path() -> str | None:
    return shutil.which("wrk")


def choose_tool(preference: str = "auto") -> str:
    """`wrk` if asked for or installed, else `python`."""
    if preference == "python":
        return "python"
    if preference == "wrk":
        if not wrk_path():
            raise RuntimeError("wrk is not installed (apt-get install wrk)")
        return "wrk"
    return "wrk" if wrk_path() else "python"


def run_load(spec: LoadSpec, tool: str = "auto") -> LoadStats:
    """Warm up, then load for `spec.seconds`; in another process either way."""
    if choose_tool(tool) == "wrk":
        if spec.warmup > 0:
            _start_wrk(spec, spec.warmup).result()
        return _start_wrk(spec, spec.seconds).result()
    return _start_python(spec).result()


class Running(Generic[T]):
    """A load generator running in another process; `result()` waits for it and parses what
    it printed. `temp`: a file it reads (its script, its request bodies), deleted at the end."""

    def __init__(
        self,
        proc: subprocess.Popen[str],
        parse: Callable[[str], T],
        budget: float,
        temp: Path | Sequence[Path] | None = None,
    ) -> None:
        self._proc, self._parse, self._budget = proc, parse, budget
        self._temp = [temp] if isinstance(temp, Path) else list(temp or ())

    @property
    def proc(self) -> subprocess.Popen[str]:
        return self._proc

    def result(self) -> T:
        try:
            out, err = self._proc.communicate(timeout=self._budget)
        except subprocess.TimeoutExpired:
            self._proc.kill()
            self._proc.communicate()
            raise RuntimeError("the load generator did not finish in time") from None
        finally:
            for path in self._temp:
                path.unlink(missing_ok=True)
        if self._proc.returncode != 0:
            raise RuntimeError(
                f"load generator failed ({self._proc.returncode}): {(err or out)[-2000:]}"
            )
        return self._parse(out)


def start_load(spec: LoadSpec, tool: str = "auto") -> Running[LoadStats]:
    """Start the load (warm-up included in its window for wrk: no separate warm-up run) and
    return at once."""
    if choose_tool(tool) == "wrk":
        return _start_wrk(spec, spec.warmup + spec.seconds)
    return _start_python(spec)


# --- wrk ---------------------------------------------------------------------------------------

_LUA = """
local paths = {%(paths)s}
local headers = {%(headers)s}
local bodies = {%(bodies)s}
local rotated = {}
local function append(list, values) for i = 1, #values do list[#list + 1] = values[i] end end
%(rotated)s
local turns = %(turns)d  -- values per rotated header (0: none)
local threads = %(threads)d
local n = 0
-- one path and body: each rotated request is formatted once, then sent as built
local fixed = #paths == 1 and #bodies <= 1
local built = {}
local place = 0  -- this thread's place among the threads (setup numbers them)
wrk.method = %(method)s
wrk.body = bodies[1]
for k, v in pairs(headers) do wrk.headers[k] = v end
local numbered = 0
function setup(thread)  -- in the main state, once per thread before it starts
  thread:set("thread_place", numbered)
  numbered = numbered + 1
end
function init(args)
  place = thread_place or 0
end
-- else wrk's own pre-built request, no Lua call per request
if #paths > 1 or #bodies > 1 or turns > 0 then
  request = function()
    n = n + 1
    local body = nil
    if #bodies > 0 then body = bodies[(n %% #bodies) + 1] end
    local h = nil
    if turns > 0 then
      -- every thread walks all the values in turn, each from its own start (spread evenly):
      -- a faster thread then does not send its share more often than the other's
      local turn = (place * math.floor(turns / threads) + n - 1) %% turns + 1
      if fixed and built[turn] then return built[turn] end
      h = {}
      for k, v in pairs(headers) do h[k] = v end
      for k, values in pairs(rotated) do h[k] = values[turn] end
      if fixed then
        built[turn] = wrk.format(nil, paths[1], h, body)
        return built[turn]
      end
    end
    return wrk.format(nil, paths[(n %% #paths) + 1], h, body)
  end
end
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    '%(mark)s{"requests":%%d,"duration_us":%%d,"connect":%%d,"read":%%d,"write":%%d,'
    .. '"status":%%d,"timeout":%%d,"p50_us":%%d,"p95_us":%%d,"p99_us":%%d,"max_us":%%d}\\n',
    summary.requests, summary.duration, e.connect, e.read, e.write, e.status, e.timeout,
    latency:percentile(50), latency:percentile(95), latency:percentile(99), latency.max))
end
"""


def _lua_string(value: str) -> str:
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


LUA_CHUNK = 10_000  # values per function: LuaJIT allows 65 536 constants in one


def _lua_values(name: str, values: Sequence[str]) -> str:
    """`rotated[name]` = the values, appended in chunks, each chunk a function of its own."""
    out = [f"rotated[{_lua_string(name)}] = {{}}"]
    for i in range(0, len(values), LUA_CHUNK):
        chunk = ", ".join(_lua_string(v) for v in values[i : i + LUA_CHUNK])
        out.append(f"append(rotated[{_lua_string(name)}], (function() return {{{chunk}}} end)())")
    return "\n".join(out)


def wrk_threads(spec: LoadSpec) -> int:
    return max(1, min(spec.threads, spec.connections))


def wrk_script(spec: LoadSpec) -> str:
    paths = ", ".join(_lua_string(p) for p in spec.paths)
    headers = ", ".join(f"[{_lua_string(k)}] = {_lua_string(v)}" for k, v in spec.headers.items())
    bodies = ", ".join(_lua_string(b) for b in spec.bodies)
    rotated = "\n".join(_lua_values(k, values) for k, values in spec.rotate.items())
    method = _lua_string(spec.method)
    return _LUA % {
        "paths": paths,
        "headers": headers,
        "bodies": bodies,
        "rotated": rotated,
        "turns": spec.turns(),
        "threads": wrk_threads(spec),
        "method": method,
        "mark": MARK,
    }


def parse_wrk(output: str, connections: int) -> LoadStats:
    """The JSON line printed by the script's `done` hook, else wrk's own `--latency` text."""
    line = next((ln for ln in output.splitlines() if ln.startswith(MARK)), None)
    raw = json.loads(line[len(MARK) :]) if line else parse_wrk_text(output)
    seconds = raw["duration_us"] / 1e6
    socket_errors = raw["connect"] + raw["read"] + raw["write"] + raw["timeout"]
    ok = raw["requests"] - raw["status"]
    return LoadStats(
        tool="wrk",
        connections=connections,
        seconds=round(seconds, 2),
        requests=raw["requests"],
        ok=ok,
        errors=raw["status"] + socket_errors,
        req_s=round(ok / seconds, 1) if seconds else 0.0,
        p50_ms=round(raw["p50_us"] / 1000, 2),
        p95_ms=round(raw["p95_us"] / 1000, 2) if raw["p95_us"] else float("nan"),
        p99_ms=round(raw["p99_us"] / 1000, 2),
        max_ms=round(raw["max_us"] / 1000, 2),
        detail={k: raw[k] for k in ("connect", "read", "write", "status", "timeout")},
    )


_UNITS = {"us": 1.0, "ms": 1e3, "s": 1e6, "m": 6e7}


def _micros(value: str) -> int:
    match = re.fullmatch(r"([\d.]+)(us|ms|s|m)", value.strip())
    if not match:
        raise ValueError(f"not a wrk duration: {value!r}")
    return round(float(match[1]) * _UNITS[match[2]])


def parse_wrk_text(output: str) -> dict[str, int]:
    """wrk's printed summary (`--latency`), in the shape of the Lua hook's JSON. It has no
    p95: that is left 0 (NaN once converted)."""
    total = re.search(r"(\d+) requests in ([\d.]+)(us|ms|s|m)", output)
    if total is None:
        raise RuntimeError(f"no summary in wrk's output:\n{output[-2000:]}")
    raw = {"requests": int(total[1]), "duration_us": _micros(total[2] + total[3])}
    socket = re.search(
        r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", output
    )
    for i, name in enumerate(("connect", "read", "write", "timeout"), start=1):
        raw[name] = int(socket[i]) if socket else 0
    status = re.search(r"Non-2xx or 3xx responses: (\d+)", output)
    raw["status"] = int(status[1]) if status else 0
    for q in (50, 99):
        found = re.search(rf"^\s+{q}%\s+(\S+)", output, re.MULTILINE)
        raw[f"p{q}_us"] = _micros(found[1]) if found else 0
    raw["p95_us"] = 0
    latency = re.search(r"Latency\s+\S+\s+\S+\s+(\S+)", output)
    raw["max_us"] = _micros(latency[1]) if latency else 0
    return raw


def _start_wrk(spec: LoadSpec, seconds: float) -> Running[LoadStats]:
    if spec.once:
        raise ValueError("wrk cannot send each request exactly once: use the asyncio client")
    wrk = wrk_path()
    assert wrk
    threads = wrk_threads(spec)
    # Kept until the run ends (Running.result deletes it): wrk reads it at start-up.
    with tempfile.NamedTemporaryFile("w", suffix=".lua", prefix="bench-wrk-", delete=False) as f:
        f.write(wrk_script(spec))
    command = [
        wrk,
        f"-t{threads}",
        f"-c{spec.connections}",
        f"-d{max(1, round(seconds))}s",
        f"--timeout={max(1, round(spec.timeout))}s",
        "--latency",
        "-s",
        f.name,
        spec.base.rstrip("/") + spec.paths[0],
    ]
    proc = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    budget = seconds + spec.timeout + 30
    return Running(proc, lambda out: parse_wrk(out, spec.connections), budget, Path(f.name))


# --- the asyncio fallback ------------------------------------------------------------------------


def _start_python(spec: LoadSpec) -> Running[LoadStats]:
    command = [sys.executable, "-m", "bench.loadgen", "--base", spec.base, "--method", spec.method]
    for p in spec.paths:
        command += ["--path", p]
    for k, v in spec.headers.items():
        command += ["--header", f"{k}: {v}"]
    temps: list[Path] = []
    # Files, not arguments: a request body may hold a password, a rotated header a token.
    for option, content in (("--bodies", spec.bodies), ("--rotate", spec.rotate)):
        if content:
            with tempfile.NamedTemporaryFile(
                "w", suffix=".json", prefix="bench-", delete=False
            ) as f:
                json.dump(content, f)
            temps.append(Path(f.name))
            command += [option, f.name]
    command += [
        "--connections",
        str(spec.connections),
        "--seconds",
        str(spec.seconds),
        "--warmup",
        str(spec.warmup),
        "--timeout",
        str(spec.timeout),
    ]
    if spec.once:
        command.append("--once")
    proc = subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=ROOT
    )
    # --once: as long as the requests take (every distinct one: rotated headers, paths or
    # bodies), at no less than 10 a second (SCIM POSTs on a busy 2-core machine: ≈20)
    distinct = max(spec.turns(), len(spec.paths), len(spec.bodies))
    budget = spec.warmup + spec.seconds + spec.timeout + 60 + (distinct / 10 if spec.once else 0)
    return Running(proc, _parse_python, budget, temps)


def _parse_python(out: str) -> LoadStats:
    line = next(ln for ln in reversed(out.splitlines()) if ln.startswith(MARK))
    return LoadStats(**json.loads(line[len(MARK) :]))


class _Conn:
    def __init__(self, host: str, port: int, request: list[bytes], timeout: float) -> None:
        self.host, self.port, self.request, self.timeout = host, port, request, timeout
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def open(self) -> None:
        self.reader, self.writer = await asyncio.open_connection(self.host, self.port)

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
        self.reader = self.writer = None

    async def get(self, k: int) -> int:
        """One request on the kept-alive connection; its status code."""
        if self.writer is None:
            await self.open()
        assert self.reader is not None and self.writer is not None
        self.writer.write(self.request[k % len(self.request)])
        return await asyncio.wait_for(self._response(self.reader), self.timeout)

    async def _response(self, reader: asyncio.StreamReader) -> int:
        head = await reader.readuntil(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        status = int(lines[0].split(" ", 2)[1])
        length, chunked, close = 0, False, False
        for line in lines[1:]:
            name, _, value = line.partition(":")
            name = name.strip().lower()
            if name == "content-length":
                length = int(value)
            elif name == "transfer-encoding" and "chunked" in value.lower():
                chunked = True
            elif name == "connection" and "close" in value.lower():
                close = True
        if chunked:
            while True:
                size = int((await reader.readuntil(b"\r\n")).split(b";")[0], 16)
                await reader.readexactly(size + 2)
                if size == 0:
                    break
        elif length:
            await reader.readexactly(length)
        if close:
            self.close()
        return status


def requests(spec: LoadSpec, host: str) -> list[bytes]:
    """The requests to rotate through: every path, every body and every rotated header value
    in turn, as wrk's script does."""
    header_lines = "".join(f"{k}: {v}\r\n" for k, v in spec.headers.items())
    bodies: list[bytes | None] = [b.encode() for b in spec.bodies] or [None]
    turns = spec.turns()
    out = []
    for i in range(max(len(spec.paths), len(bodies), turns)):
        body = bodies[i % len(bodies)]
        head = f"{spec.method} {spec.paths[i % len(spec.paths)]} HTTP/1.1\r\nHost: {host}\r\n"
        rotated = "".join(f"{k}: {values[i % turns]}\r\n" for k, values in spec.rotate.items())
        length = f"Content-Length: {len(body)}\r\n" if body is not None else ""
        out.append(f"{head}{header_lines}{rotated}{length}\r\n".encode() + (body or b""))
    return out


async def generate(spec: LoadSpec) -> LoadStats:
    """`connections` tasks, each looping on its own keep-alive connection until the window
    closes; a request counts if it starts after the warm-up and ends inside the window. The
    tasks take the requests in turn from one counter, so that with many distinct requests
    (callers) each is sent once before any is sent again. With `once`, each distinct request
    is sent exactly once, and all of them count."""
    if spec.once:
        return await _once(spec)
    parts = urlsplit(spec.base)
    host, port = parts.hostname or "127.0.0.1", parts.port or 80
    request = requests(spec, f"{host}:{port}")
    latencies: list[float] = []
    statuses: dict[str, int] = {}
    errors = {"socket": 0, "timeout": 0}
    turn = iter(range(1 << 62))  # shared by the tasks (one event loop: no lock needed)
    t0 = time.perf_counter()
    start_window = t0 + spec.warmup
    end = start_window + spec.seconds

    async def one() -> None:
        conn = _Conn(host, port, request, spec.timeout)
        while (started := time.perf_counter()) < end:
            try:
                status = await conn.get(next(turn))
            except TimeoutError:
                errors["timeout"] += 1 if started >= start_window else 0
                conn.close()
                continue
            except (OSError, asyncio.IncompleteReadError, ValueError, IndexError):
                errors["socket"] += 1 if started >= start_window else 0
                conn.close()
                await asyncio.sleep(0.01)
                continue
            finished = time.perf_counter()
            if started >= start_window and finished <= end:
                statuses[str(status)] = statuses.get(str(status), 0) + 1
                if 200 <= status < 300:
                    latencies.append((finished - started) * 1000)
        conn.close()

    await asyncio.gather(*(one() for _ in range(spec.connections)))
    return _stats(spec, spec.seconds, latencies, statuses, errors)


async def _once(spec: LoadSpec) -> LoadStats:
    """Every distinct request exactly once over `connections` connections (a failed one is
    not sent again: it counts as an error)."""
    parts = urlsplit(spec.base)
    host, port = parts.hostname or "127.0.0.1", parts.port or 80
    request = requests(spec, f"{host}:{port}")
    latencies: list[float] = []
    statuses: dict[str, int] = {}
    errors = {"socket": 0, "timeout": 0}
    todo = iter(range(len(request)))
    t0 = time.perf_counter()

    async def one() -> None:
        conn = _Conn(host, port, request, spec.timeout)
        for k in todo:
            started = time.perf_counter()
            try:
                status = await conn.get(k)
            except TimeoutError:
                errors["timeout"] += 1
                conn.close()
                continue
            except (OSError, asyncio.IncompleteReadError, ValueError, IndexError):
                errors["socket"] += 1
                conn.close()
                continue
            statuses[str(status)] = statuses.get(str(status), 0) + 1
            if 200 <= status < 300:
                latencies.append((time.perf_counter() - started) * 1000)
        conn.close()

    await asyncio.gather(*(one() for _ in range(spec.connections)))
    return _stats(spec, time.perf_counter() - t0, latencies, statuses, errors)


def _stats(
    spec: LoadSpec,
    seconds: float,
    latencies: list[float],
    statuses: dict[str, int],
    errors: dict[str, int],
) -> LoadStats:
    latencies.sort()
    ok = len(latencies)
    completed = sum(statuses.values())
    return LoadStats(
        tool="python",
        connections=spec.connections,
        seconds=round(seconds, 2),
        requests=completed,
        ok=ok,
        errors=completed - ok + errors["socket"] + errors["timeout"],
        req_s=round(ok / seconds, 1) if seconds else 0.0,
        p50_ms=round(percentile(latencies, 50), 2),
        p95_ms=round(percentile(latencies, 95), 2),
        p99_ms=round(percentile(latencies, 99), 2),
        max_ms=round(latencies[-1], 2) if latencies else float("nan"),
        detail={**{f"status_{k}": v for k, v in statuses.items()}, **errors},
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="asyncio keep-alive HTTP load generator")
    parser.add_argument("--base", required=True, help="http://127.0.0.1:PORT")
    parser.add_argument("--path", action="append", required=True, help="repeat to rotate")
    parser.add_argument("--header", action="append", default=[], help="'Name: value'")
    parser.add_argument("--method", default="GET")
    parser.add_argument("--bodies", type=Path, help="a JSON list of request bodies to rotate")
    parser.add_argument("--rotate", type=Path, help='a JSON object {"Header": [values to rotate]}')
    parser.add_argument("--once", action="store_true", help="each distinct request once")
    parser.add_argument("--connections", type=int, default=20)
    parser.add_argument("--seconds", type=float, default=15.0)
    parser.add_argument("--warmup", type=float, default=2.0)
    parser.add_argument("--timeout", type=float, default=10.0)
    args = parser.parse_args(argv)
    headers = {h.split(":", 1)[0].strip(): h.split(":", 1)[1].strip() for h in args.header}
    bodies = json.loads(args.bodies.read_text()) if args.bodies else []
    rotate = json.loads(args.rotate.read_text()) if args.rotate else {}
    spec = LoadSpec(
        args.base,
        args.path,
        headers,
        args.connections,
        args.seconds,
        args.warmup,
        1,
        args.timeout,
        args.method,
        bodies,
        rotate,
        args.once,
    )
    try:
        import uvloop

        uvloop.install()
    except ImportError:  # pragma: no cover - uvicorn[standard] brings it
        pass
    stats = asyncio.run(generate(spec))
    print(MARK + json.dumps(asdict(stats)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
