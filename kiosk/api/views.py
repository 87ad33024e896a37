"""The operations of /api/v1. Each one: parse (done by `routing.operation`) → check access →
call the same domain operation the web pages call → answer. The counter's rules live in
`agent_portal.counter` and are not repeated here.

Who may do what:
- an agent's credential: verify a code, redeem it (identity check), ask for a payout approval,
  cash-in — exactly as that agent at the counter (own post office, own drawer, the same limits
  and approvals); and make a code on behalf of a citizen who is at the counter (ID card checked:
  last 4 digits and face) and types their PIN.
- a system's credential, by scope: ``codes:create`` (a code on behalf of a citizen who gives their
  phone number and PIN, e.g. in a bank's app), ``wallet:read``, ``welfare:read``,
  ``indicators:read`` — reads limited to the credential's commune or province.
Codes above the step-up limit need the citizen's own second factor, which only the citizen's
app asks for: the API refuses them (``citizen-step-up-needed``).
"""

from __future__ import annotations

import uuid
from typing import Any

from flask import current_app
from flask_babel import gettext as _  # type: ignore[import-untyped]
from itsdangerous import BadSignature, SignatureExpired, URLSafeTimedSerializer
from sqlalchemy import select

import ledger
from agent_portal import audit, counter, drawer
from agent_portal.audit import Action
from agent_portal.auth_views import verify_code
from agent_portal.models import Agent, PostOffice
from kiosk import metrics
from kiosk.adoption import indicators
from kiosk.api import openapi, schemas
from kiosk.api.credentials import Caller, Scope, can_see_commune
from kiosk.api.problems import Problem, refusal_problem
from kiosk.api.routing import (
    OPERATIONS,
    blueprint,
    current_caller,
    idempotency_key,
    now,
    operation,
)
from kiosk.auth.staff_sign_in import WrongCode
from kiosk.auth.throttles import Locked
from kiosk.citizens import limits
from kiosk.citizens.credentials import WrongCredentials, authenticate_citizen
from kiosk.citizens.models import Citizen
from kiosk.citizens.phone import PhoneInvalid, normalise_phone
from kiosk.codes import tokens
from kiosk.database import get_session
from kiosk.formatting import local_today
from kiosk.payments import codes
from kiosk.payments.models import CodeStatus, IssuedCode
from kiosk.places.models import Commune
from kiosk.welfare import cycles, vouchers
from kiosk.welfare.models import PayCycle

__all__ = ["blueprint"]

TICKET_SALT = "api-scan"
# Ids in paths past this are not ours (and would overflow a BIGINT parameter).
ID_MAX = 2**53
TICKET_MAX_AGE_S = 10 * 60
# Cash-in's ledger key comes from the credential and the Idempotency-Key, so even a retry that
# took over a crashed attempt posts once.
CASH_IN_NAMESPACE = uuid.UUID("0b8f6a1e-6c39-4c1e-9a55-3f1d2b7c9e40")


def _agent(caller: Caller) -> tuple[Agent, PostOffice]:
    assert caller.agent is not None and caller.post_office is not None
    return caller.agent, caller.post_office


def _too_many(locked: Locked) -> Problem:
    retry_s = max(1, int((locked.until - now()).total_seconds()))
    return Problem(
        "too-many-attempts",
        _("Thử sai quá nhiều lần. Thử lại sau %(seconds)d giây.", seconds=retry_s),
        headers={"Retry-After": str(retry_s)},
    )


def _refused(refusal: counter.CodeRefused, action: str) -> Problem:
    """Note a refused code like the counter does (metrics, audit committed apart)."""
    agent, post_office = _agent(current_caller())
    get_session().rollback()
    metrics.code_refused(refusal.reason.value)
    audit.record_refusal(
        actor=agent.principal,
        action=action,
        now=now(),
        post_office_id=post_office.id,
        subject=None if refusal.record is None else f"code:{refusal.record.id}",
        detail=f"{refusal.reason.value} api",
    )
    return refusal_problem(refusal.reason, refusal.message)


def _serializer() -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(current_app.config["SECRET_KEY"], salt=TICKET_SALT)


def _code_id_of_ticket(ticket: str) -> uuid.UUID:
    try:
        data: Any = _serializer().loads(ticket, max_age=TICKET_MAX_AGE_S)
    except SignatureExpired:
        raise Problem("ticket-expired", _("Phiếu quét đã hết hạn; hãy quét lại mã.")) from None
    except BadSignature:
        raise Problem("not-found", _("Phiếu quét không hợp lệ.")) from None
    if not isinstance(data, dict) or data.get("credential") != current_caller().credential.id:
        raise Problem("not-found", _("Phiếu quét không hợp lệ."))
    return uuid.UUID(str(data["code"]))


def _inspect(record: IssuedCode) -> counter.Inspection:
    agent, post_office = _agent(current_caller())
    return counter.inspect(
        get_session(),
        record,
        agent=agent,
        post_office=post_office,
        fees=current_app.config["FEE_SCHEDULE"],
        approval_above_vnd=current_app.config["PAYOUT_APPROVAL_ABOVE_VND"],
        now=now(),
    )


def _kind_of(inspection: counter.Inspection) -> str:
    return "welfare_voucher" if inspection.is_welfare else inspection.kind.value


@operation(
    "POST",
    "/codes/verify",
    summary="Look up and verify a presented code",
    body=schemas.VerifyCodeRequest,
    response=schemas.CodeInspection,
    who="agent",
    tags=("counter",),
)
def verify_code_presented(body: schemas.VerifyCodeRequest) -> schemas.CodeInspection:
    """What the counter's verification page shows, and a ticket for the redemption. Refusals
    carry the counter's reason (``reason``) and a stable ``code``."""
    caller = current_caller()
    agent, post_office = _agent(caller)
    session = get_session()
    moment = now()
    try:
        if body.token is not None:
            record = counter.read_token(
                session, body.token.strip("\r\n"), moment, max_age_s=tokens.CODE_AGE_MAX_S
            )
            via = "api"
        elif body.phone is not None and body.fallback_digits is not None:
            via = "api-fallback"
            try:
                record = codes.find_by_fallback(session, body.phone, body.fallback_digits, moment)
            except codes.FallbackRefused as refusal:
                raise Problem("fallback-refused", refusal.message) from None
        else:
            assert body.voucher_number is not None and body.last4 is not None
            via = "api-voucher-number"
            try:
                record = vouchers.find_by_voucher_number(
                    session,
                    commune_code=post_office.commune_code,
                    last4=body.last4,
                    digits=body.voucher_number,
                    throttle_key=f"voucher-number:{agent.principal}",
                    now=moment,
                )
            except vouchers.VoucherNumberRefused as refusal:
                raise Problem("fallback-refused", refusal.message) from None
        inspection = _inspect(record)
    except counter.CodeRefused as refusal:
        raise _refused(refusal, Action.SCAN_REFUSED) from None
    audit.record(
        session,
        actor=agent.principal,
        action=Action.SCANNED,
        now=moment,
        post_office_id=post_office.id,
        subject=f"code:{record.id}",
        detail=via,
    )
    ticket = _serializer().dumps({"code": str(record.id), "credential": caller.credential.id})
    return schemas.CodeInspection(
        ticket=ticket,
        code_id=record.id,
        kind=_kind_of(inspection),  # type: ignore[arg-type]
        amount_vnd=record.amount,
        fee_vnd=inspection.charge.fee,
        holder_name=inspection.holder_name,
        masked_citizen_id=inspection.masked_citizen_id,
        expires_at=record.expires_at,
        needs_approval=inspection.needs_approval,
        approved=inspection.approved,
        biller_name=None if inspection.biller is None else inspection.biller.name,
        bill_reference=record.bill_reference,
    )


def _operation_out(paid: counter.Paid) -> schemas.CounterOperationOut:
    operation_row = paid.operation
    agent, _post_office = _agent(current_caller())
    return schemas.CounterOperationOut(
        operation_id=operation_row.id,
        kind=operation_row.kind,  # type: ignore[arg-type]
        amount_vnd=operation_row.amount,
        fee_vnd=operation_row.fee,
        commission_vnd=operation_row.commission,
        code_id=operation_row.code_id,
        citizen_id=operation_row.citizen_id,
        transfer_id=operation_row.transfer_id,
        created_at=operation_row.created_at,
        cash_in_drawer_vnd=drawer.cash_in_drawer(get_session(), agent, now()),
    )


@operation(
    "POST",
    "/redemptions",
    summary="Redeem a verified code (pay out cash or collect a bill) after the identity check",
    body=schemas.RedeemRequest,
    response=schemas.CounterOperationOut,
    status=201,
    who="agent",
    idempotent=True,
    tags=("counter",),
)
def redeem_code(body: schemas.RedeemRequest) -> schemas.CounterOperationOut:
    """Pays out at most once per code, whatever races it (another device, the counter's page):
    the same guarantees as the counter. Large payouts need an approved request and the agent's
    fresh TOTP code (``agent_totp``)."""
    agent, post_office = _agent(current_caller())
    session = get_session()
    moment = now()
    code_id = _code_id_of_ticket(body.ticket)
    stepped_up = False
    if body.agent_totp is not None:
        try:
            verify_code(session, agent, body.agent_totp, moment)
        except WrongCode as wrong:
            raise Problem("step-up-needed", wrong.message) from None
        except Locked as locked:
            raise _too_many(locked) from None
        stepped_up = True
    try:
        paid = counter.redeem(
            session,
            code_id,
            agent=agent,
            post_office=post_office,
            drawer=drawer.open_drawer(session, agent),
            last4=body.last4,
            face_matched=body.face_matched,
            stepped_up=stepped_up,
            fees=current_app.config["FEE_SCHEDULE"],
            approval_above_vnd=current_app.config["PAYOUT_APPROVAL_ABOVE_VND"],
            now=moment,
        )
    except counter.CodeRefused as refusal:
        action = (
            Action.IDENTITY_REFUSED
            if refusal.reason is counter.Refusal.IDENTITY_MISMATCH
            else Action.PAYOUT_REFUSED
        )
        raise _refused(refusal, action) from None
    return _operation_out(paid)


@operation(
    "POST",
    "/payout-approvals",
    summary="Ask a supervisor to approve a large payout",
    body=schemas.ApprovalRequest,
    response=schemas.ApprovalAnswer,
    who="agent",
    tags=("counter",),
)
def request_payout_approval(body: schemas.ApprovalRequest) -> schemas.ApprovalAnswer:
    """Asking twice is harmless: the pending or approved request is returned."""
    agent, _post_office = _agent(current_caller())
    session = get_session()
    record = session.get(IssuedCode, _code_id_of_ticket(body.ticket))
    if record is None:
        raise Problem("not-found")
    try:
        inspection = _inspect(record)
    except counter.CodeRefused as refusal:
        raise _refused(refusal, Action.SCAN_REFUSED) from None
    if not inspection.needs_approval:
        return schemas.ApprovalAnswer(needed=False, approval_id=None, status=None)
    approval = counter.request_payout_approval(session, record, agent, now())
    return schemas.ApprovalAnswer(needed=True, approval_id=approval.id, status=approval.status)


def _citizen_by_phone(raw: str) -> Citizen | None:
    try:
        phone = normalise_phone(raw)
    except PhoneInvalid:
        return None
    return get_session().scalar(select(Citizen).where(Citizen.phone == phone))


@operation(
    "POST",
    "/cash-ins",
    summary="Credit cash counted at the counter to a citizen's wallet",
    body=schemas.CashInRequest,
    response=schemas.CounterOperationOut,
    status=201,
    who="agent",
    idempotent=True,
    tags=("counter",),
)
def cash_in(body: schemas.CashInRequest) -> schemas.CounterOperationOut:
    """Drawer → wallet, with the counter's rules (verified account, transaction and wallet
    limits, the fee)."""
    caller = current_caller()
    agent, post_office = _agent(caller)
    session = get_session()
    citizen = (
        session.get(Citizen, body.citizen_id)
        if body.citizen_id is not None
        else _citizen_by_phone(body.phone or "")
    )
    if citizen is None:
        raise Problem("not-found", _("Không tìm thấy tài khoản này."))
    request_id = uuid.uuid5(CASH_IN_NAMESPACE, f"{caller.credential.id}:{idempotency_key()}")
    try:
        paid = counter.cash_in(
            session,
            agent=agent,
            post_office=post_office,
            drawer=drawer.open_drawer(session, agent),
            citizen=citizen,
            amount=body.amount_vnd,
            request_id=request_id,
            fees=current_app.config["FEE_SCHEDULE"],
            transaction_max_vnd=current_app.config["TRANSACTION_MAX_VND"],
            wallet_balance_max_vnd=current_app.config["WALLET_BALANCE_MAX_VND"],
            now=now(),
        )
    except counter.CashInRefused as refusal:
        raise Problem("cash-in-refused", refusal.message, field=refusal.field) from None
    except ledger.InsufficientFunds:
        raise Problem(
            "cash-in-refused", _("Không nạp được: phí dịch vụ lớn hơn số dư của ví."), field="form"
        ) from None
    return _operation_out(paid)


# --- Codes on a citizen's behalf ----------------------------------------------------------------


def _citizen_consenting(body: schemas.OnBehalf) -> Citizen:
    """The citizen whose phone and PIN these are, present at the counter for an agent's
    credential, within the system's reach otherwise; and an amount the API may make a code for."""
    caller = current_caller()
    session = get_session()
    moment = now()
    try:
        phone = normalise_phone(body.phone)
        citizen = authenticate_citizen(session, phone, body.pin, moment)
    except (PhoneInvalid, WrongCredentials):
        raise Problem("citizen-pin-wrong") from None
    except Locked as locked:
        raise _too_many(locked) from None
    if caller.agent is not None:
        try:
            counter.check_identity(citizen.citizen_id_last4, body.last4 or "", body.face_matched)
        except counter.CodeRefused as refusal:
            raise refusal_problem(refusal.reason, refusal.message) from None
    elif not can_see_commune(session, caller, citizen.commune_code):
        raise Problem("place-forbidden", _("Người dân này ở ngoài địa bàn của thông tin xác thực."))
    if limits.needs_step_up(citizen, body.amount_vnd, current_app.config):
        raise Problem(
            "citizen-step-up-needed",
            _("Số tiền này cần người dân tự tạo mã trên ứng dụng (xác thực hai lớp)."),
        )
    return citizen


def _issued(shown: codes.ShownCode) -> schemas.IssuedCodeOut:
    record = shown.record
    assert record.citizen_id is not None
    return schemas.IssuedCodeOut(
        code_id=record.id,
        kind=record.kind,  # type: ignore[arg-type]
        citizen_id=record.citizen_id,
        amount_vnd=record.amount,
        expires_at=record.expires_at,
        token=shown.token,
        fallback_digits=shown.fallback_digits,
    )


def _refill_code(stored: dict[str, Any]) -> dict[str, Any]:
    """A replayed answer gets a freshly signed token while the code is open (tokens are never
    stored)."""
    session = get_session()
    record = session.get(IssuedCode, uuid.UUID(stored["code_id"]))
    if record is None or codes.effective_status(record, now()) is not CodeStatus.OPEN:
        return {**stored, "token": None, "fallback_digits": None}
    shown = codes.show_code(session, record, now())
    return {**stored, "token": shown.token, "fallback_digits": shown.fallback_digits}


def _code_problem(error: codes.CodeRefused | limits.LimitExceeded) -> Problem:
    if isinstance(error, limits.LimitExceeded):
        return Problem(
            "limit-exceeded", error.message, limit=error.kind.value, allowed_vnd=error.allowed_vnd
        )
    return Problem("code-refused", error.message, reason=error.code)


@operation(
    "POST",
    "/withdrawal-codes",
    summary="Make a withdrawal code on a citizen's behalf",
    body=schemas.CreateWithdrawalCodeRequest,
    response=schemas.IssuedCodeOut,
    status=201,
    who=Scope.CODES_CREATE.value,
    idempotent=True,
    tags=("codes",),
    secret_fields=frozenset({"token", "fallback_digits"}),
    refill=_refill_code,
)
def create_withdrawal_code(body: schemas.CreateWithdrawalCodeRequest) -> schemas.IssuedCodeOut:
    """Reserves the amount at once. Needs the citizen's phone and PIN; with an agent's
    credential, also the ID card check (``last4``, ``face_matched``)."""
    citizen = _citizen_consenting(body)
    try:
        shown = codes.create_withdrawal_code(get_session(), citizen, body.amount_vnd, now())
    except (codes.CodeRefused, limits.LimitExceeded) as error:
        raise _code_problem(error) from None
    return _issued(shown)


@operation(
    "POST",
    "/payment-codes",
    summary="Make a bill payment code on a citizen's behalf",
    body=schemas.CreatePaymentCodeRequest,
    response=schemas.IssuedCodeOut,
    status=201,
    who=Scope.CODES_CREATE.value,
    idempotent=True,
    tags=("codes",),
    secret_fields=frozenset({"token", "fallback_digits"}),
    refill=_refill_code,
)
def create_payment_code(body: schemas.CreatePaymentCodeRequest) -> schemas.IssuedCodeOut:
    """Reserves the amount for the biller. Same consent rules as withdrawal codes."""
    citizen = _citizen_consenting(body)
    try:
        shown = codes.create_payment_code(
            get_session(),
            citizen,
            biller_id=body.biller_id,
            bill_reference=body.bill_reference,
            amount=body.amount_vnd,
            now=now(),
        )
    except (codes.CodeRefused, limits.LimitExceeded) as error:
        raise _code_problem(error) from None
    return _issued(shown)


# --- Wallets ------------------------------------------------------------------------------------


def _visible_citizen(citizen_id: int) -> Citizen:
    """A citizen within the caller's reach; 404 otherwise (existence is not revealed)."""
    session = get_session()
    citizen = session.get(Citizen, citizen_id) if citizen_id <= ID_MAX else None
    if citizen is None or not can_see_commune(session, current_caller(), citizen.commune_code):
        raise Problem("not-found", _("Không tìm thấy tài khoản này."))
    return citizen


@operation(
    "GET",
    "/citizens/<int:citizen_id>/balance",
    summary="A citizen's wallet balance",
    response=schemas.BalanceOut,
    who=Scope.WALLET_READ.value,
    tags=("wallets",),
)
def wallet_balance(citizen_id: int) -> schemas.BalanceOut:
    """Posted, reserved (open codes) and available, in đồng."""
    citizen = _visible_citizen(citizen_id)
    moment = now()
    balance = ledger.balance(get_session(), citizen.wallet_account_id, now=moment)
    return schemas.BalanceOut(
        citizen_id=citizen.id,
        posted_vnd=balance.posted,
        reserved_vnd=balance.reserved,
        available_vnd=balance.available,
        as_of=moment,
    )


@operation(
    "GET",
    "/citizens/<int:citizen_id>/statement",
    summary="A citizen's wallet statement, newest first",
    query=schemas.StatementQuery,
    response=schemas.StatementOut,
    who=Scope.WALLET_READ.value,
    tags=("wallets",),
)
def wallet_statement(citizen_id: int, query: schemas.StatementQuery) -> schemas.StatementOut:
    """Keyset paging: pass ``next_before`` as ``before`` for the next (older) page."""
    citizen = _visible_citizen(citizen_id)
    page = ledger.statement(
        get_session(), citizen.wallet_account_id, before=query.before, limit=query.limit
    )
    return schemas.StatementOut(
        citizen_id=citizen.id,
        lines=[
            schemas.StatementLineOut(
                transfer_id=line.transfer_id,
                seq=line.seq,
                created_at=line.created_at,
                phase=str(line.phase),
                code=line.code,
                amount_vnd=line.amount,
                moves_posted=line.moves_posted,
                balance_after_vnd=line.balance_after,
            )
            for line in page.lines
        ],
        next_before=page.next_before,
    )


# --- Welfare and indicators ---------------------------------------------------------------------


@operation(
    "GET",
    "/welfare/cycles/<int:cycle_id>",
    summary="A welfare pay cycle: status, rows by status and the reconciliation",
    response=schemas.WelfareCycleOut,
    who=Scope.WELFARE_READ.value,
    tags=("welfare",),
)
def welfare_cycle(cycle_id: int) -> schemas.WelfareCycleOut:
    """The figures of the officials' cycle page, checked against the ledger."""
    session = get_session()
    cycle = session.get(PayCycle, cycle_id) if cycle_id <= ID_MAX else None
    programme = None if cycle is None else cycles.programme_of(session, cycle)
    if (
        cycle is None
        or programme is None
        or not can_see_commune(session, current_caller(), programme.commune_code)
    ):
        raise Problem("not-found", _("Không tìm thấy kỳ chi trả này."))
    reconciliation = cycles.reconcile(session, cycle, now())
    return schemas.WelfareCycleOut(
        cycle_id=cycle.id,
        programme_id=programme.id,
        programme_name=programme.name,
        commune_code=programme.commune_code,
        label=cycle.label,
        status=cycle.status,
        row_count=cycle.row_count,
        total_amount_vnd=cycle.total_amount,
        rows_by_status=[
            schemas.StatusCount(status=line.status.value, count=line.count, amount_vnd=line.amount)
            for line in cycles.status_summary(session, cycle)
        ],
        reconciliation=schemas.ReconciliationOut(
            ok=reconciliation.ok,
            cycle_total_vnd=reconciliation.cycle_total,
            rows_add_up=reconciliation.rows_add_up,
            checks=[
                schemas.ReconciliationCheck(
                    label=str(check.label),
                    rows_vnd=check.rows,
                    ledger_vnd=check.ledger,
                    ok=check.ok,
                )
                for check in reconciliation.checks
            ],
            fund_in_vnd=reconciliation.fund_in,
            fund_paid_out_vnd=reconciliation.fund_paid_out,
            fund_held_vnd=reconciliation.fund_held,
            fund_available_vnd=reconciliation.fund_available,
            fund_expected_vnd=reconciliation.fund_expected,
        ),
    )


@operation(
    "GET",
    "/communes/<commune_code>/indicators",
    summary="A commune's adoption indicators for a period",
    query=schemas.IndicatorsQuery,
    response=schemas.IndicatorsOut,
    who=Scope.INDICATORS_READ.value,
    tags=("indicators",),
)
def commune_indicators(commune_code: str, query: schemas.IndicatorsQuery) -> schemas.IndicatorsOut:
    """Each indicator as numerator / denominator (rate), computed from what happened."""
    session = get_session()
    commune = session.get(Commune, commune_code) if len(commune_code) <= 5 else None
    if commune is None:
        raise Problem("not-found", _("Không có xã/phường này."))
    if not can_see_commune(session, current_caller(), commune.code):
        raise Problem("place-forbidden", _("Xã/phường này ở ngoài địa bàn được xem."))
    today = local_today(now())
    try:
        period = indicators.parse_period(query.period or today.strftime("%Y-%m"), today)
    except ValueError:
        raise Problem(
            "period-invalid", _('Kỳ báo cáo như "2026-11", "2026-Q4", "2026-ytd" hoặc "2026".')
        ) from None
    figures = indicators.commune_indicators(session, commune.code, period, today)
    return schemas.IndicatorsOut(
        commune_code=commune.code,
        commune_name=commune.name,
        period=schemas.PeriodOut(
            kind=period.kind, label=period.label, start=period.start, end=period.end
        ),
        figures=[
            schemas.FigureOut(
                key=figure.key,
                numerator=figure.numerator,
                denominator=figure.denominator,
                rate=figure.rate,
                per_1000=figure.per_1000,
                interval=None if figure.interval is None else list(figure.interval),
                small_denominator=figure.small_denominator,
                missing=figure.missing,
                value=figure.value,
                note=figure.note,
            )
            for figure in figures
        ],
    )


# --- The document -------------------------------------------------------------------------------


@operation(
    "GET",
    "/openapi.json",
    summary="This API's OpenAPI 3.1 document",
    response=schemas.OpenApiDocument,
    who="public",
    tags=("meta",),
)
def openapi_document() -> schemas.OpenApiDocument:
    """Generated from the routes and models; no credential needed."""
    return schemas.OpenApiDocument(openapi.document(current_app, OPERATIONS))
