"""Receipts without Redis: the packed facts, the itemized bill, signatures and tampering."""

from __future__ import annotations

import base64
import copy
import hashlib
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from hypothesis import given
from hypothesis import strategies as st

from billing import receipt_keys
from billing.ledger import parse_entry
from billing.money import to_pico
from billing.plans import Plans
from billing.pricing import price
from billing.receipt_facts import FIELD, ReceiptFacts, canonical_json, context_sha256
from billing.receipts import InvalidReceipt, check, receipt_of_entry, receipt_of_record, sign
from billing.totals import FIELDS
from billing.usage_record import UsageRecord
from sandbox import Limits
from service.receipting import allowed_modules, limits_of

PLAN = Plans.load().get("standard")


def facts(**changes: Any) -> ReceiptFacts:
    per_cpu, per_mb, per_exec = ReceiptFacts.prices_of(PLAN)
    base = ReceiptFacts(
        code_sha256=hashlib.sha256(b"return 1").digest(),
        context_sha256=context_sha256({"b": 1, "a": [1, 2]}),
        wasm_sha256=bytes(range(32)),
        wasmtime_version="50.0.1",
        random_seed=2**64 - 5,
        read_clock=False,
        timeout_ms=5000,
        memory_bytes=50 << 20,
        fuel_cap=135_000_000_000,
        max_code_bytes=65536,
        max_output_lines=1000,
        max_output_bytes=1 << 20,
        max_result_bytes=1 << 20,
        price_per_cpu_second=per_cpu,
        price_per_mb=per_mb,
        price_per_execution=per_exec,
    )
    return ReceiptFacts(**{**{f: getattr(base, f) for f in base.__slots__}, **changes})


def record(fuel: int = 987_654_321, mem: int = 3_456_789) -> UsageRecord:
    return UsageRecord.priced(
        PLAN, client_id="acme", execution_id="ex-1", at=datetime(2024, 5, 6, 7, 8, 9, 123456,
        tzinfo=UTC), fuel=fuel, cpu_ms=70.1234, wall_ms=80.5, peak_memory_bytes=mem,
        receipt=facts(),
    )  # fmt: skip


def entry_fields(rec: UsageRecord) -> dict[bytes, bytes]:
    """The stream entry lua/record.lua writes for ``rec``."""
    inc = rec.increments()
    raw = {b"id": rec.execution_id.encode(), b"plan": rec.plan.encode(),
           b"at_ms": str(inc.updated_ms).encode()}  # fmt: skip
    raw |= {f.encode(): str(getattr(inc, f)).encode() for f in FIELDS[:-1]}
    assert rec.receipt is not None
    raw[FIELD.encode()] = rec.receipt.pack()
    return raw


def test_canonical_json_is_sorted_compact_utf8() -> None:
    assert canonical_json({"b": 1, "a": {"d": "é", "c": None}}) == (
        '{"a":{"c":null,"d":"é"},"b":1}'.encode()
    )
    assert context_sha256({"x": 1, "y": 2}) == context_sha256({"y": 2, "x": 1})


@given(
    st.integers(0, 2**64 - 1),
    st.booleans(),
    st.booleans(),
    st.integers(1, 2**32 - 1),
    st.integers(1, 2**63),
    st.text(max_size=60),
    st.lists(st.sampled_from(["crypto", "path", "util", "*"]), unique=True),
)
def test_facts_pack_round_trips(
    seed: int, clock: bool, rand: bool, timeout: int, fuel: int, version: str, mods: list[str]
) -> None:
    f = facts(random_seed=seed, read_clock=clock, read_random=rand, timeout_ms=timeout,
              fuel_cap=fuel, wasmtime_version=version, allowed_modules=tuple(mods))  # fmt: skip
    assert ReceiptFacts.unpack(f.pack()) == f
    assert ReceiptFacts.from_named(f.named()) == f


def test_facts_are_compact_and_checked() -> None:
    assert len(facts(engine_build="0" * 32).pack()) <= 215
    with pytest.raises(ValueError, match="fit"):
        facts(timeout_ms=2**32).pack()
    with pytest.raises(ValueError):
        ReceiptFacts.unpack(facts().pack() + b"x")
    with pytest.raises(ValueError):
        ReceiptFacts.unpack(b"\x03" + facts().pack()[1:])


def test_version_1_facts_read_as_no_modules_and_no_host_randomness() -> None:
    """Entries written before the modules and the random flag were recorded."""
    v2 = facts(read_clock=True, engine_build="b" * 32).pack()
    assert v2[0] == 2
    assert v2[-1] == 0  # the last string (no modules) is empty
    v1 = b"\x01" + v2[1:-1]
    old = ReceiptFacts.unpack(v1)
    assert old == facts(read_clock=True, engine_build="b" * 32)
    assert (old.allowed_modules, old.read_random) == ((), False)
    named = ReceiptFacts.unpack(v1).named()
    del named["read_random"], named["allowed_modules"]
    assert ReceiptFacts.from_named(named) == old
    with pytest.raises(ValueError):  # a version-1 field has six strings, not seven
        ReceiptFacts.unpack(b"\x01" + v2[1:])


def test_modules_and_host_randomness_are_in_the_ledger_and_the_signed_receipt() -> None:
    rec = UsageRecord.priced(
        PLAN, client_id="acme", execution_id="ex-2", at=datetime(2024, 5, 6, tzinfo=UTC),
        fuel=5, cpu_ms=1, wall_ms=1, peak_memory_bytes=1 << 20,
        receipt=facts(read_random=True, allowed_modules=("crypto", "path")),
    )  # fmt: skip
    entry = parse_entry("acme", b"1714979289123-0", entry_fields(rec))
    assert entry.fields["read_random"] == "1"
    assert entry.fields["read_clock"] == "0"
    assert entry.fields["allowed_modules"] == "crypto,path"
    body = receipt_of_entry(entry)
    assert body is not None
    assert body == receipt_of_record(rec)
    assert body["readRandom"] is True
    assert body["readClock"] is False
    assert body["engine"]["limits"]["allowedModules"] == ["crypto", "path"]
    key = Ed25519PrivateKey.generate()
    envelope = sign(body, key)
    for path in (("readRandom",), ("engine", "limits", "allowedModules", 0)):
        with pytest.raises(InvalidReceipt, match="signature"):
            check({**envelope, "receipt": altered(body, path)}, key.public_key())
    plain = receipt_of_record(record())
    assert plain is not None
    assert plain["readRandom"] is False
    assert plain["engine"]["limits"]["allowedModules"] == []


@pytest.mark.parametrize(
    ("names", "recorded"),
    [
        (set(), ()),
        ({"node:path", "path", "util"}, ("path", "util")),
        ({"crypto", "*"}, ("*",)),
    ],
)
def test_the_receipt_reruns_with_the_modules_it_allowed(
    names: set[str], recorded: tuple[str, ...]
) -> None:
    assert allowed_modules(frozenset(names)) == recorded
    limits = limits_of(facts(allowed_modules=recorded))
    assert limits.module_mask == Limits(modules=frozenset(names)).module_mask


def test_receipt_from_the_ledger_equals_the_one_from_the_record() -> None:
    rec = record()
    entry = parse_entry("acme", b"1714979289123-0", entry_fields(rec))
    assert entry.fields["code_sha256"] == hashlib.sha256(b"return 1").hexdigest()
    assert receipt_of_entry(entry) == receipt_of_record(rec)


def test_the_bill_is_itemized_exactly() -> None:
    rec = record()
    body = receipt_of_record(rec)
    assert body is not None
    lines = {line["item"]: line for line in body["lines"]}
    exact = price(PLAN, rec.fuel, rec.peak_memory_bytes)
    assert Decimal(body["cost"]) == exact.cost
    assert sum(Decimal(line["amount"]) for line in body["lines"]) == exact.cost
    assert Decimal(lines["cpu"]["quantity"]) == exact.billed_cpu_ms / 1000
    assert Decimal(lines["memory"]["quantity"]) * (1 << 20) == rec.peak_memory_bytes
    assert lines["cpu"]["unitPrice"] == "0.0005"
    assert to_pico(Decimal(body["costRecorded"])) == to_pico(exact.cost)
    assert body["usage"]["measuredCpuMs"] == "70.123"
    assert body["time"] == "2024-05-06T07:08:09.123Z"
    assert body["randomSeed"] == str(2**64 - 5)  # beyond 2**53: a string, not a number


def leaves(doc: Any, path: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    if isinstance(doc, dict):
        return [p for k, v in doc.items() for p in leaves(v, (*path, k))]
    if isinstance(doc, list):
        return [p for i, v in enumerate(doc) for p in leaves(v, (*path, i))]
    return [path]


def altered(doc: Any, path: tuple[Any, ...]) -> Any:
    doc = copy.deepcopy(doc)
    target = doc
    for step in path[:-1]:
        target = target[step]
    value = target[path[-1]]
    if isinstance(value, bool):
        target[path[-1]] = not value
    elif isinstance(value, int):
        target[path[-1]] = value + 1
    else:
        target[path[-1]] = str(value) + "1"
    return doc


def test_signature_verifies_and_any_altered_field_fails() -> None:
    key = Ed25519PrivateKey.generate()
    body = receipt_of_record(record())
    assert body is not None
    envelope = sign(body, key)
    assert check(envelope, key.public_key()) == body
    paths = leaves(body)
    assert len(paths) > 30
    for path in paths:
        with pytest.raises(InvalidReceipt, match="signature"):
            check({**envelope, "receipt": altered(body, path)}, key.public_key())
    with pytest.raises(InvalidReceipt, match="signature"):
        check(envelope, Ed25519PrivateKey.generate().public_key())
    with pytest.raises(InvalidReceipt, match="signed receipt"):
        check({"receipt": body}, key.public_key())


@pytest.mark.parametrize(
    ("path", "value", "message"),
    [
        (("usage", "billedCpuMs"), "1", "billedCpuMs"),
        (("lines", 0, "amount"), "0.1", "line cpu"),
        (("cost",), "1", "sum of the lines"),
        (("costRecorded",), "1", "rounded"),
    ],
)
def test_a_wrong_bill_fails_even_when_signed(
    path: tuple[Any, ...], value: str, message: str
) -> None:
    key = Ed25519PrivateKey.generate()
    body = receipt_of_record(record())
    assert body is not None
    target = body
    for step in path[:-1]:
        target = target[step]
    target[path[-1]] = value
    with pytest.raises(InvalidReceipt, match=message):
        check(sign(body, key), key.public_key())


def test_records_without_facts_have_no_receipt() -> None:
    rec = UsageRecord.priced(PLAN, client_id="a", execution_id="x", at=datetime.now(UTC),
                             fuel=1, cpu_ms=0, wall_ms=0, peak_memory_bytes=0)  # fmt: skip
    assert receipt_of_record(rec) is None
    raw = entry_fields(record())
    del raw[FIELD.encode()]
    assert receipt_of_entry(parse_entry("acme", b"1-0", raw)) is None


def test_spooled_records_keep_their_facts() -> None:
    rec = record()
    assert UsageRecord.from_json(rec.to_json()) == rec


def test_keys_from_pem_base64_and_the_development_file(tmp_path: Path) -> None:
    key = Ed25519PrivateKey.generate()
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()
    raw = key.private_bytes(
        serialization.Encoding.Raw, serialization.PrivateFormat.Raw, serialization.NoEncryption()
    )
    public_id = receipt_keys.key_id(key.public_key())
    assert receipt_keys.key_id(receipt_keys.parse_private_key(pem).public_key()) == public_id
    b64 = base64.b64encode(raw).decode()
    assert receipt_keys.key_id(receipt_keys.parse_private_key(b64).public_key()) == public_id
    public = key.public_key()
    for text in (receipt_keys.public_pem(public), receipt_keys.public_raw_b64(public)):
        assert receipt_keys.key_id(receipt_keys.parse_public_key(text)) == public_id
    with pytest.raises(receipt_keys.InvalidKey):
        receipt_keys.parse_private_key("not a key")
    first = receipt_keys.load_or_create(tmp_path)
    again = receipt_keys.load_or_create(tmp_path)
    assert receipt_keys.key_id(first.public_key()) == receipt_keys.key_id(again.public_key())
    assert (tmp_path / receipt_keys.KEY_FILE).stat().st_mode & 0o777 == 0o600
