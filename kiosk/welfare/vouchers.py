"""Welfare cash vouchers: the signed token printed as a QR on the slip, the voucher number typed
when the QR cannot be read, payment at the counter and expiry.

A voucher is an `IssuedCode` (kind withdrawal) whose reservation is held on the programme's fund
and which names its beneficiary row. The counter pays it like any withdrawal code, with three
differences: it is printed on paper and valid for days, so its token carries no freshness
(`kiosk.codes.tokens` refuses a citizen's code older than 90 s, which is right for a phone screen
and wrong for paper); it is paid only at a post office of the programme's commune; and no fee is
charged to the beneficiary.

Token layout (format 1, integers big-endian), Base45 after the prefix ``TC:``::

    offset  bytes  field
         0      1  format version (1)
         1      2  signing key id
         3     16  code id (the IssuedCode's UUID)
        19      8  amount in đồng
        27      4  expires at (Unix seconds)
    then   64  Ed25519 signature over VOUCHER_SIGNATURE_DOMAIN + body

The key ring is the codes' ring; the signature domain differs, so a voucher signature can never
be replayed as a citizen's code or the reverse. The prefix cannot begin a citizen's token (whose
third Base45 character is always "0").

Voucher number (the fallback): 10 digits derived from the code id under the lookup key (not
stored), printed on the slip. The agent types it with the last 4 digits of the ID card: the
post office's commune and those 4 digits narrow the open vouchers to a handful, the 10 digits
pick one. Each agent's attempts are counted like the citizens' fallback codes.
"""

from __future__ import annotations

import datetime as dt
import hmac
import uuid
from dataclasses import dataclass

import base45  # type: ignore[import-untyped]  # no type information published
from cryptography.exceptions import InvalidSignature
from flask_babel import gettext as _  # type: ignore[import-untyped]
from sqlalchemy import select
from sqlalchemy.orm import Session

from kiosk.auth.throttles import FALLBACK_CODE_POLICY, Locked, clear, count_attempt, failed
from kiosk.codes.signing import KeyRing
from kiosk.formatting import local_time
from kiosk.payments.codes import void_expired
from kiosk.payments.models import CodeStatus, IssuedCode
from kiosk.pii import vault
from kiosk.welfare.models import BeneficiaryRow, PayCycle, RowStatus, WelfareProgramme

VOUCHER_PREFIX = "TC:"
VOUCHER_FORMAT_VERSION = 1
VOUCHER_SIGNATURE_DOMAIN = b"softatm-welfare-voucher-v1\x00"
VOUCHER_BODY_LENGTH_BYTES = 31
SIGNATURE_LENGTH_BYTES = 64
VOUCHER_TOKEN_LENGTH_BYTES = VOUCHER_BODY_LENGTH_BYTES + SIGNATURE_LENGTH_BYTES
VOUCHER_TOKEN_LENGTH_MAX_CHARS = len(VOUCHER_PREFIX) + (VOUCHER_TOKEN_LENGTH_BYTES // 2) * 3 + 2
VOUCHER_NUMBER_DIGITS = 10
VOUCHER_NUMBER_PURPOSE = "welfare_voucher_number"
# Open vouchers of one commune sharing the same last 4 ID digits: a handful at most.
VOUCHER_CANDIDATES_MAX = 50
EXPIRY_BATCH_SIZE_MAX = 500


# --- The token ---------------------------------------------------------------------------------


class VoucherTokenError(Exception):
    """A scanned voucher cannot be trusted. `code`: malformed, unknown_key or bad_signature."""

    def __init__(self, code: str) -> None:
        super().__init__(code)
        self.code = code


@dataclass(frozen=True, slots=True)
class VoucherClaims:
    code_id: uuid.UUID
    amount_vnd: int
    expires_at: dt.datetime
    key_id: int


def is_voucher_text(text: str) -> bool:
    return text.startswith(VOUCHER_PREFIX)


def sign_voucher(key_ring: KeyRing, record: IssuedCode) -> str:
    """The text of the QR printed on a voucher slip (deterministic for a given key)."""
    expires_s = int(record.expires_at.timestamp())
    body = b"".join(
        (
            VOUCHER_FORMAT_VERSION.to_bytes(1, "big"),
            key_ring.signer.key_id.to_bytes(2, "big"),
            record.id.bytes,
            record.amount.to_bytes(8, "big"),
            expires_s.to_bytes(4, "big"),
        )
    )
    assert len(body) == VOUCHER_BODY_LENGTH_BYTES
    signature = key_ring.signer.sign(VOUCHER_SIGNATURE_DOMAIN + body)
    encoded: str = base45.b45encode(body + signature).decode("ascii")
    return VOUCHER_PREFIX + encoded


def verify_voucher(text: str, key_ring: KeyRing) -> VoucherClaims:
    """The claims of a scanned voucher whose signature holds; expiry is the caller's to check
    (a voucher already paid says so rather than "expired")."""
    if not is_voucher_text(text) or len(text) > VOUCHER_TOKEN_LENGTH_MAX_CHARS:
        raise VoucherTokenError("malformed")
    encoded = text[len(VOUCHER_PREFIX) :]
    try:
        data: bytes = base45.b45decode(encoded)
    except ValueError:
        raise VoucherTokenError("malformed") from None
    if base45.b45encode(data) != encoded.encode("ascii", errors="replace"):
        raise VoucherTokenError("malformed")
    if len(data) != VOUCHER_TOKEN_LENGTH_BYTES or data[0] != VOUCHER_FORMAT_VERSION:
        raise VoucherTokenError("malformed")
    key_id = int.from_bytes(data[1:3], "big")
    public_key = key_ring.verifier(key_id)
    if public_key is None:
        raise VoucherTokenError("unknown_key")
    body, signature = data[:VOUCHER_BODY_LENGTH_BYTES], data[VOUCHER_BODY_LENGTH_BYTES:]
    try:
        public_key.verify(signature, VOUCHER_SIGNATURE_DOMAIN + body)
    except InvalidSignature:
        raise VoucherTokenError("bad_signature") from None
    amount = int.from_bytes(body[19:27], "big")
    if amount <= 0:
        raise VoucherTokenError("malformed")
    return VoucherClaims(
        code_id=uuid.UUID(bytes=body[3:19]),
        amount_vnd=amount,
        expires_at=dt.datetime.fromtimestamp(int.from_bytes(body[27:31], "big"), dt.UTC),
        key_id=key_id,
    )


def claimed_code_id(text: str) -> uuid.UUID | None:
    """The code id a voucher text claims, read without trusting it (tampered or forged?)."""
    try:
        data: bytes = base45.b45decode(text[len(VOUCHER_PREFIX) :])
    except ValueError:
        return None
    if len(data) != VOUCHER_TOKEN_LENGTH_BYTES:
        return None
    return uuid.UUID(bytes=data[3:19])


# --- The voucher number ------------------------------------------------------------------------


def voucher_number(record: IssuedCode) -> str:
    tag = vault().lookup_hash(str(record.id), purpose=VOUCHER_NUMBER_PURPOSE)
    return str(int.from_bytes(tag[:8], "big") % 10**VOUCHER_NUMBER_DIGITS).zfill(
        VOUCHER_NUMBER_DIGITS
    )


def format_voucher_number(digits: str) -> str:
    return f"{digits[:5]} {digits[5:]}"


class VoucherNumberRefused(Exception):
    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


def find_by_voucher_number(
    session: Session,
    *,
    commune_code: str,
    last4: str,
    digits: str,
    throttle_key: str,
    now: dt.datetime,
) -> IssuedCode:
    """The open voucher of this commune whose number was typed with the ID card's last 4 digits.

    The attempt is counted (per `throttle_key`, the agent) before anything is compared, and a
    match clears the count. Raises `VoucherNumberRefused` with a message for the agent.
    """
    typed = "".join(digits.split())
    typed_last4 = "".join(last4.split())
    if len(typed) != VOUCHER_NUMBER_DIGITS or not (typed.isascii() and typed.isdigit()):
        raise VoucherNumberRefused(_("Số phiếu gồm đúng 10 chữ số, in dưới mã QR."))
    if len(typed_last4) != 4 or not (typed_last4.isascii() and typed_last4.isdigit()):
        raise VoucherNumberRefused(_("Nhập 4 số cuối trên căn cước người nhận đưa."))
    try:
        attempts_left = count_attempt(session, throttle_key, FALLBACK_CODE_POLICY, now)
        record = _voucher_with_number(session, commune_code, typed_last4, typed, now)
        if record is None:
            failed(session, throttle_key, FALLBACK_CODE_POLICY, now, attempts_left)
    except Locked as locked:
        raise VoucherNumberRefused(
            _(
                "Đã nhập sai số phiếu nhiều lần. Thử lại sau %(time)s hoặc quét mã QR.",
                time=local_time(locked.until, "%H:%M"),
            )
        ) from None
    if record is None:
        raise VoucherNumberRefused(
            _(
                "Số phiếu và 4 số cuối căn cước không khớp với phiếu trợ cấp nào còn hiệu lực "
                "tại xã/phường này."
            )
        )
    clear(session, throttle_key)
    return record


def _voucher_with_number(
    session: Session, commune_code: str, last4: str, typed: str, now: dt.datetime
) -> IssuedCode | None:
    candidates = session.scalars(
        select(IssuedCode)
        .join(BeneficiaryRow, BeneficiaryRow.id == IssuedCode.welfare_row_id)
        .join(PayCycle, PayCycle.id == BeneficiaryRow.cycle_id)
        .join(WelfareProgramme, WelfareProgramme.id == PayCycle.programme_id)
        .where(
            WelfareProgramme.commune_code == commune_code,
            BeneficiaryRow.citizen_id_last4 == last4,
            IssuedCode.status == CodeStatus.OPEN,
            IssuedCode.expires_at > now,
        )
        .limit(VOUCHER_CANDIDATES_MAX)
    ).all()
    for record in candidates:
        if hmac.compare_digest(voucher_number(record), typed):
            return record
    return None


# --- At the counter ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Voucher:
    """A voucher's row, cycle and programme, for the counter's pages."""

    row: BeneficiaryRow
    cycle: PayCycle
    programme: WelfareProgramme


def voucher_of(session: Session, record: IssuedCode) -> Voucher | None:
    if record.welfare_row_id is None:
        return None
    row = session.get(BeneficiaryRow, record.welfare_row_id)
    assert row is not None
    cycle = session.get(PayCycle, row.cycle_id)
    assert cycle is not None
    programme = session.get(WelfareProgramme, cycle.programme_id)
    assert programme is not None
    return Voucher(row, cycle, programme)


def mark_paid(voucher: Voucher, now: dt.datetime) -> None:
    """The counter paid this voucher out (in the same transaction as the ledger batch, whose
    caller flushes)."""
    voucher.row.status = RowStatus.VOUCHER_PAID.value
    voucher.row.closed_at = now


def mark_expired(session: Session, record: IssuedCode, now: dt.datetime) -> None:
    """The voucher's reservation was voided on expiry (`kiosk.payments.codes.void_expired`, which
    marks the code and flushes): its beneficiary row says so."""
    row = session.get(BeneficiaryRow, record.welfare_row_id)
    if row is not None and row.status == RowStatus.VOUCHER_ISSUED:
        row.status = RowStatus.EXPIRED.value
        row.closed_at = now


def expire_vouchers(
    session: Session,
    now: dt.datetime,
    *,
    programme_id: int | None = None,
    limit: int = EXPIRY_BATCH_SIZE_MAX,
) -> int:
    """Release the money of vouchers not paid by their expiry back to the fund; mark the code
    and the row expired. Returns how many were expired.

    Safe beside the ledger's sweeper and `kiosk.payments.codes.expire_codes`, with which it
    shares `kiosk.payments.codes.void_expired`: a reservation the sweeper voided already is
    replayed, not voided twice; one paid out meanwhile is left to the counter.
    """
    query = (
        select(IssuedCode)
        .join(BeneficiaryRow, BeneficiaryRow.id == IssuedCode.welfare_row_id)
        .where(IssuedCode.status == CodeStatus.OPEN, IssuedCode.expires_at <= now)
        .order_by(IssuedCode.expires_at)
        .limit(max(1, min(limit, EXPIRY_BATCH_SIZE_MAX)))
        .with_for_update(skip_locked=True, of=IssuedCode)
    )
    if programme_id is not None:
        query = query.join(PayCycle, PayCycle.id == BeneficiaryRow.cycle_id).where(
            PayCycle.programme_id == programme_id
        )
    return void_expired(session, session.scalars(query).all(), now)
