"""Withdrawal and payment codes: signed, time-limited tokens shown as QR codes. Pure Python.

Design
------
A citizen's phone shows a QR code; a post-office agent scans it. The code carries everything the
counter needs to look the code up — its id, the account, the amount, the times — in a compact
binary token signed with Ed25519 and written in Base45, which is exactly QR's alphanumeric
alphabet. The signature makes the token unforgeable; it does not make it single-use: that is the
database's job (the code's row and its pending reservation are resolved at most once).

* `kiosk.codes.signing` owns the key ring: a directory of Ed25519 seeds and a manifest saying
  which key signs now and which still verify. Keys rotate without invalidating codes in flight.
* `kiosk.codes.tokens` owns the token's layout, `issue`, `reissue` (the page refreshes a code
  every 30 s, so a screenshot soon goes stale) and `verify`, with the `CodeError` hierarchy the
  web layer maps to messages.
* `kiosk.codes.qr` renders a token as a PNG or SVG with a fixed QR version and mask. It is not
  imported here, so code that only verifies does not load the imaging libraries.

Nothing here touches the database or Flask: callers pass the key ring and the time in.
"""

from kiosk.codes.signing import (
    KeyRing,
    KeyRingError,
    Signer,
    generate_key,
    load_key_ring,
    retire,
    rotate,
)
from kiosk.codes.tokens import (
    CODE_AGE_MAX_S,
    CODE_REFRESH_INTERVAL_S,
    PAYMENT_CODE_TTL_S,
    WITHDRAWAL_CODE_TTL_S,
    BadSignature,
    CodeClaims,
    CodeError,
    CodeExpired,
    CodeKind,
    CodeNotYetValid,
    CodeStale,
    IssuedCode,
    MalformedCode,
    RetiredSigningKey,
    UnknownSigningKey,
    WrongCodeKind,
    issue,
    reissue,
    verify,
)

__all__ = [
    "CODE_AGE_MAX_S",
    "CODE_REFRESH_INTERVAL_S",
    "PAYMENT_CODE_TTL_S",
    "WITHDRAWAL_CODE_TTL_S",
    "BadSignature",
    "CodeClaims",
    "CodeError",
    "CodeExpired",
    "CodeKind",
    "CodeNotYetValid",
    "CodeStale",
    "IssuedCode",
    "KeyRing",
    "KeyRingError",
    "MalformedCode",
    "RetiredSigningKey",
    "Signer",
    "UnknownSigningKey",
    "WrongCodeKind",
    "generate_key",
    "issue",
    "load_key_ring",
    "reissue",
    "retire",
    "rotate",
    "verify",
]
