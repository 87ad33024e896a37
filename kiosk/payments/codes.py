"""Withdrawal and payment codes: making one reserves the money at once; cancelling or expiry
releases it; paying it out at the counter (the agent portal) posts it.

A code is three things kept in step in one transaction: a pending ledger transfer (the money),
an `IssuedCode` row (what it is for, its status, the numeric fallback), and a signed token shown
as a QR code (made fresh on every page view, never stored).
"""

from __future__ import annotations

import datetime as dt
import hmac
import uuid
from collections.abc import Sequence
from dataclasses import dataclass

from flask import current_app
from flask_babel import gettext as _  # type: ignore[import-untyped]
from sqlalchemy import func, or_, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

import ledger
from kiosk import metrics
from kiosk.auth.throttles import FALLBACK_CODE_POLICY, Locked, clear, count_attempt, failed
from kiosk.citizens import limits
from kiosk.citizens.models import Citizen
from kiosk.citizens.phone import PhoneInvalid, normalise_phone
from kiosk.codes import tokens
from kiosk.formatting import local_time, parse_vnd, vnd
from kiosk.keys import code_key_ring
from kiosk.payments.models import Biller, CodeKind, CodeStatus, IssuedCode
from kiosk.pii import vault
from ledger import AccountKind
from ledger.posting import TRANSFER_AMOUNT_MAX_VND
from ledger.sweeper import EXPIRY_CODE

WITHDRAWAL_CLEARING_OWNER = "system:withdrawal_clearing"
FALLBACK_CODE_DIGITS = 8
FALLBACK_PURPOSE = "fallback_code"
BILL_REFERENCE_LENGTH_MAX_CHARS = tokens.BILL_REFERENCE_LENGTH_MAX_BYTES
OPEN_CODES_PER_CITIZEN_MAX = 5
# How far back, and among how many codes, typed fallback digits are matched against codes that
# can no longer be used, to say why (paid, cancelled, expired) rather than "no such code".
FALLBACK_CLOSED_LOOKBACK = dt.timedelta(days=1)
FALLBACK_CLOSED_MAX = 20

TOKEN_KIND = {
    CodeKind.WITHDRAWAL: tokens.CodeKind.WITHDRAWAL,
    CodeKind.PAYMENT: tokens.CodeKind.PAYMENT,
}


class CodeRefused(Exception):
    """A code cannot be made or changed; `message` is for the citizen, in their language."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


@dataclass(frozen=True)
class ShownCode:
    """What the citizen's code page shows: the record, a freshly signed token, the fallback."""

    record: IssuedCode
    token: str
    fallback_digits: str


def system_account(
    session: Session, owner_ref: str, kind: AccountKind, name: str, *, shard_count: int = 1
) -> int:
    """A ledger account the system itself owns, opened on first use.

    Two requests may both find it missing on a fresh database: the second one's insert hits the
    unique (kind, owner_ref) constraint inside a savepoint, and it uses the first one's account.
    """
    existing = ledger.find_account(session, kind, owner_ref)
    if existing is not None:
        return existing.id
    try:
        with session.begin_nested():
            return ledger.open_account(
                session, kind=kind, name=name, owner_ref=owner_ref, shard_count=shard_count
            ).id
    except IntegrityError:
        found = ledger.find_account(session, kind, owner_ref)
        if found is None:
            raise
        return found.id


def withdrawal_clearing_account(session: Session) -> int:
    # Withdrawal codes reserve money towards this account: which post office pays it out is
    # known only when the code is scanned, and the payout moves it on to that drawer.
    return system_account(
        session,
        WITHDRAWAL_CLEARING_OWNER,
        AccountKind.SETTLEMENT,
        "Tài khoản trung gian rút tiền",
    )


def parse_amount(raw: str) -> int:
    """A typed amount in whole đồng, as `parse_vnd` reads it ("1.500.000", "500.000 ₫")."""
    typed = raw.strip()
    if not typed:
        raise CodeRefused("amount_missing", _("Hãy nhập số tiền, ví dụ 500.000."))
    # "-50000" is a whole number too, just not one that can be paid.
    negative = typed[0] in ("-", "\u2212")
    amount = parse_vnd(typed[1:] if negative else typed)
    if amount is None:
        raise CodeRefused("amount_not_number", _("Số tiền phải là một số nguyên, ví dụ 500.000."))
    if negative or amount <= 0:
        raise CodeRefused("amount_not_positive", _("Số tiền phải lớn hơn 0."))
    if amount > TRANSFER_AMOUNT_MAX_VND:
        # A slip of the keyboard, not an amount: said as such, not as a rule it also breaks.
        raise CodeRefused("amount_too_large", _("Số tiền quá lớn. Hãy kiểm tra lại số đã nhập."))
    return amount


def _fallback_window(record: IssuedCode, now: dt.datetime) -> int:
    ttl_s: int = current_app.config["FALLBACK_CODE_TTL_S"]
    return int((now - record.created_at).total_seconds()) // ttl_s


def _fallback_for_window(record: IssuedCode, window: int) -> str:
    # Derived, not stored: an HMAC under the lookup key of the code id and the time window, so
    # the digits change every FALLBACK_CODE_TTL_S seconds and nothing in the database reveals them.
    tag = vault().lookup_hash(f"{record.id}:{window}", purpose=FALLBACK_PURPOSE)
    return str(int.from_bytes(tag[:8], "big") % 10**FALLBACK_CODE_DIGITS).zfill(
        FALLBACK_CODE_DIGITS
    )


def fallback_digits(record: IssuedCode, now: dt.datetime) -> str:
    """The numeric code the citizen reads out when the QR cannot be scanned."""
    return _fallback_for_window(record, _fallback_window(record, now))


def fallback_matches(record: IssuedCode, digits: str, now: dt.datetime) -> bool:
    """Whether typed digits are this code's current fallback (or the one just before, so that
    digits read out as the window turns still work)."""
    window = _fallback_window(record, now)
    candidates = {_fallback_for_window(record, w) for w in (window, window - 1) if w >= 0}
    return any(hmac.compare_digest(digits, candidate) for candidate in candidates)


def _check_open_codes(session: Session, citizen: Citizen, now: dt.datetime) -> None:
    open_codes = session.scalars(
        select(IssuedCode.id).where(
            IssuedCode.citizen_id == citizen.id,
            IssuedCode.status == CodeStatus.OPEN,
            IssuedCode.expires_at > now,
        )
    ).all()
    if len(open_codes) >= OPEN_CODES_PER_CITIZEN_MAX:
        raise CodeRefused(
            "too_many_open_codes",
            _(
                "Bạn đang có %(count)d mã chưa dùng. Hãy dùng hoặc huỷ bớt trước khi tạo mã mới.",
                count=len(open_codes),
            ),
        )


def _check_may_send(session: Session, citizen: Citizen, amount: int, now: dt.datetime) -> None:
    """The citizen's own bounds on a new code: open codes, and the limits per transaction, day
    and month. Raises CodeRefused or LimitExceeded."""
    _check_open_codes(session, citizen, now)
    limits.check_outgoing(session, citizen, amount, now)


def _reserve(
    session: Session,
    *,
    citizen: Citizen,
    kind: CodeKind,
    amount: int,
    credit_account_id: int,
    now: dt.datetime,
    biller: Biller | None = None,
    bill_reference: str | None = None,
) -> ShownCode:
    _check_may_send(session, citizen, amount, now)
    # Money held by this citizen's expired codes is free again before the new reservation.
    metrics.expired_reservations_voided(
        ledger.void_expired_reservations(session, now=now, account_id=citizen.wallet_account_id)
    )
    ttl_s: int = current_app.config["WITHDRAWAL_CODE_TTL_S"]
    code_id = uuid.uuid4()
    try:
        # A savepoint: a refusal by the ledger aborts only this statement's work, so the page can
        # still read the balance to explain it (PostgreSQL aborts the whole transaction otherwise).
        with session.begin_nested():
            pending = ledger.post_transfer(
                session,
                ledger.Reserve(
                    key=f"code:{code_id}",
                    debit_account_id=citizen.wallet_account_id,
                    credit_account_id=credit_account_id,
                    amount=amount,
                    code=kind.value if kind is CodeKind.WITHDRAWAL else "bill_payment",
                    timeout_s=ttl_s,
                    memo=str(code_id),
                ),
                now=now,
            )
    except ledger.InsufficientFunds:
        raise _insufficient_funds() from None
    metrics.transfers_posted([pending])
    assert pending.expires_at is not None
    record = IssuedCode(
        id=code_id,
        kind=kind.value,
        status=CodeStatus.OPEN.value,
        citizen_id=citizen.id,
        wallet_account_id=citizen.wallet_account_id,
        amount=amount,
        pending_transfer_id=pending.id,
        biller_id=None if biller is None else biller.id,
        bill_reference=bill_reference,
        created_at=now,
        expires_at=pending.expires_at,
    )
    session.add(record)
    session.flush()
    metrics.code_issued(kind.value)
    issued = tokens.issue(
        code_key_ring(),
        kind=TOKEN_KIND[kind],
        account_id=citizen.wallet_account_id,
        amount_vnd=amount,
        now=now,
        ttl_s=ttl_s,
        code_id=code_id,
        biller_id=record.biller_id,
        bill_reference=bill_reference,
    )
    return ShownCode(record, issued.token, fallback_digits(record, now))


def _insufficient_funds() -> CodeRefused:
    return CodeRefused(
        "insufficient_funds", _("Số dư khả dụng không đủ để tạo mã với số tiền này.")
    )


def _check_withdrawal_amount(amount: int) -> None:
    denomination: int = current_app.config["WITHDRAWAL_DENOMINATION_VND"]
    if amount % denomination:
        raise CodeRefused(
            "amount_not_payable",
            _(
                "Bưu điện chỉ chi trả bội số của %(step)s, ví dụ %(example)s.",
                step=vnd(denomination),
                example=vnd(max(denomination, amount - amount % denomination)),
            ),
        )


def check_before_step_up(
    session: Session, citizen: Citizen, kind: CodeKind, amount: int, now: dt.datetime
) -> None:
    """What would refuse a code of `amount` anyway, checked before the citizen is asked for a
    second factor: nobody is sent to set up two-step sign-in for a code they could not have.
    Raises CodeRefused or LimitExceeded; making the code checks all of it again."""
    if kind is CodeKind.WITHDRAWAL:
        _check_withdrawal_amount(amount)
    _check_may_send(session, citizen, amount, now)
    if amount > ledger.balance(session, citizen.wallet_account_id, now=now).available:
        raise _insufficient_funds()


def create_withdrawal_code(
    session: Session, citizen: Citizen, amount: int, now: dt.datetime
) -> ShownCode:
    """Reserve `amount` and make a withdrawal code for it; raises CodeRefused or LimitExceeded."""
    _check_withdrawal_amount(amount)
    return _reserve(
        session,
        citizen=citizen,
        kind=CodeKind.WITHDRAWAL,
        amount=amount,
        credit_account_id=withdrawal_clearing_account(session),
        now=now,
    )


def normalise_bill_reference(raw: str) -> str:
    reference = raw.strip().upper().replace(" ", "")
    allowed = set("0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ./-")
    if not 1 <= len(reference) <= BILL_REFERENCE_LENGTH_MAX_CHARS or not set(reference) <= allowed:
        raise CodeRefused(
            "bill_reference_invalid",
            _(
                "Mã hoá đơn gồm 1 đến %(max)d chữ cái không dấu, chữ số hoặc . / -",
                max=BILL_REFERENCE_LENGTH_MAX_CHARS,
            ),
        )
    return reference


def create_payment_code(
    session: Session,
    citizen: Citizen,
    *,
    biller_id: int,
    bill_reference: str,
    amount: int,
    now: dt.datetime,
) -> ShownCode:
    """Reserve `amount` for a bill collected at the post office and make a payment code."""
    biller = session.get(Biller, biller_id)
    if biller is None or (
        biller.commune_code is not None and biller.commune_code != citizen.commune_code
    ):
        raise CodeRefused("biller_unknown", _("Hãy chọn một đơn vị thu có trong danh sách."))
    return _reserve(
        session,
        citizen=citizen,
        kind=CodeKind.PAYMENT,
        amount=amount,
        credit_account_id=biller.account_id,
        now=now,
        biller=biller,
        bill_reference=normalise_bill_reference(bill_reference),
    )


def billers_for(session: Session, citizen: Citizen) -> list[Biller]:
    return list(
        session.scalars(
            select(Biller)
            .where((Biller.commune_code.is_(None)) | (Biller.commune_code == citizen.commune_code))
            .order_by(Biller.kind, Biller.name)
            .limit(100)
        )
    )


def own_code(session: Session, citizen: Citizen, code_id: uuid.UUID) -> IssuedCode | None:
    record = session.get(IssuedCode, code_id)
    if record is None or record.citizen_id != citizen.id:
        return None
    return record


def effective_status(record: IssuedCode, now: dt.datetime) -> CodeStatus:
    """The status a person should see: an open code past its expiry is expired already."""
    status = CodeStatus(record.status)
    if status is CodeStatus.OPEN and now >= record.expires_at:
        return CodeStatus.EXPIRED
    return status


def show_code(session: Session, record: IssuedCode, now: dt.datetime) -> ShownCode:
    """A freshly signed token for an open code (the page re-signs it on every refresh)."""
    if effective_status(record, now) is not CodeStatus.OPEN:
        raise CodeRefused("code_not_open", _("Mã này không còn dùng được."))
    claims = tokens.CodeClaims(
        kind=TOKEN_KIND[CodeKind(record.kind)],
        code_id=record.id,
        account_id=record.wallet_account_id,
        amount_vnd=record.amount,
        issued_at=record.created_at.replace(microsecond=0),
        expires_at=record.expires_at.replace(microsecond=0),
        key_id=0,
        biller_id=record.biller_id,
        bill_reference=record.bill_reference,
    )
    issued = tokens.reissue(claims, code_key_ring(), now)
    return ShownCode(record, issued.token, fallback_digits(record, now))


def cancel_code(session: Session, citizen: Citizen, code_id: uuid.UUID, now: dt.datetime) -> None:
    """Cancel an open code and release its money; a code already paid cannot be cancelled."""
    record = own_code(session, citizen, code_id)
    if record is None:
        raise CodeRefused("code_unknown", _("Không tìm thấy mã này."))
    if CodeStatus(record.status) is not CodeStatus.OPEN:
        raise CodeRefused("code_not_open", _("Mã này đã được dùng, huỷ hoặc hết hạn."))
    try:
        with session.begin_nested():
            voided = ledger.post_transfer(
                session,
                ledger.VoidPending(
                    key=f"cancel:{code_id}",
                    pending_id=record.pending_transfer_id,
                    code="cancelled",
                ),
                now=now,
            )
    except ledger.PendingAlreadyResolved:
        # Paid out (or expired) at this very moment: the counter or the sweeper won.
        raise CodeRefused(
            "code_not_open", _("Mã này vừa được chi trả hoặc đã hết hạn, không huỷ được.")
        ) from None
    metrics.transfers_posted([voided])
    record.status = CodeStatus.CANCELLED.value
    record.closed_at = now
    session.flush()


def open_codes(session: Session, citizen: Citizen, now: dt.datetime) -> list[IssuedCode]:
    return list(
        session.scalars(
            select(IssuedCode)
            .where(
                IssuedCode.citizen_id == citizen.id,
                IssuedCode.status == CodeStatus.OPEN,
                IssuedCode.expires_at > now,
            )
            .order_by(IssuedCode.created_at.desc())
            .limit(OPEN_CODES_PER_CITIZEN_MAX)
        )
    )


class FallbackRefused(Exception):
    """Typed digits and a phone number name no open code (or the phone is locked for a while)."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


def find_by_fallback(session: Session, phone: str, digits: str, now: dt.datetime) -> IssuedCode:
    """The code whose numeric fallback the citizen read out, for the agent's counter: an open
    one, or one that can no longer be used, which the caller refuses saying why.

    Useless without the citizen's phone number, and each phone allows FALLBACK_CODE_POLICY's few
    tries before it locks: the attempt is counted before the digits are compared, and a match
    clears the count. Raises `FallbackRefused` with a message for the agent.
    """
    try:
        phone = normalise_phone(phone)
    except PhoneInvalid:
        raise FallbackRefused(_("Số điện thoại không đúng.")) from None
    typed = "".join(character for character in digits if not character.isspace())
    if len(typed) != FALLBACK_CODE_DIGITS or not (typed.isascii() and typed.isdigit()):
        raise FallbackRefused(_("Mã số dự phòng gồm đúng 8 chữ số."))
    key = f"fallback:{phone}"
    try:
        attempts_left = count_attempt(session, key, FALLBACK_CODE_POLICY, now)
        record = _code_with_fallback(session, phone, typed, now)
        if record is None:
            failed(session, key, FALLBACK_CODE_POLICY, now, attempts_left)
    except Locked as locked:
        raise FallbackRefused(
            _(
                "Đã nhập sai mã số nhiều lần cho số điện thoại này. Thử lại sau %(time)s "
                "hoặc quét mã QR.",
                time=local_time(locked.until, "%H:%M"),
            )
        ) from None
    if record is None:
        raise FallbackRefused(_("Số điện thoại và mã số không khớp với mã nào đang dùng được."))
    clear(session, key)
    return record


def _code_with_fallback(
    session: Session, phone: str, typed: str, now: dt.datetime
) -> IssuedCode | None:
    """The phone's open code showing `typed` now or, failing that, a code that stopped being
    usable within the last day and showed `typed` last: the caller's checks then refuse it and
    say why (paid when and where, cancelled, expired) instead of "no such code"."""
    candidates = session.scalars(
        select(IssuedCode)
        .join(Citizen, Citizen.id == IssuedCode.citizen_id)
        .where(
            Citizen.phone == phone,
            IssuedCode.status == CodeStatus.OPEN,
            IssuedCode.expires_at > now,
        )
        .limit(OPEN_CODES_PER_CITIZEN_MAX)
    ).all()
    for record in candidates:
        if fallback_matches(record, typed, now):
            return record
    since = now - FALLBACK_CLOSED_LOOKBACK
    for record in _recently_closed(session, phone, since, now):
        ended = _end_of(record)
        if ended > since and fallback_matches(record, typed, ended):
            return record
    return None


def _end_of(record: IssuedCode) -> dt.datetime:
    """When a code stopped being usable: paid out or cancelled, or else its expiry."""
    if record.closed_at is not None and record.closed_at < record.expires_at:
        return record.closed_at
    return record.expires_at


def _recently_closed(
    session: Session, phone: str, since: dt.datetime, now: dt.datetime
) -> Sequence[IssuedCode]:
    """The phone's codes that stopped being usable since ``since`` (or a little before: a swept
    code closes after its expiry), latest first. A page left open on the phone still shows the
    last digits of a code that has been paid or has expired."""
    return session.scalars(
        select(IssuedCode)
        .join(Citizen, Citizen.id == IssuedCode.citizen_id)
        .where(
            Citizen.phone == phone,
            or_(IssuedCode.status != CodeStatus.OPEN, IssuedCode.expires_at <= now),
            func.coalesce(IssuedCode.closed_at, IssuedCode.expires_at) > since,
        )
        .order_by(IssuedCode.created_at.desc())
        .limit(FALLBACK_CLOSED_MAX)
    ).all()


def void_expired(session: Session, records: Sequence[IssuedCode], now: dt.datetime) -> int:
    """Void the reservations of ``records`` (open codes past their expiry, claimed with SKIP
    LOCKED) and mark them expired, a welfare voucher's beneficiary row too; return how many.

    The void carries the ledger sweeper's idempotency key (``expire:<pending id>``), so a
    reservation the sweeper voided already is replayed, not voided twice.
    """
    expired = 0
    for record in records:
        try:
            with session.begin_nested():
                voided = ledger.post_transfer(
                    session,
                    ledger.VoidPending(
                        key=f"expire:{record.pending_transfer_id}",
                        pending_id=record.pending_transfer_id,
                        code=EXPIRY_CODE,
                    ),
                    now=now,
                )
        except ledger.PendingAlreadyResolved:
            # Resolved by something other than expiry in the meantime: its own code sets the
            # status; leave the record to it.
            continue
        metrics.transfers_posted([voided])
        record.status = CodeStatus.EXPIRED.value
        record.closed_at = now
        if record.welfare_row_id is not None:
            # A welfare voucher: its money went back to the fund; its beneficiary row says so.
            from kiosk.welfare.vouchers import mark_expired  # noqa: PLC0415 - welfare imports us

            mark_expired(session, record, now)
        expired += 1
    session.flush()
    metrics.code_expired(expired)
    return expired


def expire_codes(session: Session, now: dt.datetime, *, limit: int = 500) -> int:
    """Release the money of codes whose time ran out and mark them expired; return how many.

    Safe beside the ledger's own sweeper and a second copy of itself: the void carries the same
    idempotency key as the sweeper's, rows are claimed with SKIP LOCKED, and the ledger lets one
    resolution through whatever happens.
    """
    records = session.scalars(
        select(IssuedCode)
        .where(IssuedCode.status == CodeStatus.OPEN, IssuedCode.expires_at <= now)
        .order_by(IssuedCode.expires_at)
        .limit(limit)
        .with_for_update(skip_locked=True)
    ).all()
    void_expired(session, records, now)
    return len(records)
