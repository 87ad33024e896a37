"""The `codes` blueprint: making, showing and cancelling withdrawal and payment codes."""

from __future__ import annotations

import datetime as dt
import uuid

from flask import (
    Blueprint,
    Response,
    abort,
    current_app,
    g,
    make_response,
    redirect,
    render_template,
    request,
    url_for,
)
from flask_babel import gettext as _  # type: ignore[import-untyped]
from werkzeug.wrappers import Response as BaseResponse

import ledger
from kiosk.auth.sessions import stepped_up_within
from kiosk.citizens import limits
from kiosk.citizens.access import citizen_required, current_citizen
from kiosk.codes import qr
from kiosk.database import get_session
from kiosk.payments import codes
from kiosk.payments.models import Biller, CodeKind, CodeStatus, IssuedCode

blueprint = Blueprint("codes", __name__)

# Quick choices on the withdrawal page: the amounts villagers withdraw most.
QUICK_AMOUNTS_VND = (200_000, 500_000, 1_000_000, 2_000_000)
STEP_UP_VALID_S = 5 * 60


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def _available(now: dt.datetime) -> int:
    return ledger.balance(get_session(), current_citizen().wallet_account_id, now=now).available


def _needs_step_up(amount: int, now: dt.datetime) -> bool:
    return limits.needs_step_up(
        current_citizen(), amount, current_app.config
    ) and not stepped_up_within(g.web_session, STEP_UP_VALID_S, now)


def _step_up_redirect(endpoint: str, amount: int) -> BaseResponse:
    return redirect(url_for("citizens.step_up", next=url_for(endpoint, so_tien=amount)), code=303)


@blueprint.route("/rut-tien", methods=["GET", "POST"])
@citizen_required
def new_withdrawal() -> str | BaseResponse | tuple[str, int]:
    now = _now()
    error = None
    typed = request.values.get("so_tien", "")
    if request.method == "POST":
        try:
            amount = codes.parse_amount(request.form.get("so_tien", ""))
            if _needs_step_up(amount, now):
                codes.check_before_step_up(
                    get_session(), current_citizen(), CodeKind.WITHDRAWAL, amount, now
                )
                return _step_up_redirect("codes.new_withdrawal", amount)
            shown = codes.create_withdrawal_code(get_session(), current_citizen(), amount, now)
        except (codes.CodeRefused, limits.LimitExceeded) as refusal:
            error = refusal.message
        else:
            return redirect(url_for("codes.show", code_id=shown.record.id), code=303)
    page = render_template(
        "codes/new_withdrawal.html",
        available=_available(now),
        quick_amounts=QUICK_AMOUNTS_VND,
        denomination=current_app.config["WITHDRAWAL_DENOMINATION_VND"],
        typed=typed,
        error=error,
    )
    return (page, 400) if error else page


@blueprint.route("/thanh-toan-hoa-don", methods=["GET", "POST"])
@citizen_required
def new_payment() -> str | BaseResponse | tuple[str, int]:
    now = _now()
    session = get_session()
    citizen = current_citizen()
    error = None
    if request.method == "POST":
        try:
            biller_text = request.form.get("don_vi", "")
            if not biller_text.isdigit():
                raise codes.CodeRefused(
                    "biller_unknown", _("Hãy chọn một đơn vị thu có trong danh sách.")
                )
            amount = codes.parse_amount(request.form.get("so_tien", ""))
            if _needs_step_up(amount, now):
                codes.check_before_step_up(session, citizen, CodeKind.PAYMENT, amount, now)
                return _step_up_redirect("codes.new_payment", amount)
            shown = codes.create_payment_code(
                session,
                citizen,
                biller_id=int(biller_text),
                bill_reference=request.form.get("ma_hoa_don", ""),
                amount=amount,
                now=now,
            )
        except (codes.CodeRefused, limits.LimitExceeded) as refusal:
            error = refusal.message
        else:
            return redirect(url_for("codes.show", code_id=shown.record.id), code=303)
    page = render_template(
        "codes/new_payment.html",
        billers=codes.billers_for(session, citizen),
        available=_available(now),
        form=request.form,
        typed=request.values.get("so_tien", ""),
        error=error,
    )
    return (page, 400) if error else page


def _own_code_or_404(code_id: uuid.UUID) -> IssuedCode:
    record = codes.own_code(get_session(), current_citizen(), code_id)
    if record is None:
        abort(404)
    return record


@blueprint.get("/ma/<uuid:code_id>")
@citizen_required
def show(code_id: uuid.UUID) -> str:
    now = _now()
    record = _own_code_or_404(code_id)
    status = codes.effective_status(record, now)
    fallback = codes.fallback_digits(record, now) if status is CodeStatus.OPEN else None
    biller = None if record.biller_id is None else get_session().get(Biller, record.biller_id)
    return render_template(
        "codes/show.html",
        record=record,
        biller=biller,
        kind=CodeKind(record.kind),
        status=status,
        fallback=fallback,
        seconds_left=max(0, int((record.expires_at - now).total_seconds())),
        refresh_s=current_app.config["CODE_REFRESH_S"],
        # Changes the image URL on every refresh so no cache shows an old signature.
        stamp=int(now.timestamp()),
    )


@blueprint.get("/ma/<uuid:code_id>/qr.png")
@citizen_required
def qr_png(code_id: uuid.UUID) -> Response:
    now = _now()
    record = _own_code_or_404(code_id)
    try:
        shown = codes.show_code(get_session(), record, now)
    except codes.CodeRefused:
        abort(410)
    response = make_response(qr.render_png(shown.token))
    response.headers["Content-Type"] = "image/png"
    return response


@blueprint.post("/ma/<uuid:code_id>/huy")
@citizen_required
def cancel(code_id: uuid.UUID) -> BaseResponse | tuple[str, int]:
    _own_code_or_404(code_id)
    try:
        codes.cancel_code(get_session(), current_citizen(), code_id, _now())
    except codes.CodeRefused as refusal:
        return render_template("codes/refused.html", message=refusal.message), 409
    return redirect(url_for("codes.show", code_id=code_id), code=303)
