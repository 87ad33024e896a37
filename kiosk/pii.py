"""Personal data at rest: citizen ID numbers (and TOTP secrets) are encrypted, never stored clear.

Encryption is AES-256-GCM (an AEAD) with a random 96-bit nonce; the purpose of the value ("citizen
id", "totp secret") is bound as associated data, so a ciphertext moved to another column does not
decrypt. Lookups ("is this ID number registered?") go through HMAC-SHA-256 under a second key, so
the database holds no value that can be reversed or tested offline without the key files.
"""

from __future__ import annotations

import hashlib
import hmac
import os

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from flask import current_app

from kiosk.config import Environment
from kiosk.keys import load_data_keys

CIPHERTEXT_VERSION = b"\x01"
NONCE_BYTES = 12
LOOKUP_HASH_BYTES = 32
EXTENSION_KEY = "softatm.pii"


class DecryptionFailed(RuntimeError):
    """The ciphertext was altered, belongs to another purpose, or another key made it."""


class PiiVault:
    def __init__(self, encryption_key: bytes, lookup_key: bytes) -> None:
        self._aead = AESGCM(encryption_key)
        self._lookup_key = lookup_key

    def encrypt(self, plaintext: str, *, purpose: str) -> bytes:
        nonce = os.urandom(NONCE_BYTES)
        sealed = self._aead.encrypt(nonce, plaintext.encode("utf-8"), purpose.encode("ascii"))
        return CIPHERTEXT_VERSION + nonce + sealed

    def decrypt(self, blob: bytes, *, purpose: str) -> str:
        if blob[:1] != CIPHERTEXT_VERSION:
            raise DecryptionFailed("unknown ciphertext version")
        nonce, sealed = blob[1 : 1 + NONCE_BYTES], blob[1 + NONCE_BYTES :]
        try:
            plaintext = self._aead.decrypt(nonce, sealed, purpose.encode("ascii"))
        except InvalidTag:
            raise DecryptionFailed("ciphertext does not authenticate") from None
        return plaintext.decode("utf-8")

    def lookup_hash(self, value: str, *, purpose: str) -> bytes:
        message = purpose.encode("ascii") + b"\x00" + value.encode("utf-8")
        return hmac.new(self._lookup_key, message, hashlib.sha256).digest()


def vault() -> PiiVault:
    """The app's vault, loaded from the keys folder on first use."""
    existing: PiiVault | None = current_app.extensions.get(EXTENSION_KEY)
    if existing is None:
        production = current_app.config["SOFTATM_ENV"] is Environment.PRODUCTION
        encryption_key, lookup_key = load_data_keys(
            current_app.config["KEYS_DIR"], create_missing=not production
        )
        existing = PiiVault(encryption_key, lookup_key)
        current_app.extensions[EXTENSION_KEY] = existing
    return existing
