"""The signed token inside a withdrawal or payment QR code: its layout, issuing and verifying.

This module owns the token's bytes and the exceptions a presented token can raise. Layout of
format 1 (integers big-endian, times in Unix seconds)::

    offset  bytes  field
         0      1  format version (1)
         1      2  signing key id
         3      1  kind: 1 withdrawal, 2 payment
         4     16  code id (random; the code's UUID)
        20      8  account id
        28      8  amount in đồng
        36      4  issued at
        40      4  expires at
        -- a withdrawal body ends here: 44 bytes --
        44      4  biller id                        (payment only)
        48      1  length n of the bill reference   (payment only; 1..24)
        49      n  bill reference, ASCII [0-9A-Z./-] (payment only)
    then   64  Ed25519 signature over SIGNATURE_DOMAIN + body

A withdrawal token is 108 bytes, 162 Base45 characters: QR version 9 at level Q (capacity 189).
Fixed-width fields keep the parser trivial and give each set of claims exactly one body. The code
id is 16 bytes so that it is the code's UUID primary key as it stands and collisions need no retry
path; 12 bytes would save 6 characters and reach version 8 with one character to spare, too tight
to be worth it. Four-byte times last until 2106.

The text is Base45 (RFC 9285), whose alphabet is exactly QR's alphanumeric set, so the QR code
carries 5.5 bits per character instead of 8. Base45 includes the space: callers must not strip
spaces from a scanned token (the decoder here refuses anything but the canonical encoding).

`verify` checks in this order, and trusts no field before the signature except the two it needs
to find the key: Base45 and length, format version, key id (unknown or retired), signature; then
the body's structure, the kind the caller demands, expiry, an issue time in the future, and
staleness. Refresh: the citizen's page calls `reissue` every CODE_REFRESH_INTERVAL_S seconds,
which signs the same code with a fresh issue time, and the counter passes `max_age_s` so that a
screenshot soon stops working (`CodeStale`, a kind of `CodeExpired`: both mean "show a new code").
"""

from __future__ import annotations

import datetime as dt
import enum
import math
import re
import uuid
from dataclasses import dataclass, replace
from typing import ClassVar

import base45  # type: ignore[import-untyped]  # no type information published
from cryptography.exceptions import InvalidSignature

from kiosk.codes.signing import KEY_ID_MAX, KEY_ID_MIN, KeyRing

TOKEN_FORMAT_VERSION = 1
# Signatures over this prefix cannot be replayed as signatures of anything else the keys sign.
SIGNATURE_DOMAIN = b"softatm-code-v1\x00"

SIGNATURE_LENGTH_BYTES = 64
CODE_ID_LENGTH_BYTES = 16
WITHDRAWAL_BODY_LENGTH_BYTES = 44
PAYMENT_BODY_FIXED_LENGTH_BYTES = 49
BILL_REFERENCE_LENGTH_MAX_BYTES = 24
TOKEN_LENGTH_MIN_BYTES = WITHDRAWAL_BODY_LENGTH_BYTES + SIGNATURE_LENGTH_BYTES
TOKEN_LENGTH_MAX_BYTES = (
    PAYMENT_BODY_FIXED_LENGTH_BYTES + BILL_REFERENCE_LENGTH_MAX_BYTES + SIGNATURE_LENGTH_BYTES
)
# Base45: three characters per two bytes, two for a final odd byte.
TOKEN_LENGTH_MAX_CHARS = (TOKEN_LENGTH_MAX_BYTES // 2) * 3 + (TOKEN_LENGTH_MAX_BYTES % 2) * 2

# Ids and amounts must fit a signed BIGINT column; the business limits are checked elsewhere.
ACCOUNT_ID_MAX = 2**63 - 1
AMOUNT_MAX_VND = 2**63 - 1
BILLER_ID_MAX = 2**32 - 1
UNIX_TIME_MAX_S = 2**32 - 1

WITHDRAWAL_CODE_TTL_S = 15 * 60
PAYMENT_CODE_TTL_S = 60 * 60
# No code lives longer than a day: a code is made at the counter's door, not days ahead.
CODE_TTL_MAX_S = 24 * 60 * 60
CODE_REFRESH_INTERVAL_S = 30
# Three refresh intervals: a page on slow 3G may take a while to reload, and the agent's scan
# a while to submit; a screenshot older than this is refused.
CODE_AGE_MAX_S = 3 * CODE_REFRESH_INTERVAL_S
# Clocks of the server that signs and the one that verifies may disagree by this much.
CLOCK_SKEW_MAX_S = 60

_BILL_REFERENCE = re.compile(rb"[0-9A-Z./-]{1,%d}" % BILL_REFERENCE_LENGTH_MAX_BYTES)


class CodeKind(enum.IntEnum):
    WITHDRAWAL = 1
    PAYMENT = 2


# --- Errors --------------------------------------------------------------------------------------


class CodeError(Exception):
    """A presented code cannot be used. `code` is stable, for the web layer and for logs.

    The message is a fixed sentence per class: it never repeats the token, a field of it, or
    anything about the keys.
    """

    code: ClassVar[str] = "invalid_code"
    message: ClassVar[str] = "The code is not valid."

    def __init__(self) -> None:
        super().__init__(self.message)


class MalformedCode(CodeError):
    code = "malformed_code"
    message = "The code is not a Soft ATM code, or was read incompletely."


class UnknownSigningKey(CodeError):
    code = "unknown_signing_key"
    message = "The code was signed by a key this server does not know."


class RetiredSigningKey(UnknownSigningKey):
    code = "retired_signing_key"
    message = "The code was signed by a key that is no longer accepted."


class BadSignature(CodeError):
    code = "bad_signature"
    message = "The code's signature does not match its content."


class WrongCodeKind(CodeError):
    code = "wrong_code_kind"
    message = "The code is of another kind than expected here."


class CodeExpired(CodeError):
    code = "code_expired"
    message = "The code has expired."


class CodeStale(CodeExpired):
    code = "code_stale"
    message = "The code was shown too long ago; the citizen's screen must show a fresh one."


class CodeNotYetValid(CodeError):
    code = "code_not_yet_valid"
    message = "The code's issue time is in the future."


# --- Claims --------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class CodeClaims:
    """What a verified token says. Times are timezone-aware UTC, in whole seconds."""

    kind: CodeKind
    code_id: uuid.UUID
    account_id: int
    amount_vnd: int
    issued_at: dt.datetime
    expires_at: dt.datetime
    key_id: int
    biller_id: int | None = None
    bill_reference: str | None = None


@dataclass(frozen=True, slots=True)
class IssuedCode:
    token: str
    claims: CodeClaims


def issue(
    key_ring: KeyRing,
    *,
    kind: CodeKind,
    account_id: int,
    amount_vnd: int,
    now: dt.datetime,
    ttl_s: int,
    code_id: uuid.UUID | None = None,
    biller_id: int | None = None,
    bill_reference: str | None = None,
) -> IssuedCode:
    """Sign a new code with the ring's signer. A payment code needs a biller and a reference.

    Arguments come from the caller's own records, so a bad one is a bug: ValueError.
    """
    issued_at = _whole_seconds(now)
    if not 0 < ttl_s <= CODE_TTL_MAX_S:
        raise ValueError(f"ttl_s must be in 1..{CODE_TTL_MAX_S}")
    claims = CodeClaims(
        kind=kind,
        code_id=uuid.uuid4() if code_id is None else code_id,
        account_id=account_id,
        amount_vnd=amount_vnd,
        issued_at=issued_at,
        expires_at=issued_at + dt.timedelta(seconds=ttl_s),
        key_id=key_ring.signer.key_id,
        biller_id=biller_id,
        bill_reference=bill_reference,
    )
    return IssuedCode(_sign(claims, key_ring), claims)


def reissue(claims: CodeClaims, key_ring: KeyRing, now: dt.datetime) -> IssuedCode:
    """The same code (id, account, amount, expiry) signed again with `now` as its issue time.

    The current signer signs, so a refresh after a rotation moves the code to the new key.
    An expired code is not renewed: CodeExpired.
    """
    issued_at = _whole_seconds(now)
    if issued_at >= claims.expires_at:
        raise CodeExpired()
    fresh = replace(claims, issued_at=issued_at, key_id=key_ring.signer.key_id)
    return IssuedCode(_sign(fresh, key_ring), fresh)


def verify(
    token_text: str,
    key_ring: KeyRing,
    now: dt.datetime,
    *,
    kind: CodeKind | None = None,
    max_age_s: int | None = None,
) -> CodeClaims:
    """The claims of a presented token, or a CodeError saying why it cannot be used.

    `kind`: the kind this counter accepts (WrongCodeKind otherwise). `max_age_s`: refuse a code
    issued longer ago than this (CodeStale); None accepts any age up to expiry.
    """
    if now.tzinfo is None:
        raise ValueError("now must be timezone-aware")
    data = _decode_text(token_text)
    if not TOKEN_LENGTH_MIN_BYTES <= len(data) <= TOKEN_LENGTH_MAX_BYTES:
        raise MalformedCode()
    if data[0] != TOKEN_FORMAT_VERSION:
        raise MalformedCode()
    key_id = int.from_bytes(data[1:3], "big")
    public_key = key_ring.verifier(key_id)
    if public_key is None:
        raise RetiredSigningKey() if key_ring.is_retired(key_id) else UnknownSigningKey()
    body, signature = data[:-SIGNATURE_LENGTH_BYTES], data[-SIGNATURE_LENGTH_BYTES:]
    try:
        public_key.verify(signature, SIGNATURE_DOMAIN + body)
    except InvalidSignature:
        raise BadSignature() from None

    # Signed by one of our keys from here on; the structure is checked all the same.
    claims = _parse_body(body, key_id)
    if kind is not None and claims.kind != kind:
        raise WrongCodeKind()
    if now >= claims.expires_at:
        raise CodeExpired()
    if claims.issued_at > now + dt.timedelta(seconds=CLOCK_SKEW_MAX_S):
        raise CodeNotYetValid()
    if max_age_s is not None and now - claims.issued_at > dt.timedelta(seconds=max_age_s):
        raise CodeStale()
    return claims


# --- Encoding ------------------------------------------------------------------------------------


def _sign(claims: CodeClaims, key_ring: KeyRing) -> str:
    assert claims.key_id == key_ring.signer.key_id
    body = _encode_body(claims)
    signature = key_ring.signer.sign(SIGNATURE_DOMAIN + body)
    assert len(signature) == SIGNATURE_LENGTH_BYTES
    text: str = base45.b45encode(body + signature).decode("ascii")
    return text


def _encode_body(claims: CodeClaims) -> bytes:
    issued_s = _unix_seconds(claims.issued_at)
    expires_s = _unix_seconds(claims.expires_at)
    if not 0 < expires_s - issued_s <= CODE_TTL_MAX_S:
        raise ValueError(f"a code must expire after it is issued, within {CODE_TTL_MAX_S} s")
    if not 1 <= claims.account_id <= ACCOUNT_ID_MAX:
        raise ValueError("account_id out of range")
    if not 1 <= claims.amount_vnd <= AMOUNT_MAX_VND:
        raise ValueError("amount_vnd must be a positive number of đồng")
    if not KEY_ID_MIN <= claims.key_id <= KEY_ID_MAX:
        raise ValueError("key_id out of range")
    body = b"".join(
        (
            TOKEN_FORMAT_VERSION.to_bytes(1, "big"),
            claims.key_id.to_bytes(2, "big"),
            CodeKind(claims.kind).to_bytes(1, "big"),
            claims.code_id.bytes,
            claims.account_id.to_bytes(8, "big"),
            claims.amount_vnd.to_bytes(8, "big"),
            issued_s.to_bytes(4, "big"),
            expires_s.to_bytes(4, "big"),
        )
    )
    assert len(body) == WITHDRAWAL_BODY_LENGTH_BYTES
    if claims.kind == CodeKind.WITHDRAWAL:
        if claims.biller_id is not None or claims.bill_reference is not None:
            raise ValueError("a withdrawal code has no biller or bill reference")
        return body
    if claims.biller_id is None or not 1 <= claims.biller_id <= BILLER_ID_MAX:
        raise ValueError("a payment code needs a biller_id in 1..2**32-1")
    reference = (claims.bill_reference or "").encode("ascii", errors="replace")
    if not _BILL_REFERENCE.fullmatch(reference):
        raise ValueError(f"a bill reference is 1..{BILL_REFERENCE_LENGTH_MAX_BYTES} of [0-9A-Z./-]")
    return body + claims.biller_id.to_bytes(4, "big") + bytes([len(reference)]) + reference


def _decode_text(token_text: str) -> bytes:
    if not isinstance(token_text, str) or len(token_text) > TOKEN_LENGTH_MAX_CHARS:
        raise MalformedCode()
    try:
        data: bytes = base45.b45decode(token_text)
    except ValueError:
        raise MalformedCode() from None
    # The decoder forgives a trailing newline; only the canonical text of the bytes is a token,
    # so that a token has exactly one spelling.
    if base45.b45encode(data) != token_text.encode("ascii"):
        raise MalformedCode()
    return data


def _parse_body(body: bytes, key_id: int) -> CodeClaims:
    try:
        kind = CodeKind(body[3])
    except ValueError:
        raise MalformedCode() from None
    issued_s = int.from_bytes(body[36:40], "big")
    expires_s = int.from_bytes(body[40:44], "big")
    account_id = int.from_bytes(body[20:28], "big")
    amount_vnd = int.from_bytes(body[28:36], "big")
    if not (
        0 < expires_s - issued_s <= CODE_TTL_MAX_S
        and 1 <= account_id <= ACCOUNT_ID_MAX
        and 1 <= amount_vnd <= AMOUNT_MAX_VND
    ):
        raise MalformedCode()
    biller_id: int | None = None
    bill_reference: str | None = None
    if kind == CodeKind.WITHDRAWAL:
        if len(body) != WITHDRAWAL_BODY_LENGTH_BYTES:
            raise MalformedCode()
    else:
        if len(body) < PAYMENT_BODY_FIXED_LENGTH_BYTES:
            raise MalformedCode()
        biller_id = int.from_bytes(body[44:48], "big")
        reference = body[PAYMENT_BODY_FIXED_LENGTH_BYTES:]
        if biller_id == 0 or body[48] != len(reference) or not _BILL_REFERENCE.fullmatch(reference):
            raise MalformedCode()
        bill_reference = reference.decode("ascii")
    return CodeClaims(
        kind=kind,
        code_id=uuid.UUID(bytes=body[4:20]),
        account_id=account_id,
        amount_vnd=amount_vnd,
        issued_at=dt.datetime.fromtimestamp(issued_s, dt.UTC),
        expires_at=dt.datetime.fromtimestamp(expires_s, dt.UTC),
        key_id=key_id,
        biller_id=biller_id,
        bill_reference=bill_reference,
    )


def _whole_seconds(now: dt.datetime) -> dt.datetime:
    return dt.datetime.fromtimestamp(_unix_seconds(now), dt.UTC)


def _unix_seconds(value: dt.datetime) -> int:
    if value.tzinfo is None:
        raise ValueError("times must be timezone-aware")
    seconds = math.floor(value.timestamp())
    if not 0 <= seconds <= UNIX_TIME_MAX_S:
        raise ValueError("time outside the token's range (1970..2106)")
    return seconds
