"""Send the corpus to one server and record its answers.

A step names its credential symbolically (`admin_pat`, `cookie:cookie_seq_a`, `none`, ...) and
its path, headers and body as templates over variables (`{id_editor}`); later steps use what
earlier answers gave (`Step.save`), so that the same corpus builds the same state on both
servers from empty. What is recorded (`Exchange.record()`) holds the templates, never a
materialized secret, and the answer with every secret of the run replaced by a placeholder.

Unleash limits some requests per client address (README of the peer): `/auth/simple` 10 a
minute, any POST under `/api/admin/user-admin` 20 a minute. `Pacer` keeps a run under both,
and a 429 that happens anyway (a previous run in the same minute) is waited out and retried.
"""

from __future__ import annotations

import asyncio
import json
import re
import sys
import time
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import httpx

COOKIE = "unleash-session"
JSON = "application/json"
WRITES = frozenset({"POST", "PUT", "PATCH", "DELETE"})
# Variables whose values are secrets of the run: never recorded, replaced in answers.
SECRET_PREFIXES = ("cookie_", "pat_", "token_")
MISSING_ID = 987654321  # an id variable an earlier answer did not give: a user nobody has
NO_BODY: Any = object()
_VAR = re.compile(r"\{([a-z_][a-z0-9_]*)\}")


@dataclass(frozen=True)
class Step:
    """One request of the corpus.

    cred: `none`, a name in CREDENTIALS, `cookie:<var>`, `token:<var>`, `bearer:<var>`,
    `raw:<literal Authorization value>` or `rawcookie:<literal session cookie value>`.
    body: a JSON template (strings `"{var}"` become the variable's value, of its type); raw:
    bytes sent as they are. content_type: overrides `application/json`; with `raw`, None sends
    no Content-Type. A write authenticated by a cookie alone says `Content-Type:
    application/json` as Unleash's web client does, unless `browser=False`.
    save: variable → `json:<dotted path>` | `cookie:<name>` | `header:<name>`, read from a 2xx
    answer; any other answer unsets the variable.
    """

    name: str
    method: str
    path: str
    cred: str = "admin_pat"
    body: Any = NO_BODY
    raw: bytes | None = None
    content_type: str | None = JSON
    headers: Mapping[str, str] = field(default_factory=dict)
    save: Mapping[str, str] = field(default_factory=dict)
    browser: bool = True
    note: str = ""

    def request_record(self) -> dict[str, Any]:
        return {
            "method": self.method,
            "path": self.path,
            "credential": self.cred,
            "headers": dict(self.headers),
            "body": None if self.body is NO_BODY else self.body,
            "raw": None if self.raw is None else self.raw.decode("utf-8", "replace"),
            "content_type": self.content_type
            if (self.body is not NO_BODY or self.raw is not None)
            else None,
        }


# Shorthands for the credential kinds of the corpus.
CREDENTIALS = {
    "admin_cookie": "cookie:cookie_admin",
    "admin_pat": "token:pat_admin",
    "admin_api": "token:token_admin_api",
    "admin_api_bearer": "bearer:token_admin_api",
    "editor_pat": "token:pat_editor",
    "editor_cookie": "cookie:cookie_editor",
    "viewer_pat": "token:pat_viewer",
    "viewer_cookie": "cookie:cookie_viewer",
    "bad_token": "raw:invalid-token",
    "bad_cookie": "rawcookie:s%3Anot-a-session.signature",
    "empty_auth": "raw:",
    "bearer_only": "raw:Bearer",
}


def is_secret(var: str) -> bool:
    return var.startswith(SECRET_PREFIXES)


def fill(template: Any, env: Mapping[str, Any]) -> Any:
    """The template with `{var}` replaced; a string that is one variable takes its type."""
    if isinstance(template, dict):
        return {fill(k, env): fill(v, env) for k, v in template.items()}
    if isinstance(template, list):
        return [fill(v, env) for v in template]
    if isinstance(template, str):
        whole = _VAR.fullmatch(template)
        if whole:
            return lookup(env, whole.group(1))
        return _VAR.sub(lambda m: str(lookup(env, m.group(1))), template)
    return template


def lookup(env: Mapping[str, Any], var: str) -> Any:
    if var in env:
        return env[var]
    if var.startswith("id_"):
        return MISSING_ID
    return f"missing-{var}"


def credential_headers(cred: str, env: Mapping[str, Any]) -> dict[str, str]:
    cred = CREDENTIALS.get(cred, cred)
    kind, _, arg = cred.partition(":")
    if kind == "none":
        return {}
    if kind == "raw":
        return {"Authorization": arg}
    if kind == "rawcookie":
        return {"Cookie": f"{COOKIE}={arg}"}
    value = str(lookup(env, arg))
    if kind == "cookie":
        return {"Cookie": f"{COOKIE}={value}"}
    if kind == "token":
        return {"Authorization": value}
    if kind == "bearer":
        return {"Authorization": f"Bearer {value}"}
    raise ValueError(f"unknown credential {cred!r}")


def uses_cookie(cred: str) -> bool:
    return CREDENTIALS.get(cred, cred).startswith(("cookie:", "rawcookie:"))


class Pacer:
    """At most `limit` requests per 61 s per rule, counted here (Unleash counts per 60 s)."""

    WINDOW = 61.0

    def __init__(self, rules: Sequence[tuple[str, frozenset[str] | None, int]], log: Log) -> None:
        self.rules = rules
        self.sent: dict[int, deque[float]] = {i: deque() for i in range(len(rules))}
        self.log = log

    @staticmethod
    def matches(prefix: str, path: str) -> bool:
        path = path.split("?")[0]
        return path == prefix or path.startswith(prefix + "/")

    async def wait(self, method: str, path: str) -> None:
        for i, (prefix, methods, limit) in enumerate(self.rules):
            if methods is not None and method not in methods:
                continue
            if not self.matches(prefix, path):
                continue
            sent = self.sent[i]
            now = time.monotonic()
            while sent and now - sent[0] > self.WINDOW:
                sent.popleft()
            if len(sent) >= limit:
                pause = self.WINDOW - (now - sent[0]) + 0.2
                if pause >= 2:
                    self.log(f"  pacing: {prefix} at {limit}/min, waiting {pause:.0f} s")
                await asyncio.sleep(pause)
                sent.popleft()
            sent.append(time.monotonic())


Log = Callable[[str], None]


def stderr(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


def unleash_pacer(log: Log = stderr) -> Pacer:
    return Pacer(
        [("/auth/simple", None, 10), ("/api/admin/user-admin", frozenset({"POST"}), 20)], log
    )


@dataclass
class Exchange:
    index: int
    step: Step
    response: dict[str, Any]

    def record(self) -> dict[str, Any]:
        return {
            "index": self.index,
            "step": self.step.name,
            "note": self.step.note,
            "request": self.step.request_record(),
            "response": self.response,
        }


SCRUBBED_KEYS = {
    "secret": "<secret>",
    "inviteLink": "<invite-link>",
    "resetPasswordUrl": "<reset-password-url>",
}


def scrub(value: Any, secrets: Mapping[str, str]) -> Any:
    """Every secret of the run replaced by `<its variable>`; secret-bearing fields by a
    placeholder (a non-empty string stays a non-empty string, so shapes are unchanged)."""
    if isinstance(value, dict):
        return {
            k: (
                SCRUBBED_KEYS[k]
                if k in SCRUBBED_KEYS and isinstance(v, str) and v
                else scrub(v, secrets)
            )
            for k, v in value.items()
        }
    if isinstance(value, list):
        return [scrub(v, secrets) for v in value]
    if isinstance(value, str):
        for name, secret in secrets.items():
            if len(secret) >= 8 and secret in value:
                value = value.replace(secret, f"<{name}>")
        return value
    return value


_SET_COOKIE_VALUE = re.compile(r"^([^=;]+)=([^;]*)")


def scrub_set_cookie(value: str) -> str:
    def placeholder(m: re.Match[str]) -> str:
        return f"{m.group(1)}={'<session>' if m.group(2) else ''}"

    return _SET_COOKIE_VALUE.sub(placeholder, value, count=1)


def record_response(
    r: httpx.Response, method: str, secrets: Mapping[str, str], text_limit: int = 300
) -> dict[str, Any]:
    content = r.content
    kind, body, text = "empty", None, None
    if content and method != "HEAD":
        try:
            body = json.loads(content)
            kind = "json"
        except ValueError:
            kind = "text"
            text = scrub(content.decode("utf-8", "replace")[:text_limit], secrets)
    headers: dict[str, Any] = {}
    for name in ("location", "cache-control", "clear-site-data"):
        if name in r.headers:
            headers[name] = scrub(r.headers[name], secrets)
    cookies = [scrub_set_cookie(v) for v in r.headers.get_list("set-cookie")]
    if cookies:
        headers["set-cookie"] = cookies
    return {
        "status": r.status_code,
        "content_type": r.headers.get("content-type"),
        "headers": headers,
        "body_kind": kind,
        "json": scrub(body, secrets),
        "text": text,
    }


def _extract(r: httpx.Response, source: str) -> Any:
    kind, _, where = source.partition(":")
    if kind == "cookie":
        for value in r.headers.get_list("set-cookie"):
            m = _SET_COOKIE_VALUE.match(value)
            if m and m.group(1).strip() == where and m.group(2):
                return m.group(2)
        return None
    if kind == "header":
        return r.headers.get(where)
    try:
        node: Any = r.json()
    except ValueError:
        return None
    for part in where.split(".") if where else []:
        if isinstance(node, list) and part.isdigit() and int(part) < len(node):
            node = node[int(part)]
        elif isinstance(node, dict) and part in node:
            node = node[part]
        else:
            return None
    return node


async def send(
    client: httpx.AsyncClient, step: Step, env: dict[str, Any], pacer: Pacer | None, log: Log
) -> httpx.Response:
    headers = credential_headers(step.cred, env)
    headers.update({k: str(fill(v, env)) for k, v in step.headers.items()})
    content: bytes | None = None
    if step.body is not NO_BODY:
        content = json.dumps(fill(step.body, env)).encode()
    elif step.raw is not None:
        content = step.raw
    if content is not None and step.content_type is not None:
        headers.setdefault("Content-Type", step.content_type)
    if uses_cookie(step.cred) and step.method in WRITES and step.browser:
        headers.setdefault("Content-Type", JSON)
    path = str(fill(step.path, env))
    for attempt in range(3):
        if pacer is not None:
            await pacer.wait(step.method, path)
        client.cookies.clear()  # each step names its credential itself
        r = await client.request(step.method, path, headers=headers, content=content)
        client.cookies.clear()
        if r.status_code != 429 or pacer is None or attempt == 2:
            return r
        pause = float(r.headers.get("ratelimit-reset", "60")) + 1
        log(f"  429 on {step.name}: waiting {pause:.0f} s and retrying")
        await asyncio.sleep(pause)
    raise AssertionError("unreachable")


async def run(
    client: httpx.AsyncClient,
    steps: Sequence[Step],
    env: Mapping[str, Any],
    *,
    pacer: Pacer | None = None,
    log: Log | None = None,
    label: str = "",
) -> list[Exchange]:
    """Every step in order against `client` (its base URL is the server). `env` holds the
    starting variables (the admin API token, dates); answers add the rest."""
    emit = log or (lambda _line: None)
    state: dict[str, Any] = dict(env)
    seen: dict[str, str] = {}  # every secret of the run so far, also those replaced since
    out: list[Exchange] = []
    for index, step in enumerate(steps, 1):
        r = await send(client, step, state, pacer, emit)
        for var, source in step.save.items():
            # Only from a success: an error body has an `id` too (the error's).
            value = _extract(r, source) if 200 <= r.status_code < 300 else None
            if value is not None:
                state[var] = value
            else:
                state.pop(var, None)
        seen.update({k: str(v) for k, v in state.items() if is_secret(k)})
        out.append(Exchange(index, step, record_response(r, step.method, seen)))
        emit(f"{label}{index:3d} {step.name:55s} {r.status_code}")
    return out
