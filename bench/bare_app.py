"""The machine's yardstick: the prototype's no-op FastAPI app, not codexec.

``../shared/prototype/REPORT.md`` section 9 measured this endpoint (a pydantic model parsed
from a small JSON body, a pydantic model sent back; no middleware, no auth) at 9,059 / 16,854
req/s with 1 / 2 workers on "this machine". The same KVM guest runs at different speeds on
different days, so ``bench http`` serves it again in the same run: its figures say how fast
the machine is today, and its p99 is the least any FastAPI endpoint gets here at the same
concurrency. Run with ``python -m bench.bare_app PORT WORKERS`` (same ``SO_REUSEPORT``
workers as ``codexec serve``).
"""

from __future__ import annotations

import sys

from fastapi import FastAPI
from pydantic import BaseModel

PROTOTYPE_RPS = {1: 9059.0, 2: 16854.0}
"""REPORT.md section 9: the prototype's ``/noop`` with 1 and 2 workers (wrk -c16, 10 s)."""


class _Req(BaseModel):
    code: str
    timeout_ms: int = 1000


class _Resp(BaseModel):
    ok: bool
    result: str | None = None


def create_app() -> FastAPI:
    """The prototype's app: one ``POST /noop``."""
    app = FastAPI()

    @app.post("/noop", response_model=_Resp)
    async def noop(req: _Req) -> _Resp:
        return _Resp(ok=True, result=str(len(req.code)))

    return app


if __name__ == "__main__":
    from service.workers import run_workers

    run_workers(
        int(sys.argv[2]),
        "127.0.0.1",
        int(sys.argv[1]),
        log_level="WARNING",
        app="bench.bare_app:create_app",
    )
