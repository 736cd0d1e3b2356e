"""The benchmark entry point and the wrk output parser (pure parts of ``make bench``)."""

from __future__ import annotations

import pytest

from bench.__main__ import main
from bench.http_bench import parse_wrk

WRK_OUTPUT = """Running 10s test @ http://127.0.0.1:8787/execute
  1 threads and 16 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency     9.45ms    2.10ms  45.03ms   90.00%
  Latency Distribution
     50%    9.45ms
     75%   10.10ms
     90%   11.00ms
     99%   45.03ms
  16650 requests in 10.00s, 7.00MB read
  Non-2xx or 3xx responses: 3
Requests/sec:   1665.00
Transfer/sec:    716.00KB
"""


def test_unknown_suite_is_refused() -> None:
    with pytest.raises(SystemExit) as exited:
        main(["nope"])
    assert exited.value.code == 2


def test_parse_wrk() -> None:
    assert parse_wrk(WRK_OUTPUT) == {"rps": 1665.0, "p50_ms": 9.45, "p99_ms": 45.03, "non_2xx": 3.0}
    assert parse_wrk(WRK_OUTPUT.replace("99%   45.03ms", "99%  812.00us"))["p99_ms"] == 0.812
    with pytest.raises(RuntimeError):
        parse_wrk("garbage")
