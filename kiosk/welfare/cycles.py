"""Welfare operations: programmes and their funds, pay cycles, the list's upload, four-eyes
approval with one batched ledger operation, closing, row statuses and the reconciliation.

The life of a cycle: draft → (a list with no problem, total equal to the fund) validated →
(sent by an official) awaiting approval → (approved by another official) paid → (every voucher
paid or expired) closed. Operations take the session, flush and never commit; `by` is the
acting principal ("official:7"; "demo" or "admin" from the command line).
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field

from flask_babel import gettext as _  # type: ignore[import-untyped]
from sqlalchemy import delete, func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

import ledger
from kiosk import metrics
from kiosk.citizens.models import Citizen, KycTier
from kiosk.formatting import local_today, vnd
from kiosk.payments.codes import system_account, withdrawal_clearing_account
from kiosk.payments.models import CodeKind, CodeStatus, IssuedCode
from kiosk.welfare import validation, vouchers
from kiosk.welfare.models import (
    CYCLE_LABEL_LENGTH_MAX_CHARS,
    PROGRAMME_NAME_LENGTH_MAX_CHARS,
    REASON_LENGTH_MAX_CHARS,
    VOUCHER_VALIDITY_DAYS_MAX,
    VOUCHER_VALIDITY_DAYS_MIN,
    BeneficiaryRow,
    CycleStatus,
    PayCycle,
    RowStatus,
    WelfareProgramme,
)
from kiosk.welfare.upload import LIST_ROWS_MAX, RawRow
from ledger import AccountKind, Phase, Post, Reserve, Transfer
from ledger.schema import OpenReservation

TREASURY_OWNER = "system:welfare_treasury"
FUNDING_CODE = "welfare_funding"
WALLET_PAYMENT_CODE = "welfare_payment"
VOUCHER_CODE = "welfare_voucher"
FUNDING_AMOUNT_MAX_VND = 100_000_000_000
FUNDING_REFERENCE_LENGTH_MAX_CHARS = 100
PROGRAMMES_PER_PAGE_MAX = 100
CYCLES_PER_PAGE_MAX = 100
DEFAULT_VOUCHER_VALIDITY_DAYS = 30
SECONDS_PER_DAY = 86_400


class WelfareRefused(Exception):
    """An operation cannot be done; ``message`` is for the official, in Vietnamese."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


# --- Programmes and funds ----------------------------------------------------------------------


def treasury_account(session: Session) -> int:
    # Where money sent by the State Treasury comes from: its balance is everything received.
    return system_account(
        session, TREASURY_OWNER, AccountKind.SETTLEMENT, "Kho bạc nhà nước (kinh phí an sinh)"
    )


def create_programme(
    session: Session, *, commune_code: str, name: str, by: str, now: dt.datetime
) -> WelfareProgramme:
    name = " ".join(name.split())
    if not 2 <= len(name) <= PROGRAMME_NAME_LENGTH_MAX_CHARS:
        raise WelfareRefused(
            "name_invalid",
            _(
                "Tên chương trình dài từ 2 đến %(max)d ký tự.",
                max=PROGRAMME_NAME_LENGTH_MAX_CHARS,
            ),
        )
    if session.scalar(
        select(WelfareProgramme.id).where(
            WelfareProgramme.commune_code == commune_code, WelfareProgramme.name == name
        )
    ):
        raise WelfareRefused("name_taken", _("Xã/phường đã có chương trình mang tên này."))
    fund = ledger.open_account(
        session, kind=AccountKind.WELFARE_FUND, name=f"Quỹ — {name}"[:200], now=now
    )
    programme = WelfareProgramme(
        commune_code=commune_code,
        name=name,
        fund_account_id=fund.id,
        created_at=now,
        created_by=by,
    )
    session.add(programme)
    session.flush()
    fund.owner_ref = f"welfare_programme:{programme.id}"
    session.flush()
    return programme


def fund_balance(session: Session, programme: WelfareProgramme, now: dt.datetime) -> ledger.Balance:
    return ledger.balance(session, programme.fund_account_id, now=now)


def record_funding(
    session: Session,
    programme: WelfareProgramme,
    *,
    amount: int,
    reference: str,
    request_id: uuid.UUID,
    now: dt.datetime,
) -> ledger.TransferResult:
    """Money received from the treasury into the programme's fund (posted once per request id:
    a double click or a retry replays it)."""
    reference = " ".join(reference.split())
    if not 0 < amount <= FUNDING_AMOUNT_MAX_VND:
        raise WelfareRefused(
            "amount_invalid",
            _(
                "Số tiền nhận phải từ %(min)s đến %(max)s.",
                min=vnd(1),
                max=vnd(FUNDING_AMOUNT_MAX_VND),
            ),
        )
    if not 1 <= len(reference) <= FUNDING_REFERENCE_LENGTH_MAX_CHARS:
        raise WelfareRefused(
            "reference_invalid",
            _("Ghi số chứng từ (lệnh chi, giấy báo có) của khoản tiền nhận."),
        )
    try:
        with session.begin_nested():
            result = ledger.post_transfer(
                session,
                Post(
                    key=f"welfare-funding:{request_id}",
                    debit_account_id=treasury_account(session),
                    credit_account_id=programme.fund_account_id,
                    amount=amount,
                    code=FUNDING_CODE,
                    memo=reference,
                ),
                now=now,
            )
    except ledger.IdempotencyConflict:
        raise WelfareRefused(
            "form_reused", _("Biểu mẫu này đã được dùng. Hãy mở lại trang chương trình.")
        ) from None
    metrics.transfers_posted([result])
    return result


@dataclass(frozen=True)
class Funding:
    at: dt.datetime
    amount: int
    reference: str


def fundings(session: Session, programme: WelfareProgramme, *, limit: int = 50) -> list[Funding]:
    rows = session.execute(
        select(Transfer.created_at, Transfer.amount, Transfer.memo)
        .where(
            Transfer.credit_account_id == programme.fund_account_id,
            Transfer.code == FUNDING_CODE,
        )
        .order_by(Transfer.created_at.desc())
        .limit(limit)
    ).all()
    return [Funding(at, amount, memo) for at, amount, memo in rows]


def commune_names(session: Session, codes: set[str]) -> dict[str, str]:
    return validation.commune_names(session, codes)


def official_names(session: Session, principals: set[str | None]) -> dict[str, str]:
    """Names of the officials behind principals like "official:7" (others are left out)."""
    ids = {
        int(number)
        for principal in principals
        if principal and principal.startswith("official:")
        for number in [principal.removeprefix("official:")]
        if number.isdigit()
    }
    if not ids:
        return {}
    # Imported here: the community models import nothing of welfare, but keep the edge thin.
    from kiosk.community.models import Official  # noqa: PLC0415

    return {
        f"official:{official_id}": name
        for official_id, name in session.execute(
            select(Official.id, Official.full_name).where(Official.id.in_(ids))
        ).all()
    }


def programmes_of(session: Session, communes: object) -> list[WelfareProgramme]:
    """The programmes of the given communes (a list of codes or a Select of codes)."""
    return list(
        session.scalars(
            select(WelfareProgramme)
            .where(WelfareProgramme.commune_code.in_(communes))  # type: ignore[arg-type]
            .order_by(WelfareProgramme.commune_code, WelfareProgramme.name)
            .limit(PROGRAMMES_PER_PAGE_MAX)
        )
    )


# --- Cycles --------------------------------------------------------------------------------------


def create_cycle(
    session: Session,
    programme: WelfareProgramme,
    *,
    label: str,
    voucher_validity_days: int,
    by: str,
    now: dt.datetime,
) -> PayCycle:
    label = " ".join(label.split())
    if not 1 <= len(label) <= CYCLE_LABEL_LENGTH_MAX_CHARS:
        raise WelfareRefused(
            "label_invalid",
            _(
                "Ghi tên đợt chi trả (tối đa %(max)d ký tự), ví dụ “Tháng 12/2026”.",
                max=CYCLE_LABEL_LENGTH_MAX_CHARS,
            ),
        )
    if not VOUCHER_VALIDITY_DAYS_MIN <= voucher_validity_days <= VOUCHER_VALIDITY_DAYS_MAX:
        raise WelfareRefused(
            "validity_invalid",
            _(
                "Phiếu tiền mặt có hiệu lực từ %(min)d đến %(max)d ngày.",
                min=VOUCHER_VALIDITY_DAYS_MIN,
                max=VOUCHER_VALIDITY_DAYS_MAX,
            ),
        )
    if session.scalar(
        select(PayCycle.id).where(PayCycle.programme_id == programme.id, PayCycle.label == label)
    ):
        raise WelfareRefused("label_taken", _("Chương trình đã có đợt chi trả mang tên này."))
    cycle = PayCycle(
        programme_id=programme.id,
        label=label,
        voucher_validity_days=voucher_validity_days,
        status=CycleStatus.DRAFT.value,
        row_count=0,
        total_amount=0,
        returned_note="",
        created_at=now,
        created_by=by,
    )
    session.add(cycle)
    session.flush()
    return cycle


def cycles_of(session: Session, programme: WelfareProgramme) -> list[PayCycle]:
    return list(
        session.scalars(
            select(PayCycle)
            .where(PayCycle.programme_id == programme.id)
            .order_by(PayCycle.created_at.desc())
            .limit(CYCLES_PER_PAGE_MAX)
        )
    )


def programme_of(session: Session, cycle: PayCycle) -> WelfareProgramme:
    programme = session.get(WelfareProgramme, cycle.programme_id)
    assert programme is not None
    return programme


def _total_mismatch(total: int, available: int) -> WelfareRefused:
    return WelfareRefused(
        "total_mismatch",
        _(
            "Tổng số tiền của danh sách là %(total)s nhưng quỹ chương trình hiện có %(available)s "
            "khả dụng. Hai số phải bằng nhau: sửa danh sách hoặc ghi nhận tiền nhận về quỹ.",
            total=vnd(total),
            available=vnd(available),
        ),
    )


@dataclass
class UploadResult:
    """What an upload found: every problem, the list's total and the fund's available balance."""

    problems: list[validation.Problem] = field(default_factory=list)
    total: int = 0
    row_count: int = 0
    fund_available: int = 0
    total_problem: str | None = None

    @property
    def accepted(self) -> bool:
        return not self.problems and self.total_problem is None


def upload_list(
    session: Session,
    cycle: PayCycle,
    rows: Sequence[RawRow],
    *,
    denomination_vnd: int,
    by: str,
    now: dt.datetime,
) -> UploadResult:
    """Check a new list for the cycle and, when every row is valid and the total equals the
    fund's available balance, store it in place of the previous draft list. A list with any
    problem changes nothing: the result lists every problem, to fix in the file."""
    if cycle.status not in (CycleStatus.DRAFT, CycleStatus.VALIDATED):
        raise WelfareRefused(
            "cycle_not_draft",
            _("Danh sách đã gửi duyệt hoặc đã chi trả; không tải lên lại được."),
        )
    programme = programme_of(session, cycle)
    checked = validation.validate_list(
        session, rows, commune_code=programme.commune_code, denomination_vnd=denomination_vnd
    )
    available = fund_balance(session, programme, now).available
    result = UploadResult(
        problems=checked.problems,
        total=checked.total,
        row_count=len(checked.rows),
        fund_available=available,
    )
    if not checked.problems and checked.total != available:
        result.total_problem = _total_mismatch(checked.total, available).message
    if not result.accepted:
        return result
    session.execute(delete(BeneficiaryRow).where(BeneficiaryRow.cycle_id == cycle.id))
    session.add_all(
        BeneficiaryRow(
            cycle_id=cycle.id,
            row_number=row.line,
            citizen_id_lookup=row.citizen_id_lookup,
            citizen_id_last4=row.citizen_id_last4,
            full_name=row.full_name,
            amount=row.amount,
            phone=row.phone,
            status=RowStatus.PENDING.value,
            reason="",
            citizen_id=None if row.citizen is None else row.citizen.id,
            created_at=now,
        )
        for row in checked.rows
    )
    cycle.status = CycleStatus.VALIDATED.value
    cycle.row_count = len(checked.rows)
    cycle.total_amount = checked.total
    cycle.uploaded_by = by
    cycle.uploaded_at = now
    cycle.submitted_by = None
    cycle.submitted_at = None
    cycle.returned_note = ""
    session.flush()
    return result


def submit_cycle(session: Session, cycle: PayCycle, *, by: str, now: dt.datetime) -> None:
    """Send a validated list to a second official for approval."""
    if cycle.status != CycleStatus.VALIDATED:
        raise WelfareRefused(
            "cycle_not_validated", _("Chỉ gửi duyệt được danh sách đã kiểm tra không có lỗi.")
        )
    available = fund_balance(session, programme_of(session, cycle), now).available
    if cycle.total_amount != available:
        raise _total_mismatch(cycle.total_amount, available)
    cycle.status = CycleStatus.AWAITING_APPROVAL.value
    cycle.submitted_by = by
    cycle.submitted_at = now
    session.flush()


def return_cycle(
    session: Session, cycle: PayCycle, *, by: str, note: str, now: dt.datetime
) -> None:
    """Send a list back to its uploader (it stays validated, to be sent again or replaced)."""
    if cycle.status != CycleStatus.AWAITING_APPROVAL:
        raise WelfareRefused("cycle_not_awaiting", _("Danh sách này không chờ duyệt."))
    note = " ".join(note.split())[:REASON_LENGTH_MAX_CHARS]
    if not note:
        raise WelfareRefused("note_missing", _("Ghi lý do trả lại để người lập danh sách sửa."))
    cycle.status = CycleStatus.VALIDATED.value
    cycle.submitted_by = None
    cycle.submitted_at = None
    cycle.returned_note = note
    session.flush()


@dataclass(frozen=True)
class Disbursement:
    paid_to_account: int
    vouchers: int


def _lock_cycle(session: Session, cycle_id: int) -> PayCycle:
    found = session.scalar(
        select(PayCycle)
        .where(PayCycle.id == cycle_id)
        .with_for_update()
        .execution_options(populate_existing=True)
    )
    assert found is not None
    return found


def _voucher_reason(
    citizen: Citizen | None,
    row: BeneficiaryRow,
    commune_code: str,
    wallet_posted: int,
    wallet_balance_max_vnd: int,
) -> str | None:
    """Why this row gets a cash voucher rather than a wallet payment (None: pay the wallet)."""
    if citizen is None:
        return str(_("Chưa có tài khoản ATM mềm."))
    if citizen.commune_code != commune_code:
        return str(_("Tài khoản đăng ký ở xã/phường khác."))
    if KycTier(citizen.kyc_tier) is not KycTier.VERIFIED:
        return str(_("Tài khoản chưa được xác minh căn cước tại quầy."))
    if wallet_posted + row.amount > wallet_balance_max_vnd:
        return str(
            _(
                "Ví sẽ vượt mức giữ tối đa %(max)s nếu nhận khoản này.",
                max=vnd(wallet_balance_max_vnd),
            )
        )
    return None


def approve_cycle(
    session: Session,
    cycle_id: int,
    *,
    by: str,
    wallet_balance_max_vnd: int,
    now: dt.datetime,
) -> Disbursement:
    """Approve a list (not by the official who uploaded or sent it) and disburse it in one
    transaction: verified accounts of the commune are paid into the wallet and every other row
    gets a cash voucher, all in ONE ledger batch (idempotency key per row, so a retry never pays
    twice). Raises `WelfareRefused`."""
    cycle = _lock_cycle(session, cycle_id)
    if cycle.status != CycleStatus.AWAITING_APPROVAL:
        raise WelfareRefused("cycle_not_awaiting", _("Danh sách này không chờ duyệt."))
    if by in (cycle.uploaded_by, cycle.submitted_by):
        raise WelfareRefused(
            "four_eyes",
            _(
                "Người lập hoặc gửi danh sách không tự duyệt được. "
                "Một cán bộ khác của xã/phường phải duyệt."
            ),
        )
    programme = programme_of(session, cycle)
    # Vouchers of earlier cycles that ran out give their money back to the fund first.
    vouchers.expire_vouchers(session, now, programme_id=programme.id)
    available = fund_balance(session, programme, now).available
    if cycle.total_amount != available:
        raise _total_mismatch(cycle.total_amount, available)
    rows = list(
        session.scalars(
            select(BeneficiaryRow)
            .where(BeneficiaryRow.cycle_id == cycle.id)
            .order_by(BeneficiaryRow.row_number)
            .limit(LIST_ROWS_MAX)
        )
    )
    assert sum(row.amount for row in rows) == cycle.total_amount
    # Accounts opened (or moved) since the upload count: look each person up again now.
    citizens = validation.citizens_by_lookup(session, (row.citizen_id_lookup for row in rows))
    clearing = withdrawal_clearing_account(session)
    memo = f"{programme.name} — {cycle.label}"[:200]
    requests: list[ledger.TransferRequest] = []
    plan: list[tuple[BeneficiaryRow, Citizen | None, uuid.UUID | None, str]] = []
    for row in rows:
        citizen = citizens.get(row.citizen_id_lookup)
        posted = (
            0
            if citizen is None
            else ledger.balance(session, citizen.wallet_account_id, now=now).posted
        )
        reason = _voucher_reason(
            citizen, row, programme.commune_code, posted, wallet_balance_max_vnd
        )
        if reason is None:
            assert citizen is not None
            requests.append(
                Post(
                    key=f"welfare:{cycle.id}:row:{row.id}:wallet",
                    debit_account_id=programme.fund_account_id,
                    credit_account_id=citizen.wallet_account_id,
                    amount=row.amount,
                    code=WALLET_PAYMENT_CODE,
                    memo=memo,
                )
            )
            plan.append((row, citizen, None, ""))
        else:
            code_id = uuid.uuid4()
            requests.append(
                Reserve(
                    key=f"welfare:{cycle.id}:row:{row.id}:voucher",
                    debit_account_id=programme.fund_account_id,
                    credit_account_id=clearing,
                    amount=row.amount,
                    code=VOUCHER_CODE,
                    timeout_s=cycle.voucher_validity_days * SECONDS_PER_DAY,
                    memo=str(code_id),
                )
            )
            plan.append((row, citizen, code_id, reason))
    try:
        with session.begin_nested():
            results = ledger.post_transfers(session, requests, now=now)
    except ledger.InsufficientFunds:
        raise WelfareRefused(
            "fund_short", _("Quỹ không đủ tiền cho danh sách này. Không có khoản nào được chi.")
        ) from None
    metrics.transfers_posted(results)
    paid_to_account = 0
    for (row, citizen, voucher_id, reason), result in zip(plan, results, strict=True):
        row.paid_at = now
        row.citizen_id = None if citizen is None else citizen.id
        if voucher_id is None:
            assert citizen is not None
            row.status = RowStatus.PAID_TO_ACCOUNT.value
            row.transfer_id = result.id
            paid_to_account += 1
            _tick_welfare_account(session, citizen, now)
            continue
        assert result.expires_at is not None
        row.status = RowStatus.VOUCHER_ISSUED.value
        row.reason = reason[:REASON_LENGTH_MAX_CHARS]
        session.add(
            IssuedCode(
                id=voucher_id,
                kind=CodeKind.WITHDRAWAL.value,
                status=CodeStatus.OPEN.value,
                citizen_id=None,
                welfare_row_id=row.id,
                wallet_account_id=programme.fund_account_id,
                amount=row.amount,
                pending_transfer_id=result.id,
                created_at=now,
                expires_at=result.expires_at,
            )
        )
        metrics.code_issued("welfare_voucher")
    cycle.status = CycleStatus.PAID.value
    cycle.approved_by = by
    cycle.approved_at = now
    try:
        session.flush()
    except IntegrityError:
        # The database's own four-eyes check (and the others) back up the checks above.
        raise WelfareRefused("refused_by_database", _("Không duyệt được danh sách này.")) from None
    return Disbursement(paid_to_account, len(rows) - paid_to_account)


def _tick_welfare_account(session: Session, citizen: Citizen, now: dt.datetime) -> None:
    """The household checklist's "welfare paid to account" step, confirmed by the system."""
    from kiosk.community.checklist import tick_from_system  # noqa: PLC0415
    from kiosk.community.models import ChecklistStep  # noqa: PLC0415

    tick_from_system(
        session,
        citizen_id=citizen.id,
        step=ChecklistStep.WELFARE_ACCOUNT,
        on_date=local_today(now),
        now=now,
    )


def close_cycle(session: Session, cycle: PayCycle, *, now: dt.datetime) -> None:
    """Close a paid cycle once no voucher is outstanding (expired ones are released first)."""
    if cycle.status != CycleStatus.PAID:
        raise WelfareRefused("cycle_not_paid", _("Chỉ đóng được đợt đã chi trả."))
    vouchers.expire_vouchers(session, now, programme_id=cycle.programme_id)
    outstanding = session.scalar(
        select(func.count())
        .select_from(BeneficiaryRow)
        .where(
            BeneficiaryRow.cycle_id == cycle.id,
            BeneficiaryRow.status == RowStatus.VOUCHER_ISSUED,
        )
    )
    if outstanding:
        raise WelfareRefused(
            "vouchers_outstanding",
            _(
                "Còn %(count)d phiếu tiền mặt chưa chi trả và chưa hết hạn. "
                "Đóng đợt sau khi các phiếu được chi trả hoặc hết hạn.",
                count=outstanding,
            ),
        )
    cycle.status = CycleStatus.CLOSED.value
    cycle.closed_at = now
    session.flush()


# --- Rows, statuses and reconciliation ---------------------------------------------------------


def rows_of(
    session: Session, cycle: PayCycle, *, limit: int = LIST_ROWS_MAX
) -> list[BeneficiaryRow]:
    return list(
        session.scalars(
            select(BeneficiaryRow)
            .where(BeneficiaryRow.cycle_id == cycle.id)
            .order_by(BeneficiaryRow.row_number)
            .limit(limit)
        )
    )


def vouchers_of(session: Session, cycle: PayCycle) -> dict[int, IssuedCode]:
    """The cycle's vouchers by row id."""
    found = session.scalars(
        select(IssuedCode)
        .join(BeneficiaryRow, BeneficiaryRow.id == IssuedCode.welfare_row_id)
        .where(BeneficiaryRow.cycle_id == cycle.id)
        .limit(LIST_ROWS_MAX)
    )
    return {code.welfare_row_id: code for code in found if code.welfare_row_id is not None}


@dataclass(frozen=True)
class StatusLine:
    status: RowStatus
    count: int
    amount: int


def status_summary(session: Session, cycle: PayCycle) -> list[StatusLine]:
    """Count and sum of the rows in each status (every status listed, zeros included)."""
    found = {
        status: (count, amount or 0)
        for status, count, amount in session.execute(
            select(BeneficiaryRow.status, func.count(), func.sum(BeneficiaryRow.amount))
            .where(BeneficiaryRow.cycle_id == cycle.id)
            .group_by(BeneficiaryRow.status)
        ).all()
    }
    return [
        StatusLine(status, int(found.get(status, (0, 0))[0]), int(found.get(status, (0, 0))[1]))
        for status in RowStatus
    ]


@dataclass(frozen=True)
class Check:
    """One figure of the reconciliation: from the rows, and from the ledger."""

    label: str
    rows: int
    ledger: int

    @property
    def ok(self) -> bool:
        return self.rows == self.ledger

    @property
    def difference(self) -> int:
        return self.rows - self.ledger


@dataclass(frozen=True)
class Reconciliation:
    cycle_total: int
    checks: list[Check]
    # The programme's fund: money in - paid out - held by vouchers = available balance.
    fund_in: int
    fund_paid_out: int
    fund_held: int
    fund_available: int

    @property
    def rows_add_up(self) -> bool:
        return self.cycle_total == sum(check.rows for check in self.checks)

    @property
    def fund_expected(self) -> int:
        return self.fund_in - self.fund_paid_out - self.fund_held

    @property
    def ok(self) -> bool:
        return (
            self.rows_add_up
            and all(check.ok for check in self.checks)
            and self.fund_expected == self.fund_available
        )


def _sum(session: Session, query: object) -> int:
    return int(session.scalar(query) or 0)  # type: ignore[call-overload]


def reconcile(session: Session, cycle: PayCycle, now: dt.datetime) -> Reconciliation:
    """The cycle's total = paid to accounts + vouchers paid + vouchers outstanding + released on
    expiry (+ failed), each figure from the rows checked against the ledger; and the fund: money
    received - paid to accounts - vouchers paid = outstanding vouchers + available balance."""
    summary = {line.status: line.amount for line in status_summary(session, cycle)}
    programme = programme_of(session, cycle)
    fund = programme.fund_account_id
    pending_ids = (
        select(IssuedCode.pending_transfer_id)
        .join(BeneficiaryRow, BeneficiaryRow.id == IssuedCode.welfare_row_id)
        .where(BeneficiaryRow.cycle_id == cycle.id)
    )
    to_accounts = _sum(
        session,
        select(func.sum(Transfer.amount))
        .join(BeneficiaryRow, BeneficiaryRow.transfer_id == Transfer.id)
        .where(BeneficiaryRow.cycle_id == cycle.id, Transfer.debit_account_id == fund),
    )
    resolved = {
        phase: int(amount or 0)
        for phase, amount in session.execute(
            select(Transfer.phase, func.sum(Transfer.amount))
            .where(Transfer.pending_id.in_(pending_ids))
            .group_by(Transfer.phase)
        ).all()
    }
    outstanding = _sum(
        session,
        select(func.sum(OpenReservation.amount)).where(OpenReservation.pending_id.in_(pending_ids)),
    )
    checks = [
        Check(_("Đã chuyển vào tài khoản"), summary[RowStatus.PAID_TO_ACCOUNT], to_accounts),
        Check(
            _("Phiếu đã chi trả tại bưu điện"),
            summary[RowStatus.VOUCHER_PAID],
            resolved.get(Phase.POST_PENDING, 0),
        ),
        Check(
            _("Phiếu chưa chi trả (đang giữ trong quỹ)"),
            summary[RowStatus.VOUCHER_ISSUED],
            outstanding,
        ),
        Check(
            _("Phiếu hết hạn, đã trả về quỹ"),
            summary[RowStatus.EXPIRED],
            resolved.get(Phase.VOID_PENDING, 0),
        ),
    ]
    balance = fund_balance(session, programme, now)
    fund_in = _sum(
        session,
        select(func.sum(Transfer.amount)).where(
            Transfer.credit_account_id == fund, Transfer.phase == Phase.POSTED
        ),
    )
    programme_rows = {
        status: int(amount or 0)
        for status, amount in session.execute(
            select(BeneficiaryRow.status, func.sum(BeneficiaryRow.amount))
            .join(PayCycle, PayCycle.id == BeneficiaryRow.cycle_id)
            .where(PayCycle.programme_id == programme.id)
            .group_by(BeneficiaryRow.status)
        ).all()
    }
    return Reconciliation(
        cycle_total=cycle.total_amount - summary[RowStatus.PENDING] - summary[RowStatus.FAILED],
        checks=checks,
        fund_in=fund_in,
        fund_paid_out=programme_rows.get(RowStatus.PAID_TO_ACCOUNT, 0)
        + programme_rows.get(RowStatus.VOUCHER_PAID, 0),
        fund_held=programme_rows.get(RowStatus.VOUCHER_ISSUED, 0),
        # Raw totals: a voucher past its expiry that nobody has released yet is still held.
        fund_available=balance.credits_posted - balance.debits_posted - balance.debits_pending,
    )
