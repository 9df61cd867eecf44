"""Paired rounds for the sign-in target: server variants side by side, phases alternating.

    python -m bench.login_ab --variants '{"w2": {"workers": 2}, "w2-nice": {"workers": 2,
        "env": {"TENANTRY_HASH_PRIORITY": "nice"}}}' --rounds 4 --seconds 8

One `bench.login` run measures each phase once, and on a shared two-core machine the same
configuration gives 1.3-2.9x from one run to the next. To compare two configurations, run them
side by side: one server per variant on one database, and in every round, for every variant,
the probe alone, then the probe under sign-in load (from bench.loadgen, as in bench.login).
The per-round ratios of the variants interleave in time, so drift on the machine hits them all;
the summary is the median per variant. This is how the experiments in docs/performance.md
("What the probe waits behind") were run; variants that need code changes are told apart by an
environment variable the change reads.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import tempfile
import time
from collections.abc import Callable
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench import loadgen, login
from bench.common import default_pg_url, fresh_database, server

DRAIN_SECONDS = 3.0  # queued sign-ins finish before the next probe alone


@dataclass
class Variant:
    name: str
    workers: int = 1
    env: dict[str, str] = field(default_factory=dict)
    rounds: list[tuple[float, float]] = field(default_factory=list)  # (p99 alone, under) ms

    def ratios(self) -> list[float]:
        return [round(under / alone, 2) for alone, under in self.rounds if alone > 0]

    def median_ratio(self) -> float | None:
        ratios = self.ratios()
        return statistics.median(ratios) if ratios else None

    def medians(self) -> tuple[float, float]:
        """(p99 alone, p99 under load), each the median over the rounds, in ms."""
        return (
            statistics.median(a for a, _ in self.rounds),
            statistics.median(u for _, u in self.rounds),
        )

    def summary(self) -> str:
        ratio = self.median_ratio()
        if ratio is None:
            return f"{self.name}: no rounds"
        alone, under = self.medians()
        return (
            f"{self.name}: median ratio {ratio:.2f}x  rounds {self.ratios()}  "
            f"p99 alone {alone:.2f} ms, under load {under:.2f} ms (medians)"
        )


def parse_variants(text: str) -> list[Variant]:
    raw: dict[str, dict[str, Any]] = json.loads(text)
    return [
        Variant(name, int(v.get("workers", 1)), {k: str(x) for k, x in v.get("env", {}).items()})
        for name, v in raw.items()
    ]


@dataclass(frozen=True)
class Plan:
    rounds: int = 3
    seconds: float = 8.0  # per probe phase
    connections: int = 20  # concurrent sign-ins
    loadgen: str = "auto"


def probe_p99(base: str, token: str, seconds: float, workdir: Path) -> float:
    spec = {"base": base, "warmup": 0.5, "seconds": seconds, "connections": 1, "token": token}
    results = login.start_probe(spec, workdir).result()
    return next(r.p99_ms for r in results if r.mode == "self")


def one_round(
    variant: Variant,
    base: str,
    accounts: list[list[str]],
    token: str,
    workdir: Path,
    plan: Plan,
    say: Callable[[str], None],
) -> None:
    alone = probe_p99(base, token, plan.seconds, workdir)
    spec = login.login_spec(base, accounts, plan.connections, 0.0, plan.seconds + 4)
    signing_in = loadgen.start_load(spec, plan.loadgen)
    time.sleep(1.5)  # the sign-ins saturate the server before the probe starts
    under = probe_p99(base, token, plan.seconds, workdir)
    signing_in.result()
    variant.rounds.append((alone, under))
    say(f"  {variant.name}: p99 alone {alone:.2f} ms, under load {under:.2f} ms")
    time.sleep(DRAIN_SECONDS)


def run(
    variants: list[Variant], pg_url: str, plan: Plan, say: Callable[[str], None] = print
) -> list[Variant]:
    """Every variant's rounds, on one fresh database; fills in `Variant.rounds`."""
    with fresh_database("postgres", "login_ab", pg_url=pg_url) as url:
        accounts, token = asyncio.run(login.make_accounts(url, 2 * plan.connections))
        with tempfile.TemporaryDirectory(prefix="tenantry-login-ab-") as tmp, ExitStack() as stack:
            bases = {}
            for v in variants:
                env = {**login.rate_limit_env(), **v.env}
                log = Path(tmp) / f"{v.name}.log"
                srv = stack.enter_context(server(url=url, workers=v.workers, log_path=log, env=env))
                bases[v.name] = srv.base
            for r in range(plan.rounds):
                say(f"round {r + 1} of {plan.rounds}")
                for v in variants:
                    one_round(v, bases[v.name], accounts, token, Path(tmp), plan, say)
    return variants


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--variants", default='{"1 worker": {}, "2 workers": {"workers": 2}}')
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=8.0, help="per probe phase")
    parser.add_argument("--connections", type=int, default=20, help="concurrent sign-ins")
    parser.add_argument("--loadgen", choices=["auto", "wrk", "python"], default="auto")
    parser.add_argument("--pg-url", default=default_pg_url())
    args = parser.parse_args(argv)
    plan = Plan(args.rounds, args.seconds, args.connections, args.loadgen)
    for v in run(parse_variants(args.variants), args.pg_url, plan):
        print(v.summary(), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
