"""``codexec receipt verify``: check a receipt's signature and bill, and re-run its code.

Exit status: 0 verified; 1 verification failed (signature, arithmetic, hashes, or the re-run
gave another fuel or cost); 2 bad input (files, key); 3 the re-run was refused because this
machine's engine is not the one that ran the code (wasm sha256, wasmtime version or build
differ, or a module the receipt allowed is not provided here). A re-run of code that read a
clock or drew on the host's random key (``readClock``, ``readRandom``: in the receipt or in
the re-run) is reported as one that may differ and does not fail: neither the time nor the
per-run key (fresh from ``os.urandom``, never recorded) can be replayed.
"""

from __future__ import annotations

import argparse
import hashlib
import sys
import urllib.request
from decimal import Decimal
from pathlib import Path
from typing import Any, TextIO

import orjson
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from billing import receipt_keys
from billing.errors import BillingError
from billing.money import format_decimal
from billing.pricing import billed_cpu_ms
from billing.receipt_facts import ReceiptFacts, context_sha256
from billing.receipts import InvalidReceipt, check, price_lines
from sandbox import Sandbox, modules
from service.config import Settings
from service.receipting import engine_build, limits_of, load_signing_key

__all__ = ["add_receipt_command", "verify"]

RUNNABLE = ("javascript", "js")


class _Refused(Exception):
    def __init__(self, message: str, status: int) -> None:
        super().__init__(message)
        self.status = status


def _public_key(source: str | None, settings: Settings) -> Ed25519PublicKey:
    """The key from a URL (``GET /v1/receipts/public-key``), a file, or this deployment."""
    if source is None:
        key = load_signing_key(settings)
        if key is None:
            raise _Refused("no --public-key and no CODEXEC_RECEIPT_SIGNING_KEY", 2)
        return key.public_key()
    if source.startswith(("http://", "https://")):
        with urllib.request.urlopen(source, timeout=10) as reply:  # noqa: S310 - http(s) only
            text = reply.read().decode()
    else:
        text = Path(source).read_text()
    if text.lstrip().startswith("{"):
        text = orjson.loads(text)["publicKey"]
    return receipt_keys.parse_public_key(text)


def _facts(body: dict[str, Any]) -> ReceiptFacts:
    engine, limits = body["engine"], body["engine"]["limits"]
    unit = {line["item"]: line["unitPrice"] for line in body["lines"]}
    return ReceiptFacts(
        code_sha256=bytes.fromhex(body["codeSha256"]),
        context_sha256=bytes.fromhex(body["contextSha256"]),
        wasm_sha256=bytes.fromhex(engine["wasmSha256"]),
        wasmtime_version=engine["wasmtimeVersion"],
        random_seed=int(body["randomSeed"]),
        read_clock=bool(body["readClock"]),
        read_random=bool(body.get("readRandom", False)),
        timeout_ms=limits["timeoutMs"],
        memory_bytes=limits["memoryBytes"],
        fuel_cap=limits["fuel"],
        max_code_bytes=limits["maxCodeBytes"],
        max_output_lines=limits["maxOutputLines"],
        max_output_bytes=limits["maxOutputBytes"],
        max_result_bytes=limits["maxResultBytes"],
        allowed_modules=tuple(limits.get("allowedModules", ())),
        price_per_cpu_second=unit["cpu"],
        price_per_mb=unit["memory"],
        price_per_execution=unit["execution"],
        fuel_per_cpu_ms=body["usage"]["fuelPerCpuMs"],
        language=body.get("language", "javascript"),
        engine_build=engine.get("build", ""),
    )


def _rerun(body: dict[str, Any], code: str, context: Any, settings: Settings, out: TextIO) -> bool:
    """Re-run the code as the receipt says; True when fuel and cost are identical."""
    facts = _facts(body)
    if hashlib.sha256(code.encode("utf-8", "surrogatepass")).digest() != facts.code_sha256:
        raise _Refused("the code's sha256 is not the receipt's codeSha256", 1)
    if context_sha256(context) != facts.context_sha256:
        raise _Refused("the context's canonical sha256 is not the receipt's contextSha256", 1)
    if facts.language not in RUNNABLE:
        raise _Refused(f"re-running {facts.language} code is not supported by this verifier", 3)
    if missing := modules.unknown(facts.allowed_modules):
        raise _Refused(f"this verifier does not provide the modules {', '.join(missing)}", 3)
    sandbox = Sandbox(settings.cache_dir)
    try:
        info = sandbox.info
        here = (info.wasm_sha256, info.wasmtime_version, engine_build(info))
        there = (facts.wasm_sha256.hex(), facts.wasmtime_version, facts.engine_build)
        if here != there:
            raise _Refused(
                f"this engine (wasm {here[0][:16]}..., wasmtime {here[1]}, build {here[2]}) "
                f"is not the receipt's (wasm {there[0][:16]}..., wasmtime {there[1]}, "
                f"build {there[2]})",
                3,
            )
        result = sandbox.run(
            code, orjson.dumps(context).decode(), limits_of(facts), random_seed=facts.random_seed
        )
    finally:
        sandbox.close()
    billed_ns = int(billed_cpu_ms(result.fuel).scaleb(6))
    _, cost = price_lines(billed_ns, result.peak_memory, facts)
    want_fuel, want_cost = body["usage"]["fuel"], Decimal(body["cost"])
    same = result.fuel == want_fuel and cost == want_cost
    why = _nondeterminism(
        facts.read_clock or result.read_clock, facts.read_random or result.read_random
    )
    verdict = "identical" if same else "different, which it may be" if why else "DIFFERENT"
    print(
        f"re-run: fuel {result.fuel} (receipt {want_fuel}), cost {format_decimal(cost)} USD "
        f"(receipt {body['cost']}): {verdict}",
        file=out,
    )
    if why:
        print(f"note: the code {why}, so a re-run may legitimately differ", file=out)
        return True
    return same


def _nondeterminism(clock: bool, random: bool) -> str:
    """Why a re-run may differ ("" if it may not)."""
    reasons = [
        text
        for flag, text in (
            (clock, "read the clock"),
            (random, "drew on the host's per-run random key (crypto random values)"),
        )
        if flag
    ]
    return " and ".join(reasons)


def verify(
    receipt_file: Path,
    *,
    code_file: Path | None = None,
    context_file: Path | None = None,
    public_key: str | None = None,
    settings: Settings | None = None,
    out: TextIO = sys.stdout,
) -> int:
    """Verify a receipt file; returns the exit status (module docstring)."""
    settings = settings or Settings()
    try:
        envelope = orjson.loads(receipt_file.read_bytes())
        public = _public_key(public_key, settings)
        body = check(envelope, public)
        print(
            f"signature OK (Ed25519 key {receipt_keys.key_id(public)}); the bill adds up: "
            f"{body['cost']} USD for execution {body['executionId']} of {body['clientId']}",
            file=out,
        )
        if code_file is None:
            return 0
        code = code_file.read_text()
        context = orjson.loads(context_file.read_bytes()) if context_file else {}
        return 0 if _rerun(body, code, context, settings, out) else 1
    except InvalidReceipt as exc:
        print(f"FAILED: {exc}", file=out)
        return 1
    except _Refused as exc:
        print(f"{'REFUSED' if exc.status == 3 else 'FAILED'}: {exc}", file=out)
        return exc.status
    except (OSError, ValueError, KeyError, TypeError, BillingError) as exc:
        print(f"error: {exc}", file=out)
        return 2


def _handler(args: argparse.Namespace) -> int:
    return verify(
        Path(args.receipt),
        code_file=Path(args.code) if args.code else None,
        context_file=Path(args.context) if args.context else None,
        public_key=args.public_key,
    )


def add_receipt_command(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``receipt verify`` to the ``codexec`` parser."""
    receipt = subparsers.add_parser("receipt", help="verify signed receipts")
    sub = receipt.add_subparsers(dest="receipt_command", required=True)
    p = sub.add_parser("verify", help="check the signature and bill; re-run with --code")
    p.add_argument("receipt", help="RECEIPT.json as GET /v1/receipts/<id> returned it")
    p.add_argument("--code", help="the code that ran: re-run it and compare fuel and cost")
    p.add_argument("--context", help="its context JSON, as sent (default: {})")
    p.add_argument(
        "--public-key",
        help="PEM/base64 file, or URL of GET /v1/receipts/public-key (default: this "
        "deployment's key)",
    )
    p.set_defaults(handler=_handler)
