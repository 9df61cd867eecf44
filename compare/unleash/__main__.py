"""python -m compare.unleash: the corpus against Tenantry and a real Unleash 8.2 (README.md).

python -m compare.unleash                                  # Tenantry against the fixtures
python -m compare.unleash --against http://127.0.0.1:4242  # ... against a live Unleash
python -m compare.unleash --against URL --record           # ... and rewrite the fixtures
python -m compare.unleash --against URL --reset-peer DIR   # reset that Unleash to empty first
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx

from compare.unleash import fixtures, peer, tenantry_side
from compare.unleash.corpus import CORPUS
from compare.unleash.report import Comparison, compare, dates
from compare.unleash.runner import Exchange, run, stderr, unleash_pacer


def parse(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        prog="python -m compare.unleash",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument(
        "--against",
        metavar="URL",
        help="a live, empty Unleash 8.2 to compare with (default: the recorded fixtures)",
    )
    p.add_argument(
        "--record",
        action="store_true",
        help="write the live Unleash's answers as the fixtures (needs --against)",
    )
    p.add_argument(
        "--reset-peer",
        metavar="DIR",
        type=Path,
        help="reset the Unleash peer in DIR to empty first (its README's recipe)",
    )
    p.add_argument(
        "--no-tenantry",
        action="store_true",
        help="with --record: only record, do not start Tenantry",
    )
    p.add_argument(
        "--check-unleash",
        action="store_true",
        help="compare the live Unleash (--against) with the fixtures instead of Tenantry: the "
        "harness's own check, 100 %% when Unleash answers as recorded",
    )
    p.add_argument(
        "--fixtures",
        metavar="DIR",
        type=Path,
        default=fixtures.DIRECTORY,
        help="fixture directory (default: %(default)s)",
    )
    p.add_argument("--report", metavar="FILE", type=Path, help="also write the result as JSON")
    p.add_argument(
        "--tenantry-log",
        metavar="FILE",
        type=Path,
        help="where the started Tenantry's output goes (default: nowhere)",
    )
    p.add_argument(
        "--fail-under",
        metavar="PCT",
        type=float,
        default=0.0,
        help="exit 1 when fewer than PCT %% of the steps match",
    )
    p.add_argument("-q", "--quiet", action="store_true", help="no line per step")
    args = p.parse_args(argv)
    if args.record and not args.against:
        p.error("--record needs --against URL (a live Unleash)")
    if args.reset_peer and not args.against:
        p.error("--reset-peer needs --against URL")
    if args.no_tenantry and not args.record:
        p.error("--no-tenantry only with --record")
    if args.check_unleash and (args.record or not args.against):
        p.error("--check-unleash needs --against URL, and not --record")
    return args


async def run_on(
    base: str, variables: dict[str, Any], label: str, quiet: bool, paced: bool
) -> list[Exchange]:
    async with httpx.AsyncClient(base_url=base, timeout=30.0) as client:
        return await run(
            client,
            CORPUS,
            {**variables, **dates()},
            pacer=unleash_pacer() if paced else None,
            log=None if quiet else stderr,
            label=label,
        )


def main(argv: list[str] | None = None) -> int:
    args = parse(argv)
    if args.against:
        base = args.against.rstrip("/")
        if args.reset_peer:
            stderr(f"resetting the Unleash peer in {args.reset_peer} ...")
            peer.reset(args.reset_peer.resolve(), base)
        peer.check_empty(base)
        stderr(
            f"corpus of {len(CORPUS)} steps against Unleash at {base} (paced for its "
            "rate limits: a few minutes)"
        )
        unleash = asyncio.run(run_on(base, peer.variables(), "unleash  ", args.quiet, True))
        expected = {ex.step.name: ex.record() for ex in unleash}
        if args.record:
            meta = {
                "server": f"Unleash {peer.version(base)} (npm unleash-server)",
                "recorded": datetime.now(UTC).strftime("%Y-%m-%d"),
                "corpus": "compare/unleash/corpus.py",
            }
            fixtures.write(unleash, meta, args.fixtures)
            stderr(f"wrote {len(unleash)} fixtures to {args.fixtures}")
        if args.no_tenantry:
            return 0
        if args.check_unleash:
            result = compare(fixtures.load(args.fixtures).records, unleash)
            print(result.text())
            print(f"Unleash at {base} against the fixtures in {args.fixtures}")
            return finish(result, args)
        against = f"Unleash at {base}"
    else:
        expected = fixtures.load(args.fixtures).records
        against = f"the fixtures in {args.fixtures}"
    with tenantry_side.served(args.tenantry_log) as (tenantry, variables):
        stderr(f"corpus against Tenantry at {tenantry}")
        actual = asyncio.run(run_on(tenantry, variables, "tenantry ", args.quiet, False))
    result = compare(expected, actual)
    print(result.text())
    print(f"Tenantry against {against}")
    return finish(result, args)


def finish(result: Comparison, args: argparse.Namespace) -> int:
    if args.report:
        args.report.write_text(json.dumps(result.as_json(), indent=2) + "\n")
    return 1 if 100 * result.ratio < args.fail_under else 0


if __name__ == "__main__":
    sys.exit(main())
