"""The ledger without Redis: entries as stored, sums by period, the correction commands."""

from __future__ import annotations

import argparse
from datetime import UTC, datetime

import pytest

from billing.cli import add_commands
from billing.ledger import parse_entry
from billing.reconcile import COMPARED, Difference, ReconcileResult, sum_entries

AT = datetime(2024, 3, 31, 23, 59, 59, 999000, tzinfo=UTC)


def execution(sid: str, at_ms: int, cost: int, errors: int = 0) -> dict[bytes, bytes]:
    return {b"id": sid.encode(), b"plan": b"basic", b"at_ms": str(at_ms).encode(),
            b"executions": b"1", b"errors": str(errors).encode(), b"fuel": b"100",
            b"billed_cpu_ns": b"7", b"cpu_us": b"5", b"wall_us": b"9", b"mem_bytes": b"1024",
            b"cost_pusd": str(cost).encode()}  # fmt: skip


def test_an_execution_entry() -> None:
    at_ms = int(AT.timestamp() * 1000)
    e = parse_entry("acme", b"1711929599999-3", execution("x1", at_ms, 500, errors=1))
    assert (e.kind, e.execution_id, e.client_id, e.plan) == ("execution", "x1", "acme", "basic")
    assert e.at == AT
    assert e.at_ms == at_ms
    assert (e.fuel, e.billed_cpu_ns, e.cpu_us, e.wall_us, e.mem_bytes) == (100, 7, 5, 9, 1024)
    assert (e.cost_pusd, e.error, e.executions, e.errors) == (500, True, 1, 1)
    assert e.entry_id == "1711929599999-3"


def test_a_void_entry() -> None:
    raw = {"kind": "void", "id": "x1", "plan": "", "at_ms": "1711929600000",
           "cost_pusd": "-500", "reason": "bug", "ref": "1711929599999-3"}  # fmt: skip
    e = parse_entry("acme", "1711929600001-0", raw)
    assert (e.kind, e.execution_id, e.cost_pusd, e.executions, e.fuel) == ("void", "x1", -500, 0, 0)
    assert e.fields["reason"] == "bug"
    assert e.fields["ref"] == "1711929599999-3"
    assert not e.error


def test_sums_by_day_and_month_of_at() -> None:
    last_ms = int(AT.timestamp() * 1000)
    entries = [
        parse_entry("a", "1-0", execution("x1", last_ms, 500)),
        parse_entry("a", "2-0", execution("x2", last_ms + 1, 700, errors=1)),  # April
        parse_entry(
            "a",
            "3-0",
            {
                "kind": "credit",
                "id": "c",
                "at_ms": str(last_ms + 2),
                "cost_pusd": "-200",
                "reason": "goodwill",
            },
        ),
    ]
    sums = sum_entries(entries)
    assert set(sums) == {"2024-03-31", "2024-03", "2024-04-01", "2024-04"}
    assert sums["2024-03"].executions == 1
    assert sums["2024-03"].cost_pusd == 500
    assert sums["2024-04"].executions == 1
    assert sums["2024-04"].errors == 1
    assert sums["2024-04"].cost_pusd == 500
    assert sums["2024-04-01"] == sums["2024-04"]


def test_result_counts_mismatched_periods() -> None:
    diffs = [Difference("a", "2024-04", f, 1, 0) for f in COMPARED[:3]]
    diffs.append(Difference("b", "2024-04-01", "fuel", 0, 1))
    result = ReconcileResult(2, 10, diffs)
    assert result.mismatched_periods == 2
    assert not result.ok
    assert ReconcileResult(1, 1).ok


def parser() -> argparse.ArgumentParser:
    top = argparse.ArgumentParser(prog="codexec")
    add_commands(top.add_subparsers(dest="command", required=True))
    return top


def test_credit_needs_an_amount_or_a_void_and_a_reason() -> None:
    p = parser()
    args = p.parse_args(["billing", "credit", "acme", "--amount", "1.5", "--reason", "x"])
    assert (args.client, args.amount, args.void, args.reason) == ("acme", "1.5", None, "x")
    args = p.parse_args(["billing", "credit", "acme", "--void", "ex-1", "--reason", "x"])
    assert args.void == "ex-1"
    for bad in (
        ["billing", "credit", "acme", "--reason", "x"],
        ["billing", "credit", "acme", "--amount", "1", "--void", "e", "--reason", "x"],
        ["billing", "credit", "acme", "--amount", "1"],
    ):
        with pytest.raises(SystemExit):
            p.parse_args(bad)
    args = p.parse_args(["billing", "reconcile", "--client", "acme", "--month", "2024-04"])
    assert (args.client, args.month) == ("acme", "2024-04")
