"""The `counter` blueprint: the agent's pages at the post office counter.

Scanner workflow, keyboard only: the scan field has the focus; the scanner types the code and
Enter → the verification page, where the field for the last 4 digits of the ID card has the
focus; 4 digits and Enter → the confirmation page, whose "face matches — pay out" button has the
focus; Enter → paid, receipt. The camera, a photo and the numeric fallback code reach the same
verification page.

Between those pages the code travels as a scan ticket: the code's id, the agent and how it was
read, signed with the app's secret and valid for TICKET_MAX_AGE_S. The signed token itself is
checked once, at the scan, where its freshness matters (a screenshot is refused); everything else
is checked again from the database at each step.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Callable
from typing import Any

from flask import (
    Blueprint,
    abort,
    current_app,
    flash,
    g,
    jsonify,
    redirect,
    render_template,
    request,
    url_for,
)
from flask_babel import gettext as _  # type: ignore[import-untyped]
from itsdangerous import BadSignature, SignatureExpired, URLSafeTimedSerializer
from sqlalchemy import select

import ledger
from agent_portal import audit, counter, drawer
from agent_portal.access import agent_required, current_agent, current_post_office
from agent_portal.audit import Action
from agent_portal.fees import FeeOperation
from agent_portal.models import (
    Approval,
    ApprovalKind,
    CounterOperation,
    DrawerSession,
    OperationKind,
)
from kiosk import metrics
from kiosk.auth.sessions import stepped_up_within
from kiosk.auth.throttles import Locked
from kiosk.citizens import limits
from kiosk.citizens.models import Citizen
from kiosk.citizens.phone import PhoneInvalid, normalise_phone
from kiosk.codes import photo, tokens
from kiosk.database import get_session
from kiosk.formatting import local_time, vnd
from kiosk.payments import codes
from kiosk.payments.models import Biller, IssuedCode
from kiosk.wallet.account_qr import AccountQrError, mask_phone, parse_account_qr
from kiosk.welfare import vouchers

blueprint = Blueprint("counter", __name__, url_prefix="/quay")

TICKET_SALT = "counter-scan"
# Long enough to check a card and count notes; the code's own expiry still applies.
TICKET_MAX_AGE_S = 10 * 60
SCANNED_TEXT_MAX_CHARS = 400
STEP_UP_VALID_S = 2 * 60
RECEIPT_WIDTHS = ("58", "80", "a4")


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def _serializer() -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(current_app.config["SECRET_KEY"], salt=TICKET_SALT)


def _ticket(record: IssuedCode, via: str) -> str:
    return _serializer().dumps({"code": str(record.id), "agent": current_agent().id, "via": via})


def _code_of_ticket(ticket: str) -> IssuedCode:
    """The code a ticket names; 404 for a forged ticket or another agent's, 410 when too old."""
    record = get_session().get(IssuedCode, _code_id_of_ticket(ticket))
    if record is None:
        abort(404)
    return record


def _code_id_of_ticket(ticket: str) -> uuid.UUID:
    """The id of the code a ticket names, unread (paying locks and reads the row itself)."""
    try:
        data: Any = _serializer().loads(ticket, max_age=TICKET_MAX_AGE_S)
    except SignatureExpired:
        abort(410)
    except BadSignature:
        abort(404)
    if not isinstance(data, dict) or data.get("agent") != current_agent().id:
        abort(404)
    return uuid.UUID(str(data["code"]))


def _home_context(now: dt.datetime) -> dict[str, Any]:
    session = get_session()
    agent = current_agent()
    unclosed = drawer.unclosed_drawer(session, agent)
    cash = drawer.cash_in_drawer(session, agent, now)
    return {
        "drawer_session": unclosed,
        "cash": cash,
        "low_float": cash < current_app.config["LOW_FLOAT_WARNING_VND"],
    }


def _home(now: dt.datetime, *, error: str | None = None, status: int = 200, **extra: Any) -> Any:
    page = render_template("agent/counter/home.html", error=error, **_home_context(now), **extra)
    return page, status


def _note_refusal(
    now: dt.datetime, reason: counter.Refusal, *, action: str, record: IssuedCode | None
) -> None:
    """Count a refused code and write it to the audit log (committed whatever follows)."""
    metrics.code_refused(reason.value)
    agent = current_agent()
    audit.record_refusal(
        actor=agent.principal,
        action=action,
        now=now,
        post_office_id=agent.post_office_id,
        subject=None if record is None else f"code:{record.id}",
        detail=reason.value,
    )


def _refused(
    now: dt.datetime, refusal: counter.CodeRefused, *, action: str = Action.SCAN_REFUSED
) -> Any:
    _note_refusal(now, refusal.reason, action=action, record=refusal.record)
    return _home(now, error=refusal.message, status=422, reason=refusal.reason.value)


def _inspection(record: IssuedCode, now: dt.datetime) -> counter.Inspection:
    return counter.inspect(
        get_session(),
        record,
        agent=current_agent(),
        post_office=current_post_office(),
        fees=current_app.config["FEE_SCHEDULE"],
        approval_above_vnd=current_app.config["PAYOUT_APPROVAL_ABOVE_VND"],
        now=now,
    )


def _verify_page(
    record: IssuedCode, ticket: str, now: dt.datetime, *, status: int = 200, **extra: Any
) -> Any:
    try:
        inspection = _inspection(record, now)
    except counter.CodeRefused as refusal:
        return _refused(now, refusal)
    page = render_template(
        "agent/counter/verify.html",
        inspection=inspection,
        ticket=ticket,
        seconds_left=max(0, int((record.expires_at - now).total_seconds())),
        **extra,
    )
    return page, status


def _scanned(text: str, via: str, now: dt.datetime) -> Any:
    """Whatever was scanned: a citizen's account QR goes to cash-in, a code to verification."""
    text = text.strip("\r\n")[:SCANNED_TEXT_MAX_CHARS]
    if not text.strip():
        return _home(now, error=_("Chưa có mã nào được quét."), status=422)
    # A USB scanner types what it reads; with Caps Lock on, every letter comes out in the other
    # case. Neither a code (Base45: capitals only) nor an account QR means anything with its case
    # swapped, so a text that reads as nothing is read once more with its case swapped back.
    readings = [text] if text.swapcase() == text else [text, text.swapcase()]
    session = get_session()
    for index, reading in enumerate(readings):
        try:
            citizen_id = parse_account_qr(reading, secret_key=current_app.config["SECRET_KEY"])
        except AccountQrError:
            pass
        else:
            return redirect(url_for("counter.cash_in", nguoi_dan=citizen_id), code=303)
        try:
            record = counter.read_token(session, reading, now, max_age_s=tokens.CODE_AGE_MAX_S)
            break
        except counter.CodeRefused as refusal:
            last = index == len(readings) - 1
            if refusal.reason is not counter.Refusal.UNREADABLE or last:
                return _refused(now, refusal)
    agent = current_agent()
    audit.record(
        session,
        actor=agent.principal,
        action=Action.SCANNED,
        now=now,
        post_office_id=agent.post_office_id,
        subject=f"code:{record.id}",
        detail=via,
    )
    return _verify_page(record, _ticket(record, via), now)


@blueprint.get("/")
@agent_required
def home() -> Any:
    return _home(_now())


@blueprint.post("/quet")
@agent_required
def scan() -> Any:
    via = "camera" if request.form.get("nguon") == "camera" else "scanner"
    return _scanned(request.form.get("ma", ""), via, _now())


@blueprint.post("/anh")
@agent_required
def upload() -> Any:
    now = _now()
    upload_file = request.files.get("anh")
    text = None if upload_file is None else photo.decode_qr(upload_file.read())
    if text is None:
        return _home(
            now,
            error=_("Không đọc được mã QR trong ảnh. Chụp lại gần hơn, đủ sáng, hoặc quét mã."),
            status=422,
        )
    return _scanned(text, "photo", now)


@blueprint.post("/giai-ma-khung-hinh")
@agent_required
def decode_frame() -> Any:
    """One camera frame (JPEG) from a browser that cannot read QR codes itself: its QR text, or
    null. Reads nothing else and changes nothing."""
    return jsonify({"text": photo.decode_qr(request.get_data())})


def _typed_code_page(
    now: dt.datetime,
    find: Callable[[], IssuedCode],
    source: str,
    *,
    refusal_metric: str,
    refusal_detail: str | None,
    form_name: str,
) -> Any:
    """The verify page of the code that ``find`` looks up from the digits the agent typed
    (``source`` names the way in the audit log and the ticket), or the counter's home page with
    the refusal and the form as typed (``form_name``)."""
    agent = current_agent()
    try:
        record = find()
    except (codes.FallbackRefused, vouchers.VoucherNumberRefused) as refusal:
        metrics.code_refused(refusal_metric)
        audit.record_refusal(
            actor=agent.principal,
            action=Action.FALLBACK_REFUSED,
            now=now,
            post_office_id=agent.post_office_id,
            detail=refusal_detail,
        )
        return _home(now, error=refusal.message, status=422, **{form_name: request.form})
    audit.record(
        get_session(),
        actor=agent.principal,
        action=Action.SCANNED,
        now=now,
        post_office_id=agent.post_office_id,
        subject=f"code:{record.id}",
        detail=source,
    )
    return _verify_page(record, _ticket(record, source), now)


@blueprint.post("/ma-so")
@agent_required
def fallback() -> Any:
    now = _now()
    return _typed_code_page(
        now,
        lambda: codes.find_by_fallback(
            get_session(),
            request.form.get("so_dien_thoai", ""),
            request.form.get("ma_so", ""),
            now,
        ),
        "fallback",
        refusal_metric="fallback_refused",
        refusal_detail=None,
        form_name="fallback_form",
    )


@blueprint.post("/phieu-tro-cap")
@agent_required
def voucher_fallback() -> Any:
    """A welfare voucher whose QR cannot be read: its 10-digit number and the ID card's last 4
    digits (a voucher need not have a phone number, so the card stands in for it)."""
    now = _now()
    return _typed_code_page(
        now,
        lambda: vouchers.find_by_voucher_number(
            get_session(),
            commune_code=current_post_office().commune_code,
            last4=request.form.get("bon_so_cuoi", ""),
            digits=request.form.get("so_phieu", ""),
            throttle_key=f"voucher-number:{current_agent().principal}",
            now=now,
        ),
        "voucher_number",
        refusal_metric="voucher_number_refused",
        refusal_detail="welfare_voucher",
        form_name="voucher_form",
    )


@blueprint.get("/ma/<ticket>")
@agent_required
def verify(ticket: str) -> Any:
    now = _now()
    return _verify_page(_code_of_ticket(ticket), ticket, now)


@blueprint.post("/ma/<ticket>/doi-chieu")
@agent_required
def check_identity(ticket: str) -> Any:
    now = _now()
    record = _code_of_ticket(ticket)
    last4 = request.form.get("bon_so_cuoi", "")
    try:
        inspection = _inspection(record, now)
    except counter.CodeRefused as refusal:
        return _refused(now, refusal)
    if not counter.last4_digits_match(inspection.holder_last4, last4):
        _note_refusal(
            now, counter.Refusal.IDENTITY_MISMATCH, action=Action.IDENTITY_REFUSED, record=record
        )
        return _verify_page(
            _code_of_ticket(ticket),
            ticket,
            now,
            status=422,
            error=_(
                "4 số cuối căn cước không khớp với tài khoản. Xem lại thẻ; nếu vẫn sai, "
                "KHÔNG chi trả: người cầm thẻ không phải chủ tài khoản."
            ),
        )
    return _confirm_page(inspection, ticket, last4, now)


def _confirm_page(
    inspection: counter.Inspection,
    ticket: str,
    last4: str,
    now: dt.datetime,
    *,
    step_up_error: str | None = None,
) -> Any:
    """The last step: the ID digits matched; the face and, for a large payout, a fresh TOTP."""
    page = render_template(
        "agent/counter/confirm.html",
        inspection=inspection,
        identity_checked=True,
        ticket=ticket,
        last4=last4.strip(),
        needs_step_up=inspection.needs_approval,
        errors={} if step_up_error is None else {"ma_xac_thuc": step_up_error},
        seconds_left=max(0, int((inspection.record.expires_at - now).total_seconds())),
    )
    return (page, 422) if step_up_error else page


def _stepped_up(now: dt.datetime) -> bool:
    """A fresh TOTP code typed with a large payout (or one typed in the last two minutes)."""
    if stepped_up_within(g.web_session, STEP_UP_VALID_S, now):
        return True
    raw = request.form.get("ma_xac_thuc", "")
    if not raw:
        return False
    from agent_portal.auth_views import step_up  # noqa: PLC0415 - views import views

    return step_up(current_agent(), g.web_session, raw, now)


@blueprint.post("/ma/<ticket>/chi-tra")
@agent_required
def pay(ticket: str) -> Any:
    now = _now()
    code_id = _code_id_of_ticket(ticket)
    session = get_session()
    agent = current_agent()
    step_up_error = None
    try:
        stepped_up = _stepped_up(now)
    except Locked as locked:
        stepped_up = False
        step_up_error = _(
            "Nhập sai mã xác thực nhiều lần. Thử lại sau %(time)s.",
            time=local_time(locked.until, "%H:%M"),
        )
    else:
        if not stepped_up and request.form.get("ma_xac_thuc"):
            step_up_error = _("Mã xác thực không đúng hoặc đã dùng. Chờ mã mới rồi nhập lại.")
    try:
        paid = counter.redeem(
            session,
            code_id,
            agent=agent,
            post_office=current_post_office(),
            drawer=drawer.open_drawer(session, agent),
            last4=request.form.get("bon_so_cuoi", ""),
            face_matched=request.form.get("khop_khuon_mat") == "co",
            stepped_up=stepped_up,
            fees=current_app.config["FEE_SCHEDULE"],
            approval_above_vnd=current_app.config["PAYOUT_APPROVAL_ABOVE_VND"],
            now=now,
        )
    except counter.CodeRefused as refusal:
        if refusal.reason is counter.Refusal.STEP_UP_NEEDED and refusal.record is not None:
            # The code is fine and the card matched: ask again for the agent's code, here.
            record = refusal.record
            _note_refusal(now, refusal.reason, action=Action.PAYOUT_REFUSED, record=record)
            return _confirm_page(
                _inspection(record, now),
                ticket,
                request.form.get("bon_so_cuoi", ""),
                now,
                step_up_error=step_up_error
                or _("Khoản chi lớn: nhập mã xác thực (TOTP) mới của bạn để chi trả."),
            )
        action = (
            Action.IDENTITY_REFUSED
            if refusal.reason is counter.Refusal.IDENTITY_MISMATCH
            else Action.PAYOUT_REFUSED
        )
        return _refused(now, refusal, action=action)
    return redirect(url_for("counter.receipt", operation_id=paid.operation.id), code=303)


@blueprint.post("/ma/<ticket>/xin-duyet")
@agent_required
def request_approval(ticket: str) -> Any:
    now = _now()
    record = _code_of_ticket(ticket)
    try:
        inspection = _inspection(record, now)
    except counter.CodeRefused as refusal:
        return _refused(now, refusal)
    if inspection.needs_approval:
        counter.request_payout_approval(get_session(), record, current_agent(), now)
    return redirect(url_for("counter.verify", ticket=ticket), code=303)


def _own_operation(operation_id: uuid.UUID) -> CounterOperation:
    operation = get_session().get(CounterOperation, operation_id)
    if operation is None or operation.post_office_id != current_post_office().id:
        abort(404)
    agent = current_agent()
    if operation.agent_id != agent.id and not agent.is_supervisor:
        abort(404)
    return operation


@blueprint.get("/bien-nhan/<uuid:operation_id>")
@agent_required
def receipt(operation_id: uuid.UUID) -> str:
    session = get_session()
    operation = _own_operation(operation_id)
    width = request.args.get("kho", "80")
    if width not in RECEIPT_WIDTHS:
        width = "80"
    citizen = None if operation.citizen_id is None else session.get(Citizen, operation.citizen_id)
    record = None if operation.code_id is None else session.get(IssuedCode, operation.code_id)
    biller = (
        None
        if record is None or record.biller_id is None
        else session.get(Biller, record.biller_id)
    )
    voucher = None if record is None else vouchers.voucher_of(session, record)
    return render_template(
        "agent/counter/receipt.html",
        operation=operation,
        kind=OperationKind(operation.kind),
        citizen=citizen,
        record=record,
        biller=biller,
        voucher=voucher,
        width=width,
        widths=RECEIPT_WIDTHS,
        cash=drawer.cash_in_drawer(session, current_agent()),
        low_float_vnd=current_app.config["LOW_FLOAT_WARNING_VND"],
    )


# --- Cash-in and in-person verification ----------------------------------------------------


def _citizen_from_request(session: Any) -> tuple[Citizen | None, str | None]:
    """The citizen named by ?nguoi_dan=<id> (from a scanned account QR) or ?so_dien_thoai=."""
    raw_id = request.values.get("nguoi_dan", "")
    raw_phone = request.values.get("so_dien_thoai", "").strip()
    raw_qr = request.values.get("ma_tai_khoan", "").strip()
    if raw_qr:
        try:
            raw_id = str(parse_account_qr(raw_qr, secret_key=current_app.config["SECRET_KEY"]))
        except AccountQrError:
            return None, _("Đây không phải mã QR tài khoản ATM mềm. Hãy quét lại.")
    if raw_id:
        citizen = session.get(Citizen, int(raw_id)) if raw_id.isdigit() else None
        if citizen is None:
            return None, _("Không tìm thấy tài khoản này.")
        return citizen, None
    if raw_phone:
        try:
            phone = normalise_phone(raw_phone)
        except PhoneInvalid:
            return None, _("Số điện thoại không đúng. Ví dụ: 0912 345 678.")
        citizen = session.scalar(select(Citizen).where(Citizen.phone == phone))
        if citizen is None:
            return None, _(
                "Chưa có tài khoản ATM mềm nào với số điện thoại này. Kiểm tra lại số, hoặc "
                "giúp người dân mở tài khoản trước."
            )
        return citizen, None
    # A search sent empty gets an answer, not the same blank page again.
    if "so_dien_thoai" in request.values:
        return None, _("Hãy nhập số điện thoại của người dân.")
    if "ma_tai_khoan" in request.values:
        return None, _("Hãy quét mã QR tài khoản trên điện thoại người dân.")
    return None, None


@blueprint.route("/nap-tien", methods=["GET", "POST"])
@agent_required
def cash_in() -> Any:
    now = _now()
    session = get_session()
    citizen, error = _citizen_from_request(session)
    errors: dict[str, str] = {}
    if error:
        errors["form"] = error
    if request.method == "POST" and citizen is not None:
        agent = current_agent()
        try:
            amount = codes.parse_amount(request.form.get("so_tien", ""))
            request_id = uuid.UUID(request.form.get("ma_yeu_cau", ""))
        except codes.CodeRefused as refusal:
            errors["so_tien"] = refusal.message
        except ValueError:
            abort(400)
        else:
            limits = {
                "transaction_max_vnd": current_app.config["TRANSACTION_MAX_VND"],
                "wallet_balance_max_vnd": current_app.config["WALLET_BALANCE_MAX_VND"],
            }
            try:
                if request.form.get("xac_nhan") != "co":
                    # What would refuse it anyway is said before the amount is read out (once
                    # confirmed, counter.cash_in checks it again, under its own lock).
                    counter.check_cash_in(
                        session, citizen=citizen, amount=amount, now=now, **limits
                    )
                    # Read the amount back before anything is posted: 3.000.000 typed for
                    # 300.000 is caught here, with the citizen watching.
                    return render_template(
                        "agent/counter/cash_in_confirm.html",
                        citizen=citizen,
                        amount=amount,
                        request_id=request_id,
                        charge=current_app.config["FEE_SCHEDULE"].charge(
                            FeeOperation.CASH_IN, amount
                        ),
                    )
                paid = counter.cash_in(
                    session,
                    agent=agent,
                    post_office=current_post_office(),
                    drawer=drawer.open_drawer(session, agent),
                    citizen=citizen,
                    amount=amount,
                    request_id=request_id,
                    fees=current_app.config["FEE_SCHEDULE"],
                    now=now,
                    **limits,
                )
            except counter.CashInRefused as refusal:
                errors["so_tien" if refusal.field == "amount" else "form"] = refusal.message
            except ledger.InsufficientFunds:
                errors["form"] = _("Không nạp được: phí dịch vụ lớn hơn số dư của ví.")
            else:
                return redirect(url_for("counter.receipt", operation_id=paid.operation.id), 303)
    page = render_template(
        "agent/counter/cash_in.html",
        citizen=citizen,
        masked_phone=None if citizen is None else mask_phone(citizen.phone),
        errors=errors,
        form=request.form,
        request_id=request.form.get("ma_yeu_cau") or uuid.uuid4(),
        verified=citizen is not None and citizen.kyc_tier > 0,
    )
    return (page, 422) if errors else page


@blueprint.post("/nguoi-dan/<int:citizen_id>/xac-minh")
@agent_required
def verify_citizen(citizen_id: int) -> Any:
    """In-person identity check: the card seen, its last 4 digits typed, the face matched."""
    now = _now()
    session = get_session()
    citizen = session.get(Citizen, citizen_id)
    if citizen is None:
        abort(404)
    agent = current_agent()
    if not counter.last4_matches(citizen, request.form.get("bon_so_cuoi", "")) or (
        request.form.get("khop_khuon_mat") != "co"
    ):
        audit.record_refusal(
            actor=agent.principal,
            action=Action.IDENTITY_REFUSED,
            now=now,
            post_office_id=agent.post_office_id,
            subject=f"citizen:{citizen_id}",
            detail="verify_in_person",
        )
        citizen = session.get(Citizen, citizen_id)
        assert citizen is not None
        page = render_template(
            "agent/counter/cash_in.html",
            citizen=citizen,
            masked_phone=mask_phone(citizen.phone),
            errors={
                "bon_so_cuoi": _(
                    "4 số cuối căn cước không khớp, hoặc chưa xác nhận khuôn mặt. "
                    "Chưa xác minh được."
                )
            },
            form={},
            request_id=uuid.uuid4(),
            verified=False,
        )
        return page, 422
    try:
        limits.verify_in_person(session, citizen, agent.principal, now)
    except limits.AlreadyVerified:
        pass
    else:
        audit.record(
            session,
            actor=agent.principal,
            action=Action.CITIZEN_VERIFIED,
            now=now,
            post_office_id=agent.post_office_id,
            subject=f"citizen:{citizen.id}",
        )
    return redirect(url_for("counter.cash_in", nguoi_dan=citizen.id), code=303)


# --- The drawer ------------------------------------------------------------------------------


@blueprint.get("/ket-tien")
@agent_required
def drawer_page() -> Any:
    return _drawer_page(_now())


def _drawer_page(
    now: dt.datetime, *, errors: dict[str, str] | None = None, status: int = 200
) -> Any:
    session = get_session()
    agent = current_agent()
    unclosed = drawer.unclosed_drawer(session, agent)
    recent = list(
        session.scalars(
            select(DrawerSession)
            .where(DrawerSession.agent_id == agent.id)
            .order_by(DrawerSession.opened_at.desc())
            .limit(10)
        )
    )
    requests = list(
        session.scalars(
            select(Approval)
            .where(
                Approval.requested_by == agent.id,
                Approval.kind.in_([ApprovalKind.TOP_UP, ApprovalKind.HAND_BACK]),
            )
            .order_by(Approval.created_at.desc())
            .limit(5)
        )
    )
    page = render_template(
        "agent/counter/drawer.html",
        float_requests=requests,
        drawer_session=unclosed,
        statement=None if unclosed is None else drawer.statement(session, unclosed),
        recent=recent,
        cash=drawer.cash_in_drawer(session, agent, now),
        notes=drawer.BANKNOTES_VND,
        errors=errors or {},
        form=request.form,
        low_float_vnd=current_app.config["LOW_FLOAT_WARNING_VND"],
    )
    return page, status


@blueprint.post("/ket-tien/mo")
@agent_required
def open_drawer() -> Any:
    now = _now()
    try:
        count = drawer.parse_count(request.form)
        opened = drawer.start_drawer(get_session(), current_agent(), count, now)
    except drawer.DrawerRefused as refusal:
        return _drawer_page(now, errors={"form": refusal.message}, status=422)
    if opened.opening_counted != opened.opening_expected:
        flash(
            _(
                "Đã mở ca. Tiền đếm được %(counted)s, theo sổ %(expected)s: chênh lệch "
                "%(variance)s đã được ghi sổ và báo cho kiểm soát viên.",
                counted=vnd(opened.opening_counted),
                expected=vnd(opened.opening_expected),
                variance=vnd(opened.opening_counted - opened.opening_expected),
            )
        )
    return redirect(url_for("counter.home"), code=303)


@blueprint.post("/ket-tien/dong")
@agent_required
def close_drawer() -> Any:
    now = _now()
    try:
        count = drawer.parse_count(request.form)
        closed = drawer.count_closing(
            get_session(),
            current_agent(),
            count,
            sign_off_above_vnd=current_app.config["DRAWER_VARIANCE_SIGN_OFF_ABOVE_VND"],
            now=now,
        )
    except drawer.DrawerRefused as refusal:
        return _drawer_page(now, errors={"form": refusal.message}, status=422)
    return redirect(url_for("counter.statement", drawer_id=closed.id), code=303)


@blueprint.post("/ket-tien/tien-quy")
@agent_required
def request_float() -> Any:
    """Ask for a float top-up or a hand-back to the district office (a supervisor approves)."""
    now = _now()
    kind = ApprovalKind.HAND_BACK if request.form.get("loai") == "nop-ve" else ApprovalKind.TOP_UP
    try:
        amount = codes.parse_amount(request.form.get("so_tien", ""))
        drawer.request_float_move(get_session(), current_agent(), kind, amount, now)
    except (codes.CodeRefused, drawer.DrawerRefused) as refusal:
        return _drawer_page(now, errors={"so_tien": refusal.message}, status=422)
    flash(
        _("Đã gửi yêu cầu bổ sung %(amount)s. Chờ kiểm soát viên phê duyệt.", amount=vnd(amount))
        if kind is ApprovalKind.TOP_UP
        else _(
            "Đã gửi yêu cầu nộp về %(amount)s. Chờ kiểm soát viên phê duyệt.", amount=vnd(amount)
        )
    )
    return redirect(url_for("counter.drawer_page"), code=303)


@blueprint.get("/ket-tien/<int:drawer_id>/bao-cao")
@agent_required
def statement(drawer_id: int) -> str:
    session = get_session()
    found = session.get(DrawerSession, drawer_id)
    agent = current_agent()
    if (
        found is None
        or found.post_office_id != agent.post_office_id
        or (found.agent_id != agent.id and not agent.is_supervisor)
    ):
        abort(404)
    return render_template("agent/statement.html", statement=drawer.statement(session, found))
