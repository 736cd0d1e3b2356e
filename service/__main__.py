"""The ``codexec`` command: ``serve``, ``compile-cache``, and the billing and key commands."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import shutil
import signal
import socket
import sys
from collections.abc import Iterator, Sequence

from pydantic import ValidationError

from billing.apikeys import ApiKeys
from billing.cli import CliContext, add_commands
from billing.client import connect
from billing.embedded import EmbeddedRedis
from billing.exports import ExportOptions
from billing.plans import Plans
from service.config import Settings
from service.logs import configure_logging
from service.receipt_cli import add_receipt_command
from service.workers import APP, run_workers

__all__ = ["main"]

CONTRACT_EXAMPLE = '{"code": "const x = 10; const y = 20; return x + y;", "language": "javascript"}'


def _load_settings(args: argparse.Namespace) -> Settings:
    overrides = {k: v for k in ("host", "port", "workers") if (v := getattr(args, k, None))}
    try:
        return Settings(**overrides)
    except ValidationError as exc:
        lines = [
            f"  {'.'.join(map(str, e['loc'])) or 'settings'}: {e['msg']}" for e in exc.errors()
        ]
        sys.exit(
            "codexec: invalid settings (CODEXEC_* environment variables):\n" + "\n".join(lines)
        )


def _answers(port: int) -> bool:
    with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.3) as s:
        s.sendall(b"PING\r\n")
        return s.recv(16).startswith(b"+PONG")
    return False


@contextlib.contextmanager
def redis_url(settings: Settings) -> Iterator[str]:
    """``CODEXEC_REDIS_URL``, or the embedded server (reused if one already runs)."""
    if settings.redis_url:
        yield settings.redis_url
        return
    port = settings.embedded_redis_port
    if _answers(port):
        yield f"redis://127.0.0.1:{port}/0"
        return
    server = EmbeddedRedis(settings.var_dir / "redis", port=port).start()
    print(f"codexec: embedded redis-server on 127.0.0.1:{port} (data in {server.data_dir})")
    try:
        yield server.url
    finally:
        server.stop()


async def _dev_key(url: str, settings: Settings) -> str:
    """The development key: reuse the one saved under ./var, or create it."""
    path = settings.var_dir / "dev-api-key"
    client = connect(url, cluster=settings.redis_cluster)
    try:
        keys = ApiKeys(client)
        if path.exists():
            token = path.read_text().strip()
            found = await keys.resolve(token)
            if found is not None and not found.revoked:
                return token
        token = await keys.create("dev", "basic")
        path.parent.mkdir(parents=True, exist_ok=True)
        path.touch(mode=0o600)
        path.write_text(token + "\n")
        return token
    finally:
        await client.aclose()


def _serve(args: argparse.Namespace) -> int:
    settings = _load_settings(args)
    configure_logging(settings.log_level)
    settings.var_dir.mkdir(parents=True, exist_ok=True)
    _compile_cache(settings)
    with redis_url(settings) as url:
        os.environ["CODEXEC_REDIS_URL"] = url
        if settings.workers > 1:
            prom = settings.var_dir / f"prometheus-{os.getpid()}"
            shutil.rmtree(prom, ignore_errors=True)
            prom.mkdir(parents=True)
            os.environ["PROMETHEUS_MULTIPROC_DIR"] = str(prom)
        if args.dev:
            token = asyncio.run(_dev_key(url, settings))
            base = f"http://{settings.host}:{settings.port}"
            print(
                f"\ncodexec development key for client 'dev' (saved in "
                f"{settings.var_dir / 'dev-api-key'}):\n  {token}\n\nTry it:\n"
                f"  curl -s -X POST {base}/execute -H 'Content-Type: application/json' "
                f"-H 'Authorization: Bearer {token}' -d '{CONTRACT_EXAMPLE}'\n",
                flush=True,
            )
        if settings.workers > 1:
            run_workers(
                settings.workers, settings.host, settings.port, log_level=settings.log_level
            )
            return 0
        import uvicorn

        # uvicorn re-raises SIGTERM/SIGINT after its graceful shutdown; turning that into
        # SystemExit lets the embedded Redis be stopped on the way out.
        signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
        uvicorn.run(
            APP,
            factory=True,
            host=settings.host,
            port=settings.port,
            log_config=None,
            access_log=False,
            timeout_graceful_shutdown=30,
        )
    return 0


def _compile_cache(settings: Settings) -> None:
    from sandbox import Sandbox

    Sandbox(settings.cache_dir).close()


def _prepare_typescript(settings: Settings) -> None:
    """Fetch and compile the TypeScript stripper into the cache (what a container image needs)."""
    from sandbox import Sandbox
    from sandbox.typescript import StripperUnavailable, TypeScript

    with Sandbox(settings.cache_dir) as box:
        try:
            TypeScript(box.compiled.engine, settings.cache_dir, fetch=True)
        except StripperUnavailable as exc:
            print(f"TypeScript stripper not prepared ({exc}): typescript requests answer 503")


def _compile_cache_cmd(args: argparse.Namespace) -> int:
    settings = _load_settings(args)
    _compile_cache(settings)
    _prepare_typescript(settings)
    print(f"compiled modules cached under {settings.cache_dir}")
    return 0


async def _run_billing(args: argparse.Namespace, settings: Settings, url: str) -> int:
    client = connect(url, cluster=settings.redis_cluster)
    try:
        ctx = CliContext(
            redis=client,
            plans=Plans.load(settings.plans_file),
            retention_days=settings.retention_days,
            out=sys.stdout,
            export=ExportOptions(
                source=settings.export_source,
                event_name=settings.stripe_event_name,
                customers_file=settings.stripe_customers_file,
                value=settings.stripe_value,
            ),
        )
        code: int = await args.func(args, ctx)
        return code
    finally:
        await client.aclose()


def build_parser() -> argparse.ArgumentParser:
    """The top-level parser with every subcommand."""
    parser = argparse.ArgumentParser(prog="codexec", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    serve = sub.add_parser("serve", help="serve the HTTP API (uvicorn)")
    serve.add_argument("--host")
    serve.add_argument("--port", type=int)
    serve.add_argument("--workers", type=int)
    serve.add_argument(
        "--dev", action="store_true", help="create and print a development key and a curl line"
    )
    serve.set_defaults(handler=_serve)
    warm = sub.add_parser("compile-cache", help="compile the wasm module into the cache dir")
    warm.set_defaults(handler=_compile_cache_cmd)
    add_commands(sub)
    add_receipt_command(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``codexec`` console script."""
    args = build_parser().parse_args(argv)
    handler = getattr(args, "handler", None)
    if handler is not None:
        result: int = handler(args)
        return result
    settings = _load_settings(args)
    with redis_url(settings) as url:
        return asyncio.run(_run_billing(args, settings, url))


if __name__ == "__main__":
    sys.exit(main())
