"""Okta's and Entra ID's request sequences (fixtures/sequences/, from their public
documentation) replayed against the face: each step's status and the fields it expects."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tests.faces.scim.conftest import BASE, Idp

SEQUENCES = Path(__file__).parent / "fixtures" / "sequences"


def _fill(value: Any, saved: dict[str, str]) -> Any:
    text = json.dumps(value)
    for name, found in saved.items():
        text = text.replace("{" + name + "}", found)
    return json.loads(text)


@pytest.mark.parametrize("name", ["okta", "entra"])
async def test_a_recorded_sequence_replays(idp: Idp, name: str) -> None:
    steps = json.loads((SEQUENCES / f"{name}.json").read_text())["steps"]
    saved: dict[str, str] = {}
    for number, step in enumerate(steps):
        path = _fill(step["path"], saved)
        body = _fill(step.get("body"), saved)
        r = await idp.client.request(step["method"], BASE + path, json=body, headers=idp.headers())
        label = f"{name} step {number}: {step['method']} {path}"
        assert r.status_code == step["status"], f"{label}: {r.status_code} {r.text}"
        if "save" in step:
            saved[step["save"]] = r.json()["id"]
        for key, wanted in step.get("expect", {}).items():
            got = r.json().get(key)
            if isinstance(wanted, dict):
                got = {k: v for k, v in (got or {}).items() if k in wanted}
            assert got == wanted, f"{label}: {key} is {got!r}, not {wanted!r}"
