"""The `welfare` blueprint (``/quan-ly/tro-cap``): programmes and their funds, pay cycles, the
beneficiary list's upload and its problems, four-eyes approval, voucher slips, the rows'
statuses, the reconciliation and the CSV export.

Who may do what is `kiosk.community.access`: a commune's officials (and admins) change its
programmes; province officials read those of their province; a programme of a commune the
official cannot see answers 404, a change by an official who may only read answers 403.
"""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

from flask import (
    Blueprint,
    Flask,
    abort,
    current_app,
    flash,
    redirect,
    render_template,
    request,
    url_for,
)
from flask_babel import gettext as _  # type: ignore[import-untyped]
from flask_babel import lazy_gettext

from kiosk.adoption import exports
from kiosk.codes import qr
from kiosk.community.access import (
    can_edit_commune,
    can_see_commune,
    current_official,
    official_required,
    visible_communes,
)
from kiosk.community.models import Official, OfficialRole
from kiosk.database import get_session
from kiosk.formatting import local_time
from kiosk.keys import code_key_ring
from kiosk.payments.codes import CodeRefused, parse_amount
from kiosk.places.models import Commune
from kiosk.welfare import cycles, upload, vouchers
from kiosk.welfare.models import CycleStatus, PayCycle, RowStatus, WelfareProgramme

blueprint = Blueprint("welfare", __name__, url_prefix="/quan-ly/tro-cap")

STATUS_LABELS = {
    RowStatus.PENDING: lazy_gettext("Chờ duyệt"),
    RowStatus.PAID_TO_ACCOUNT: lazy_gettext("Đã chuyển vào tài khoản"),
    RowStatus.VOUCHER_ISSUED: lazy_gettext("Đã phát phiếu tiền mặt"),
    RowStatus.VOUCHER_PAID: lazy_gettext("Đã chi trả phiếu tại bưu điện"),
    RowStatus.EXPIRED: lazy_gettext("Phiếu hết hạn, tiền về quỹ"),
    RowStatus.FAILED: lazy_gettext("Không chi trả được"),
}
CYCLE_LABELS = {
    CycleStatus.DRAFT: lazy_gettext("Chưa có danh sách hợp lệ"),
    CycleStatus.VALIDATED: lazy_gettext("Danh sách hợp lệ, chưa gửi duyệt"),
    CycleStatus.AWAITING_APPROVAL: lazy_gettext("Chờ cán bộ thứ hai duyệt"),
    CycleStatus.PAID: lazy_gettext("Đã duyệt và chi trả"),
    CycleStatus.CLOSED: lazy_gettext("Đã đóng"),
}
EDITORS = (OfficialRole.COMMUNE_OFFICIAL,)
READERS = (OfficialRole.COMMUNE_OFFICIAL, OfficialRole.PROVINCE_OFFICIAL)


def init_app(app: Flask) -> None:
    from kiosk.community import add_area_link  # noqa: PLC0415

    app.register_blueprint(blueprint)
    add_area_link(app, "welfare.programmes", lazy_gettext("Chi trả trợ cấp"), *READERS)


@blueprint.app_template_global()
def welfare_row_status(status: str) -> str:
    return str(STATUS_LABELS.get(RowStatus(status), status))


@blueprint.app_template_global()
def welfare_cycle_status(status: str) -> str:
    return str(CYCLE_LABELS.get(CycleStatus(status), status))


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def _principal(official: Official) -> str:
    return f"official:{official.id}"


def _programme(programme_id: int, *, edit: bool = False) -> WelfareProgramme:
    """The programme, if the official sees its commune (else 404) and, for a change, may
    change it (else 403)."""
    official = current_official()
    programme = get_session().get(WelfareProgramme, programme_id)
    if programme is None or not can_see_commune(official, programme.commune_code):
        abort(404)
    if edit and not can_edit_commune(official, programme.commune_code):
        abort(403)
    return programme


def _cycle(cycle_id: int, *, edit: bool = False) -> tuple[PayCycle, WelfareProgramme]:
    cycle = get_session().get(PayCycle, cycle_id)
    if cycle is None:
        abort(404)
    return cycle, _programme(cycle.programme_id, edit=edit)


# --- Programmes -------------------------------------------------------------------------------


def _programmes_page(errors: dict[str, str] | None = None, status: int = 200) -> Any:
    official = current_official()
    session = get_session()
    programmes = cycles.programmes_of(session, visible_communes(official))
    now = _now()
    balances = {p.id: cycles.fund_balance(session, p, now).available for p in programmes}
    communes = cycles.commune_names(session, {p.commune_code for p in programmes})
    page = render_template(
        "welfare/programmes.html",
        programmes=programmes,
        balances=balances,
        communes=communes,
        can_create=official.role in (OfficialRole.COMMUNE_OFFICIAL, OfficialRole.ADMIN),
        is_admin=official.role == OfficialRole.ADMIN,
        errors=errors or {},
        form=request.form,
    )
    return page, status


@blueprint.get("/")
@official_required(*READERS)
def programmes() -> Any:
    return _programmes_page()


@blueprint.post("/")
@official_required(*EDITORS)
def create_programme() -> Any:
    official = current_official()
    commune_code = official.commune_code or request.form.get("ma_xa", "").strip()
    if not commune_code or get_session().get(Commune, commune_code) is None:
        return _programmes_page({"ma_xa": _("Không có xã/phường mang mã này.")}, 422)
    if not can_edit_commune(official, commune_code):
        abort(403)
    try:
        programme = cycles.create_programme(
            get_session(),
            commune_code=commune_code,
            name=request.form.get("ten", ""),
            by=_principal(official),
            now=_now(),
        )
    except cycles.WelfareRefused as refused:
        return _programmes_page({"ten": refused.message}, 422)
    return redirect(url_for("welfare.programme", programme_id=programme.id), code=303)


def _programme_page(
    programme: WelfareProgramme, errors: dict[str, str] | None = None, status: int = 200
) -> Any:
    session = get_session()
    now = _now()
    page = render_template(
        "welfare/programme.html",
        programme=programme,
        commune=session.get(Commune, programme.commune_code),
        balance=cycles.fund_balance(session, programme, now),
        fundings=cycles.fundings(session, programme),
        cycles=cycles.cycles_of(session, programme),
        can_edit=can_edit_commune(current_official(), programme.commune_code),
        errors=errors or {},
        form=request.form,
        request_id=request.form.get("ma_yeu_cau") or uuid.uuid4(),
        default_validity_days=cycles.DEFAULT_VOUCHER_VALIDITY_DAYS,
    )
    return page, status


@blueprint.get("/chuong-trinh/<int:programme_id>")
@official_required(*READERS)
def programme(programme_id: int) -> Any:
    return _programme_page(_programme(programme_id))


@blueprint.post("/chuong-trinh/<int:programme_id>/nhan-tien")
@official_required(*EDITORS)
def record_funding(programme_id: int) -> Any:
    found = _programme(programme_id, edit=True)
    try:
        amount = parse_amount(request.form.get("so_tien", ""))
        request_id = uuid.UUID(request.form.get("ma_yeu_cau", ""))
    except CodeRefused as refused:
        return _programme_page(found, {"so_tien": refused.message}, 422)
    except ValueError:
        abort(400)
    try:
        cycles.record_funding(
            get_session(),
            found,
            amount=amount,
            reference=request.form.get("chung_tu", ""),
            request_id=request_id,
            now=_now(),
        )
    except cycles.WelfareRefused as refused:
        field = "chung_tu" if refused.code == "reference_invalid" else "so_tien"
        return _programme_page(found, {field: refused.message}, 422)
    flash(_("Đã ghi nhận tiền nhận về quỹ."))
    return redirect(url_for("welfare.programme", programme_id=found.id), code=303)


@blueprint.post("/chuong-trinh/<int:programme_id>/dot")
@official_required(*EDITORS)
def create_cycle(programme_id: int) -> Any:
    found = _programme(programme_id, edit=True)
    raw_days = request.form.get("so_ngay", "").strip()
    days = int(raw_days) if raw_days.isascii() and raw_days.isdigit() else 0
    try:
        cycle = cycles.create_cycle(
            get_session(),
            found,
            label=request.form.get("ten_dot", ""),
            voucher_validity_days=days,
            by=_principal(current_official()),
            now=_now(),
        )
    except cycles.WelfareRefused as refused:
        field = "so_ngay" if refused.code == "validity_invalid" else "ten_dot"
        return _programme_page(found, {field: refused.message}, 422)
    return redirect(url_for("welfare.cycle", cycle_id=cycle.id), code=303)


# --- Cycles ----------------------------------------------------------------------------------


def _cycle_page(
    cycle: PayCycle,
    programme: WelfareProgramme,
    *,
    result: cycles.UploadResult | None = None,
    error: str | None = None,
    status: int = 200,
) -> Any:
    session = get_session()
    now = _now()
    official = current_official()
    principal = _principal(official)
    paid = cycle.status in (CycleStatus.PAID, CycleStatus.CLOSED)
    page = render_template(
        "welfare/cycle.html",
        cycle=cycle,
        programme=programme,
        rows=cycles.rows_of(session, cycle),
        vouchers=cycles.vouchers_of(session, cycle) if paid else {},
        summary=cycles.status_summary(session, cycle),
        reconciliation=cycles.reconcile(session, cycle, now) if paid else None,
        available=cycles.fund_balance(session, programme, now).available,
        result=result,
        error=error,
        can_edit=can_edit_commune(official, programme.commune_code),
        may_approve=principal not in (cycle.uploaded_by, cycle.submitted_by),
        names=cycles.official_names(
            session, {cycle.uploaded_by, cycle.submitted_by, cycle.approved_by}
        ),
        rows_max=upload.LIST_ROWS_MAX,
        size_max_kb=upload.UPLOAD_SIZE_MAX_BYTES // 1024,
        now=now,
    )
    return page, status


@blueprint.get("/dot/<int:cycle_id>")
@official_required(*READERS)
def cycle(cycle_id: int) -> Any:
    found, programme_found = _cycle(cycle_id)
    return _cycle_page(found, programme_found)


@blueprint.post("/dot/<int:cycle_id>/danh-sach")
@official_required(*EDITORS)
def upload_list(cycle_id: int) -> Any:
    found, programme_found = _cycle(cycle_id, edit=True)
    sent = request.files.get("tep")
    data = b"" if sent is None else sent.read(upload.UPLOAD_SIZE_MAX_BYTES + 1)
    session = get_session()
    try:
        rows = upload.parse_list(sent.filename or "" if sent else "", data)
        result = cycles.upload_list(
            session,
            found,
            rows,
            denomination_vnd=current_app.config["WITHDRAWAL_DENOMINATION_VND"],
            by=_principal(current_official()),
            now=_now(),
        )
    except upload.ListUnreadable as unreadable:
        return _cycle_page(found, programme_found, error=unreadable.message, status=422)
    except cycles.WelfareRefused as refused:
        return _cycle_page(found, programme_found, error=refused.message, status=409)
    if not result.accepted:
        return _cycle_page(found, programme_found, result=result, status=422)
    flash(
        _(
            "Danh sách hợp lệ: %(count)d người. Kiểm tra lại rồi gửi duyệt.",
            count=result.row_count,
        )
    )
    return redirect(url_for("welfare.cycle", cycle_id=found.id), code=303)


def _act(cycle_id: int, action: str) -> Any:
    found, programme_found = _cycle(cycle_id, edit=True)
    session = get_session()
    by = _principal(current_official())
    now = _now()
    try:
        if action == "submit":
            cycles.submit_cycle(session, found, by=by, now=now)
            flash(_("Đã gửi danh sách cho cán bộ thứ hai duyệt."))
        elif action == "return":
            cycles.return_cycle(session, found, by=by, note=request.form.get("ly_do", ""), now=now)
            flash(_("Đã trả lại danh sách cho người lập."))
        elif action == "approve":
            done = cycles.approve_cycle(
                session,
                found.id,
                by=by,
                wallet_balance_max_vnd=current_app.config["WALLET_BALANCE_MAX_VND"],
                now=now,
            )
            flash(
                _(
                    "Đã duyệt và chi trả: %(accounts)d người nhận vào tài khoản, "
                    "%(vouchers)d phiếu tiền mặt.",
                    accounts=done.paid_to_account,
                    vouchers=done.vouchers,
                )
            )
        else:
            cycles.close_cycle(session, found, now=now)
            flash(_("Đã đóng đợt chi trả."))
    except cycles.WelfareRefused as refused:
        session.rollback()
        found, programme_found = _cycle(cycle_id)
        return _cycle_page(found, programme_found, error=refused.message, status=409)
    return redirect(url_for("welfare.cycle", cycle_id=found.id), code=303)


@blueprint.post("/dot/<int:cycle_id>/gui-duyet")
@official_required(*EDITORS)
def submit(cycle_id: int) -> Any:
    return _act(cycle_id, "submit")


@blueprint.post("/dot/<int:cycle_id>/tra-lai")
@official_required(*EDITORS)
def return_list(cycle_id: int) -> Any:
    return _act(cycle_id, "return")


@blueprint.post("/dot/<int:cycle_id>/duyet")
@official_required(*EDITORS)
def approve(cycle_id: int) -> Any:
    return _act(cycle_id, "approve")


@blueprint.post("/dot/<int:cycle_id>/dong")
@official_required(*EDITORS)
def close(cycle_id: int) -> Any:
    return _act(cycle_id, "close")


@blueprint.get("/dot/<int:cycle_id>/phieu")
@official_required(*EDITORS)
def voucher_slips(cycle_id: int) -> Any:
    """Printable slips, one per outstanding voucher: QR, number, name, amount, validity."""
    found, programme_found = _cycle(cycle_id, edit=True)
    session = get_session()
    rows = {row.id: row for row in cycles.rows_of(session, found)}
    key_ring = code_key_ring()
    slips = []
    for row_id, record in sorted(cycles.vouchers_of(session, found).items()):
        row = rows[row_id]
        if row.status != RowStatus.VOUCHER_ISSUED:
            continue
        token = vouchers.sign_voucher(key_ring, record)
        slips.append(
            {
                "row": row,
                "record": record,
                "qr_svg": qr.render_svg(token, module_size_px=4),
                "number": vouchers.format_voucher_number(vouchers.voucher_number(record)),
            }
        )
    return render_template(
        "welfare/slips.html",
        cycle=found,
        programme=programme_found,
        commune=session.get(Commune, programme_found.commune_code),
        slips=slips,
    )


@blueprint.get("/dot/<int:cycle_id>/danh-sach.csv")
@official_required(*READERS)
def export_rows(cycle_id: int) -> Any:
    found, programme_found = _cycle(cycle_id)
    session = get_session()
    codes = cycles.vouchers_of(session, found)
    lines: list[list[object]] = [
        [
            _("Dòng"),
            _("Họ và tên"),
            _("CCCD (4 số cuối)"),
            _("Số tiền"),
            _("Số điện thoại"),
            _("Trạng thái"),
            _("Lý do"),
            _("Phiếu hết hạn lúc"),
        ]
    ]
    for row in cycles.rows_of(session, found):
        record = codes.get(row.id)
        lines.append(
            [
                row.row_number,
                row.full_name,
                "••••" + row.citizen_id_last4,
                row.amount,
                row.phone or "",
                welfare_row_status(row.status),
                row.reason,
                "" if record is None else local_time(record.expires_at),
            ]
        )
    return exports.csv_download(
        lines, filename=f"tro-cap-{programme_found.commune_code}-dot-{found.id}.csv"
    )
