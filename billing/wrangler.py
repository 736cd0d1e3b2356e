"""What wrangler prints, read as KV bulk pairs (:func:`billing.kvformat.parse_file` uses it).

- ``wrangler kv bulk get KEYS.json``: a JSON object ``{key: value}`` where a value is the
  text, ``{"value": text, "metadata"?: {...}}`` (``--local``), already-parsed JSON, or null
  for a missing key (skipped).
- ``wrangler kv key list``: ``[{"name", "expiration"?, "metadata"?}]``, no values.

wrangler's banner lines before the JSON and its ``Success!`` line after it are ignored.
"""

from __future__ import annotations

import json
from typing import Any

import orjson

from billing.errors import FormatError

__all__ = ["bulk_get_pairs", "is_key_list", "load_document", "parse_key_list"]


def load_document(data: bytes | str, source: str) -> Any:
    """The JSON document of a file; wrangler's banner lines before it and its ``Success!``
    line after it are ignored."""
    try:
        return orjson.loads(data)
    except orjson.JSONDecodeError as exc:
        error = exc
    text = data.decode("utf-8", "replace") if isinstance(data, bytes) else data
    lines = text.splitlines()
    start = next((i for i, line in enumerate(lines) if line[:1] in ("[", "{")), None)
    if start is not None:
        try:
            doc, end = json.JSONDecoder().raw_decode("\n".join(lines[start:]))
        except (ValueError, RecursionError):
            pass
        else:
            rest = "\n".join(lines[start:])[end:].split()
            if all(word.strip("✨ ") in ("", "Success!", "Success") for word in rest):
                return doc
    raise FormatError(f"{source}: not JSON: {error}") from None


def is_key_list(doc: list[Any]) -> bool:
    """Whether ``doc`` is ``wrangler kv key list`` output (names, no values)."""
    return bool(doc) and all(
        isinstance(p, dict) and isinstance(p.get("name"), str) and "key" not in p for p in doc
    )


def parse_key_list(data: bytes | str, source: str = "file") -> dict[str, dict[str, Any]]:
    """``wrangler kv key list`` output: name -> ``{"expiration"?, "metadata"?}``."""
    doc = load_document(data, source)
    if not isinstance(doc, list) or (doc and not is_key_list(doc)):
        raise FormatError(f'{source}: a key listing is a JSON array of {{"name", ...}}')
    return {p["name"]: p for p in doc}


def bulk_get_pairs(doc: dict[str, Any], listing: dict[str, dict[str, Any]]) -> list[dict[str, Any]]:
    """The bulk-file pairs of ``wrangler kv bulk get`` output (``{key: value}``), with the
    metadata and expirations of ``listing`` (:func:`parse_key_list`) where it has them."""
    pairs: list[dict[str, Any]] = []
    for key, raw in doc.items():
        item = raw
        if isinstance(raw, dict) and "value" in raw and set(raw) <= {"value", "metadata"}:
            item = raw["value"]
        if item is None:  # the key was not found when wrangler read it
            continue
        value = item if isinstance(item, str) else orjson.dumps(item).decode()
        pair: dict[str, Any] = {"key": key, "value": value}
        listed = listing.get(key, {})
        metadata = raw.get("metadata") if isinstance(raw, dict) else None
        if metadata is None:
            metadata = listed.get("metadata")
        if metadata is not None:
            pair["metadata"] = metadata
        if listed.get("expiration") is not None:
            pair["expiration"] = listed["expiration"]
        pairs.append(pair)
    return pairs
