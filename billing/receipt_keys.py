"""The Ed25519 key that signs receipts: loading, generating (development), public forms.

``CODEXEC_RECEIPT_SIGNING_KEY`` holds the private key as PEM (PKCS#8, unencrypted) or as
the base64 of its 32 raw bytes. Without it, outside production, a key is generated once and
kept in ``<var_dir>/receipt-signing-key.pem`` (mode 0600; every worker process and restart
reuses it); production refuses to start without the setting, since receipts must stay
verifiable across restarts and replicas.

Signatures are over the canonical JSON of the receipt (:func:`billing.receipt_facts.canonical_json`:
UTF-8, keys sorted, no whitespace); the key ID is the first 16 hex digits of the sha256 of
the raw public key.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import hashlib
import os
import tempfile
from pathlib import Path

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from billing.errors import InvalidKey

__all__ = [
    "KEY_FILE",
    "InvalidKey",
    "key_id",
    "load_or_create",
    "parse_private_key",
    "parse_public_key",
    "public_pem",
    "public_raw_b64",
    "verify",
]

KEY_FILE = "receipt-signing-key.pem"
"""Name of the development key file under the var directory."""


def parse_private_key(text: str) -> Ed25519PrivateKey:
    """An Ed25519 private key from PEM or from base64 of its 32 raw bytes."""
    text = text.strip()
    try:
        if text.startswith("-----BEGIN"):
            key = serialization.load_pem_private_key(text.encode(), password=None)
        else:
            key = Ed25519PrivateKey.from_private_bytes(base64.b64decode(text, validate=True))
    except (ValueError, TypeError, binascii.Error) as exc:
        raise InvalidKey(f"not an Ed25519 private key (PEM or base64 of 32 bytes): {exc}") from None
    if not isinstance(key, Ed25519PrivateKey):
        raise InvalidKey("the receipt signing key must be an Ed25519 key")
    return key


def parse_public_key(text: str) -> Ed25519PublicKey:
    """An Ed25519 public key from PEM or from base64 of its 32 raw bytes."""
    text = text.strip()
    try:
        if text.startswith("-----BEGIN"):
            key = serialization.load_pem_public_key(text.encode())
        else:
            key = Ed25519PublicKey.from_public_bytes(base64.b64decode(text, validate=True))
    except (ValueError, TypeError, binascii.Error) as exc:
        raise InvalidKey(f"not an Ed25519 public key (PEM or base64 of 32 bytes): {exc}") from None
    if not isinstance(key, Ed25519PublicKey):
        raise InvalidKey("a receipt public key must be an Ed25519 key")
    return key


def load_or_create(var_dir: Path) -> Ed25519PrivateKey:
    """The development key under ``var_dir``, generated on first use (race-free: the file
    is written aside and linked into place, so concurrent workers agree on one key)."""
    path = var_dir / KEY_FILE
    if not path.exists():
        var_dir.mkdir(parents=True, exist_ok=True)
        pem = Ed25519PrivateKey.generate().private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        fd, tmp = tempfile.mkstemp(dir=var_dir, prefix=".receipt-key-")
        try:
            os.fchmod(fd, 0o600)
            os.write(fd, pem)
            os.fsync(fd)
            os.close(fd)
            with contextlib.suppress(FileExistsError):  # another process was first: use its key
                os.link(tmp, path)
        finally:
            os.unlink(tmp)
    return parse_private_key(path.read_text())


def _raw(public: Ed25519PublicKey) -> bytes:
    return public.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


def key_id(public: Ed25519PublicKey) -> str:
    """First 16 hex digits of the sha256 of the raw public key."""
    return hashlib.sha256(_raw(public)).hexdigest()[:16]


def public_pem(public: Ed25519PublicKey) -> str:
    """SubjectPublicKeyInfo PEM."""
    return public.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    ).decode()


def public_raw_b64(public: Ed25519PublicKey) -> str:
    """Base64 of the 32 raw bytes."""
    return base64.b64encode(_raw(public)).decode()


def verify(public: Ed25519PublicKey, signature_b64: str, message: bytes) -> bool:
    """Whether ``signature_b64`` is a valid signature of ``message``."""
    try:
        public.verify(base64.b64decode(signature_b64, validate=True), message)
    except (InvalidSignature, binascii.Error, ValueError):
        return False
    return True
