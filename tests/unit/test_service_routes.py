"""The app's route table: flat, in order, and the same API as FastAPI's ``include_router``."""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI
from fastapi.routing import APIRoute
from starlette.routing import Match, Route

from service.app import create_app
from service.config import Settings
from service.routes import batches, billing, execute, executions, health, receipts, usage


def _app(tmp_path: Path, **settings: object) -> FastAPI:
    return create_app(Settings(var_dir=tmp_path, **settings))  # type: ignore[arg-type]


def _first_match(app: FastAPI, method: str, path: str) -> int:
    scope = {"type": "http", "method": method, "path": path, "root_path": "", "headers": []}
    for index, route in enumerate(app.router.routes):
        if route.matches(dict(scope))[0] == Match.FULL:
            return index
    raise AssertionError(f"no route for {method} {path}")


def test_routes_are_flat_and_execute_is_matched_first(tmp_path: Path) -> None:
    app = _app(tmp_path, bench_endpoints=True)
    api = [r for r in app.router.routes if isinstance(r, APIRoute)]
    assert all(isinstance(r, Route) for r in app.router.routes)  # no nested routers
    assert [r.path for r in api[:3]] == ["/execute", "/", "/v1/noop"]
    assert _first_match(app, "POST", "/execute") == 0
    # the bench's no-op baseline is matched right after /execute and its alias
    assert _first_match(app, "POST", "/v1/noop") == 2
    assert _first_match(app, "GET", "/docs") > 2


def test_flat_routes_describe_the_same_api_as_included_routers(tmp_path: Path) -> None:
    flat = _app(tmp_path)
    included = FastAPI(title=flat.title, version=flat.version, summary=flat.summary, lifespan=None)
    for router in (execute, usage, billing, health, receipts, executions, batches):
        included.include_router(router.router)
    assert flat.openapi() == included.openapi()
