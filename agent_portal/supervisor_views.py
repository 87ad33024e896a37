"""The `supervisor` blueprint: a supervisor's pages for their own post office.

Requests waiting for a decision (large payouts, drawer variances, float top-ups and hand-backs),
the day's alerts, the agents with their drawers, each drawer session's end-of-day statement, and
the agents' accounts. Each view loads through the supervisor's post office (another post office's
agent, drawer or request is a 404), calls one operation, and renders or redirects.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Callable

from flask import Blueprint, abort, current_app, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _  # type: ignore[import-untyped]
from sqlalchemy.orm import Session
from werkzeug.wrappers import Response as BaseResponse

from agent_portal import alerts, approvals, drawer, supervision
from agent_portal.access import current_agent, current_post_office, supervisor_required
from agent_portal.approvals import ApprovalNotFound, ApprovalRefused
from agent_portal.models import Agent, ApprovalKind
from agent_portal.staff import PASSWORD_LENGTH_MIN_CHARS, StaffRefused
from kiosk.database import get_session
from kiosk.formatting import vnd

blueprint = Blueprint("supervisor", __name__, url_prefix="/quay/kiem-soat")

Page = str | tuple[str, int]
REFUSED_STATUS = 422
NEW_AGENT_FIELDS = ("username", "full_name")


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def _home() -> BaseResponse:
    return redirect(url_for("supervisor.home"), code=303)


@blueprint.get("/")
@supervisor_required
def home() -> str:
    session = get_session()
    post_office = current_post_office()
    now = _now()
    return render_template(
        "agent/supervisor/home.html",
        pending=approvals.pending(session, post_office),
        alerts=alerts.alerts_for(session, post_office, now, current_app.config),
        agents=supervision.agents_overview(
            session, post_office, now, current_app.config["LOW_FLOAT_WARNING_VND"]
        ),
        ApprovalKind=ApprovalKind,
    )


@blueprint.post("/duyet/<uuid:approval_id>")
@supervisor_required
def decide(approval_id: uuid.UUID) -> BaseResponse:
    decision = request.form.get("decision")
    if decision not in ("approve", "reject"):
        abort(400)
    approve = decision == "approve"
    try:
        approval = approvals.decide(
            get_session(),
            approval_id,
            current_agent(),
            approve,
            _now(),
            note=request.form.get("note"),
        )
    except ApprovalNotFound:
        abort(404)
    except ApprovalRefused as refused:
        # Nothing was changed; the page says why.
        flash(refused.message)
        return _home()
    if approve:
        flash(_("Đã duyệt yêu cầu %(amount)s.", amount=vnd(approval.amount)))
    else:
        flash(_("Đã từ chối yêu cầu %(amount)s.", amount=vnd(approval.amount)))
    return _home()


# --- Agents --------------------------------------------------------------------------------------


def _agent_or_404(agent_id: int) -> Agent:
    agent = supervision.agent_of(get_session(), current_post_office(), agent_id)
    if agent is None:
        abort(404)
    return agent


@blueprint.get("/nhan-vien/<int:agent_id>")
@supervisor_required
def agent(agent_id: int) -> str:
    session = get_session()
    shown = _agent_or_404(agent_id)
    page = request.args.get("trang", "1")
    page_number = int(page) if page.isascii() and page.isdigit() else 1
    return render_template(
        "agent/supervisor/agent.html",
        agent=shown,
        cash=drawer.cash_in_drawer(session, shown, _now()),
        sessions_page=supervision.drawer_sessions(session, shown, page_number),
        is_self=shown.id == current_agent().id,
    )


@blueprint.get("/ket-tien/<int:drawer_id>/bao-cao")
@supervisor_required
def statement(drawer_id: int) -> str:
    session = get_session()
    found = supervision.drawer_of(session, current_post_office(), drawer_id)
    if found is None:
        abort(404)
    shown = drawer.statement(session, found)
    signer = None if found.signed_off_by is None else session.get(Agent, found.signed_off_by)
    return render_template(
        "agent/statement.html",
        statement=shown,
        signer=signer,
        back_url=url_for("supervisor.agent", agent_id=shown.agent.id),
    )


@blueprint.route("/nhan-vien/moi", methods=["GET", "POST"])
@supervisor_required
def new_agent() -> Page | BaseResponse:
    form = {name: request.form.get(name, "") for name in NEW_AGENT_FIELDS}
    if request.method == "GET":
        return _new_agent_page(form, {})
    try:
        created = supervision.create_counter_agent(
            get_session(),
            supervisor=current_agent(),
            post_office=current_post_office(),
            username=form["username"],
            full_name=form["full_name"],
            password=request.form.get("password", ""),
            password_again=request.form.get("password_again", ""),
            now=_now(),
        )
    except StaffRefused as refused:
        return _new_agent_page(form, {refused.field: refused.message}, REFUSED_STATUS)
    flash(
        _(
            "Đã tạo tài khoản %(username)s. Lần đăng nhập đầu tiên, %(name)s cài ứng dụng "
            "xác thực trên điện thoại của mình.",
            username=created.username,
            name=created.full_name,
        )
    )
    return redirect(url_for("supervisor.agent", agent_id=created.id), code=303)


def _new_agent_page(form: dict[str, str], errors: dict[str, str], status: int = 200) -> Page:
    page = render_template(
        "agent/supervisor/new_agent.html",
        form=form,
        errors=errors,
        password_length_min=PASSWORD_LENGTH_MIN_CHARS,
    )
    return page, status


AgentChange = Callable[[Session, Agent, Agent, dt.datetime], None]


def _change_agent(agent_id: int, change: AgentChange, done: Callable[[Agent], str]) -> BaseResponse:
    shown = _agent_or_404(agent_id)
    try:
        change(get_session(), current_agent(), shown, _now())
    except StaffRefused as refused:
        flash(refused.message)
    else:
        flash(done(shown))
    return redirect(url_for("supervisor.agent", agent_id=shown.id), code=303)


@blueprint.post("/nhan-vien/<int:agent_id>/khoa")
@supervisor_required
def deactivate(agent_id: int) -> BaseResponse:
    return _change_agent(
        agent_id,
        supervision.deactivate,
        lambda shown: _(
            "Đã khoá tài khoản của %(name)s; các phiên đăng nhập của họ đã kết thúc.",
            name=shown.full_name,
        ),
    )


@blueprint.post("/nhan-vien/<int:agent_id>/mo-khoa")
@supervisor_required
def reactivate(agent_id: int) -> BaseResponse:
    return _change_agent(
        agent_id,
        supervision.reactivate,
        lambda shown: _("Đã mở khoá tài khoản của %(name)s.", name=shown.full_name),
    )


@blueprint.post("/nhan-vien/<int:agent_id>/dat-lai-xac-thuc")
@supervisor_required
def reset_totp(agent_id: int) -> BaseResponse:
    return _change_agent(
        agent_id,
        supervision.reset_totp,
        lambda shown: _(
            "Đã đặt lại xác thực của %(name)s. Lần đăng nhập tới, họ cài lại ứng dụng xác thực "
            "trên điện thoại.",
            name=shown.full_name,
        ),
    )
