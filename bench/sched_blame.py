"""What a process waited behind: its scheduling delays in a `perf sched timehist` listing, and
what ran on each CPU while it waited.

    perf sched record -a -o under.data -- sleep 4        # while the load runs
    perf sched timehist -i under.data > under.txt
    python -m bench.sched_blame under.txt 4242 --min-ms 0.5

For every time thread 4242 was runnable for at least --min-ms before it ran (timehist's
"sch delay"), the run time of every other task on the CPU it then ran on, and on the other
CPUs, that overlaps the wait. Diagnosis only; the suite does not run it (perf needs root and
Debian's linux-perf).
"""

from __future__ import annotations

import argparse
import re
from collections import defaultdict
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

# "  641.605426 [0000]  python[6275]   0.000   0.014   1.290"
_LINE = re.compile(r"\s*([\d.]+)\s+\[(\d+)\]\s+(.*?)\s+([\d.]+)\s+([\d.]+)\s+([\d.]+)\s*$")


@dataclass(frozen=True)
class Run:
    """One stretch on a CPU: [start, end) in seconds, and how long the task waited for it."""

    start: float
    end: float
    cpu: int
    task: str  # "comm[tid]" or "comm[tid/pid]"
    delay: float  # seconds runnable before it ran


def parse(lines: Iterable[str]) -> Iterator[Run]:
    for line in lines:
        m = _LINE.match(line)
        if m is None:
            continue
        end, cpu, task, _wait, delay, run = m.groups()
        stop = float(end)
        yield Run(stop - float(run) / 1000, stop, int(cpu), task, float(delay) / 1000)


def _label(task: str) -> str:
    """Kernel threads by name (kworker/1:1 and kworker/0:2 alike); processes by id."""
    return task if task.startswith("python") else re.sub(r"\d+", "#", task)


# (waits, seconds waited, seconds per task on the waiting CPU, on the other CPUs)
Blame = tuple[int, float, dict[str, float], dict[str, float]]


def blame(runs: list[Run], tid: int, min_ms: float) -> Blame:
    mine = re.compile(rf"\[{tid}(/\d+)?\]$")
    same: defaultdict[str, float] = defaultdict(float)
    other: defaultdict[str, float] = defaultdict(float)
    waits, waited = 0, 0.0
    for run in runs:
        if not mine.search(run.task) or run.delay * 1000 < min_ms:
            continue
        waits, waited = waits + 1, waited + run.delay
        begin, end = run.start - run.delay, run.start
        for it in runs:
            overlap = min(it.end, end) - max(it.start, begin)
            if overlap > 0 and it.task != run.task:
                (same if it.cpu == run.cpu else other)[_label(it.task)] += overlap
    return waits, waited, same, other


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("timehist", type=Path, help="output of perf sched timehist")
    parser.add_argument("tid", type=int, help="the thread (or single-threaded process) to explain")
    parser.add_argument("--min-ms", type=float, default=0.5, help="shortest wait counted")
    parser.add_argument("--top", type=int, default=10)
    args = parser.parse_args(argv)
    with args.timehist.open() as f:
        runs = list(parse(f))
    waits, waited, same, other = blame(runs, args.tid, args.min_ms)
    print(f"{waits} waits >= {args.min_ms} ms, {waited * 1000:.1f} ms in all")
    for title, table in (("on the waiting CPU", same), ("on the other CPUs meanwhile", other)):
        print(f"{title}:")
        for task, seconds in sorted(table.items(), key=lambda kv: -kv[1])[: args.top]:
            print(f"  {seconds * 1000:8.1f} ms  {task}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
