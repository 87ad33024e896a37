"""Data keys kept in files outside the database: one encrypts personal data, one keys lookups.

Layout of the keys folder (`SOFTATM_KEYS_DIR`): `data/encryption.key` and `data/lookup.key`, 32
random bytes each, mode 0600. Code-signing keys live beside them in `signing/` (`kiosk.codes`).
Outside production, missing data keys are created on first use so that a first run just works;
in production they must exist, and a missing key stops the request with a clear message.
"""

from __future__ import annotations

import logging
import os
import secrets
from pathlib import Path

logger = logging.getLogger(__name__)

DATA_KEY_BYTES = 32
DATA_KEYS_SUBDIR = "data"
ENCRYPTION_KEY_FILE = "encryption.key"
LOOKUP_KEY_FILE = "lookup.key"


class KeysMissing(RuntimeError):
    """A key file the service needs is not there (or not readable, or the wrong size)."""


def write_key_file(path: Path, key: bytes) -> None:
    """Write a key atomically with owner-only permissions; never overwrite an existing key."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    temporary = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")
    descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        os.write(descriptor, key)
        os.fsync(descriptor)
    finally:
        os.close(descriptor)
    # link() fails if the key appeared meanwhile (another worker made it): keep that one.
    try:
        os.link(temporary, path)
    except FileExistsError:
        pass
    finally:
        temporary.unlink()


def read_key_file(path: Path) -> bytes:
    try:
        key = path.read_bytes()
    except OSError as error:
        raise KeysMissing(f"key file {path} cannot be read: {error.strerror}") from None
    if len(key) != DATA_KEY_BYTES:
        raise KeysMissing(f"key file {path} must hold exactly {DATA_KEY_BYTES} bytes")
    return key


def init_data_keys(keys_dir: Path) -> list[Path]:
    """Create whichever data keys are missing; return the files created."""
    created = []
    for name in (ENCRYPTION_KEY_FILE, LOOKUP_KEY_FILE):
        path = keys_dir / DATA_KEYS_SUBDIR / name
        if not path.exists():
            write_key_file(path, secrets.token_bytes(DATA_KEY_BYTES))
            created.append(path)
    return created


def load_data_keys(keys_dir: Path, *, create_missing: bool) -> tuple[bytes, bytes]:
    """Return (encryption key, lookup key)."""
    if create_missing:
        for path in init_data_keys(keys_dir):
            logger.warning("created a new data key at %s (not for production use)", path)
    folder = keys_dir / DATA_KEYS_SUBDIR
    return read_key_file(folder / ENCRYPTION_KEY_FILE), read_key_file(folder / LOOKUP_KEY_FILE)
