"""Time-based one-time codes (TOTP, RFC 6238) as a second factor, for any kind of user.

This module owns the mechanics shared by citizens and agents: making a secret, showing it (an
otpauth QR image served by the app, and the secret in groups of four for typing), storing it
encrypted, and checking a code. A code is accepted for its time step ±1 (about 30 s either way,
for a phone clock that is a little off), and each step at most once per user: the holder's row
keeps the last step accepted, and a conditional UPDATE moves it forward only if the new step is
greater, so two requests racing with the same code cannot both pass.

The holder's table needs an ``id`` primary key and a nullable integer ``totp_last_step`` column.
"""

from __future__ import annotations

import datetime as dt
import hmac
import io
from typing import Any, Protocol, cast

import pyotp
import qrcode  # type: ignore[import-untyped]  # no type information published
from qrcode.image.pil import PilImage  # type: ignore[import-untyped]
from sqlalchemy import CursorResult, or_, update
from sqlalchemy.orm import Session

from kiosk.pii import vault

TOTP_STEP_S = 30
TOTP_DIGITS = 6
# Steps accepted either side of the current one; RFC 6238 §5.2 advises at most one.
TOTP_WINDOW_STEPS = 1
# 160 bits, the HMAC-SHA1 key length RFC 4226 recommends; 32 base32 characters.
TOTP_SECRET_LENGTH_CHARS = 32
SECRET_GROUP_CHARS = 4
ENCRYPTION_PURPOSE = "totp_secret"
ISSUER = "ATM mềm"
# Large modules so that a cheap phone's camera reads the code off another screen or paper.
QR_BOX_PX = 8
QR_BORDER_MODULES = 4


class TotpHolder(Protocol):
    id: int
    totp_last_step: int | None


def new_secret() -> str:
    return pyotp.random_base32(length=TOTP_SECRET_LENGTH_CHARS)


def grouped(secret: str) -> str:
    """The secret in groups of four, as an authenticator app's "enter a key" screen wants it."""
    return " ".join(
        secret[start : start + SECRET_GROUP_CHARS]
        for start in range(0, len(secret), SECRET_GROUP_CHARS)
    )


def provisioning_uri(secret: str, account_name: str, issuer: str = ISSUER) -> str:
    return pyotp.TOTP(secret, digits=TOTP_DIGITS, interval=TOTP_STEP_S).provisioning_uri(
        name=account_name, issuer_name=issuer
    )


def qr_png(uri: str) -> bytes:
    """The otpauth URI as a PNG QR image (served from an endpoint: the CSP refuses data: URLs)."""
    code = qrcode.QRCode(
        error_correction=qrcode.constants.ERROR_CORRECT_M,
        box_size=QR_BOX_PX,
        border=QR_BORDER_MODULES,
        image_factory=PilImage,
    )
    code.add_data(uri)
    code.make(fit=True)
    buffer = io.BytesIO()
    code.make_image().save(buffer)
    return buffer.getvalue()


def encrypt_secret(secret: str) -> bytes:
    return vault().encrypt(secret, purpose=ENCRYPTION_PURPOSE)


def decrypt_secret(ciphertext: bytes) -> str:
    return vault().decrypt(ciphertext, purpose=ENCRYPTION_PURPOSE)


def step_at(now: dt.datetime) -> int:
    return int(now.timestamp()) // TOTP_STEP_S


def normalise_code(raw: str) -> str | None:
    """The typed code without spaces ("123 456"), or None when it cannot be a code."""
    code = "".join(raw.split())
    if len(code) != TOTP_DIGITS or not (code.isascii() and code.isdigit()):
        return None
    return code


def matching_step(secret: str, raw_code: str, now: dt.datetime) -> int | None:
    """The time step within the window whose code ``raw_code`` is (the latest if several), or
    None. Says nothing about whether that step was used before: see `claim_step`."""
    code = normalise_code(raw_code)
    if code is None:
        return None
    generator = pyotp.TOTP(secret, digits=TOTP_DIGITS, interval=TOTP_STEP_S)
    current = step_at(now)
    found = None
    for step in range(current - TOTP_WINDOW_STEPS, current + TOTP_WINDOW_STEPS + 1):
        if hmac.compare_digest(generator.generate_otp(step), code):
            found = step
    return found


def claim_step(session: Session, holder: TotpHolder, step: int) -> bool:
    """Record ``step`` as the holder's last accepted step if it is newer than the stored one;
    True when this call did so, False for a step already used (or an older one).

    A conditional UPDATE, not a read then a write: on PostgreSQL a concurrent request with the
    same step waits for this row's lock, then finds the condition false once this commits.
    """
    model: Any = type(holder)
    result = cast(
        CursorResult[Any],
        session.execute(
            update(model)
            .where(
                model.id == holder.id,
                or_(model.totp_last_step.is_(None), model.totp_last_step < step),
            )
            .values(totp_last_step=step)
            .execution_options(synchronize_session=False)
        ),
    )
    # The in-memory value may be stale either way; read it again when next needed.
    session.expire(holder, ["totp_last_step"])
    return result.rowcount == 1
