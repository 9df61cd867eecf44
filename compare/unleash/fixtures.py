"""The recorded answers of a real Unleash 8.2 to the corpus: tests/reference/unleash-8.2-live/,
one JSON file per step (`<step name>.json`: the request as templated, the answer with the run's
secrets replaced by placeholders) and index.json (the steps in order, the server's version,
when). The replay test compares Tenantry against these without running Unleash."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from compare.unleash.runner import Exchange

DIRECTORY = Path(__file__).resolve().parents[2] / "tests" / "reference" / "unleash-8.2-live"
INDEX = "index.json"


@dataclass
class Recorded:
    meta: dict[str, Any]
    records: dict[str, dict[str, Any]]  # step name → record


def write(exchanges: Sequence[Exchange], meta: dict[str, Any], directory: Path = DIRECTORY) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    for old in directory.glob("*.json"):
        old.unlink()
    for ex in exchanges:
        record = ex.record()
        (directory / f"{ex.step.name}.json").write_text(
            json.dumps(record, indent=2, ensure_ascii=False, sort_keys=False) + "\n"
        )
    index = {**meta, "steps": [ex.step.name for ex in exchanges]}
    (directory / INDEX).write_text(json.dumps(index, indent=2) + "\n")


def load(directory: Path = DIRECTORY) -> Recorded:
    index: dict[str, Any] = json.loads((directory / INDEX).read_text())
    records = {
        name: json.loads((directory / f"{name}.json").read_text()) for name in index["steps"]
    }
    return Recorded({k: v for k, v in index.items() if k != "steps"}, records)
