"""The ceiling: a bare ASGI app on Tenantry's server stack, answering a constant JSON body.

    python -m bench.ceiling_app --port P [--workers N] [--bytes 1234]

Every GET answers 200 with `{"pad":"xxx…"}` of exactly `--bytes` bytes (the suite passes the
size of Tenantry's `GET /v1/users/self` body), `content-type: application/json`. It is served
by uvicorn.run with the same arguments as `tenantry serve` (an app factory, access log off,
proxy headers off, uvicorn[standard]'s uvloop and httptools), so the difference to Tenantry is
the framework, authentication, the database and the JSON body's making: no FastAPI, no routing,
no middleware.
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

ENV = "BENCH_CEILING_BYTES"


def body_of(size: int) -> bytes:
    """A JSON object of exactly `size` bytes (at least 10)."""
    size = max(size, 10)
    return b'{"pad":"' + b"x" * (size - 10) + b'"}'


def create_app() -> ASGIApp:
    body = body_of(int(os.environ.get(ENV, "1024")))
    start = {
        "type": "http.response.start",
        "status": 200,
        "headers": [
            (b"content-type", b"application/json"),
            (b"content-length", str(len(body)).encode()),
        ],
    }
    done = {"type": "http.response.body", "body": body}

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            while True:
                message = await receive()
                if message["type"] == "lifespan.startup":
                    await send({"type": "lifespan.startup.complete"})
                elif message["type"] == "lifespan.shutdown":
                    await send({"type": "lifespan.shutdown.complete"})
                    return
        if scope["type"] != "http":
            return
        await send(start)
        await send(done)

    return app


def main(argv: list[str] | None = None) -> int:
    import uvicorn

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8002)
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--bytes", type=int, default=None, help="body size")
    args = parser.parse_args(argv)
    if args.bytes is not None:
        os.environ[ENV] = str(args.bytes)  # inherited by spawned workers
    uvicorn.run(  # the same arguments as tenantry.cli.serve
        "bench.ceiling_app:create_app",
        factory=True,
        host=args.host,
        port=args.port,
        workers=args.workers,
        log_level="warning",
        access_log=False,
        proxy_headers=False,
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
