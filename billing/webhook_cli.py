"""``codexec webhooks set|list|retry|ping``, ``codexec billing alerts`` and ``billing export``.

Added by :func:`add_webhook_commands` (to the top-level parser) and
:func:`add_export_commands` (to ``billing``); each handler has the signature of
:mod:`billing.cli` (``async def (args, ctx) -> int``).
"""

from __future__ import annotations

import argparse
from collections.abc import AsyncIterator, Callable
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from typing import TYPE_CHECKING

from billing import keys
from billing.alerts import parse_thresholds
from billing.errors import BillingError
from billing.exports import LEDGER_FORMATS, export_lines, load_customers
from billing.kv import export_to_dir
from billing.kvformat import MAX_PAIRS
from billing.reports import month_end
from billing.webhooks import Outbox, Webhooks

if TYPE_CHECKING:
    from billing.cli import CliContext

__all__ = ["add_export_commands", "add_webhook_commands", "export_range"]


def _fail(ctx: CliContext, message: str) -> int:
    print(f"error: {message}", file=ctx.out)
    return 2


async def _set(args: argparse.Namespace, ctx: CliContext) -> int:
    try:
        secret = await Webhooks(ctx.redis).set_endpoint(args.client, args.url, rotate=args.rotate)
    except ValueError as exc:
        return _fail(ctx, str(exc))
    print(f"webhooks of {args.client} go to {args.url}", file=ctx.out)
    if secret is None:
        print("signing secret unchanged (--rotate makes a new one)", file=ctx.out)
    else:
        print(f"signing secret (shown once, store it now): {secret}", file=ctx.out)
    return 0


async def _list(args: argparse.Namespace, ctx: CliContext) -> int:
    if args.failed:
        letters = await Outbox(ctx.redis).dead_letters(count=args.limit)
        for letter in letters:
            d = letter.delivery
            failed_ms = int(letter.entry_id.partition("-")[0])
            failed = datetime.fromtimestamp(failed_ms / 1000, UTC).isoformat(timespec="seconds")
            print(
                f"{d.id}  {d.client_id}  {d.event}  attempts={d.attempts}  failed={failed}  "
                f"{d.url}  {d.last_error[:120]!r}",
                file=ctx.out,
            )
        print(f"{len(letters)} dead letter(s)", file=ctx.out)
        return 0
    for ep in await Webhooks(ctx.redis).endpoints():
        thresholds = ",".join(map(str, ep.thresholds)) if ep.thresholds else "plan"
        created = ep.created.isoformat(timespec="seconds") if ep.created else "-"
        print(
            f"{ep.client_id}  {ep.url or '-'}  thresholds={thresholds}  created={created}",
            file=ctx.out,
        )
    return 0


async def _retry(args: argparse.Namespace, ctx: CliContext) -> int:
    if not args.all and not args.id:
        return _fail(ctx, "give a delivery ID or --all")
    count = await Outbox(ctx.redis).retry_dead(None if args.all else args.id)
    print(f"{count} delivery(ies) queued again", file=ctx.out)
    return 0 if count or args.all else 1


async def _ping(args: argparse.Namespace, ctx: CliContext) -> int:
    endpoint = await Webhooks(ctx.redis).endpoint(args.client)
    if endpoint is None or endpoint.url is None:
        return _fail(ctx, f"client {args.client} has no webhook URL (codexec webhooks set)")
    sent = datetime.now(UTC).isoformat()
    delivery = await Outbox(ctx.redis).enqueue(
        args.client, endpoint.url, "webhook.test", {"sentAt": sent}
    )
    print(f"queued {delivery}", file=ctx.out)
    return 0


async def _alerts(args: argparse.Namespace, ctx: CliContext) -> int:
    hooks = Webhooks(ctx.redis)
    try:
        keys.validate_client_id(args.client)
        if args.thresholds:
            await hooks.set_thresholds(args.client, parse_thresholds(args.thresholds))
        elif args.plan_default:
            await hooks.set_thresholds(args.client, None)
    except ValueError as exc:
        return _fail(ctx, str(exc))
    endpoint = await hooks.endpoint(args.client)
    own = endpoint.thresholds if endpoint else None
    month = keys.month_period(datetime.now(UTC))
    fired = await ctx.redis.hkeys(keys.alerts(args.client, month))
    shown = ",".join(map(str, own)) if own else "the plan's"
    print(f"{args.client}: thresholds {shown} (percent of the monthly budget)", file=ctx.out)
    done = sorted(int(f) for f in fired if f.isdigit())  # not the p:<t> "pending" marks
    print(f"fired in {month}: {','.join(map(str, done)) or 'none'}", file=ctx.out)
    if endpoint is None or endpoint.url is None:
        print("no webhook URL: alerts are not sent (codexec webhooks set)", file=ctx.out)
    return 0


def export_range(
    month: str | None, start: str | None, end: str | None, today: date
) -> tuple[datetime, datetime]:
    """``[start, end)`` in UTC of ``--month`` or ``--from/--to`` (inclusive days); default:
    this month so far."""
    if month:
        first = keys.parse_period(month)
        last = month_end(first)
    else:
        first = date.fromisoformat(start) if start else today.replace(day=1)
        last = date.fromisoformat(end) if end else today
    if last < first:
        raise ValueError(f"the range ends ({last}) before it starts ({first})")
    return (
        datetime.combine(first, time(), UTC),
        datetime.combine(last + timedelta(days=1), time(), UTC),
    )


async def _export(args: argparse.Namespace, ctx: CliContext) -> int:
    if args.format == "kv":
        if not args.dir:
            return _fail(ctx, "--format kv writes bulk files: give --dir")
        paths = await export_to_dir(
            ctx.redis, Path(args.dir), args.client, max_pairs=args.max_pairs
        )
        for path in paths:
            print(path, file=ctx.out)
        print(f"{len(paths)} file(s)", file=ctx.out)
        return 0
    opts = ctx.export
    try:
        start, end = export_range(args.month, args.start, args.end, datetime.now(UTC).date())
        customers_file = args.customers or opts.customers_file
        customers = load_customers(Path(customers_file)) if customers_file else None
        lines = export_lines(
            ctx.redis,
            args.format,
            start,
            end,
            args.client,
            source=args.source or opts.source,
            event_name=args.event_name or opts.event_name,
            customers=customers,
            value=args.value or opts.value,
        )
        if args.output:
            with Path(args.output).open("wb") as sink:
                count = await _drain(lines, sink.write)
            print(f"wrote {args.output} ({count} lines)", file=ctx.out)
        else:
            await _drain(lines, lambda line: ctx.out.write(line.decode()))
    except (BillingError, ValueError) as exc:
        return _fail(ctx, str(exc))
    return 0


async def _drain(lines: AsyncIterator[bytes], write: Callable[[bytes], object]) -> int:
    count = 0
    async for line in lines:
        write(line)
        count += 1
    return count


def add_export_commands(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``export`` and ``alerts`` to the ``billing`` command."""
    p = sub.add_parser("export", help="usage as KV bulk files, or the ledger as CSV/JSON/...")
    p.add_argument("--format", choices=("kv", *LEDGER_FORMATS), default="kv")
    p.add_argument("--dir", help="kv: directory for usage-NNNN.json files")
    p.add_argument("--max-pairs", type=int, default=MAX_PAIRS, help="kv: pairs per file")
    p.add_argument("--client", help="one client (default: all)")
    when = p.add_mutually_exclusive_group()
    when.add_argument("--month", help="YYYY-MM (ledger formats; default: this month)")
    when.add_argument("--from", dest="start", help="YYYY-MM-DD (with --to)")
    p.add_argument("--to", dest="end", help="YYYY-MM-DD (inclusive)")
    p.add_argument("--output", help="ledger formats: write here instead of stdout")
    p.add_argument("--source", help="cloudevents: the source (CODEXEC_EXPORT_SOURCE)")
    p.add_argument("--event-name", help="stripe: the meter's event name")
    p.add_argument("--customers", help="stripe: client -> customer file (JSON or CSV)")
    p.add_argument("--value", choices=("fuel", "micro_usd"), help="stripe: the metered value")
    p.set_defaults(func=_export)

    p = sub.add_parser("alerts", help="show or set a client's budget alert thresholds")
    p.add_argument("client")
    choice = p.add_mutually_exclusive_group()
    choice.add_argument("--thresholds", help="percentages, e.g. 50,90")
    choice.add_argument("--plan-default", action="store_true", help="use the plan's again")
    p.set_defaults(func=_alerts)


def add_webhook_commands(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``webhooks`` (endpoints, dead letters) to the ``codexec`` parser."""
    parser = subparsers.add_parser("webhooks", help="webhook endpoints and failed deliveries")
    sub = parser.add_subparsers(dest="webhooks_command", required=True)
    p = sub.add_parser("set", help="set a client's webhook URL (prints a new secret once)")
    p.add_argument("client")
    p.add_argument("url")
    p.add_argument("--rotate", action="store_true", help="replace the signing secret")
    p.set_defaults(func=_set)
    p = sub.add_parser("list", help="endpoints, or with --failed the dead letters")
    p.add_argument("--failed", action="store_true")
    p.add_argument("--limit", type=int, default=1000)
    p.set_defaults(func=_list)
    p = sub.add_parser("retry", help="send dead letters again (fresh attempts)")
    p.add_argument("id", nargs="?", help="a delivery ID (whd_...)")
    p.add_argument("--all", action="store_true")
    p.set_defaults(func=_retry)
    p = sub.add_parser("ping", help="queue a webhook.test delivery to a client's URL")
    p.add_argument("client")
    p.set_defaults(func=_ping)
