"""Ed25519 keys that sign the audit chain's checkpoints.

The private key never enters the database: it comes from `AUDIT_SIGNING_KEY` (a PEM
file's path or the PEM text itself, as a secret manager hands it over) or, in
development and tests, from a key generated once under the data directory. Anyone
holding the public key can check a checkpoint: an auditor, a regulator, the reader of
an export. Keys are named by a key id (a digest of the public key), and retired public
keys stay in the ring (`AUDIT_PUBLIC_KEYS`) so checkpoints signed before a rotation
keep verifying.

What a checkpoint signature covers (all integers big-endian):
    "gymledger-checkpoint-v1\\0" | gym id (16 bytes) | position (int64) | link (32 bytes)
    | previous checkpoint's position (int64, 0 for the first) | signed_at (int64, µs since epoch)
Chaining each checkpoint to the previous one makes a deleted checkpoint visible.
"""

import functools
import hashlib
import struct
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Final
from uuid import UUID

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

ALGORITHM: Final = "Ed25519"
_DOMAIN = b"gymledger-checkpoint-v1\x00"
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MICROSECOND = timedelta(microseconds=1)


class SigningKeyError(ValueError):
    """A key that cannot be read (bad PEM, not Ed25519)."""


def _raw(public: Ed25519PublicKey) -> bytes:
    return public.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


def key_id(public: Ed25519PublicKey) -> str:
    """16 hex digits of the public key's SHA-256: stable, and needs no registry."""
    return hashlib.sha256(_raw(public)).hexdigest()[:16]


def raw_public_hex(public: Ed25519PublicKey) -> str:
    return _raw(public).hex()


def public_pem(public: Ed25519PublicKey) -> str:
    return public.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    ).decode()


def checkpoint_message(
    gym_id: UUID, position: int, link: bytes, previous: int, signed_at: datetime
) -> bytes:
    micros = (signed_at - _EPOCH) // _MICROSECOND
    return (
        _DOMAIN
        + gym_id.bytes
        + struct.pack(">q", position)
        + link
        + struct.pack(">qq", previous, micros)
    )


@dataclass(frozen=True)
class KeyRing:
    """The signing key (absent where only verification happens) and every public key."""

    signing: Ed25519PrivateKey | None
    public: dict[str, Ed25519PublicKey] = field(default_factory=dict)

    @functools.cached_property
    def signing_key_id(self) -> str:
        """Worked out once: deriving and hashing the public key on every signature was a
        sixth of the projector's CPU per live batch."""
        if self.signing is None:
            raise SigningKeyError("no signing key configured")
        return key_id(self.signing.public_key())

    def sign(self, message: bytes) -> tuple[str, bytes]:
        if self.signing is None:
            raise SigningKeyError("no signing key configured")
        return self.signing_key_id, self.signing.sign(message)

    def verify(self, kid: str, message: bytes, signature: bytes) -> bool:
        public = self.public.get(kid)
        if public is None:
            return False
        try:
            public.verify(signature, message)
        except InvalidSignature:
            return False
        return True


def _pem_blocks(text: str) -> list[bytes]:
    blocks, current = [], []
    for line in text.splitlines():
        if line.startswith("-----BEGIN"):
            current = [line]
        elif current:
            current.append(line)
            if line.startswith("-----END"):
                blocks.append("\n".join(current).encode() + b"\n")
                current = []
    return blocks


def pem_text(value: str) -> str:
    """A PEM given inline, or the path of a file holding it."""
    return value if "-----BEGIN" in value else Path(value).read_text()


def load_private(value: str) -> Ed25519PrivateKey:
    try:
        key = serialization.load_pem_private_key(pem_text(value).encode(), password=None)
    except (ValueError, TypeError, OSError) as error:
        raise SigningKeyError(f"cannot read the signing key: {error}") from None
    if not isinstance(key, Ed25519PrivateKey):
        raise SigningKeyError("the signing key must be an Ed25519 key")
    return key


def load_public_keys(value: str) -> list[Ed25519PublicKey]:
    """Every public key in a PEM text or file (several may follow each other)."""
    try:
        text = pem_text(value)
        keys = [serialization.load_pem_public_key(block) for block in _pem_blocks(text)]
    except (ValueError, TypeError, OSError) as error:
        raise SigningKeyError(f"cannot read public keys: {error}") from None
    if not keys or not all(isinstance(k, Ed25519PublicKey) for k in keys):
        raise SigningKeyError("expected one or more Ed25519 public keys in PEM form")
    return [k for k in keys if isinstance(k, Ed25519PublicKey)]


@functools.lru_cache(maxsize=16)  # parsing PEM on every verification would be wasted work
def key_ring(signing_pem: str | None, public_pems: str | None = None) -> KeyRing:
    signing = load_private(signing_pem) if signing_pem else None
    public = [signing.public_key()] if signing else []
    if public_pems:
        public += load_public_keys(public_pems)
    return KeyRing(signing, {key_id(k): k for k in public})


def generate_private_pem() -> str:
    return (
        Ed25519PrivateKey.generate()
        .private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        .decode()
    )
