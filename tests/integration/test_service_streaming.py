"""Streamed executions (``Accept: text/event-stream``) read by a real HTTP client, real server."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx

from tests.integration.conftest import LiveServer, usage_today

SSE = {"Accept": "text/event-stream"}
# Busy-waits (Date.now() is the wall clock) so the gap between the lines is real work.
SPIN = "{ const t = Date.now(); while (Date.now() - t < %d) {} }"


@dataclass
class Event:
    """One Server-Sent Event and when the client had it (``time.monotonic``)."""

    name: str
    data: Any
    at: float


def events(response: httpx.Response) -> Iterator[Event]:
    """Parse a ``text/event-stream`` body as it arrives."""
    name, data = "message", ""
    for line in response.iter_lines():
        if line.startswith("event: "):
            name = line[len("event: ") :]
        elif line.startswith("data: "):
            data = line[len("data: ") :]
        elif line == "" and data:
            yield Event(name, json.loads(data), time.monotonic())
            name, data = "message", ""


def stream(http: httpx.Client, body: dict[str, Any], **headers: str) -> list[Event]:
    with http.stream("POST", "/execute", json=body, headers={**SSE, **headers}) as r:
        assert r.status_code == 200, r.read()
        assert r.headers["content-type"].startswith("text/event-stream")
        return list(events(r))


def comparable(body: dict[str, Any]) -> dict[str, Any]:
    """A response without what differs between two runs of the same code (ID, timings)."""
    metrics = {k: v for k, v in body["metrics"].items() if k not in ("executionTime", "cpuTime")}
    kept = {k: v for k, v in body.items() if k not in ("executionId", "metrics", "receipt")}
    return {**kept, "metrics": metrics}


def test_lines_arrive_while_the_code_runs(live: LiveServer, client_id: str) -> None:
    token = live.new_key(client_id)
    code = f"console.log('first'); {SPIN % 600}; console.log('second'); {SPIN % 600}; return 1;"
    with live.client(token) as http:
        got = stream(http, {"code": code})
    assert [e.name for e in got] == ["output", "output", "result"]
    first, second, result = got
    assert (first.data, second.data) == ("first", "second")
    assert result.data["output"] == ["first", "second"]
    assert result.data["result"] == 1
    # Each line left the server ~600 ms of busy-waiting before the next event: had the lines
    # been sent at the end, these gaps would be ~0 (lower bounds only: load makes them longer).
    gap_first, gap_second = second.at - first.at, result.at - second.at
    print(
        f"\nstream gaps: first->second {gap_first * 1000:.0f} ms, "
        f"second->result {gap_second * 1000:.0f} ms"
    )
    assert gap_first > 0.3
    assert gap_second > 0.3


def test_result_event_is_the_plain_response(live: LiveServer, client_id: str) -> None:
    token = live.new_key(client_id)
    body = {"code": "console.log('a', {b: [1, 2]}); console.warn('w'); return {n: 42};"}
    with live.client(token) as http:
        plain = http.post("/execute", json=body)
        got = stream(http, body)
    assert plain.status_code == 200
    assert [e.name for e in got] == ["output", "output", "result"]
    assert [e.data for e in got[:2]] == ['a {"b":[1,2]}', "w"]
    assert comparable(got[-1].data) == comparable(plain.json())
    assert usage_today(live, client_id)["executions"] == 2


def test_timeout_keeps_the_lines_printed_before_it(live: LiveServer, client_id: str) -> None:
    token = live.new_key(client_id)
    code = "console.log('one'); console.log('two\\nlines'); while (true) {}"
    with live.client(token) as http:
        got = stream(http, {"code": code, "timeout": 300})
    assert [e.name for e in got] == ["output", "output", "result"]
    assert [e.data for e in got[:2]] == ["one", "two\nlines"]
    result = got[-1].data
    assert result["success"] is False
    assert result["error"]["type"] == "TimeoutError"
    assert result["output"] == ["one", "two\nlines"]


def test_output_limit_streams_only_the_kept_lines(live: LiveServer, client_id: str) -> None:
    token = live.new_key(client_id)
    code = "for (let i = 0; i < 5000; i++) console.log(i);"
    with live.client(token) as http:
        got = stream(http, {"code": code})
    lines = [e.data for e in got if e.name == "output"]
    result = got[-1].data
    assert result["error"]["type"] == "OutputLimitError"
    assert lines == result["output"]
    assert len(lines) == live.settings.max_output_lines


def test_disconnect_stops_the_run_and_bills_it(live: LiveServer, client_id: str) -> None:
    token = live.new_key(client_id)
    execution_id = f"sse-{uuid.uuid4()}"
    body = {"code": "console.log('started'); while (true) {}", "timeout": 10_000}
    started = time.monotonic()
    with live.client(token) as http:
        headers = {**SSE, "X-Execution-ID": execution_id}
        with http.stream("POST", "/execute", json=body, headers=headers) as r:
            assert r.status_code == 200
            first = next(events(r))
            assert first.data == "started"
        # the connection is closed here, with the code still in its endless loop
    deadline = time.monotonic() + 30  # hang guard
    while usage_today(live, client_id).get("executions", 0) < 1:
        assert time.monotonic() < deadline, "the stopped run was never recorded"
        time.sleep(0.05)
    stopped_after = time.monotonic() - started
    usage = usage_today(live, client_id)
    assert usage["executions"] == 1
    assert usage["errors"] == 1
    assert usage["fuel"] > 0
    # The stored answer (replayed for the same ID) says why the run ended, and what it printed.
    with live.client(token) as http:
        replay = http.post("/execute", json=body, headers={"X-Execution-ID": execution_id})
    assert replay.headers.get("Idempotent-Replayed") == "true"
    stored = replay.json()
    assert stored["error"]["type"] == "StoppedError"
    assert stored["output"] == ["started"]
    assert stored["metrics"]["executionTime"] < 10_000
    print(f"\nrun stopped and billed {stopped_after * 1000:.0f} ms after the request")
    assert usage_today(live, client_id)["executions"] == 1


def test_replay_streams_only_the_result(live: LiveServer, client_id: str) -> None:
    token = live.new_key(client_id)
    execution_id = f"sse-{uuid.uuid4()}"
    body = {"code": "console.log('once'); return Math.random();"}
    with live.client(token) as http:
        first = stream(http, body, **{"X-Execution-ID": execution_id})
        again = stream(http, body, **{"X-Execution-ID": execution_id})
    assert [e.name for e in first] == ["output", "result"]
    assert [e.name for e in again] == ["result"]
    assert again[0].data == first[-1].data
    assert usage_today(live, client_id)["executions"] == 1


def test_refusals_are_plain_json_errors(live: LiveServer, client_id: str) -> None:
    token = live.new_key(client_id)
    with live.client(token) as http:
        r = http.post("/execute", json={"code": "return 1", "timeout": 10**9}, headers=SSE)
    assert r.status_code == 400
    assert r.headers["content-type"].startswith("application/json")
    assert r.json()["error"]["field"] == "timeout"
