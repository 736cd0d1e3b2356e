"""A plan's ``allowed_modules`` bounds what a request's ``allowedModules`` may name.

A real service with a plans file of its own: ``narrow`` allows ``path`` only, ``none``
allows nothing, ``wide`` allows ``*``. A module outside the plan is a 400 naming
``allowedModules`` and the module; ``*`` in a request means every module the plan allows.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from billing.plans import Plans
from service.errors import BadRequest
from service.validation import plan_modules
from tests.integration.conftest import LiveServer, make_settings, start_server, stop_server

BASE = {
    "max_timeout_ms": 10000,
    "max_memory_bytes": 134217728,
    "price_per_cpu_second": "0.0001",
    "price_per_mb": "0.00001",
    "rate_per_second": 1000,
    "burst": 1000,
}
PLANS = {
    "default": "narrow",
    "plans": {
        "narrow": {**BASE, "allowed_modules": ["path"]},
        "none": {**BASE, "allowed_modules": []},
        "wide": {**BASE, "allowed_modules": ["*"]},
        "node": {**BASE, "allowed_modules": ["node:util", "fs"]},
    },
}
# what each provided module gives this run: loaded, or the error code of require()
PROBE = """
const out = {};
for (const name of ["path", "util", "crypto"]) {
  try { require(name); out[name] = "loaded"; } catch (e) { out[name] = e.code; }
}
return out;
"""
NO = "ERR_MODULE_NOT_ALLOWED"


@pytest.fixture(scope="module")
def server(
    redis_server: str, module_cache: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[LiveServer]:
    var = tmp_path_factory.mktemp("plan-modules")
    plans = var / "plans.json"
    plans.write_text(json.dumps(PLANS))
    live = start_server(
        make_settings(redis_server, var / "var", module_cache_dir=module_cache, plans_file=plans)
    )
    try:
        yield live
    finally:
        stop_server(live)


def execute(server: LiveServer, plan: str, allowed: list[str]) -> tuple[int, Any]:
    token = server.new_key(f"modules-{plan}", plan=plan)
    with server.client(token) as http:
        resp = http.post("/execute", json={"code": PROBE, "allowedModules": allowed})
    return resp.status_code, resp.json()


@pytest.mark.parametrize(
    ("plan", "allowed", "loaded"),
    [
        ("narrow", ["path"], {"path": "loaded", "util": NO, "crypto": NO}),
        ("narrow", ["node:path"], {"path": "loaded", "util": NO, "crypto": NO}),
        ("narrow", ["*"], {"path": "loaded", "util": NO, "crypto": NO}),
        ("narrow", [], {"path": NO, "util": NO, "crypto": NO}),
        ("none", ["*"], {"path": NO, "util": NO, "crypto": NO}),
        ("wide", ["*"], {"path": "loaded", "util": "loaded", "crypto": "loaded"}),
        ("wide", ["crypto"], {"path": NO, "util": NO, "crypto": "loaded"}),
        ("node", ["*"], {"path": NO, "util": "loaded", "crypto": NO}),
    ],
)
def test_modules_within_the_plan_run(
    server: LiveServer, plan: str, allowed: list[str], loaded: dict[str, str]
) -> None:
    status, body = execute(server, plan, allowed)
    assert status == 200, body
    assert body["result"] == loaded, body


@pytest.mark.parametrize(
    ("plan", "allowed", "module"),
    [
        ("narrow", ["util"], "util"),
        ("narrow", ["path", "node:crypto"], "crypto"),
        ("narrow", ["*", "util"], "util"),
        ("none", ["path"], "path"),
        ("node", ["util", "path"], "path"),
    ],
)
def test_a_module_outside_the_plan_is_400(
    server: LiveServer, plan: str, allowed: list[str], module: str
) -> None:
    status, body = execute(server, plan, allowed)
    assert status == 400, body
    error = body["error"]
    assert error["field"] == "allowedModules"
    assert f"'{module}'" in error["message"]
    assert plan in error["message"]


def test_plan_modules_without_a_server() -> None:
    plans = Plans.parse(json.dumps(PLANS))
    assert plan_modules(["*"], plans.get("narrow")) == frozenset({"path"})
    assert plan_modules(["*"], plans.get("wide")) == frozenset({"*"})
    assert plan_modules(["*"], plans.get("none")) == frozenset()
    assert plan_modules(["node:path"], plans.get("narrow")) == frozenset({"node:path"})
    with pytest.raises(BadRequest) as refused:
        plan_modules(["crypto"], plans.get("narrow"))
    assert refused.value.field == "allowedModules"
