"""The citizen's account QR: a signed, non-secret pointer to a wallet for cash-in deposits.

An agent scans it to find whose wallet a deposit goes to. The text is::

    SATM-ACC:<citizen id>:<tag>

where the tag is the first 80 bits of HMAC-SHA-256 over ``SATM-ACC:<citizen id>``, written in
upper-case Base32 (16 characters). The key is derived from the app's SECRET_KEY for this purpose
only, so the tag cannot be confused with any other signature the app makes. The QR is not secret
(anyone who sees it may deposit money into that wallet, which is the point); the tag only makes
sure that a forged or altered QR cannot point a deposit at someone else's wallet. An online
forger would need about 2**79 guesses, each one a scan at a counter.

Every character of the text is in QR's alphanumeric set (digits, A-Z, ``-`` and ``:``), so the
symbol is small: version 2 (25 by 25 modules) at error-correction level M for citizen ids of up
to 12 digits, version 3 beyond.
Parsing accepts surrounding whitespace and lower case (a USB scanner typing with Caps Lock on),
and nothing else: one citizen has exactly one valid text.

Rotating SECRET_KEY changes every tag: a phone shows a fresh QR at once, a printed one stops
scanning and must be printed again.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import io
import re

import qrcode  # type: ignore[import-untyped]  # no type information published
from flask import current_app
from qrcode.constants import ERROR_CORRECT_M  # type: ignore[import-untyped]

ACCOUNT_QR_PREFIX = "SATM-ACC:"
ACCOUNT_QR_TAG_BYTES = 10  # 80 bits: exactly 16 Base32 characters, no padding.
ACCOUNT_QR_TEXT_LENGTH_MAX_CHARS = len(ACCOUNT_QR_PREFIX) + 19 + 1 + 16
CITIZEN_ID_MAX = 2**63 - 1
# Pixels per QR module and light modules around the symbol (the spec's quiet zone).
ACCOUNT_QR_MODULE_SIZE_PX = 8
ACCOUNT_QR_QUIET_ZONE_MODULES = 4
_KEY_DERIVATION_LABEL = b"softatm/account-qr/v1"
_PATTERN = re.compile(r"SATM-ACC:([1-9][0-9]{0,18}):([A-Z2-7]{16})")


class AccountQrError(ValueError):
    """A scanned text is not a valid account QR of this system."""


class AccountQrMalformed(AccountQrError):
    """Not an account QR at all, or one with a damaged layout."""


class AccountQrForged(AccountQrError):
    """Laid out like an account QR, but its tag was not made with this system's key."""


def _key(secret_key: str | bytes | None) -> bytes:
    if secret_key is None:
        secret_key = current_app.config["SECRET_KEY"]
    if isinstance(secret_key, str):
        secret_key = secret_key.encode("utf-8")
    if not secret_key:
        raise RuntimeError("an account QR needs a SECRET_KEY")
    return hmac.new(secret_key, _KEY_DERIVATION_LABEL, hashlib.sha256).digest()


def _tag(citizen_id: int, key: bytes) -> str:
    message = f"{ACCOUNT_QR_PREFIX}{citizen_id}".encode("ascii")
    digest = hmac.new(key, message, hashlib.sha256).digest()[:ACCOUNT_QR_TAG_BYTES]
    return base64.b32encode(digest).decode("ascii")


def encode_account_qr(citizen_id: int, *, secret_key: str | bytes | None = None) -> str:
    """The account QR text of a citizen. Without `secret_key`, the current app's SECRET_KEY."""
    if isinstance(citizen_id, bool) or not isinstance(citizen_id, int):
        raise TypeError("citizen_id must be an int")
    if not 0 < citizen_id <= CITIZEN_ID_MAX:
        raise ValueError("citizen_id out of range")
    return f"{ACCOUNT_QR_PREFIX}{citizen_id}:{_tag(citizen_id, _key(secret_key))}"


def parse_account_qr(text: str, *, secret_key: str | bytes | None = None) -> int:
    """The citizen id in a scanned account QR text.

    Raises `AccountQrMalformed` for anything that is not laid out as an account QR and
    `AccountQrForged` when the tag does not match. The caller still checks that the citizen
    exists (a deleted account keeps a valid-looking QR).
    """
    # ASCII first: upper() maps some other letters onto ASCII ones (long s, U+017F, becomes S).
    if (
        not isinstance(text, str)
        or len(text) > ACCOUNT_QR_TEXT_LENGTH_MAX_CHARS + 8
        or not text.isascii()
    ):
        raise AccountQrMalformed("not an account QR")
    match = _PATTERN.fullmatch(text.strip().upper())
    if match is None:
        raise AccountQrMalformed("not an account QR")
    citizen_id = int(match.group(1))
    if citizen_id > CITIZEN_ID_MAX:
        raise AccountQrMalformed("citizen id out of range")
    expected = _tag(citizen_id, _key(secret_key))
    if not hmac.compare_digest(expected, match.group(2)):
        raise AccountQrForged("account QR tag does not match")
    return citizen_id


def render_account_qr_png(text: str) -> bytes:
    """A 1-bit PNG of the QR symbol: level M, whole pixels per module, a 4-module quiet zone."""
    symbol = qrcode.QRCode(
        version=None,
        error_correction=ERROR_CORRECT_M,
        box_size=ACCOUNT_QR_MODULE_SIZE_PX,
        border=ACCOUNT_QR_QUIET_ZONE_MODULES,
    )
    symbol.add_data(text)
    symbol.make(fit=True)
    image = symbol.make_image()
    buffer = io.BytesIO()
    image.save(buffer)
    return buffer.getvalue()


def mask_phone(phone: str) -> str:
    """ "0912345678" → "0912•••678": enough for the owner to recognise, not to call."""
    if len(phone) < 8:
        return "•" * len(phone)
    return f"{phone[:4]}•••{phone[-3:]}"
