"""The Ed25519 key ring that signs withdrawal and payment codes, kept in a keys directory.

This module owns the keys directory (its path is the caller's: the app passes a configured one)::

    manifest.json     which key signs now, and every key ever made: id, public key, dates
    key-00001.seed    the private key of key 1: the raw 32-byte Ed25519 seed, nothing else
    .lock             held (flock) while the ring changes, so two operators cannot interleave

A seed file is raw bytes rather than PEM: it is the whole secret in its smallest form, with no
parser in front of it. Every file is written with mode 0600 into a temporary file and moved into
place with `os.replace`, so a reader sees the old file or the new one, never half of either; the
loader refuses a seed that group or others may read.

Key ids are 1..65535 (two bytes in a token), handed out in order and never reused, so an id in a
token names exactly one key forever. A key's life:

* *staged* — made by `generate_key` on a ring that already has a signer. It verifies but does not
  sign yet, so every server can reload the ring and learn it before the first code it signs
  reaches them.
* *signer* — exactly one key signs. `generate_key` on an empty directory makes the first;
  `rotate` promotes the oldest staged key, or makes a new one when none is staged.
* *verify-only* — the previous signer after `rotate`: codes it signed still verify until they
  expire. It can never sign again, so its seed is deleted; its public key stays in the manifest.
* *retired* — `retire` stops a key from verifying (never the signer). The manifest keeps the id
  and the date, so a code signed by it is refused as retired rather than as unknown.

Only the signer's seed is ever read back. Private keys never appear in a repr, a log or an error.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import fcntl
import json
import os
import re
import stat
import tempfile
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

MANIFEST_NAME = "manifest.json"
LOCK_NAME = ".lock"
MANIFEST_FORMAT = 1
KEY_ID_MIN = 1
KEY_ID_MAX = 0xFFFF
SEED_LENGTH_BYTES = 32
PUBLIC_KEY_LENGTH_BYTES = 32
# Far more than a ring ever holds (one key per rotation); it bounds what a corrupt file can cost.
MANIFEST_SIZE_MAX_BYTES = 1024 * 1024
FILE_MODE = 0o600
DIRECTORY_MODE = 0o700

_SEED_NAME = re.compile(r"key-(\d{5})\.seed")


class KeyRingError(Exception):
    """The keys directory is missing, inconsistent or unsafe, or an operation on it is refused.

    The message names files and key ids, never key material.
    """


@dataclass(frozen=True, slots=True)
class KeyInfo:
    """One key as the manifest records it."""

    key_id: int
    public_key: bytes
    created_at: dt.datetime
    retired_at: dt.datetime | None = None


@dataclass(frozen=True, slots=True)
class Manifest:
    signer_id: int
    keys: tuple[KeyInfo, ...]

    def find(self, key_id: int) -> KeyInfo | None:
        return next((key for key in self.keys if key.key_id == key_id), None)

    def staged_ids(self) -> list[int]:
        """Keys made after the signer and not retired: candidates for the next rotation."""
        return sorted(
            key.key_id
            for key in self.keys
            if key.key_id > self.signer_id and key.retired_at is None
        )


class Signer:
    """The key that signs codes now. Its repr shows the key id only."""

    __slots__ = ("_private_key", "key_id")

    def __init__(self, key_id: int, private_key: Ed25519PrivateKey) -> None:
        self.key_id = key_id
        self._private_key = private_key

    def sign(self, message: bytes) -> bytes:
        """The 64-byte Ed25519 signature of `message`."""
        return self._private_key.sign(message)

    def public_key(self) -> Ed25519PublicKey:
        return self._private_key.public_key()

    def __repr__(self) -> str:
        return f"Signer(key_id={self.key_id})"


class KeyRing:
    """The signer and every key that still verifies, as loaded from a keys directory.

    A ring is a snapshot: after `rotate` or `retire`, load it again (servers should reload when
    they meet an unknown key id, and on a signal or timer).
    """

    __slots__ = ("_retired", "_verifiers", "signer")

    def __init__(
        self,
        signer: Signer,
        verifiers: Mapping[int, Ed25519PublicKey],
        retired: Mapping[int, dt.datetime],
    ) -> None:
        assert signer.key_id in verifiers, "the signer must verify its own codes"
        assert not set(verifiers) & set(retired), "a retired key must not verify"
        self.signer = signer
        self._verifiers = dict(verifiers)
        self._retired = dict(retired)

    def verifier(self, key_id: int) -> Ed25519PublicKey | None:
        """The public key that verifies codes signed by `key_id`; None if unknown or retired."""
        return self._verifiers.get(key_id)

    def is_retired(self, key_id: int) -> bool:
        return key_id in self._retired

    @property
    def verifying_key_ids(self) -> frozenset[int]:
        return frozenset(self._verifiers)

    def __repr__(self) -> str:
        return (
            f"KeyRing(signer={self.signer.key_id}, verifying={sorted(self._verifiers)}, "
            f"retired={sorted(self._retired)})"
        )


# --- Operations on the keys directory -----------------------------------------------------------


def generate_key(keys_dir: Path | str, *, now: dt.datetime | None = None) -> int:
    """Make a new key and return its id.

    In an empty (or missing) directory the key becomes the signer; otherwise it is staged: it
    verifies at once and signs from the next `rotate`.
    """
    directory = Path(keys_dir)
    directory.mkdir(mode=DIRECTORY_MODE, parents=True, exist_ok=True)
    with _locked(directory):
        manifest = _read_manifest(directory) if (directory / MANIFEST_NAME).exists() else None
        key_id = _next_key_id(directory, manifest)
        key = _write_new_seed(directory, key_id, _utc(now))
        if manifest is None:
            manifest = Manifest(signer_id=key_id, keys=(key,))
        else:
            manifest = replace(manifest, keys=(*manifest.keys, key))
        _write_manifest(directory, manifest)
    return key_id


def rotate(keys_dir: Path | str, *, now: dt.datetime | None = None) -> int:
    """Make a new signer and return its id; the previous signer stays verify-only.

    The oldest staged key is promoted if there is one (every server already knows it); otherwise
    a new key is made, which servers learn when they reload the ring.
    """
    directory = Path(keys_dir)
    with _locked(directory):
        manifest = _read_manifest(directory)
        staged = manifest.staged_ids()
        if staged:
            new_id = staged[0]
            if not _seed_path(directory, new_id).is_file():
                raise KeyRingError(f"staged key {new_id} has no seed file; retire it and rotate")
        else:
            new_id = _next_key_id(directory, manifest)
            key = _write_new_seed(directory, new_id, _utc(now))
            manifest = replace(manifest, keys=(*manifest.keys, key))
        manifest = replace(manifest, signer_id=new_id)
        _write_manifest(directory, manifest)
        _delete_unneeded_seeds(directory, manifest)
    return new_id


def retire(keys_dir: Path | str, key_id: int, *, now: dt.datetime | None = None) -> None:
    """Stop `key_id` from verifying; its seed, if any, is deleted. Retiring twice is harmless.

    The signer cannot be retired: rotate first, then retire the old key once its codes have
    expired (or at once, if it is compromised: its outstanding codes are then refused).
    """
    directory = Path(keys_dir)
    with _locked(directory):
        manifest = _read_manifest(directory)
        key = manifest.find(key_id)
        if key is None:
            raise KeyRingError(f"key {key_id} is not in the ring")
        if key_id == manifest.signer_id:
            raise KeyRingError(f"key {key_id} signs now and cannot be retired; rotate first")
        if key.retired_at is None:
            retired = replace(key, retired_at=_utc(now))
            keys = tuple(retired if k.key_id == key_id else k for k in manifest.keys)
            manifest = replace(manifest, keys=keys)
            _write_manifest(directory, manifest)
        _delete_unneeded_seeds(directory, manifest)


def load_key_ring(keys_dir: Path | str) -> KeyRing:
    """Read the manifest and the signer's seed; raise KeyRingError if anything is off."""
    directory = Path(keys_dir)
    manifest = _read_manifest(directory)
    verifiers: dict[int, Ed25519PublicKey] = {}
    retired: dict[int, dt.datetime] = {}
    for key in manifest.keys:
        if key.retired_at is not None:
            retired[key.key_id] = key.retired_at
        else:
            verifiers[key.key_id] = Ed25519PublicKey.from_public_bytes(key.public_key)
    private_key = Ed25519PrivateKey.from_private_bytes(
        _read_seed(_seed_path(directory, manifest.signer_id))
    )
    signer = Signer(manifest.signer_id, private_key)
    # A seed that does not match its recorded public key (a file copied from another ring, say)
    # would sign codes that no server can verify: better to refuse to start.
    if _public_bytes(signer.public_key()) != _require(manifest.find(signer.key_id)).public_key:
        raise KeyRingError(f"the seed of key {signer.key_id} does not match the manifest")
    return KeyRing(signer, verifiers, retired)


# --- Files ---------------------------------------------------------------------------------------


def _seed_path(directory: Path, key_id: int) -> Path:
    return directory / f"key-{key_id:05d}.seed"


def _next_key_id(directory: Path, manifest: Manifest | None) -> int:
    # Seed files count too: a crash between writing a seed and the manifest leaves an orphan
    # seed, whose id must not be handed out again.
    used = {key.key_id for key in manifest.keys} if manifest else set()
    for path in directory.iterdir():
        match = _SEED_NAME.fullmatch(path.name)
        if match:
            used.add(int(match.group(1)))
    key_id = max(used, default=0) + 1
    if key_id > KEY_ID_MAX:
        raise KeyRingError("no key ids left (65535 keys made); start a new keys directory")
    return key_id


def _write_new_seed(directory: Path, key_id: int, now: dt.datetime) -> KeyInfo:
    path = _seed_path(directory, key_id)
    if path.exists():
        raise KeyRingError(f"{path.name} already exists; key ids are never reused")
    private_key = Ed25519PrivateKey.generate()
    seed = private_key.private_bytes(
        serialization.Encoding.Raw,
        serialization.PrivateFormat.Raw,
        serialization.NoEncryption(),
    )
    _write_atomically(path, seed)
    return KeyInfo(key_id, _public_bytes(private_key.public_key()), now)


def _read_seed(path: Path) -> bytes:
    try:
        with path.open("rb") as file:
            mode = os.fstat(file.fileno()).st_mode
            if mode & (stat.S_IRWXG | stat.S_IRWXO):
                raise KeyRingError(
                    f"{path} may be read by group or others (mode {stat.S_IMODE(mode):o}); "
                    "chmod 600 it"
                )
            seed = file.read(SEED_LENGTH_BYTES + 1)
    except FileNotFoundError as error:
        raise KeyRingError(f"the signer's seed file {path} is missing") from error
    if len(seed) != SEED_LENGTH_BYTES:
        raise KeyRingError(f"{path} is not a {SEED_LENGTH_BYTES}-byte Ed25519 seed")
    return seed


def _delete_unneeded_seeds(directory: Path, manifest: Manifest) -> None:
    """Delete the seeds of keys that can never sign again: former signers and retired keys."""
    for key in manifest.keys:
        if key.key_id < manifest.signer_id or key.retired_at is not None:
            _seed_path(directory, key.key_id).unlink(missing_ok=True)
    _fsync_directory(directory)


def _read_manifest(directory: Path) -> Manifest:
    path = directory / MANIFEST_NAME
    try:
        with path.open("rb") as file:
            content = file.read(MANIFEST_SIZE_MAX_BYTES + 1)
    except FileNotFoundError as error:
        raise KeyRingError(f"no key ring in {directory}: {MANIFEST_NAME} is missing") from error
    if len(content) > MANIFEST_SIZE_MAX_BYTES:
        raise KeyRingError(f"{path} is larger than {MANIFEST_SIZE_MAX_BYTES} bytes")
    try:
        return _parse_manifest(json.loads(content))
    except (ValueError, TypeError, KeyError) as error:
        raise KeyRingError(f"{path} is not a valid manifest: {error}") from error


def _parse_manifest(document: Any) -> Manifest:
    if not isinstance(document, dict) or document.get("format") != MANIFEST_FORMAT:
        raise ValueError(f"format must be {MANIFEST_FORMAT}")
    keys = []
    for entry in document["keys"]:
        key_id = entry["id"]
        if type(key_id) is not int or not KEY_ID_MIN <= key_id <= KEY_ID_MAX:
            raise ValueError(f"key id {key_id!r} out of range")
        public_key = bytes.fromhex(entry["public_key"])
        if len(public_key) != PUBLIC_KEY_LENGTH_BYTES:
            raise ValueError(f"key {key_id}: the public key is not {PUBLIC_KEY_LENGTH_BYTES} bytes")
        retired_at = entry.get("retired_at")
        keys.append(
            KeyInfo(
                key_id=key_id,
                public_key=public_key,
                created_at=_parse_time(entry["created_at"]),
                retired_at=None if retired_at is None else _parse_time(retired_at),
            )
        )
    ids = [key.key_id for key in keys]
    if len(set(ids)) != len(ids):
        raise ValueError("a key id appears twice")
    signer_id = document["signer"]
    if type(signer_id) is not int:
        raise ValueError(f"the signer {signer_id!r} is not a key id")
    manifest = Manifest(signer_id=signer_id, keys=tuple(sorted(keys, key=_key_id)))
    signer = manifest.find(manifest.signer_id)
    if signer is None:
        raise ValueError(f"the signer {manifest.signer_id!r} is not among the keys")
    if signer.retired_at is not None:
        raise ValueError(f"the signer {manifest.signer_id} is retired")
    return manifest


def _write_manifest(directory: Path, manifest: Manifest) -> None:
    document = {
        "format": MANIFEST_FORMAT,
        "signer": manifest.signer_id,
        "keys": [
            {
                "id": key.key_id,
                "public_key": key.public_key.hex(),
                "created_at": _format_time(key.created_at),
                "retired_at": None if key.retired_at is None else _format_time(key.retired_at),
            }
            for key in manifest.keys
        ],
    }
    _write_atomically(directory / MANIFEST_NAME, (json.dumps(document, indent=2) + "\n").encode())


def _write_atomically(path: Path, content: bytes) -> None:
    """Write a 0600 temporary file beside `path`, fsync it, and move it over `path`."""
    descriptor, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        # mkstemp already creates 0600; said again so that the guarantee does not rest on it.
        os.fchmod(descriptor, FILE_MODE)
        with os.fdopen(descriptor, "wb") as file:
            file.write(content)
            file.flush()
            os.fsync(file.fileno())
        os.replace(temporary, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temporary)
        raise
    _fsync_directory(path.parent)


def _fsync_directory(directory: Path) -> None:
    # The rename (or unlink) is durable only once the directory entry itself reaches the disk.
    descriptor = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


@contextlib.contextmanager
def _locked(directory: Path) -> Iterator[None]:
    if not directory.is_dir():
        raise KeyRingError(f"the keys directory {directory} does not exist")
    descriptor = os.open(directory / LOCK_NAME, os.O_RDWR | os.O_CREAT, FILE_MODE)
    try:
        fcntl.flock(descriptor, fcntl.LOCK_EX)
        yield
    finally:
        os.close(descriptor)  # closing releases the lock


# --- Small helpers -------------------------------------------------------------------------------


def _public_bytes(public_key: Ed25519PublicKey) -> bytes:
    return public_key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


def _key_id(key: KeyInfo) -> int:
    return key.key_id


def _require(key: KeyInfo | None) -> KeyInfo:
    assert key is not None
    return key


def _utc(now: dt.datetime | None) -> dt.datetime:
    if now is None:
        return dt.datetime.now(dt.UTC).replace(microsecond=0)
    if now.tzinfo is None:
        raise ValueError("now must be timezone-aware")
    return now.astimezone(dt.UTC)


def _format_time(value: dt.datetime) -> str:
    return value.astimezone(dt.UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def _parse_time(text: str) -> dt.datetime:
    value = dt.datetime.fromisoformat(text)
    if value.tzinfo is None:
        raise ValueError(f"timestamp {text!r} has no time zone")
    return value.astimezone(dt.UTC)
