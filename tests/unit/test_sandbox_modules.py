"""The modules ``path``, ``util`` and ``crypto``: how code reaches them, and their answers.

Answers are checked against published vectors (RFC 1321, FIPS 180 / NIST examples, RFC 2202,
RFC 4231) and against Node's answers for the same expressions, recorded once in
``tests/data/node_answers.json`` by ``tests/data/make_node_answers.js`` (no Node needed here).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest

from sandbox import Limits, Sandbox
from sandbox.modules import EXPORTS, UNAVAILABLE
from tests.unit.node_answers import CASES, NODE, eval_cases

ALL = Limits(timeout_ms=5000, fuel=20_000_000_000, modules=frozenset({"*"}))
NONE = Limits(timeout_ms=5000, fuel=2_000_000_000)
EVAL_CASES = eval_cases(
    "const path = require('path'), util = require('util'), crypto = require('crypto');\n"
)
# Where codexec's answer differs from Node 20's, and what it is instead: Node's URL has
# enumerable static methods (and createObjectURL, which codexec has not); Node's TextEncoder
# inspects as its `encoding` getter.
KNOWN_DIFFERENCES = {
    "util.inspect(URL)": "[class URL]",
    "util.inspect(new TextEncoder())": "TextEncoder {}",
}


@pytest.fixture(scope="module")
def sb(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Sandbox]:
    with Sandbox(tmp_path_factory.getbasetemp() / "sandbox-cache") as box:
        yield box


def ok(sb: Sandbox, code: str, limits: Limits = ALL, context: object = None) -> Any:
    res = sb.run(code, json.dumps(context or {}), limits=limits)
    assert res.ok, res.error
    return json.loads(res.result_json)


def err(sb: Sandbox, code: str, limits: Limits = ALL) -> tuple[str, str]:
    res = sb.run(code, limits=limits)
    assert res.error is not None, res
    return res.error.type, res.error.message


def answers(sb: Sandbox, group: str) -> dict[str, Any]:
    result = ok(sb, EVAL_CASES, context={"cases": CASES[group]})
    assert isinstance(result, dict)
    return result


# -- reaching the modules -------------------------------------------------------------------


@pytest.mark.parametrize("name", ["path", "util", "crypto"])
def test_require_and_import_return_the_same_module(sb: Sandbox, name: str) -> None:
    code = (
        f"const a = require('{name}'), b = require('node:{name}');"
        f" const m = await import('{name}'), n = await import('node:{name}');"
        " return [a === b, m.default === a, n.default === a, Object.keys(a).sort(),"
        " Object.keys(m).filter(k => k !== 'default').sort()]"
    )
    same_b, same_m, same_n, keys, named = ok(sb, code)
    assert same_b
    assert same_m
    assert same_n
    assert keys == named == sorted(EXPORTS[name])


@pytest.mark.parametrize("name", ["path", "util", "crypto"])
def test_a_module_not_allowed_is_not_reachable(sb: Sandbox, name: str) -> None:
    others = frozenset(EXPORTS) - {name}
    limits = Limits(timeout_ms=5000, fuel=2_000_000_000, modules=others)
    code = (
        "const out = [];"
        f" try {{ require('{name}'); out.push('required'); }}"
        " catch (e) { out.push(e.code, e.message); }"
        f" try {{ await import('node:{name}'); out.push('imported'); }}"
        " catch (e) { out.push(e.code); }"
        " return out"
    )
    code_1, message, code_2 = ok(sb, code, limits)
    assert code_1 == code_2 == "ERR_MODULE_NOT_ALLOWED"
    assert name in message
    assert "allowedModules" in message
    for other in others:
        assert ok(sb, f"return typeof require('{other}')", limits) == "object"


def test_nothing_is_allowed_by_default(sb: Sandbox) -> None:
    assert err(sb, "return require('path')", NONE) == (
        "Error",
        "module 'path' is not allowed for this execution: add it to allowedModules",
    )


@pytest.mark.parametrize("name", [*UNAVAILABLE, "os", "node:fs", "left-pad"])
def test_other_names_are_not_found(sb: Sandbox, name: str) -> None:
    code = f"try {{ require('{name}') }} catch (e) {{ return [e.name, e.code] }}"
    assert ok(sb, code) == ["Error", "MODULE_NOT_FOUND"]


@pytest.mark.parametrize("name", UNAVAILABLE)
def test_import_of_an_unavailable_node_module_names_it(sb: Sandbox, name: str) -> None:
    code = f"try {{ await import('{name}') }} catch (e) {{ return [e.code, e.message] }}"
    code_, message = ok(sb, code)
    assert code_ == "MODULE_NOT_FOUND"
    assert name in message


def test_limits_reject_unknown_module_names() -> None:
    with pytest.raises(ValueError, match="fs"):
        Limits(modules=frozenset({"fs"}))
    assert Limits(modules=frozenset({"node:path", "util"})).module_mask == 3
    assert Limits(modules=frozenset({"*"})).module_mask == 7


def test_a_replaced_global_require_does_not_change_import(sb: Sandbox) -> None:
    code = (
        "globalThis.require = () => ({ fake: true });"
        " const m = await import('path'); return [typeof m.join, require('x').fake]"
    )
    assert ok(sb, code) == ["function", True]


def test_module_errors_show_no_glue_frames(sb: Sandbox) -> None:
    code = (
        "const out = [];"
        " try { require('path').join(1) } catch (e) { out.push(e.code, e.stack) }"
        " try { require('crypto').createHmac('nope', 'k') } catch (e) { out.push(e.code, e.stack) }"
        " return out"
    )
    code_1, stack_1, code_2, stack_2 = ok(sb, code)
    assert code_1 == "ERR_INVALID_ARG_TYPE"
    assert code_2 == "ERR_CRYPTO_INVALID_DIGEST"
    for stack in (stack_1, stack_2):
        assert "<prelude>" not in stack
        assert "<code>" in stack


# -- published vectors ------------------------------------------------------------------------

MILLION_A = "'a'.repeat(1000000)"
HASH_VECTORS = [  # (algorithm, JS expression of the input, hex digest)
    ("md5", "''", "d41d8cd98f00b204e9800998ecf8427e"),  # RFC 1321 A.5
    ("md5", "'a'", "0cc175b9c0f1b6a831c399e269772661"),
    ("md5", "'abc'", "900150983cd24fb0d6963f7d28e17f72"),
    ("md5", "'message digest'", "f96b697d7cb7938d525a2f31aaf161d0"),
    ("md5", "'abcdefghijklmnopqrstuvwxyz'", "c3fcd3d76192e4007dfb496cca67e13b"),
    (
        "md5",
        "'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789'",
        "d174ab98d277d9f5a5611c2c9f419d9f",
    ),
    ("md5", "'1234567890'.repeat(8)", "57edf4a22be3c955ac49da2e2107b67a"),
    ("sha1", "'abc'", "a9993e364706816aba3e25717850c26c9cd0d89d"),  # FIPS 180 examples
    (
        "sha1",
        "'abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq'",
        "84983e441c3bd26ebaae4aa1f95129e5e54670f1",
    ),
    ("sha1", MILLION_A, "34aa973cd4c4daa4f61eeb2bdbad27316534016f"),
    ("sha256", "'abc'", "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"),
    (
        "sha256",
        "'abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq'",
        "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1",
    ),
    ("sha256", MILLION_A, "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0"),
    (
        "sha512",
        "'abc'",
        "ddaf35a193617abacc417349ae20413112e6fa4e89a97ea20a9eeee64b55d39a"
        "2192992a274fc1a836ba3c23a3feebbd454d4423643ce80e2a9ac94fa54ca49f",
    ),
    (
        "sha512",
        "'abcdefghbcdefghicdefghijdefghijkefghijklfghijklmghijklmnhijklmnoijklmnopjklmnopq"
        "klmnopqrlmnopqrsmnopqrstnopqrstu'",
        "8e959b75dae313da8cf4f72814fc143f8f7779c6eb9f7fa17299aeadb6889018"
        "501d289e4900f7e4331b99dec4b5433ac7d329eeb6dd26545e96e55b874be909",
    ),
]


@pytest.mark.parametrize(("algorithm", "data", "digest"), HASH_VECTORS)
def test_hash_vectors(sb: Sandbox, algorithm: str, data: str, digest: str) -> None:
    code = f"return require('crypto').createHash('{algorithm}').update({data}).digest('hex')"
    assert ok(sb, code) == digest


HMAC_VECTORS = [  # (algorithm, key bytes hex, data JS expression, hex digest)
    # RFC 2202 (HMAC-MD5, HMAC-SHA1) test cases 1, 2, 3 and 6
    ("md5", "0b" * 16, "'Hi There'", "9294727a3638bb1c13f48ef8158bfc9d"),
    ("md5", "4a656665", "'what do ya want for nothing?'", "750c783e6ab0b503eaa86e310a5db738"),
    ("md5", "aa" * 16, "new Uint8Array(50).fill(0xdd)", "56be34521d144c88dbb8c733f0e8b3f6"),
    (
        "md5",
        "aa" * 80,
        "'Test Using Larger Than Block-Size Key - Hash Key First'",
        "6b1ab7fe4bd7bf8f0b62e6ce61b9d0cd",
    ),
    ("sha1", "0b" * 20, "'Hi There'", "b617318655057264e28bc0b6fb378c8ef146be00"),
    (
        "sha1",
        "4a656665",
        "'what do ya want for nothing?'",
        "effcdf6ae5eb2fa2d27416d5f184df9c259a7c79",
    ),
    (
        "sha1",
        "aa" * 80,
        "'Test Using Larger Than Block-Size Key - Hash Key First'",
        "aa4ae5e15272d00e95705637ce8a3b55ed402112",
    ),
    # RFC 4231 (HMAC-SHA-256/512) test cases 1, 2 and 6
    (
        "sha256",
        "0b" * 20,
        "'Hi There'",
        "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7",
    ),
    (
        "sha256",
        "4a656665",
        "'what do ya want for nothing?'",
        "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843",
    ),
    (
        "sha256",
        "aa" * 131,
        "'Test Using Larger Than Block-Size Key - Hash Key First'",
        "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54",
    ),
    (
        "sha512",
        "0b" * 20,
        "'Hi There'",
        "87aa7cdea5ef619d4ff0b4241a1d6cb02379f4e2ce4ec2787ad0b30545e17cde"
        "daa833b7d6b8a702038b274eaea3f4e4be9d914eeb61f1702e696c203a126854",
    ),
    (
        "sha512",
        "4a656665",
        "'what do ya want for nothing?'",
        "164b7a7bfcf819e2e395fbe73b56e0a387bd64222e831fd610270cd7ea250554"
        "9758bf75c05a994a6d034f65f8f0e6fdcaeab1a34d4a6b4b636e070a38bce737",
    ),
    (
        "sha512",
        "aa" * 131,
        "'Test Using Larger Than Block-Size Key - Hash Key First'",
        "80b24263c7c1a3ebb71493c1dd7be8b49b46d1f41b4aeec1121b013783f8f352"
        "6b56d037e05f2598bd0fd2215d6a1e5295e64f73f63f0aec8b915a985d786598",
    ),
]


@pytest.mark.parametrize(("algorithm", "key", "data", "digest"), HMAC_VECTORS)
def test_hmac_vectors(sb: Sandbox, algorithm: str, key: str, data: str, digest: str) -> None:
    code = (
        f"return require('crypto').createHmac('{algorithm}', '{key}' === '' ? ''"
        f" : new Uint8Array('{key}'.match(/../g).map(h => parseInt(h, 16)))).update({data})"
        ".digest('hex')"
    )
    assert ok(sb, code) == digest


# -- Node's answers -----------------------------------------------------------------------------


@pytest.mark.parametrize("group", ["path", "util", "crypto"])
def test_answers_match_node(sb: Sandbox, group: str) -> None:
    ours = answers(sb, group)
    expected = {expr: KNOWN_DIFFERENCES.get(expr, NODE["cases"][expr]) for expr in CASES[group]}
    wrong = {
        expr: (ours.get(expr), want) for expr, want in expected.items() if ours.get(expr) != want
    }
    assert not wrong, json.dumps(wrong, indent=1, ensure_ascii=False)


def test_node_answers_cover_every_case() -> None:
    recorded = set(NODE["cases"])
    for group in ("path", "util", "crypto", "globals"):
        assert set(CASES[group]) <= recorded, group


# -- randomness ---------------------------------------------------------------------------------


def test_random_bytes_are_fresh_in_every_run_even_with_the_same_seed(sb: Sandbox) -> None:
    code = (
        "const c = require('crypto'); return [c.randomBytes(16).join(), c.randomUUID(),"
        " crypto.getRandomValues(new Uint8Array(8)).join(), Math.random()]"
    )
    runs = [sb.run(code, limits=ALL, random_seed=42) for _ in range(4)]
    values = [json.loads(r.result_json) for r in runs]
    assert len({v[3] for v in values}) == 1  # Math.random follows the seed
    for i in range(3):
        assert len({v[i] for v in values}) == 4  # crypto does not


def test_random_bytes_look_uniform(sb: Sandbox) -> None:
    code = (
        "const b = require('crypto').randomBytes(65536); const n = new Array(256).fill(0);"
        " for (const x of b) n[x]++; return [Math.min(...n), Math.max(...n)]"
    )
    low, high = ok(sb, code)
    assert 150 < low <= 256 <= high < 370  # mean 256, sd 16: far outside 6 sd fails


def test_promisify(sb: Sandbox) -> None:
    code = (
        "const { promisify } = require('util');"
        " const f = promisify((a, cb) => queueMicrotask(() => cb(null, a * 2)));"
        " const g = promisify((cb) => cb(new RangeError('no')));"
        " let e; try { await g(); } catch (x) { e = x.name; } return [await f(21), e]"
    )
    assert ok(sb, code) == [42, "RangeError"]


def test_the_service_accepts_exactly_the_provided_modules() -> None:
    from pydantic import ValidationError

    from service.schemas import ExecuteRequest

    names = ["path", "node:util", "crypto", "*"]
    assert ExecuteRequest.model_validate({"code": "x", "allowedModules": names}).allowedModules
    with pytest.raises(ValidationError, match="no such module: child_process, fs"):
        ExecuteRequest.model_validate(
            {"code": "x", "allowedModules": ["path", "fs", "child_process"]}
        )


def _chacha20(key: bytes, blocks: int) -> bytes:
    """ChaCha20 keystream (RFC 8439 block function, nonce 0, counter from 0), for reference."""
    mask = 0xFFFFFFFF

    def rotl(v: int, n: int) -> int:
        return ((v << n) & mask) | (v >> (32 - n))

    def quarter(x: list[int], a: int, b: int, c: int, d: int) -> None:
        x[a] = (x[a] + x[b]) & mask
        x[d] = rotl(x[d] ^ x[a], 16)
        x[c] = (x[c] + x[d]) & mask
        x[b] = rotl(x[b] ^ x[c], 12)
        x[a] = (x[a] + x[b]) & mask
        x[d] = rotl(x[d] ^ x[a], 8)
        x[c] = (x[c] + x[d]) & mask
        x[b] = rotl(x[b] ^ x[c], 7)

    words = [int.from_bytes(key[i : i + 4], "little") for i in range(0, 32, 4)]
    out = b""
    for counter in range(blocks):
        state = [0x61707865, 0x3320646E, 0x79622D32, 0x6B206574, *words, counter, 0, 0, 0]
        x = list(state)
        for _ in range(10):
            for a, b, c, d in ((0, 4, 8, 12), (1, 5, 9, 13), (2, 6, 10, 14), (3, 7, 11, 15)):
                quarter(x, a, b, c, d)
            for a, b, c, d in ((0, 5, 10, 15), (1, 6, 11, 12), (2, 7, 8, 13), (3, 4, 9, 14)):
                quarter(x, a, b, c, d)
        out += b"".join(
            ((v + s) & mask).to_bytes(4, "little") for v, s in zip(x, state, strict=True)
        )
    return out


def test_the_reference_chacha20_matches_rfc_8439() -> None:  # RFC 8439 A.1, test vector 1
    assert _chacha20(bytes(32), 1).hex() == (
        "76b8e0ada0f13d90405d6ae55386bd28bdd219b8a08ded1aa836efcc8b770dc7"
        "da41597c5157488d7724e03fb8d84a376a43b8f41518a11cc387b669b2ee6586"
    )


def test_random_bytes_are_the_chacha20_stream_of_the_runs_key(
    sb: Sandbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    from sandbox import _entropy

    key = bytes(range(32))
    monkeypatch.setattr(_entropy, "key", lambda: key)
    code = "const c = require('crypto'); return [...c.randomBytes(100), ...c.randomBytes(92)]"
    assert bytes(ok(sb, code)) == _chacha20(key, 3)


def test_a_run_without_a_key_refuses_to_make_random_bytes(
    sb: Sandbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    from sandbox import _entropy

    monkeypatch.setattr(_entropy, "key", lambda: bytes(32))
    code = "try { crypto.randomUUID() } catch (e) { return e.code }"
    assert ok(sb, code) == "ERR_NO_ENTROPY"
