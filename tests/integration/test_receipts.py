"""Receipts end to end: real Redis, real HTTP, real wasm, and a re-run by the verifier."""

from __future__ import annotations

import copy
import io
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from billing import receipt_keys
from billing.receipts import check, sign
from service.receipt_cli import verify
from tests.integration.conftest import (
    ADMIN_KEY,
    LEGACY_KEY,
    LiveServer,
    make_settings,
    start_server,
    stop_server,
)

CODE = """
const xs = [];
for (let i = 0; i < 2000; i++) xs.push(Math.floor(Math.random() * 1000));
let s = 0;
for (const x of xs) s += x * context.factor;
console.log("sum", s);
return {s, n: xs.length};
"""
CONTEXT = {"factor": 3, "label": "é \u2603", "nested": {"b": [1, 2], "a": None}}


def _run(live: LiveServer, token: str, **extra: Any) -> tuple[dict[str, Any], dict[str, str]]:
    with live.client(token) as http:
        reply = http.post("/execute", json={"code": CODE, "context": CONTEXT, **extra})
    assert reply.status_code == 200, reply.text
    return reply.json(), dict(reply.headers)


def _public(live: LiveServer) -> Any:
    with live.client() as http:
        doc = http.get("/v1/receipts/public-key").json()
    assert doc["algorithm"] == "Ed25519"
    return receipt_keys.parse_public_key(doc["publicKey"])


def test_execute_carries_a_receipt_that_matches_the_fetched_one(
    live: LiveServer, client_id: str
) -> None:
    token = live.new_key(client_id, "standard")
    body, headers = _run(live, token, receipt=True)
    url = headers["x-receipt-url"]
    assert url.startswith(f"/v1/receipts/{body['executionId']}")
    with live.client(token) as http:
        fetched = http.get(url)
    assert fetched.status_code == 200, fetched.text
    envelope = fetched.json()
    # signed twice (at execution and when fetched): the same document and signature
    assert envelope == body["receipt"]
    public = _public(live)
    receipt = check(envelope, public)
    assert receipt["executionId"] == body["executionId"]
    assert receipt["clientId"] == client_id
    assert receipt["plan"] == "standard"
    assert receipt["usage"]["fuel"] == body["metrics"]["fuel"]
    assert receipt["usage"]["peakMemoryBytes"] == body["metrics"]["memoryUsage"]
    assert [line["item"] for line in receipt["lines"]] == ["cpu", "memory", "execution"]
    assert receipt["engine"]["limits"]["timeoutMs"] == 5000
    assert int(receipt["randomSeed"]) > 0


def test_receipt_url_is_always_sent_and_receipt_only_when_asked(
    live: LiveServer, client_id: str
) -> None:
    token = live.new_key(client_id)
    body, headers = _run(live, token)
    assert "receipt" not in body
    assert headers["x-receipt-url"].startswith("/v1/receipts/")


def test_only_the_owner_and_the_admin_see_a_receipt(live: LiveServer, client_id: str) -> None:
    token = live.new_key(client_id)
    other = live.new_key(client_id + "-other")
    body, _ = _run(live, token)
    path = f"/v1/receipts/{body['executionId']}"
    with live.client(other) as http:
        assert http.get(path).status_code == 404
    with live.client(ADMIN_KEY) as http:
        assert http.get(path).status_code == 400  # the admin names the client
        assert http.get(path, params={"clientId": client_id}).status_code == 200
    with live.client(token) as http:
        assert http.get("/v1/receipts/no-such-execution").status_code == 404


def _leaves(doc: Any, path: tuple[Any, ...] = ()) -> Iterator[tuple[Any, ...]]:
    if isinstance(doc, dict):
        for k, v in doc.items():
            yield from _leaves(v, (*path, k))
    elif isinstance(doc, list):
        for i, v in enumerate(doc):
            yield from _leaves(v, (*path, i))
    else:
        yield path


def _tampered(doc: Any, path: tuple[Any, ...]) -> Any:
    changed = copy.deepcopy(doc)
    target = changed
    for step in path[:-1]:
        target = target[step]
    value = target[path[-1]]
    if isinstance(value, bool):
        target[path[-1]] = not value
    elif isinstance(value, int):
        target[path[-1]] = value + 1
    elif value is None:
        target[path[-1]] = "x"
    else:
        target[path[-1]] = value + "0" if value[-1:] != "0" else value[:-1] + "1"
    return changed


def test_verifier_rejects_any_altered_field_and_reruns_identically(
    live: LiveServer, client_id: str, tmp_path: Path
) -> None:
    token = live.new_key(client_id, "standard")
    body, _ = _run(live, token, receipt=True)
    envelope = body["receipt"]
    key_file = tmp_path / "public.pem"
    key_file.write_text(receipt_keys.public_pem(_public(live)))
    code_file, context_file = tmp_path / "code.js", tmp_path / "context.json"
    code_file.write_text(CODE)
    context_file.write_bytes(orjson.dumps(CONTEXT))

    def run(doc: Any, *, rerun: bool = False) -> tuple[int, str]:
        receipt_file = tmp_path / "receipt.json"
        receipt_file.write_bytes(orjson.dumps(doc))
        if rerun:  # the real command, in its own process (it builds its own engine)
            argv = [sys.executable, "-m", "service", "receipt", "verify", str(receipt_file)]
            argv += ["--code", str(code_file), "--context", str(context_file)]
            argv += ["--public-key", str(key_file)]
            env = {
                **os.environ,
                "CODEXEC_MODULE_CACHE_DIR": str(live.settings.cache_dir),
                "CODEXEC_VAR_DIR": str(tmp_path / "var"),
            }
            done = subprocess.run(argv, capture_output=True, text=True, env=env, timeout=120)
            return done.returncode, done.stdout + done.stderr
        out = io.StringIO()
        status = verify(receipt_file, public_key=str(key_file), settings=live.settings, out=out)
        return status, out.getvalue()

    status, text = run(envelope, rerun=True)
    assert status == 0, text
    assert "signature OK" in text
    assert f"fuel {body['metrics']['fuel']} (receipt {body['metrics']['fuel']})" in text
    assert "identical" in text

    paths = list(_leaves(envelope["receipt"]))
    assert len(paths) > 30
    for path in paths:
        status, text = run({**envelope, "receipt": _tampered(envelope["receipt"], path)})
        assert status == 1, (path, text)
        assert "signature does not match" in text

    forged = {**envelope, "signature": {**envelope["signature"], "value": "A" * 88}}
    assert run(forged)[0] == 1

    # the right code with another context (or other code) is refused before any re-run
    context_file.write_bytes(orjson.dumps({**CONTEXT, "factor": 4}))
    status, text = run(envelope, rerun=True)
    assert status == 1
    assert "contextSha256" in text


def test_the_seed_is_what_makes_the_rerun_identical(live: LiveServer, client_id: str) -> None:
    token = live.new_key(client_id)
    first, _ = _run(live, token, receipt=True)
    second, _ = _run(live, token, receipt=True)
    seeds = {first["receipt"]["receipt"]["randomSeed"], second["receipt"]["receipt"]["randomSeed"]}
    assert len(seeds) == 2  # a fresh seed per execution; results differ with it
    assert first["result"] != second["result"]


def test_production_without_a_signing_key_serves_no_receipts(
    redis_server: str, module_cache: Path, tmp_path: Path
) -> None:
    settings = make_settings(
        redis_server,
        tmp_path,
        module_cache_dir=module_cache,
        environment="production",
        api_key="p" * 32,
    )
    server = start_server(settings)
    try:
        with server.client() as http:
            reply = http.get("/v1/receipts/public-key")
        assert reply.status_code == 503
        assert reply.json()["error"]["type"] == "ReceiptsUnavailable"
    finally:
        stop_server(server)
    assert not (tmp_path / receipt_keys.KEY_FILE).exists()


def test_configured_key_is_used(redis_server: str, module_cache: Path, tmp_path: Path) -> None:
    key = Ed25519PrivateKey.generate()
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()
    settings = make_settings(
        redis_server, tmp_path, module_cache_dir=module_cache, receipt_signing_key=pem
    )
    server = start_server(settings)
    try:
        with server.client() as http:
            doc = http.get("/v1/receipts/public-key").json()
    finally:
        stop_server(server)
    assert doc["keyId"] == receipt_keys.key_id(key.public_key())


def test_a_replay_and_the_legacy_key_get_the_receipt_too(live: LiveServer, client_id: str) -> None:
    token = live.new_key(client_id)
    headers = {"X-Execution-ID": "receipt-replay-1"}
    with live.client(token) as http:
        first = http.post("/execute", json={"code": "return 7", "receipt": True}, headers=headers)
        again = http.post("/execute", json={"code": "return 7", "receipt": True}, headers=headers)
    assert again.headers["Idempotent-Replayed"] == "true"
    assert again.headers["X-Receipt-URL"] == first.headers["X-Receipt-URL"]
    assert again.json()["receipt"] == first.json()["receipt"]
    with live.client(LEGACY_KEY) as http:
        fetched = http.get(first.headers["X-Receipt-URL"])
    assert fetched.status_code == 200
    assert fetched.json() == first.json()["receipt"]


def test_code_that_read_the_clock_is_flagged(live: LiveServer, client_id: str) -> None:
    token = live.new_key(client_id)
    with live.client(token) as http:
        body = http.post("/execute", json={"code": "return Date.now() > 0", "receipt": True})
        plain = http.post("/execute", json={"code": "return 1", "receipt": True})
    assert body.json()["receipt"]["receipt"]["readClock"] is True
    assert plain.json()["receipt"]["receipt"]["readClock"] is False


def _rerun(
    live: LiveServer, envelope: Any, code: str, tmp_path: Path, public: Any = None
) -> tuple[int, str]:
    """``codexec receipt verify RECEIPT --code ...`` (context ``{}``), in this process."""
    receipt_file, code_file = tmp_path / "receipt.json", tmp_path / "code.js"
    key_file = tmp_path / "public.pem"
    receipt_file.write_bytes(orjson.dumps(envelope))
    code_file.write_text(code)
    key_file.write_text(receipt_keys.public_pem(public or _public(live)))
    out = io.StringIO()
    status = verify(
        receipt_file,
        code_file=code_file,
        public_key=str(key_file),
        settings=live.settings,
        out=out,
    )
    return status, out.getvalue()


def _execute(live: LiveServer, token: str, code: str, **extra: Any) -> dict[str, Any]:
    with live.client(token) as http:
        reply = http.post("/execute", json={"code": code, "receipt": True, **extra})
    assert reply.status_code == 200, reply.text
    body: dict[str, Any] = reply.json()
    assert body["success"], body
    return body


MODULE_CODE = """
const path = require("path");
const parts = [];
for (let i = 0; i < 50; i++) parts.push(path.join("/srv", "a" + i, "..", "b" + i, "file.txt"));
return path.basename(parts[49]);
"""


def test_a_receipt_of_code_using_allowed_modules_reruns_identically(
    live: LiveServer, client_id: str, tmp_path: Path
) -> None:
    token = live.new_key(client_id, "standard")
    body = _execute(live, token, MODULE_CODE, allowedModules=["node:path", "path"])
    assert body["result"] == "file.txt"
    status, text = _rerun(live, body["receipt"], MODULE_CODE, tmp_path)
    fuel = body["metrics"]["fuel"]
    assert f"fuel {fuel} (receipt {fuel})" in text, text
    assert "identical" in text
    assert "may" not in text
    assert status == 0, text
    receipt = body["receipt"]["receipt"]
    assert receipt["engine"]["limits"]["allowedModules"] == ["path"]
    assert receipt["readRandom"] is False

    # a receipt signed before allowedModules was recorded is re-run without modules
    old = copy.deepcopy(receipt)
    old["engine"]["limits"].pop("allowedModules")
    old.pop("readRandom")
    key = Ed25519PrivateKey.generate()
    status, text = _rerun(live, sign(old, key), MODULE_CODE, tmp_path, key.public_key())
    assert status == 1, text
    assert "DIFFERENT" in text  # require("path") throws there
    plain = copy.deepcopy(_execute(live, token, "return [1, 2].map(x => x * 2)")["receipt"])
    plain["receipt"]["engine"]["limits"].pop("allowedModules")
    plain["receipt"].pop("readRandom")
    status, text = _rerun(live, sign(plain["receipt"], key), "return [1, 2].map(x => x * 2)",
                          tmp_path, key.public_key())  # fmt: skip
    assert status == 0, text
    assert "identical" in text


# fuel that depends on the per-run random key: how many draws until a zero byte
RANDOM_CODE = """
let n = 0;
while (crypto.getRandomValues(new Uint8Array(1))[0] !== 0) n++;
return crypto.randomUUID().length + n * 0;
"""


def test_a_receipt_of_code_using_host_randomness_says_the_rerun_may_differ(
    live: LiveServer, client_id: str, tmp_path: Path
) -> None:
    token = live.new_key(client_id)
    body = _execute(live, token, RANDOM_CODE)
    status, text = _rerun(live, body["receipt"], RANDOM_CODE, tmp_path)
    assert "DIFFERENT" not in text
    assert "random key" in text
    assert "may legitimately differ" in text
    assert status == 0, text
    receipt = body["receipt"]["receipt"]
    assert receipt["readRandom"] is True
    assert receipt["readClock"] is False
    uuid = _execute(live, token, "return crypto.randomUUID()")
    status, text = _rerun(live, uuid["receipt"], "return crypto.randomUUID()", tmp_path)
    assert "may legitimately differ" in text
    assert status == 0, text
    assert uuid["receipt"]["receipt"]["readRandom"] is True
    # Math.random is replayed from the recorded seed: no host randomness
    plain = _execute(live, token, "return Math.random()")
    assert plain["receipt"]["receipt"]["readRandom"] is False


# fuel that depends on the clock: how many reads until it moves on by 3 ms
CLOCK_CODE = """
const t = Date.now();
let n = 0;
while (Date.now() - t < 3) n++;
return n > 0;
"""


def test_a_receipt_of_code_reading_the_clock_says_the_rerun_may_differ(
    live: LiveServer, client_id: str, tmp_path: Path
) -> None:
    token = live.new_key(client_id)
    body = _execute(live, token, CLOCK_CODE)
    status, text = _rerun(live, body["receipt"], CLOCK_CODE, tmp_path)
    assert "DIFFERENT" not in text  # fuel differs, but a re-run may: it says so
    assert "note: the code read the clock, so a re-run may legitimately differ" in text
    assert status == 0, text
    receipt = body["receipt"]["receipt"]
    assert receipt["readClock"] is True
    assert receipt["readRandom"] is False
