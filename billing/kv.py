"""Export usage to, and import it from, Cloudflare KV bulk files (format: kvformat.py).

Import merge rule: **set if newer**. Each pair replaces the stored record of its key
atomically (``lua/import.lua``) only if its ``updatedAt`` (``updatedMs``) is later than the
stored record's; otherwise it is skipped. Keys not in the file are left alone. Importing the
same file twice therefore changes nothing the second time, and an export re-imported over
newer data never rolls it back. Two sources are not added together: a record describes a
whole period, and the newer description of it wins.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from billing import keys
from billing.kvformat import MAX_FILE_BYTES, MAX_PAIRS, paginate, parse_file, record_to_pair
from billing.records import StoredRecord, fetch_records, scan_usage_keys
from billing.scripts import AnyRedis, register

__all__ = ["ImportSummary", "export_pages", "export_to_dir", "import_file", "import_records"]


@dataclass(frozen=True, slots=True)
class ImportSummary:
    """How many records an import wrote, and how many it skipped as not newer."""

    written: int
    skipped: int


async def export_pages(
    redis: AnyRedis,
    client_id: str | None = None,
    *,
    max_pairs: int = MAX_PAIRS,
    max_bytes: int = MAX_FILE_BYTES,
) -> list[bytes]:
    """Every usage record (of one client, or all) as bulk files of <= ``max_pairs`` pairs and
    <= ``max_bytes`` bytes."""
    names = await scan_usage_keys(redis, client_id)
    records = await fetch_records(redis, names, with_ttl=True)
    return paginate((record_to_pair(r) for r in records), max_pairs, max_bytes)


async def export_to_dir(
    redis: AnyRedis,
    directory: Path,
    client_id: str | None = None,
    *,
    max_pairs: int = MAX_PAIRS,
    stem: str = "usage",
) -> list[Path]:
    """Write :func:`export_pages` as ``<stem>-0001.json``... in ``directory``; return paths."""
    directory.mkdir(parents=True, exist_ok=True)
    paths: list[Path] = []
    for i, page in enumerate(await export_pages(redis, client_id, max_pairs=max_pairs), 1):
        path = directory / f"{stem}-{i:04d}.json"
        path.write_bytes(page)
        paths.append(path)
    return paths


async def import_records(redis: AnyRedis, records: list[StoredRecord]) -> ImportSummary:
    """Merge records into Redis, set-if-newer (see the module docstring)."""
    script = register(redis, "import")
    written = 0
    for rec in records:
        changed = await script(
            keys=[keys.usage(rec.client_id, rec.period)],
            args=[rec.totals.updated_ms, rec.ttl_s, rec.totals.packed()],
        )
        written += int(changed)
    return ImportSummary(written=written, skipped=len(records) - written)


async def import_file(
    redis: AnyRedis, path: Path, *, key_list: Path | None = None
) -> ImportSummary:
    """Parse a bulk file or ``wrangler kv bulk get`` output (all of it, before writing
    anything) and merge it; ``key_list``: the ``wrangler kv key list`` output it came from."""
    listing = key_list.read_bytes() if key_list is not None else None
    return await import_records(redis, parse_file(path.read_bytes(), str(path), key_list=listing))
