"""The counter's work: read a presented code, check the person, pay out or collect, and cash-in.

A code reaches the counter four ways (scanner, camera, uploaded photo, numeric fallback); all end
in `inspect`, which says what the code is or exactly why it cannot be used. Paying out locks the
code's row, checks the identity again, and posts in one ledger batch: the reservation, the cash
leaving the drawer, the fee and the agent's commission. Whatever races it — a double click, a
retry, a second counter scanning the same code — the row lock, the ledger's one resolution per
reservation and the unique code id on `counter_operations` let exactly one payout through.
"""

from __future__ import annotations

import datetime as dt
import enum
import hmac
import uuid
from dataclasses import dataclass

from flask_babel import gettext as _  # type: ignore[import-untyped]
from sqlalchemy import select
from sqlalchemy.orm import Session

import ledger
from agent_portal import audit
from agent_portal.asking import ask
from agent_portal.audit import Action
from agent_portal.drawer import cash_in_drawer, not_in_notes
from agent_portal.fees import Charge, FeeOperation, FeeSchedule
from agent_portal.models import (
    Agent,
    Approval,
    ApprovalKind,
    ApprovalStatus,
    CounterOperation,
    DrawerSession,
    OperationKind,
    PostOffice,
)
from kiosk import metrics
from kiosk.citizens.models import Citizen, KycTier
from kiosk.codes import tokens
from kiosk.formatting import local_time, vnd
from kiosk.keys import code_key_ring
from kiosk.payments.codes import system_account, withdrawal_clearing_account
from kiosk.payments.models import Biller, CodeKind, CodeStatus, IssuedCode
from kiosk.places.models import Commune
from kiosk.welfare import vouchers
from ledger import AccountKind, Post, PostPending

FEE_REVENUE_OWNER = "system:fee_revenue"
FEE_REVENUE_SHARDS = 8
ID_LAST4_LENGTH = 4
# A welfare voucher is paid in full: the beneficiary pays no fee.
NO_CHARGE = Charge(fee=0, commission=0)


class Refusal(enum.StrEnum):
    """Why a presented code cannot be used. Each has its own message for the agent."""

    UNREADABLE = "unreadable"
    FORGED = "forged"
    TAMPERED = "tampered"
    UNKNOWN_KEY = "unknown_key"
    EXPIRED = "expired"
    STALE = "stale"
    NOT_YET_VALID = "not_yet_valid"
    CANCELLED = "cancelled"
    ALREADY_PAID = "already_paid"
    OVER_POST_OFFICE_LIMIT = "over_post_office_limit"
    NOT_ENOUGH_CASH = "not_enough_cash"
    FEE_NOT_COVERED = "fee_not_covered"
    IDENTITY_MISMATCH = "identity_mismatch"
    FACE_NOT_CONFIRMED = "face_not_confirmed"
    APPROVAL_NEEDED = "approval_needed"
    STEP_UP_NEEDED = "step_up_needed"
    DRAWER_NOT_OPEN = "drawer_not_open"
    # A welfare voucher presented at a post office of another commune than its programme's.
    WRONG_COMMUNE = "wrong_commune"


class CodeRefused(Exception):
    """A code cannot be used (now, here). ``message`` is for the agent, in their language."""

    def __init__(self, reason: Refusal, message: str, record: IssuedCode | None = None) -> None:
        super().__init__(message)
        self.reason = reason
        self.message = message
        self.record = record


@dataclass(frozen=True)
class Inspection:
    """What the verification screen shows about a code that can be used."""

    record: IssuedCode
    # The citizen whose code it is; None for a welfare voucher (see `voucher`).
    citizen: Citizen | None
    biller: Biller | None
    charge: Charge
    needs_approval: bool
    approval: Approval | None
    voucher: vouchers.Voucher | None = None

    @property
    def kind(self) -> CodeKind:
        return CodeKind(self.record.kind)

    @property
    def is_welfare(self) -> bool:
        return self.voucher is not None

    @property
    def holder_name(self) -> str:
        if self.voucher is not None:
            return self.voucher.row.full_name
        assert self.citizen is not None
        return self.citizen.full_name

    @property
    def holder_last4(self) -> str:
        """The last 4 digits of the ID the card presented must show."""
        if self.voucher is not None:
            return self.voucher.row.citizen_id_last4
        assert self.citizen is not None
        return self.citizen.citizen_id_last4

    @property
    def masked_citizen_id(self) -> str:
        return "•" * 8 + self.holder_last4

    @property
    def verified(self) -> bool:
        return self.citizen is not None and KycTier(self.citizen.kyc_tier) is KycTier.VERIFIED

    @property
    def approved(self) -> bool:
        return self.approval is not None and self.approval.status == ApprovalStatus.APPROVED


def fee_revenue_account(session: Session) -> int:
    return system_account(
        session,
        FEE_REVENUE_OWNER,
        AccountKind.FEE_REVENUE,
        "Doanh thu phí dịch vụ",
        shard_count=FEE_REVENUE_SHARDS,
    )


def charge_legs(
    session: Session,
    charge: Charge,
    *,
    key: str,
    payer_account_id: int,
    post_office: PostOffice,
    memo: str,
) -> list[ledger.TransferRequest]:
    """The transfers linked to a counter operation: the fee from the citizen's wallet to fee
    revenue, and the post office's commission out of fee revenue (``key`` + ":fee" and
    ":commission", so a retry posts neither twice)."""
    if not charge.fee and not charge.commission:
        return []
    fee_account = fee_revenue_account(session)
    legs: list[ledger.TransferRequest] = []
    if charge.fee:
        legs.append(Post(f"{key}:fee", payer_account_id, fee_account, charge.fee, "fee", memo))
    if charge.commission:
        legs.append(
            Post(
                f"{key}:commission",
                fee_account,
                post_office.commission_account_id,
                charge.commission,
                "agent_commission",
                memo,
            )
        )
    return legs


def _fee_operation(record: IssuedCode) -> FeeOperation:
    return FeeOperation.WITHDRAWAL if record.kind == CodeKind.WITHDRAWAL else FeeOperation.BILL


def _already_paid(session: Session, record: IssuedCode) -> CodeRefused:
    where = record.redeemed_at_point or "?"
    post_office = session.scalar(select(PostOffice).where(PostOffice.code == where))
    place = where if post_office is None else f"{post_office.name} ({post_office.code})"
    paid_at = record.closed_at
    return CodeRefused(
        Refusal.ALREADY_PAID,
        _(
            "Mã này ĐÃ ĐƯỢC CHI TRẢ lúc %(time)s tại %(place)s. Không chi trả lại.",
            time="?" if paid_at is None else local_time(paid_at, "%H:%M:%S %d/%m/%Y"),
            place=place,
        ),
        record,
    )


def _check_status(session: Session, record: IssuedCode, now: dt.datetime) -> None:
    status = CodeStatus(record.status)
    if status is CodeStatus.REDEEMED:
        raise _already_paid(session, record)
    if record.welfare_row_id is not None and (
        status is not CodeStatus.OPEN or now >= record.expires_at
    ):
        raise CodeRefused(
            Refusal.EXPIRED,
            _(
                "Phiếu trợ cấp đã hết hạn; tiền đã được trả về quỹ chương trình. "
                "Người nhận liên hệ UBND xã/phường."
            ),
            record,
        )
    if status is CodeStatus.CANCELLED:
        raise CodeRefused(
            Refusal.CANCELLED,
            _("Người dân đã huỷ mã này. Nhờ người dân tạo mã mới."),
            record,
        )
    if status is CodeStatus.EXPIRED or now >= record.expires_at:
        raise CodeRefused(Refusal.EXPIRED, _("Mã đã hết hạn. Nhờ người dân tạo mã mới."), record)


def _refusal_for_token_error(error: tokens.CodeError) -> CodeRefused:
    if isinstance(error, tokens.CodeStale):
        return CodeRefused(
            Refusal.STALE,
            _(
                "Mã QR này là ảnh cũ (mã trên điện thoại tự đổi mỗi 30 giây). "
                "Nhờ người dân mở lại mã trên điện thoại rồi quét lại."
            ),
        )
    if isinstance(error, tokens.CodeExpired):
        return CodeRefused(Refusal.EXPIRED, _("Mã đã hết hạn. Nhờ người dân tạo mã mới."))
    if isinstance(error, tokens.CodeNotYetValid):
        return CodeRefused(
            Refusal.NOT_YET_VALID,
            _("Mã ghi thời điểm tạo ở tương lai: đồng hồ của máy chủ hoặc điện thoại bị sai."),
        )
    if isinstance(error, tokens.UnknownSigningKey):
        return CodeRefused(
            Refusal.UNKNOWN_KEY,
            _(
                "Mã được ký bằng một khoá không còn hoặc chưa bao giờ được dùng. "
                "Không chi trả; nhờ người dân tạo mã mới."
            ),
        )
    return CodeRefused(
        Refusal.UNREADABLE,
        _("Đây không phải mã ATM mềm, hoặc quét chưa đủ. Hãy quét lại."),
    )


def _code_id_of(token_text: str) -> uuid.UUID | None:
    """The code id a token claims, read without trusting it (to tell tampering from forgery)."""
    try:
        data = tokens._decode_text(token_text)
    except tokens.CodeError:
        return None
    if len(data) < tokens.TOKEN_LENGTH_MIN_BYTES:
        return None
    return uuid.UUID(bytes=bytes(data[4:20]))


def _read_voucher(session: Session, text: str) -> IssuedCode:
    """The welfare voucher a scanned slip names (printed, so no freshness: the ID check, the
    commune and the single payment guard it). Raises `CodeRefused`."""
    try:
        claims = vouchers.verify_voucher(text, code_key_ring())
    except vouchers.VoucherTokenError as error:
        if error.code == "bad_signature":
            claimed = vouchers.claimed_code_id(text)
            if claimed is not None and session.get(IssuedCode, claimed) is not None:
                raise CodeRefused(
                    Refusal.TAMPERED,
                    _(
                        "Phiếu đã bị sửa (chữ ký không khớp nội dung). "
                        "KHÔNG chi trả; báo kiểm soát viên."
                    ),
                ) from None
            raise CodeRefused(
                Refusal.FORGED,
                _("Phiếu giả: chữ ký không phải của ATM mềm. KHÔNG chi trả; báo kiểm soát viên."),
            ) from None
        if error.code == "unknown_key":
            raise CodeRefused(
                Refusal.UNKNOWN_KEY,
                _("Phiếu được ký bằng một khoá không còn dùng. Không chi trả; báo UBND xã/phường."),
            ) from None
        raise CodeRefused(
            Refusal.UNREADABLE, _("Không đọc được phiếu trợ cấp, hoặc quét chưa đủ. Hãy quét lại.")
        ) from None
    record = session.get(IssuedCode, claims.code_id)
    if record is None:
        raise CodeRefused(
            Refusal.FORGED, _("Phiếu không có trong hệ thống. KHÔNG chi trả; báo kiểm soát viên.")
        )
    if record.welfare_row_id is None or record.amount != claims.amount_vnd:
        raise CodeRefused(
            Refusal.TAMPERED,
            _("Nội dung phiếu không khớp với hệ thống. KHÔNG chi trả; báo kiểm soát viên."),
        )
    return record


def read_token(
    session: Session, token_text: str, now: dt.datetime, *, max_age_s: int
) -> IssuedCode:
    """The issued code a scanned token names, once its signature, freshness and claims hold.

    A bad signature on the id of a code we issued means someone changed a real code (tampered);
    on any other id, the code is forged. A printed welfare voucher has a token of its own
    (`kiosk.welfare.vouchers`). Raises `CodeRefused`.
    """
    if vouchers.is_voucher_text(token_text):
        return _read_voucher(session, token_text)
    try:
        claims = tokens.verify(token_text, code_key_ring(), now, max_age_s=max_age_s)
    except tokens.BadSignature:
        claimed = _code_id_of(token_text)
        if claimed is not None and session.get(IssuedCode, claimed) is not None:
            raise CodeRefused(
                Refusal.TAMPERED,
                _("Mã đã bị sửa (chữ ký không khớp nội dung). KHÔNG chi trả; báo kiểm soát viên."),
            ) from None
        raise CodeRefused(
            Refusal.FORGED,
            _("Mã giả: chữ ký không phải của ATM mềm. KHÔNG chi trả; báo kiểm soát viên."),
        ) from None
    except tokens.CodeExpired as error:
        # Signed by us (the signature is checked before expiry), so the id can be trusted: a
        # code already paid says so, with when and where, rather than "expired" or "old image".
        claimed = _code_id_of(token_text)
        paid = None if claimed is None else session.get(IssuedCode, claimed)
        if paid is not None and paid.status == CodeStatus.REDEEMED:
            raise _already_paid(session, paid) from None
        raise _refusal_for_token_error(error) from None
    except tokens.CodeError as error:
        raise _refusal_for_token_error(error) from None
    record = session.get(IssuedCode, claims.code_id)
    if record is None or record.welfare_row_id is not None:
        raise CodeRefused(
            Refusal.FORGED,
            _("Mã không có trong hệ thống. KHÔNG chi trả; báo kiểm soát viên."),
        )
    expected_kind = CodeKind.WITHDRAWAL if claims.kind is tokens.CodeKind.WITHDRAWAL else None
    if (
        record.wallet_account_id != claims.account_id
        or record.amount != claims.amount_vnd
        or (expected_kind is not None and record.kind != expected_kind)
        or record.biller_id != claims.biller_id
    ):
        raise CodeRefused(
            Refusal.TAMPERED,
            _("Nội dung mã không khớp với hệ thống. KHÔNG chi trả; báo kiểm soát viên."),
        )
    return record


def _payout_approval(
    session: Session, record: IssuedCode, post_office: PostOffice
) -> Approval | None:
    return session.scalar(
        select(Approval)
        .where(
            Approval.kind == ApprovalKind.PAYOUT,
            Approval.subject == str(record.id),
            Approval.post_office_id == post_office.id,
        )
        .order_by(Approval.created_at.desc())
        .limit(1)
    )


def inspect(
    session: Session,
    record: IssuedCode,
    *,
    agent: Agent,
    post_office: PostOffice,
    fees: FeeSchedule,
    approval_above_vnd: int,
    now: dt.datetime,
) -> Inspection:
    """What the agent needs to decide, or `CodeRefused` when the code cannot be used here now."""
    _check_status(session, record, now)
    voucher = vouchers.voucher_of(session, record)
    citizen = None if record.citizen_id is None else session.get(Citizen, record.citizen_id)
    assert (citizen is None) != (voucher is None)
    if voucher is not None and voucher.programme.commune_code != post_office.commune_code:
        commune = session.get(Commune, voucher.programme.commune_code)
        raise CodeRefused(
            Refusal.WRONG_COMMUNE,
            _(
                "Phiếu trợ cấp này chỉ chi trả tại bưu điện của %(commune)s. "
                "Không chi trả tại điểm này; hướng dẫn người nhận đến đúng xã/phường.",
                commune=voucher.programme.commune_code if commune is None else commune.name,
            ),
            record,
        )
    if record.kind == CodeKind.WITHDRAWAL:
        if record.amount > post_office.payout_max_vnd:
            raise CodeRefused(
                Refusal.OVER_POST_OFFICE_LIMIT,
                _(
                    "Điểm bưu điện này chi trả tối đa %(max)s mỗi lần. "
                    "Nhờ người dân tạo mã nhỏ hơn hoặc đến bưu điện huyện.",
                    max=vnd(post_office.payout_max_vnd),
                ),
                record,
            )
        cash = cash_in_drawer(session, agent, now)
        if record.amount > cash:
            raise CodeRefused(
                Refusal.NOT_ENOUGH_CASH,
                _(
                    "Két tiền chỉ còn %(cash)s, không đủ chi %(amount)s. "
                    "Xin kiểm soát viên bổ sung tiền vào két.",
                    cash=vnd(cash),
                    amount=vnd(record.amount),
                ),
                record,
            )
    charge = (
        NO_CHARGE if voucher is not None else fees.charge(_fee_operation(record), record.amount)
    )
    if charge.fee:
        available = ledger.balance(session, record.wallet_account_id, now=now).available
        if available < charge.fee:
            raise CodeRefused(
                Refusal.FEE_NOT_COVERED,
                _(
                    "Phí dịch vụ %(fee)s trừ vào ví, nhưng ví chỉ còn %(available)s khả dụng.",
                    fee=vnd(charge.fee),
                    available=vnd(available),
                ),
                record,
            )
    biller = None if record.biller_id is None else session.get(Biller, record.biller_id)
    needs_approval = record.kind == CodeKind.WITHDRAWAL and record.amount > approval_above_vnd
    return Inspection(
        record=record,
        citizen=citizen,
        biller=biller,
        charge=charge,
        needs_approval=needs_approval,
        approval=_payout_approval(session, record, post_office) if needs_approval else None,
        voucher=voucher,
    )


def last4_digits_match(expected: str, typed: str) -> bool:
    """Whether the 4 digits typed from the card presented are the expected last 4 of the ID."""
    digits = "".join(typed.split())
    if len(digits) != ID_LAST4_LENGTH or not (digits.isascii() and digits.isdigit()):
        return False
    return hmac.compare_digest(digits, expected)


def last4_matches(citizen: Citizen, typed: str) -> bool:
    return last4_digits_match(citizen.citizen_id_last4, typed)


def check_identity(expected_last4: str, last4: str, face_matched: bool) -> None:
    if not last4_digits_match(expected_last4, last4):
        raise CodeRefused(
            Refusal.IDENTITY_MISMATCH,
            _(
                "4 số cuối căn cước không khớp với tài khoản. Xem lại thẻ; "
                "nếu vẫn sai, KHÔNG chi trả: người cầm thẻ không phải chủ tài khoản."
            ),
        )
    if not face_matched:
        raise CodeRefused(
            Refusal.FACE_NOT_CONFIRMED,
            _("Chưa xác nhận khuôn mặt khớp với ảnh trên thẻ. Không chi trả."),
        )


def request_payout_approval(
    session: Session, record: IssuedCode, agent: Agent, now: dt.datetime
) -> Approval:
    """Ask a supervisor to approve a large payout (once per code; asking again is a no-op)."""
    existing = session.scalar(
        select(Approval).where(
            Approval.kind == ApprovalKind.PAYOUT,
            Approval.subject == str(record.id),
            Approval.post_office_id == agent.post_office_id,
            Approval.status.in_([ApprovalStatus.PENDING, ApprovalStatus.APPROVED]),
        )
    )
    if existing is not None:
        return existing
    return ask(
        session,
        agent,
        ApprovalKind.PAYOUT,
        amount=record.amount,
        subject=str(record.id),
        audit_subject=f"code:{record.id}",
        now=now,
    )


@dataclass(frozen=True)
class Paid:
    operation: CounterOperation
    # True when this request found the operation already done by the same agent (a retry).
    replayed: bool


def _lock_code(session: Session, code_id: uuid.UUID) -> IssuedCode | None:
    return session.scalar(
        select(IssuedCode)
        .where(IssuedCode.id == code_id)
        .with_for_update()
        .execution_options(populate_existing=True)
    )


def redeem(
    session: Session,
    code_id: uuid.UUID,
    *,
    agent: Agent,
    post_office: PostOffice,
    drawer: DrawerSession | None,
    last4: str,
    face_matched: bool,
    stepped_up: bool,
    fees: FeeSchedule,
    approval_above_vnd: int,
    now: dt.datetime,
) -> Paid:
    """Pay out a withdrawal code or collect a payment code, exactly once. Raises `CodeRefused`.

    The code's row is locked first, so concurrent attempts queue here and each later one finds
    the code redeemed. The same agent retrying (a double click) gets its own operation back.
    """
    if drawer is None:
        raise CodeRefused(
            Refusal.DRAWER_NOT_OPEN, _("Hãy mở két tiền (đếm tiền đầu ca) trước khi chi trả.")
        )
    record = _lock_code(session, code_id)
    if record is None:
        raise CodeRefused(Refusal.FORGED, _("Mã không có trong hệ thống."))
    if record.status == CodeStatus.REDEEMED:
        done = session.scalar(select(CounterOperation).where(CounterOperation.code_id == record.id))
        if done is not None and done.agent_id == agent.id and done.drawer_session_id == drawer.id:
            return Paid(done, replayed=True)
    inspection = inspect(
        session,
        record,
        agent=agent,
        post_office=post_office,
        fees=fees,
        approval_above_vnd=approval_above_vnd,
        now=now,
    )
    check_identity(inspection.holder_last4, last4, face_matched)
    approval = inspection.approval
    if inspection.needs_approval:
        if approval is None or approval.status != ApprovalStatus.APPROVED:
            raise CodeRefused(
                Refusal.APPROVAL_NEEDED,
                _(
                    "Khoản chi trên %(limit)s cần kiểm soát viên phê duyệt trước.",
                    limit=vnd(approval_above_vnd),
                ),
                record,
            )
        if not stepped_up:
            raise CodeRefused(
                Refusal.STEP_UP_NEEDED,
                _("Khoản chi lớn: nhập mã xác thực (TOTP) mới của bạn để chi trả."),
                record,
            )
    withdrawal = record.kind == CodeKind.WITHDRAWAL
    requests: list[ledger.TransferRequest] = [
        PostPending(
            key=f"redeem:{record.id}",
            pending_id=record.pending_transfer_id,
            code="cash_payout" if withdrawal else "bill_payment",
            memo=post_office.code,
        )
    ]
    if withdrawal:
        requests.append(
            Post(
                key=f"redeem:{record.id}:cash",
                debit_account_id=withdrawal_clearing_account(session),
                credit_account_id=drawer.drawer_account_id,
                amount=record.amount,
                code="cash_payout",
                memo=str(record.id),
            )
        )
    charge = inspection.charge
    requests += charge_legs(
        session,
        charge,
        key=f"redeem:{record.id}",
        payer_account_id=record.wallet_account_id,
        post_office=post_office,
        memo=str(record.id),
    )
    try:
        with session.begin_nested():
            results = ledger.post_transfers(session, requests, now=now)
    except ledger.PendingAlreadyResolved:
        # Resolved outside this lock (expiry sweeper, cancellation): read what it became.
        session.refresh(record)
        _check_status(session, record, now)
        raise CodeRefused(Refusal.EXPIRED, _("Mã không còn dùng được."), record) from None
    except ledger.PendingExpired:
        raise CodeRefused(
            Refusal.EXPIRED, _("Mã đã hết hạn. Nhờ người dân tạo mã mới."), record
        ) from None
    except ledger.InsufficientFunds:
        raise CodeRefused(
            Refusal.NOT_ENOUGH_CASH,
            _("Két tiền hoặc ví không đủ tiền cho khoản này. Không có gì bị trừ."),
            record,
        ) from None
    metrics.transfers_posted(results)
    metrics.code_redeemed("welfare_voucher" if inspection.is_welfare else record.kind)
    record.status = CodeStatus.REDEEMED.value
    record.closed_at = now
    record.redeemed_at_point = post_office.code
    record.redeemed_by = agent.principal
    operation = CounterOperation(
        id=uuid.uuid4(),
        kind=(OperationKind.PAYOUT if withdrawal else OperationKind.BILL_COLLECTION).value,
        drawer_session_id=drawer.id,
        agent_id=agent.id,
        post_office_id=post_office.id,
        amount=record.amount,
        fee=charge.fee,
        commission=charge.commission,
        cash_delta=-record.amount if withdrawal else 0,
        citizen_id=record.citizen_id,
        code_id=record.id,
        transfer_id=results[1].id if withdrawal else results[0].id,
        id_last4_checked=True,
        face_matched=True,
        approved_by=None if approval is None else approval.decided_by,
        created_at=now,
    )
    session.add(operation)
    if approval is not None:
        approval.status = ApprovalStatus.USED.value
    if inspection.voucher is not None:
        vouchers.mark_paid(inspection.voucher, now)
    session.flush()
    audit.record(
        session,
        actor=agent.principal,
        action=Action.PAID_OUT if withdrawal else Action.BILL_COLLECTED,
        now=now,
        post_office_id=post_office.id,
        subject=f"code:{record.id}",
        detail=f"amount={record.amount} fee={charge.fee} drawer={drawer.id}"
        + (" welfare" if inspection.is_welfare else ""),
    )
    return Paid(operation, replayed=False)


# --- Cash-in ---------------------------------------------------------------------------------


class CashInRefused(Exception):
    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field
        self.message = message


def check_cash_in(
    session: Session,
    *,
    citizen: Citizen,
    amount: int,
    transaction_max_vnd: int,
    wallet_balance_max_vnd: int,
    now: dt.datetime,
) -> None:
    """What refuses a cash-in of `amount` whoever asks: checked before the amount is read back
    to the citizen, and again when it is posted. Raises `CashInRefused`."""
    if KycTier(citizen.kyc_tier) is KycTier.UNVERIFIED:
        raise CashInRefused(
            "form",
            _(
                "Tài khoản này chưa được xác minh. Hãy đối chiếu căn cước và bấm "
                "“Xác minh danh tính” trước khi nhận tiền."
            ),
        )
    not_in_notes_message = not_in_notes(amount)
    if not_in_notes_message:
        raise CashInRefused("amount", not_in_notes_message)
    if amount > transaction_max_vnd:
        raise CashInRefused(
            "amount",
            _("Mỗi lần nạp tối đa %(max)s.", max=vnd(transaction_max_vnd)),
        )
    posted = ledger.balance(session, citizen.wallet_account_id, now=now).posted
    if posted + amount > wallet_balance_max_vnd:
        raise CashInRefused(
            "amount",
            _(
                "Ví chỉ được giữ tối đa %(max)s; lần này nạp được nhiều nhất %(allowed)s.",
                max=vnd(wallet_balance_max_vnd),
                allowed=vnd(max(0, wallet_balance_max_vnd - posted)),
            ),
        )


def cash_in(
    session: Session,
    *,
    agent: Agent,
    post_office: PostOffice,
    drawer: DrawerSession | None,
    citizen: Citizen,
    amount: int,
    request_id: uuid.UUID,
    fees: FeeSchedule,
    transaction_max_vnd: int,
    wallet_balance_max_vnd: int,
    now: dt.datetime,
) -> Paid:
    """Cash counted in at the counter becomes money in the citizen's wallet (drawer → wallet).

    ``request_id`` comes with the confirmation form, so a double click or a retry posts once.
    Raises `CashInRefused`.
    """
    if drawer is None:
        raise CashInRefused("form", _("Hãy mở két tiền (đếm tiền đầu ca) trước khi nhận tiền."))
    key = f"cash-in:{request_id}"
    existing = session.scalar(
        select(CounterOperation)
        .join(ledger.Transfer, ledger.Transfer.id == CounterOperation.transfer_id)
        .where(ledger.Transfer.idempotency_key == key)
    )
    if existing is not None:
        if (
            existing.agent_id != agent.id
            or existing.citizen_id != citizen.id
            or existing.amount != amount
        ):
            # The same form sent again with other contents: not a retry of that cash-in.
            raise CashInRefused("form", _("Biểu mẫu này đã được dùng. Hãy mở lại trang nạp tiền."))
        return Paid(existing, replayed=True)
    check_cash_in(
        session,
        citizen=citizen,
        amount=amount,
        transaction_max_vnd=transaction_max_vnd,
        wallet_balance_max_vnd=wallet_balance_max_vnd,
        now=now,
    )
    charge = fees.charge(FeeOperation.CASH_IN, amount)
    requests: list[ledger.TransferRequest] = [
        Post(
            key=key,
            debit_account_id=drawer.drawer_account_id,
            credit_account_id=citizen.wallet_account_id,
            amount=amount,
            code="cash_in",
            memo=post_office.code,
        )
    ]
    requests += charge_legs(
        session,
        charge,
        key=key,
        payer_account_id=citizen.wallet_account_id,
        post_office=post_office,
        memo=post_office.code,
    )
    results = ledger.post_transfers(session, requests, now=now)
    metrics.transfers_posted(results)
    if results[0].replayed:
        # A double click that raced past the check above: the ledger let the first one through,
        # and its operation was committed before the ledger's key lock let this one go.
        done = session.scalar(
            select(CounterOperation).where(CounterOperation.transfer_id == results[0].id)
        )
        if done is not None:
            return Paid(done, replayed=True)
    operation = CounterOperation(
        id=uuid.uuid4(),
        kind=OperationKind.CASH_IN.value,
        drawer_session_id=drawer.id,
        agent_id=agent.id,
        post_office_id=post_office.id,
        amount=amount,
        fee=charge.fee,
        commission=charge.commission,
        cash_delta=amount,
        citizen_id=citizen.id,
        transfer_id=results[0].id,
        created_at=now,
    )
    session.add(operation)
    session.flush()
    audit.record(
        session,
        actor=agent.principal,
        action=Action.CASHED_IN,
        now=now,
        post_office_id=post_office.id,
        subject=f"citizen:{citizen.id}",
        detail=f"amount={amount} drawer={drawer.id}",
    )
    return Paid(operation, replayed=False)
