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

from kiosk.codes.signing import MANIFEST_NAME, KeyRing, KeyRingError, generate_key, load_key_ring

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


SIGNING_KEYS_SUBDIR = "signing"
_RING_EXTENSION_KEY = "softatm.code_key_ring"


def signing_keys_dir(keys_dir: Path) -> Path:
    return keys_dir / SIGNING_KEYS_SUBDIR


def code_key_ring() -> KeyRing:
    """The app's code-signing key ring, reloaded whenever an operator rotates or retires a key.

    Every worker checks the manifest's modification time on use (one stat call), so a rotation
    reaches all workers without a restart. Outside production an empty folder gets a first key.
    """
    from flask import current_app  # noqa: PLC0415 — this module is also used outside Flask

    from kiosk.config import Environment  # noqa: PLC0415

    directory = signing_keys_dir(current_app.config["KEYS_DIR"])
    manifest = directory / MANIFEST_NAME
    if not manifest.exists() and current_app.config["SOFTATM_ENV"] is not Environment.PRODUCTION:
        generate_key(directory)
        logger.warning("created a first code-signing key in %s (not for production use)", directory)
    try:
        stamp = manifest.stat().st_mtime_ns
    except OSError as error:
        raise KeysMissing(f"no code-signing keys in {directory}: {error.strerror}") from None
    cached: tuple[int, KeyRing] | None = current_app.extensions.get(_RING_EXTENSION_KEY)
    if cached is not None and cached[0] == stamp:
        return cached[1]
    try:
        ring = load_key_ring(directory)
    except KeyRingError as error:
        raise KeysMissing(f"code-signing keys in {directory} cannot be used: {error}") from None
    current_app.extensions[_RING_EXTENSION_KEY] = (stamp, ring)
    return ring
