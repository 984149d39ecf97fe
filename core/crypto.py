"""Encryption at rest for secrets and national IDs, with key rotation and blind indexes.

Blob format (base64 of): version byte 0x01 | key id (2 bytes) | nonce (12) | AES-256-GCM ciphertext.
The associated data binds a ciphertext to its place (e.g. ``plugin_state:3:smsc:password``), so a
value copied to another row or field does not decrypt. The master keys never enter the database.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import logging
import os
import secrets
import struct
import unicodedata
from dataclasses import dataclass
from pathlib import Path

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

log = logging.getLogger(__name__)
VERSION = 1


class MasterKeyError(Exception):
    """The master key is missing, malformed, or does not decrypt a value."""


@dataclass(frozen=True)
class MasterKey:
    id: int
    secret: bytes

    def derive(self, purpose: str) -> bytes:
        return HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=purpose.encode()).derive(self.secret)


class Keyring:
    """The first key encrypts; every key decrypts, so old values keep working after a rotation."""

    def __init__(self, keys: list[MasterKey], index_secret: bytes | None = None) -> None:
        if not keys:
            raise MasterKeyError("no master key configured")
        ids = [k.id for k in keys]
        if len(set(ids)) != len(ids):
            raise MasterKeyError(f"master key ids must be unique, got {ids}")
        self.keys = keys
        self._by_id = {k.id: k for k in keys}
        self._aead = {k.id: AESGCM(k.derive("praxis/aead/v1")) for k in keys}
        # Blind indexes must not change when encryption keys rotate, so they have their own key: the
        # 'index:' entry, or (without one) the lowest-numbered master key, which must then be kept.
        index = MasterKey(0, index_secret) if index_secret else min(keys, key=lambda k: k.id)
        self._index_key = index.derive("praxis/blind-index/v1")
        self.index_secret = index_secret

    @property
    def current(self) -> MasterKey:
        return self.keys[0]

    def encrypt(self, plaintext: str, aad: str) -> str:
        nonce = os.urandom(12)
        key = self.current
        header = struct.pack(">BH", VERSION, key.id)
        ct = self._aead[key.id].encrypt(nonce, plaintext.encode(), header + aad.encode())
        return base64.b64encode(header + nonce + ct).decode()

    def decrypt(self, token: str, aad: str) -> str:
        try:
            raw = base64.b64decode(token.encode(), validate=True)
            version, key_id = struct.unpack(">BH", raw[:3])
        except Exception as exc:
            raise MasterKeyError("not an encrypted value") from exc
        if version != VERSION:
            raise MasterKeyError(f"unknown encryption format version {version}")
        aead = self._aead.get(key_id)
        if aead is None:
            raise MasterKeyError(f"value was encrypted with master key {key_id}, which is not configured")
        try:
            return aead.decrypt(raw[3:15], raw[15:], raw[:3] + aad.encode()).decode()
        except Exception as exc:
            raise MasterKeyError("value does not decrypt here (wrong key, or moved from another row)") from exc

    def key_id_of(self, token: str) -> int:
        return struct.unpack(">BH", base64.b64decode(token.encode())[:3])[1]

    def needs_rotation(self, token: str) -> bool:
        return self.key_id_of(token) != self.current.id

    def blind_index(self, scope: str, value: str) -> str:
        """A keyed hash for exact-match search of an encrypted value (64 bits, hex)."""
        normal = unicodedata.normalize("NFKC", value).upper().replace("-", "").replace(" ", "")
        digest = hmac.new(self._index_key, f"{scope}:{normal}".encode(), hashlib.sha256).digest()
        return digest[:8].hex()


def parse_keyring(text: str) -> Keyring:
    """Parse 'id:base64key,...' plus an optional 'index:base64key' entry for blind indexes."""
    parts = [p.strip() for p in text.replace("\n", ",").split(",") if p.strip()]
    index = [p for p in parts if p.startswith("index:")]
    index_secret = None
    if index:
        try:
            index_secret = base64.b64decode(index[0].split(":", 1)[1], validate=True)
        except Exception as exc:
            raise MasterKeyError("the 'index:' key is not base64") from exc
        if len(index_secret) != 32:
            raise MasterKeyError(f"the 'index:' key must be 32 bytes, got {len(index_secret)}")
    return Keyring(parse_keys(",".join(p for p in parts if not p.startswith("index:"))), index_secret)


def parse_keys(text: str) -> list[MasterKey]:
    """Parse 'id:base64key,id:base64key' (32-byte keys)."""
    keys = []
    for part in [p.strip() for p in text.replace("\n", ",").split(",") if p.strip()]:
        if ":" not in part:
            raise MasterKeyError("each master key must look like '<id>:<base64 of 32 bytes>'")
        kid, b64 = part.split(":", 1)
        try:
            key_id, secret = int(kid), base64.b64decode(b64, validate=True)
        except Exception as exc:
            raise MasterKeyError(f"master key {kid!r} is not '<number>:<base64>'") from exc
        if len(secret) != 32:
            raise MasterKeyError(f"master key {key_id} must be 32 bytes, got {len(secret)}")
        if not 0 < key_id < 65536:
            raise MasterKeyError(f"master key id {key_id} must be between 1 and 65535")
        keys.append(MasterKey(key_id, secret))
    return keys


def new_key_line(key_id: int) -> str:
    return f"{key_id}:{base64.b64encode(secrets.token_bytes(32)).decode()}"


def load_keyring(master_key: str | None, key_file: Path | None, data_dir: Path, *, create: bool) -> Keyring:
    """Keys from PRAXIS_MASTER_KEY, else the key file; the embedded default creates the file once."""
    if master_key:
        return parse_keyring(master_key)
    path = key_file or data_dir / "master.key"
    if not path.exists():
        if not create:
            raise MasterKeyError(f"no master key: set PRAXIS_MASTER_KEY or create {path}")
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as handle:
            handle.write(new_key_line(1) + "\n")
            handle.write(f"index:{base64.b64encode(secrets.token_bytes(32)).decode()}\n")
        log.warning("Created a new master key at %s. Back it up: encrypted data is lost without it.", path)
    return parse_keyring(path.read_text())
