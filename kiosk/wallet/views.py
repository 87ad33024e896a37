"""The `wallet` blueprint: what a signed-in citizen sees of their money.

Pages (Vietnamese first, server-rendered, no JavaScript): the balance and main actions, the
history with its filters, a receipt per transaction, and the account QR an agent scans for a
cash-in. Each view parses its input, finds the signed-in citizen, makes one read and renders.
"""

from __future__ import annotations

import datetime as dt
import uuid

from flask import Blueprint, Response, abort, current_app, render_template, request

from kiosk.citizens.access import citizen_required, current_citizen
from kiosk.database import get_session
from kiosk.wallet.account_qr import encode_account_qr, mask_phone, render_account_qr_png
from kiosk.wallet.history import history_page, receipt
from kiosk.wallet.history_query import (
    DIRECTION_LABELS,
    PARAMETER_LABELS,
    QUERY_VALUE_LENGTH_MAX_CHARS,
    Direction,
    InvalidHistoryQuery,
    parse_history_query,
)
from kiosk.wallet.kinds import KINDS
from kiosk.wallet.summary import OutgoingLimits, kyc_description, wallet_summary

blueprint = Blueprint("wallet", __name__)


def utc_now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


@blueprint.errorhandler(InvalidHistoryQuery)
def refuse_history_query(error: InvalidHistoryQuery) -> tuple[str, int]:
    # The filter form again, as it was sent: one wrong date must not wipe the other choices.
    sent = request.args
    page = render_template(
        "wallet/invalid_query.html",
        message=error.message,
        directions=_directions(),
        kinds=KINDS,
        sent={name: sent.get(name, "")[:QUERY_VALUE_LENGTH_MAX_CHARS] for name in PARAMETER_LABELS},
    )
    return page, 400


def _directions() -> list[tuple[Direction, str]]:
    return [(direction, DIRECTION_LABELS[direction]) for direction in Direction]


@blueprint.get("/vi")
@citizen_required
def home() -> str:
    citizen = current_citizen()
    summary = wallet_summary(get_session(), citizen, now=utc_now())
    limits = OutgoingLimits.from_config(current_app.config)
    return render_template(
        "wallet/home.html",
        citizen=citizen,
        summary=summary,
        kyc_text=kyc_description(citizen.kyc_tier, limits),
    )


@blueprint.get("/vi/lich-su")
@citizen_required
def history() -> str:
    query = parse_history_query(request.args)
    citizen = current_citizen()
    found = history_page(get_session(), citizen.wallet_account_id, query, now=utc_now())
    return render_template(
        "wallet/history.html",
        query=query,
        # Not "page": base.html imports its page macros under that name.
        history_page=found,
        kinds=KINDS,
        directions=_directions(),
    )


@blueprint.get("/vi/giao-dich/<uuid:transfer_id>", endpoint="receipt")
@citizen_required
def receipt_page(transfer_id: uuid.UUID) -> str:
    citizen = current_citizen()
    entry = receipt(get_session(), citizen.wallet_account_id, transfer_id, now=utc_now())
    if entry is None:
        # 404, not 403: another wallet's transfer id must not be confirmed to exist.
        abort(404)
    return render_template("wallet/receipt.html", entry=entry, citizen=citizen)


@blueprint.get("/vi/ma-tai-khoan")
@citizen_required
def account_qr() -> str:
    citizen = current_citizen()
    return render_template(
        "wallet/account_qr.html",
        citizen=citizen,
        masked_phone=mask_phone(citizen.phone),
    )


@blueprint.get("/vi/ma-tai-khoan.png")
@citizen_required
def account_qr_png() -> Response:
    citizen = current_citizen()
    png = render_account_qr_png(encode_account_qr(citizen.id))
    return Response(png, mimetype="image/png")
