"""The `merchants` blueprint: registering a market stall, its printable VietQR, and paying it.

Paying is two steps. Step 1 finds the stall: a camera scan (merchants.js fills in the payload),
a photo of the QR, or the typed stall code; each posts to `pay`, which shows step 2. Step 2 is
the confirm form (amount and PIN) with a fresh idempotency key, posted to `confirm_payment`, which
pays once however often it is submitted and sends the citizen to the receipt.
"""

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
from werkzeug.wrappers import Response as BaseResponse

from kiosk.auth.sessions import stepped_up_within
from kiosk.citizens import limits
from kiosk.citizens.access import citizen_required, current_citizen
from kiosk.database import get_session
from kiosk.payments import merchants
from kiosk.payments.merchants import MerchantRefused, StallToPay

blueprint = Blueprint("merchants", __name__)

# How long a second factor proved on the step-up page covers a large payment.
STEP_UP_VALID_S = 5 * 60
REFUSED_STATUS = 400

Page = str | tuple[str, int]


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


# A stall owner's pages --------------------------------------------------------------------------


@blueprint.route("/cho/dang-ky", methods=["GET", "POST"])
@citizen_required
def register() -> Page | BaseResponse:
    session = get_session()
    citizen = current_citizen()
    error = None
    if request.method == "POST":
        try:
            merchant = merchants.register_stall(
                session, citizen, request.form.get("ten_quay", ""), _now()
            )
        except MerchantRefused as refusal:
            error = refusal.message
        else:
            return redirect(url_for("merchants.print_qr", stall_code=merchant.stall_code), code=303)
    page = render_template(
        "merchants/register.html",
        commune=merchants.home_commune(session, citizen),
        typed=request.form.get("ten_quay", ""),
        name_max=merchants.STALL_NAME_LENGTH_MAX_CHARS,
        error=error,
    )
    return (page, REFUSED_STATUS) if error else page


@blueprint.get("/cho")
@citizen_required
def mine() -> str:
    return render_template(
        "merchants/mine.html",
        summaries=merchants.stalls_of(get_session(), current_citizen(), _now()),
        stalls_max=merchants.STALLS_PER_CITIZEN_MAX,
    )


def _own_stall_or_404(stall_code: str) -> merchants.Stall:
    stall = merchants.owned_stall(get_session(), current_citizen(), stall_code)
    if stall is None:
        abort(404)
    return stall


@blueprint.get("/cho/<stall_code>/in")
@citizen_required
def print_qr(stall_code: str) -> str:
    return render_template("merchants/print.html", stall=_own_stall_or_404(stall_code))


@blueprint.get("/cho/<stall_code>/qr.png")
@citizen_required
def qr_png(stall_code: str) -> Response:
    stall = _own_stall_or_404(stall_code)
    response = make_response(merchants.stall_qr_png(stall))
    response.mimetype = "image/png"
    response.headers["Content-Disposition"] = (
        f'inline; filename="quay-{stall.merchant.stall_code}.png"'
    )
    return response


# Paying a stall -------------------------------------------------------------------------------


def _confirm_page(
    to_pay: StallToPay,
    *,
    payment_key: str | None = None,
    typed_amount: str = "",
    error: str | None = None,
) -> Page:
    page = render_template(
        "merchants/confirm.html",
        to_pay=to_pay,
        payment_key=payment_key or merchants.new_payment_key(),
        typed_amount=typed_amount,
        available=merchants.available_balance(get_session(), current_citizen(), _now()),
        error=error,
    )
    return (page, REFUSED_STATUS) if error else page


def _find_page(error: str | None = None) -> Page:
    page = render_template("merchants/pay.html", error=error)
    return (page, REFUSED_STATUS) if error else page


@blueprint.route("/tra-tien", methods=["GET", "POST"])
@citizen_required
def pay() -> Page:
    """Step 1: find the stall; a POST (scan, photo or typed code) shows step 2."""
    if request.method == "GET":
        return _find_page()
    upload = request.files.get("anh_qr")
    photo = None
    if upload is not None:
        # A large upload is spooled to a temporary file: read it and close that file now.
        try:
            photo = upload.read() if upload.filename else None
        finally:
            upload.close()
    try:
        to_pay = merchants.identify_stall(
            get_session(),
            current_citizen(),
            payload=request.form.get("ma_qr", ""),
            photo=photo,
            stall_code=request.form.get("ma_quay", ""),
        )
    except MerchantRefused as refusal:
        return _find_page(refusal.message)
    return _confirm_page(to_pay)


@blueprint.get("/tra-tien/quay/<stall_code>")
@citizen_required
def pay_stall(stall_code: str) -> Page:
    """Step 2 reached by a link (back from the step-up page): the typed-code path."""
    try:
        to_pay = merchants.identify_stall(
            get_session(), current_citizen(), payload="", photo=None, stall_code=stall_code
        )
    except MerchantRefused as refusal:
        return _find_page(refusal.message)
    return _confirm_page(to_pay, typed_amount=request.args.get("so_tien", ""))


def _needs_step_up(amount: int, now: dt.datetime) -> bool:
    return limits.needs_step_up(
        current_citizen(), amount, current_app.config
    ) and not stepped_up_within(g.web_session, STEP_UP_VALID_S, now)


@blueprint.post("/tra-tien/xac-nhan")
@citizen_required
def confirm_payment() -> Page | BaseResponse:
    """Step 2 submitted: pay, then show the receipt (the same one for a repeated submit)."""
    session = get_session()
    citizen = current_citizen()
    now = _now()
    try:
        to_pay = merchants.identify_stall(
            session,
            citizen,
            payload=request.form.get("ma_qr", ""),
            photo=None,
            stall_code=request.form.get("ma_quay", ""),
        )
    except MerchantRefused as refusal:
        return _find_page(refusal.message)
    typed_amount = request.form.get("so_tien", "")
    payment_key = request.form.get("khoa", "")
    try:
        amount = merchants.amount_to_pay(to_pay, typed_amount)
        if _needs_step_up(amount, now):
            target = url_for(
                "merchants.pay_stall", stall_code=to_pay.stall.merchant.stall_code, so_tien=amount
            )
            return redirect(url_for("citizens.step_up", next=target), code=303)
        payment = merchants.pay_merchant(
            session,
            citizen,
            to_pay.stall.merchant,
            amount=amount,
            pin=request.form.get("ma_pin", ""),
            idempotency_key=payment_key,
            now=now,
        )
    except MerchantRefused as refusal:
        return _confirm_page(
            to_pay,
            payment_key=merchants.key_for_retry(payment_key, refusal),
            typed_amount=typed_amount,
            error=refusal.message,
        )
    return redirect(url_for("merchants.receipt", transfer_id=payment.transfer_id), code=303)


@blueprint.get("/tra-tien/bien-lai/<uuid:transfer_id>")
@citizen_required
def receipt(transfer_id: uuid.UUID) -> str:
    payment = merchants.payment_of(get_session(), current_citizen(), transfer_id)
    if payment is None:
        abort(404)
    return render_template("merchants/receipt.html", payment=payment)
