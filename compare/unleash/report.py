"""Tenantry's answers against Unleash's, step by step, and the figure: matches / steps."""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from compare.unleash.points import Difference, differences
from compare.unleash.runner import Exchange


def dates(now: datetime | None = None) -> dict[str, str]:
    """The corpus's date variables, relative to the run (a PAT must expire in the future and,
    in Tenantry, within 3650 days)."""
    now = now or datetime.now(UTC)

    def iso(when: datetime) -> str:
        return when.strftime("%Y-%m-%dT%H:%M:%S.000Z")

    return {
        "expires_ok": iso(now + timedelta(days=30)),
        "expires_far": iso(now + timedelta(days=20 * 365)),
    }


@dataclass
class StepResult:
    index: int
    name: str
    method: str
    path: str
    credential: str
    differences: list[Difference]
    stale: str = ""  # the recorded request is not the corpus's (re-record the fixtures)

    @property
    def matches(self) -> bool:
        return not self.differences and not self.stale


@dataclass
class Comparison:
    results: list[StepResult]

    @property
    def total(self) -> int:
        return len(self.results)

    @property
    def matched(self) -> int:
        return sum(r.matches for r in self.results)

    @property
    def ratio(self) -> float:
        return self.matched / self.total if self.total else 0.0

    def differing(self) -> dict[str, StepResult]:
        return {r.name: r for r in self.results if not r.matches}

    def figure(self) -> str:
        return f"{self.matched} / {self.total} steps match ({100 * self.ratio:.1f} %)"

    def by_point(self) -> Counter[str]:
        return Counter(d.point for r in self.results for d in r.differences)

    def lines(self) -> list[str]:
        out = []
        for r in self.results:
            if r.matches:
                continue
            out.append(f"{r.index:3d} {r.name}  [{r.method} {r.path} as {r.credential}]")
            if r.stale:
                out.append(f"      stale fixture: {r.stale}")
            out += [f"      {d}" for d in r.differences]
        return out

    def text(self) -> str:
        points = ", ".join(f"{p} {n}" for p, n in self.by_point().most_common())
        return "\n".join(
            [*self.lines(), "", f"differences by point: {points or 'none'}", self.figure()]
        )

    def as_json(self) -> dict[str, Any]:
        return {
            "matched": self.matched,
            "total": self.total,
            "ratio": round(self.ratio, 4),
            "by_point": dict(self.by_point()),
            "differences": {
                r.name: {
                    "request": f"{r.method} {r.path} as {r.credential}",
                    "stale": r.stale or None,
                    "points": [str(d) for d in r.differences],
                }
                for r in self.results
                if not r.matches
            },
        }


def compare(expected: Mapping[str, Mapping[str, Any]], actual: Sequence[Exchange]) -> Comparison:
    """Each of Tenantry's exchanges against Unleash's record of the same step (a record from
    the live run, Exchange.record(), or a fixture)."""
    results = []
    for ex in actual:
        request = ex.step.request_record()
        want = expected.get(ex.step.name)
        stale = ""
        diffs: list[Difference] = []
        if want is None:
            stale = "no recorded answer for this step"
        else:
            if want["request"] != request:
                stale = "the recorded request differs from the corpus's"
            diffs = differences(want["response"], ex.response)
        results.append(
            StepResult(
                ex.index,
                ex.step.name,
                request["method"],
                request["path"],
                ex.step.cred,
                diffs,
                stale,
            )
        )
    return Comparison(results)
