"""KV bulk conversion: lossless round trip, chunking, key size, Worker-made values."""

from __future__ import annotations

from datetime import date

import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st

from billing import keys
from billing.errors import FormatError
from billing.kvformat import (
    MAX_FILE_BYTES,
    MAX_KEY_BYTES,
    MAX_PAIRS,
    chunk,
    paginate,
    pair_to_record,
    parse_file,
    record_to_pair,
    render_file,
)
from billing.records import StoredRecord
from billing.totals import UsageTotals

CONTRACT_FIELDS = {
    "executions", "errors", "cpuMs", "wallMs", "fuel", "memoryMb", "computeUnits", "cost",
    "updatedAt",
}  # fmt: skip

BIG = st.integers(min_value=0, max_value=2**62)
TOTALS = st.builds(
    UsageTotals,
    executions=BIG,
    errors=BIG,
    fuel=BIG,
    billed_cpu_ns=BIG,
    cpu_us=BIG,
    wall_us=BIG,
    mem_bytes=BIG,
    cost_pusd=BIG,
    updated_ms=st.integers(min_value=0, max_value=253_402_300_799_000),  # up to year 9999
)
CLIENT = st.text(
    alphabet="abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._:@-",
    min_size=1,
    max_size=128,
)
RECORD = st.builds(
    StoredRecord,
    client_id=CLIENT,
    period=st.dates(min_value=date(1970, 1, 1)).flatmap(
        lambda d: st.sampled_from([keys.day_period(d), keys.month_period(d)])
    ),
    totals=TOTALS,
    ttl_s=st.integers(min_value=0, max_value=10**8),
)


@given(RECORD)
def test_render_parse_round_trip(record: StoredRecord) -> None:
    pair = record_to_pair(record)
    assert isinstance(pair["value"], str)
    assert "{" not in pair["key"]
    assert len(pair["key"].encode()) <= MAX_KEY_BYTES
    value = orjson.loads(pair["value"])
    assert set(value) == CONTRACT_FIELDS
    assert isinstance(value["cost"], str)
    assert "expiration_ttl" not in pair  # billing records never expire in KV
    back = pair_to_record(orjson.loads(orjson.dumps(pair)))
    assert back.client_id == record.client_id
    assert back.period == record.period
    assert back.totals == record.totals
    assert back.ttl_s == record.ttl_s


@given(st.integers(min_value=0, max_value=25_000), st.integers(min_value=1, max_value=MAX_PAIRS))
def test_chunks_never_exceed_the_limit(n: int, size: int) -> None:
    pairs = [{"key": str(i)} for i in range(n)]
    pages = chunk(pairs, size)
    assert all(1 <= len(p) <= size for p in pages)
    assert [p for page in pages for p in page] == pairs


def test_chunk_refuses_pages_over_10000() -> None:
    with pytest.raises(ValueError):
        chunk([], MAX_PAIRS + 1)


def test_worker_values_without_metadata_are_converted() -> None:
    value = {
        "executions": 3, "errors": 1, "cpuMs": 1.5, "wallMs": 2.25, "fuel": 100,
        "memoryMb": 0.5, "computeUnits": 0.0515, "cost": "0.0000021",
        "updatedAt": "2024-05-01T12:00:00.250Z",
    }  # fmt: skip
    rec = pair_to_record(
        {"key": "usage:test-client:2024-05-01", "value": orjson.dumps(value).decode()}
    )
    t = rec.totals
    assert (rec.client_id, rec.period) == ("test-client", "2024-05-01")
    assert (t.executions, t.errors, t.fuel) == (3, 1, 100)
    assert (t.billed_cpu_ns, t.cpu_us, t.wall_us) == (1_500_000, 1500, 2250)
    assert t.mem_bytes == 1 << 19
    assert t.cost_pusd == 2_100_000
    assert t.updated_ms == 1_714_564_800_250


@pytest.mark.parametrize(
    ("pair", "message"),
    [
        ({"value": "{}"}, "string 'key'"),
        ({"key": "other:a:2024-05", "value": "{}"}, "not a usage key"),
        ({"key": "usage:a:2024-05", "value": 5}, "'value' must be a string"),
        ({"key": "usage:a:2024-05", "value": "{"}, "not JSON"),
        ({"key": "usage:a:2024-05", "value": '{"executions": 1}'}, "must hold the fields"),
        ({"key": "usage:" + "a" * 600 + ":2024-05", "value": "{}"}, "longer than 512"),
    ],
)
def test_bad_pairs_raise_format_error(pair: dict[str, object], message: str) -> None:
    with pytest.raises(FormatError, match=message):
        parse_file(orjson.dumps([pair]), "f.json")


def test_metadata_that_disagrees_with_the_value_is_refused() -> None:
    pair = record_to_pair(StoredRecord("a", "2024-05", UsageTotals(executions=1, cost_pusd=5)))
    pair["metadata"]["costPusd"] = 6
    with pytest.raises(FormatError, match="disagrees"):
        parse_file(render_file([pair]))


def test_files_over_the_limit_and_non_arrays_are_refused() -> None:
    with pytest.raises(FormatError, match="JSON array"):
        parse_file(b'"text"')
    assert parse_file(b"{}") == []  # an empty `wrangler kv bulk get` answer
    with pytest.raises(FormatError, match="more than"):
        parse_file(orjson.dumps([{}] * (MAX_PAIRS + 1)))


def test_pages_respect_both_the_pair_and_the_byte_limit() -> None:
    pairs = [record_to_pair(StoredRecord(f"c{i}", "2024-05", UsageTotals(i))) for i in range(50)]
    one = len(orjson.dumps(pairs[0]))
    files = paginate(pairs, max_pairs=7, max_bytes=10 * one)
    assert [len(orjson.loads(f)) for f in files] == [7] * 7 + [1]
    small = paginate(pairs, max_pairs=MAX_PAIRS, max_bytes=3 * one + 10)
    assert all(len(f) <= 3 * one + 10 for f in small)
    assert [p for f in small for p in orjson.loads(f)] == pairs
    with pytest.raises(FormatError, match="larger than"):
        paginate(pairs, max_bytes=one // 2)
    assert paginate([]) == []
    assert all(len(f) < MAX_FILE_BYTES for f in paginate(pairs))


WORKER_VALUE = {
    "executions": 2, "errors": 0, "cpuMs": 1.5, "wallMs": 2, "fuel": 10, "memoryMb": 1,
    "computeUnits": 0.1015, "cost": "0.000002", "updatedAt": "2024-05-01T00:00:00.000Z",
}  # fmt: skip


def test_wrangler_bulk_get_output_is_imported() -> None:
    exact = record_to_pair(StoredRecord("acme", "2024-05", UsageTotals(3, cost_pusd=7), 0))
    text = orjson.dumps(WORKER_VALUE).decode()
    printed = (
        "\n ⛅️ wrangler 3.99.0\n-------------------\n"
        + orjson.dumps(
            {
                "usage:test-client:2024-05-01": text,
                "usage:test-client:2024-05": {"value": text, "metadata": None},
                "usage:acme:2024-05": {"value": exact["value"], "metadata": exact["metadata"]},
                "usage:parsed:2024-05": WORKER_VALUE,
                "usage:gone:2024-05": None,
            },
            option=orjson.OPT_INDENT_2,
        ).decode()
        + "\n\nSuccess!\n"
    )
    records = {(r.client_id, r.period): r for r in parse_file(printed, "get.json")}
    assert set(records) == {
        ("test-client", "2024-05-01"), ("test-client", "2024-05"), ("acme", "2024-05"),
        ("parsed", "2024-05"),
    }  # fmt: skip
    assert records["acme", "2024-05"].totals == UsageTotals(3, cost_pusd=7)
    assert records["parsed", "2024-05"].totals.billed_cpu_ns == 1_500_000
    assert records["test-client", "2024-05-01"].totals.cost_pusd == 2_000_000


def test_a_key_listing_alone_is_refused_with_directions() -> None:
    listing = orjson.dumps([{"name": "usage:acme:2024-05", "expiration": 1_900_000_000}])
    with pytest.raises(FormatError, match="wrangler kv bulk get"):
        parse_file(listing, "keys.json")


def test_key_listing_restores_metadata_and_expiration() -> None:
    exact = record_to_pair(StoredRecord("acme", "2024-05", UsageTotals(3, cost_pusd=7), 0))
    listing = orjson.dumps(
        [
            {"name": "usage:acme:2024-05", "metadata": exact["metadata"]},
            {"name": "usage:w:2024-05", "expiration": 1_000_600},
        ]
    )
    values = orjson.dumps(
        {
            "usage:acme:2024-05": exact["value"],
            "usage:w:2024-05": orjson.dumps(WORKER_VALUE).decode(),
        }
    )
    records = parse_file(values, "get.json", key_list=listing, now=1_000_000)
    by_client = {r.client_id: r for r in records}
    assert by_client["acme"].totals == UsageTotals(3, cost_pusd=7)
    assert by_client["w"].ttl_s == 600
    with pytest.raises(FormatError, match="key listing"):
        parse_file(values, "get.json", key_list=b'[{"key": "x", "value": "y"}]')


def test_worker_expirations_become_ttls() -> None:
    pair = {"key": "usage:w:2024-05", "value": orjson.dumps(WORKER_VALUE).decode()}
    assert pair_to_record({**pair, "expiration_ttl": 3600}).ttl_s == 3600
    assert pair_to_record({**pair, "expiration": 1_000_100}, now=1_000_000).ttl_s == 100
    with pytest.raises(FormatError, match="expiration_ttl"):
        pair_to_record({**pair, "expiration_ttl": -1})


def test_trailing_text_other_than_success_is_not_json() -> None:
    with pytest.raises(FormatError, match="not JSON"):
        parse_file('{"usage:a:2024-05": null}\nError: something went wrong\n')
    assert parse_file('{"usage:a:2024-05": null}\nSuccess!') == []
