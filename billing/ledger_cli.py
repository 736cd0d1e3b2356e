"""``codexec billing credit`` and ``codexec billing reconcile``: ledger corrections and audit.

Added to the ``billing`` command by :func:`add_ledger_commands`; each handler has the
signature of :mod:`billing.cli` (``async def (args, ctx) -> int``).
"""

from __future__ import annotations

import argparse
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from billing import keys
from billing.corrections import CorrectionRefused, credit, void
from billing.money import parse_usd
from billing.reconcile import ReconcileResult, reconcile, save_result

if TYPE_CHECKING:
    from billing.cli import CliContext

__all__ = ["add_ledger_commands", "reconcile_after_rollup"]


async def _credit(args: argparse.Namespace, ctx: CliContext) -> int:
    try:
        keys.validate_client_id(args.client)
        if args.void:
            entry_id = await void(ctx.redis, args.client, args.void, args.reason)
            print(f"voided {args.void}: ledger entry {entry_id}", file=ctx.out)
        else:
            credit_id, entry_id = await credit(
                ctx.redis, args.client, parse_usd(args.amount), args.reason
            )
            print(
                f"credited {args.amount} USD as {credit_id}: ledger entry {entry_id}", file=ctx.out
            )
    except (CorrectionRefused, ValueError) as exc:
        print(f"error: {exc}", file=ctx.out)
        return 2
    return 0


def _print(result: ReconcileResult, ctx: CliContext) -> None:
    for d in result.differences:
        print(
            f"MISMATCH {d.client_id} {d.period} {d.field}: counters={d.counters} "
            f"ledger={d.ledger} (difference {d.counters - d.ledger})",
            file=ctx.out,
        )
    print(
        f"reconcile: clients={result.clients} periods={result.periods} "
        f"mismatched_periods={result.mismatched_periods}",
        file=ctx.out,
    )


async def _reconcile(args: argparse.Namespace, ctx: CliContext) -> int:
    try:
        result = await reconcile(
            ctx.redis, retention_days=ctx.retention_days, client_id=args.client, month=args.month
        )
    except ValueError as exc:
        print(f"error: {exc}", file=ctx.out)
        return 2
    if args.client is None and args.month is None:
        await save_result(ctx.redis, result, datetime.now(UTC))
    _print(result, ctx)
    return 0 if result.ok else 1


async def reconcile_after_rollup(
    ctx: CliContext, retention_days: int, now: datetime | None
) -> None:
    """What ``billing rollup`` (the maintenance CronJob) does after the roll-up: reconcile
    every client and keep the result for the service's ``codexec_reconcile_mismatches``."""
    at = now or datetime.now(UTC)
    result = await reconcile(ctx.redis, retention_days=retention_days, now=at)
    await save_result(ctx.redis, result, at)
    _print(result, ctx)


def add_ledger_commands(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``credit`` and ``reconcile`` to the ``billing`` subcommands."""
    p = sub.add_parser("credit", help="credit a client, or void one execution (ledger entry)")
    p.add_argument("client")
    what = p.add_mutually_exclusive_group(required=True)
    what.add_argument("--amount", help="USD to credit, a decimal string")
    what.add_argument("--void", metavar="EXECUTION_ID", help="void this execution's charge")
    p.add_argument("--reason", required=True, help="why (kept in the ledger entry)")
    p.set_defaults(func=_credit)

    p = sub.add_parser("reconcile", help="prove counters == sums of ledger entries")
    p.add_argument("--client", help="one client (default: all)")
    p.add_argument("--month", help="YYYY-MM (default: every period still complete)")
    p.set_defaults(func=_reconcile)
