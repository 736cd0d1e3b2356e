"""``codexec billing report|export|import|rollup|credit|reconcile|alerts``, ``keys``, ``webhooks``.

:func:`add_commands` adds the subcommands to the ``codexec`` parser; each sets ``args.func``,
an ``async def (args, ctx: CliContext) -> int`` that the entry point awaits with a context
holding the Redis client, the plans, the retention and the output stream.
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path
from typing import TextIO

from billing import keys
from billing.apikeys import ApiKeys
from billing.errors import BillingError
from billing.exports import ExportOptions
from billing.kv import import_file
from billing.ledger_cli import add_ledger_commands, reconcile_after_rollup
from billing.maintenance import rollup
from billing.plans import Plans
from billing.reports import build_report, month_end, render_csv, render_json
from billing.scripts import AnyRedis
from billing.webhook_cli import add_export_commands, add_webhook_commands

__all__ = ["CliContext", "add_commands", "report_range"]


@dataclass
class CliContext:
    """What every billing command needs, built by the ``codexec`` entry point."""

    redis: AnyRedis
    plans: Plans
    retention_days: int
    out: TextIO
    export: ExportOptions = field(default_factory=ExportOptions)


def report_range(
    day: str | None, month: str | None, start: str | None, end: str | None, today: date
) -> tuple[date, date]:
    """The inclusive date range of ``--day``, ``--month`` or ``--from/--to`` (default: today)."""
    if day:
        d = date.fromisoformat(day)
        return d, d
    if month:
        first = keys.parse_period(month)
        return first, month_end(first)
    if start or end:
        first = date.fromisoformat(start) if start else today
        return first, date.fromisoformat(end) if end else today
    return today, today


async def _report(args: argparse.Namespace, ctx: CliContext) -> int:
    first, last = report_range(args.day, args.month, args.start, args.end, datetime.now(UTC).date())
    report = await build_report(ctx.redis, first, last, args.client)
    text = render_csv(report) if args.format == "csv" else render_json(report) + "\n"
    if args.output:
        Path(args.output).write_text(text)
        print(f"wrote {args.output} ({len(report.rows)} records)", file=ctx.out)
    else:
        ctx.out.write(text)
    return 0


async def _import(args: argparse.Namespace, ctx: CliContext) -> int:
    listing = Path(args.keys) if args.keys else None
    for name in args.files:
        summary = await import_file(ctx.redis, Path(name), key_list=listing)
        print(f"{name}: {summary.written} written, {summary.skipped} not newer", file=ctx.out)
    return 0


async def _rollup(args: argparse.Namespace, ctx: CliContext) -> int:
    now = datetime.fromisoformat(args.now) if args.now else None
    if now is not None and now.tzinfo is None:
        now = now.replace(tzinfo=UTC)
    retention = args.retention_days or ctx.retention_days
    s = await rollup(ctx.redis, retention, now)
    print(
        f"clients={s.clients} months_recomputed={s.months_recomputed} "
        f"months_changed={s.months_changed} daily_expired={s.daily_expired} "
        f"ledger_trimmed={s.ledger_trimmed}",
        file=ctx.out,
    )
    await reconcile_after_rollup(ctx, retention, now)
    return 0


async def _keys_create(args: argparse.Namespace, ctx: CliContext) -> int:
    plan = ctx.plans.get(args.plan or ctx.plans.default_name).name
    plaintext = await ApiKeys(ctx.redis).create(args.client, plan)
    print(plaintext, file=ctx.out)
    print(f"(client {args.client}, plan {plan}; shown once, store it now)", file=ctx.out)
    return 0


async def _keys_list(args: argparse.Namespace, ctx: CliContext) -> int:
    for k in await ApiKeys(ctx.redis).list():
        revoked = k.revoked.isoformat() if k.revoked else "-"
        print(
            f"{k.prefix}  {k.client_id}  {k.plan}  {k.created.isoformat()}  revoked={revoked}",
            file=ctx.out,
        )
    return 0


async def _keys_revoke(args: argparse.Namespace, ctx: CliContext) -> int:
    try:
        found = await ApiKeys(ctx.redis).revoke(args.prefix)
    except BillingError as exc:
        print(f"error: {exc}", file=ctx.out)
        return 2
    print("revoked" if found else "no such key", file=ctx.out)
    return 0 if found else 1


def add_commands(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``billing`` and ``keys`` (with their subcommands) to the ``codexec`` parser."""
    billing = subparsers.add_parser("billing", help="usage reports, KV export/import, rollup")
    sub = billing.add_subparsers(dest="billing_command", required=True)

    p = sub.add_parser("report", help="usage per client over a day, month or range")
    when = p.add_mutually_exclusive_group()
    when.add_argument("--day", help="YYYY-MM-DD")
    when.add_argument("--month", help="YYYY-MM")
    when.add_argument("--from", dest="start", help="YYYY-MM-DD (with --to)")
    p.add_argument("--to", dest="end", help="YYYY-MM-DD (inclusive)")
    p.add_argument("--client", help="one client (default: all)")
    p.add_argument("--format", choices=("json", "csv"), default="json")
    p.add_argument("--output", help="write to this file instead of stdout")
    p.set_defaults(func=_report)

    add_export_commands(sub)  # export (kv, csv, json, cloudevents, stripe) and alerts

    p = sub.add_parser("import", help="merge KV bulk files or `wrangler kv bulk get` output")
    p.add_argument("files", nargs="+")
    p.add_argument("--keys", help="the `wrangler kv key list` output the values came from")
    p.set_defaults(func=_import)

    p = sub.add_parser("rollup", help="recompute months, expire old days, trim ledgers")
    p.add_argument("--retention-days", type=int, help="default: the configured retention")
    p.add_argument("--now", help="ISO-8601 time to run as (default: now)")
    p.set_defaults(func=_rollup)

    add_ledger_commands(sub)

    keys_parser = subparsers.add_parser("keys", help="API keys")
    ksub = keys_parser.add_subparsers(dest="keys_command", required=True)
    p = ksub.add_parser("create", help="create a key (plaintext shown once)")
    p.add_argument("client")
    p.add_argument("--plan", help="default: the default plan")
    p.set_defaults(func=_keys_create)
    p = ksub.add_parser("list", help="list keys (hash prefixes, never plaintext)")
    p.set_defaults(func=_keys_list)
    p = ksub.add_parser("revoke", help="revoke a key by hash prefix")
    p.add_argument("prefix")
    p.set_defaults(func=_keys_revoke)
    add_webhook_commands(subparsers)
