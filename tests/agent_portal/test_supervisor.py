"""The supervisor's side of the counter: deciding requests (four eyes, once, only at their own
post office), drawer variances signed off into the ledger or sent back for a recount, float
top-ups, the day's alerts, agents' statements and accounts.

Money moves through the real operations (drawer sessions, withdrawal codes paid out at the
counter, cash-in), at moments the tests choose on the post office's local day.
"""

from __future__ import annotations

import datetime as dt
import threading
import time
import uuid
from collections.abc import Iterator

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select
from sqlalchemy.orm import Session
from werkzeug.test import TestResponse

import ledger
from agent_portal import alerts, approvals, audit, counter, drawer
from agent_portal.alerts import AlertKind
from agent_portal.approvals import ApprovalNotFound, ApprovalRefused
from agent_portal.audit import Action
from agent_portal.drawer import Count
from agent_portal.models import (
    Agent,
    Approval,
    ApprovalKind,
    ApprovalStatus,
    AuditEvent,
    CounterOperation,
    DrawerSession,
    DrawerStatus,
    OperationKind,
    PostOffice,
    Role,
)
from kiosk import database
from kiosk.citizens.models import Citizen
from kiosk.formatting import LOCAL_ZONE, vnd
from kiosk.payments import codes
from tests.agent_portal.conftest import (
    PASSWORD,
    SignIn,
    app_session,
    csrf_token,
    make_agent,
    make_post_office,
    sign_in_directly,
    stored_row,
)
from tests.kiosk import citizen_support
from tests.kiosk.conftest import AppFactory

HOME = "/quay/kiem-soat/"
TOP_UP_VND = 20_000_000


# --- Time and money, through the real operations ------------------------------------------------


def local_moment(hour: int, minute: int = 0, second: int = 0) -> dt.datetime:
    """Today (in Vietnam) at this local time, in UTC."""
    today = dt.datetime.now(LOCAL_ZONE).date()
    local = dt.datetime.combine(today, dt.time(hour, minute, second), tzinfo=LOCAL_ZONE)
    return local.astimezone(dt.UTC)


def post_office_of(session: Session, agent: Agent) -> PostOffice:
    found = session.get(PostOffice, agent.post_office_id)
    assert found is not None
    return found


def open_drawer(app: Flask, agent: Agent, now: dt.datetime, counted: int | None = None) -> int:
    """Open the agent's drawer; counted defaults to what the ledger says it holds."""
    with app.test_request_context(), app_session(app) as session:
        row = session.get(Agent, agent.id)
        assert row is not None
        total = drawer.cash_in_drawer(session, row, now) if counted is None else counted
        opened = drawer.start_drawer(session, row, Count(total, None), now)
        session.commit()
        return opened.id


def request_float(
    app: Flask, agent: Agent, kind: ApprovalKind, amount: int, now: dt.datetime
) -> uuid.UUID:
    with app.test_request_context(), app_session(app) as session:
        row = session.get(Agent, agent.id)
        assert row is not None
        approval = drawer.request_float_move(session, row, kind, amount, now)
        session.commit()
        return approval.id


def decide(
    app: Flask, approval_id: uuid.UUID, supervisor: Agent, approve: bool, now: dt.datetime
) -> None:
    with app.test_request_context(), app_session(app) as session:
        row = session.get(Agent, supervisor.id)
        assert row is not None
        approvals.decide(session, approval_id, row, approve, now)
        session.commit()


def stocked_drawer(app: Flask, agent: Agent, supervisor: Agent, now: dt.datetime) -> int:
    """An open drawer holding `TOP_UP_VND`, topped up with the supervisor's approval."""
    drawer_id = open_drawer(app, agent, now, counted=0)
    approval_id = request_float(app, agent, ApprovalKind.TOP_UP, TOP_UP_VND, now)
    decide(app, approval_id, supervisor, True, now)
    return drawer_id


def close_drawer(app: Flask, agent: Agent, counted: int, now: dt.datetime) -> None:
    with app.test_request_context(), app_session(app) as session:
        row = session.get(Agent, agent.id)
        assert row is not None
        drawer.count_closing(
            session,
            row,
            Count(counted, None),
            sign_off_above_vnd=app.config["DRAWER_VARIANCE_SIGN_OFF_ABOVE_VND"],
            now=now,
        )
        session.commit()


def pay_out(app: Flask, agent: Agent, citizen: Citizen, amount: int, now: dt.datetime) -> None:
    """The citizen makes a withdrawal code and the agent pays it out, both at ``now``."""
    with app.test_request_context(), app_session(app) as session:
        row = session.get(Agent, agent.id)
        holder = session.get(Citizen, citizen.id)
        assert row is not None and holder is not None
        shown = codes.create_withdrawal_code(session, holder, amount, now)
        counter.redeem(
            session,
            shown.record.id,
            agent=row,
            post_office=post_office_of(session, row),
            drawer=drawer.open_drawer(session, row),
            last4=holder.citizen_id_last4,
            face_matched=True,
            stepped_up=True,
            fees=app.config["FEE_SCHEDULE"],
            approval_above_vnd=app.config["PAYOUT_APPROVAL_ABOVE_VND"],
            now=now,
        )
        session.commit()


def cash_in(app: Flask, agent: Agent, citizen: Citizen, amount: int, now: dt.datetime) -> None:
    with app.test_request_context(), app_session(app) as session:
        row = session.get(Agent, agent.id)
        holder = session.get(Citizen, citizen.id)
        assert row is not None and holder is not None
        counter.cash_in(
            session,
            agent=row,
            post_office=post_office_of(session, row),
            drawer=drawer.open_drawer(session, row),
            citizen=holder,
            amount=amount,
            request_id=uuid.uuid4(),
            fees=app.config["FEE_SCHEDULE"],
            transaction_max_vnd=app.config["TRANSACTION_MAX_VND"],
            wallet_balance_max_vnd=app.config["WALLET_BALANCE_MAX_VND"],
            now=now,
        )
        session.commit()


def refused_attempts(
    app: Flask,
    agent: Agent,
    times: int,
    now: dt.datetime,
    spacing: dt.timedelta = dt.timedelta(minutes=1),
) -> None:
    actions = [Action.SCAN_REFUSED, Action.FALLBACK_REFUSED, Action.IDENTITY_REFUSED]
    with app_session(app) as session:
        for attempt in range(times):
            audit.record(
                session,
                actor=agent.principal,
                action=actions[attempt % len(actions)],
                now=now + spacing * attempt,
                post_office_id=agent.post_office_id,
                detail="test",
            )
        session.commit()


def alerts_of(app: Flask, post_office: PostOffice, now: dt.datetime) -> list[alerts.Alert]:
    with app.test_request_context(), app_session(app) as session:
        row = session.get(PostOffice, post_office.id)
        assert row is not None
        return alerts.alerts_for(session, row, now, app.config)


def kinds_of(found: list[alerts.Alert]) -> list[AlertKind]:
    return [alert.kind for alert in found]


def approval_row(app: Flask, approval_id: uuid.UUID) -> Approval:
    return stored_row(app, Approval, approval_id)


def drawer_row(app: Flask, drawer_id: int) -> DrawerSession:
    return stored_row(app, DrawerSession, drawer_id)


def agent_row(app: Flask, agent_id: int) -> Agent:
    return stored_row(app, Agent, agent_id)


def cash_of(app: Flask, agent: Agent) -> int:
    with app_session(app) as session:
        return ledger.balance(session, agent.drawer_account_id).posted


def audited(app: Flask, post_office: PostOffice, action: str) -> list[AuditEvent]:
    with app_session(app) as session:
        return list(
            session.scalars(
                select(AuditEvent)
                .where(AuditEvent.post_office_id == post_office.id, AuditEvent.action == action)
                .order_by(AuditEvent.id)
            )
        )


def post(client: FlaskClient, path: str, data: dict[str, str] | None = None) -> TestResponse:
    token = csrf_token(client, HOME)
    return client.post(path, data={"csrf_token": token, **(data or {})})


@pytest.fixture
def supervisor_client(
    web_app: Flask, supervisor: Agent, sign_in_agent: SignIn
) -> Iterator[FlaskClient]:
    client = web_app.test_client()
    sign_in_agent(client, supervisor)
    yield client


# --- Access ---------------------------------------------------------------------------------------


def test_supervisor_signed_in_through_the_pages_sees_the_home(
    web_app: Flask, supervisor: Agent, sign_in_agent: SignIn
) -> None:
    client = web_app.test_client()
    assert client.get(HOME).status_code == 302
    sign_in_agent(client, supervisor)
    page = client.get(HOME)
    assert page.status_code == 200
    text = page.get_data(as_text=True)
    assert "Không có yêu cầu nào chờ duyệt." in text
    assert supervisor.full_name in text


def test_an_agent_may_not_see_the_supervisors_pages(
    web_app: Flask, agent: Agent, sign_in_agent: SignIn
) -> None:
    client = web_app.test_client()
    sign_in_agent(client, agent)
    assert client.get(HOME).status_code == 403
    refused = client.get(f"/quay/kiem-soat/nhan-vien/{agent.id}")
    assert refused.status_code == 403
    # Said as the counter's staff would put it: whom to ask, not "ask the post office staff".
    text = refused.get_data(as_text=True)
    assert "dành cho kiểm soát viên" in text and "nhân viên bưu điện" not in text
    with client.session_transaction() as cookie_session:
        cookie_session["lang"] = "en"
    assert "for the post office's supervisors" in client.get(HOME).get_data(as_text=True)


def test_an_error_at_the_counter_keeps_the_counters_header(
    web_app: Flask, agent: Agent, sign_in_agent: SignIn
) -> None:
    """A refused or missing page under /quay wears the counter's layout, not the citizens'."""
    client = web_app.test_client()
    sign_in_agent(client, agent)
    for path, status in ((HOME, 403), ("/quay/khong-co-trang-nay", 404)):
        response = client.get(path)
        assert response.status_code == status
        text = response.get_data(as_text=True)
        assert "Quầy ATM mềm" in text
        assert agent.full_name in text
        assert "Đăng xuất" in text
        assert 'href="/quay/"' in text
        assert "Mở tài khoản" not in text


def test_another_post_offices_requests_agents_and_drawers_are_not_found(
    web_app: Flask, supervisor_client: FlaskClient
) -> None:
    now = local_moment(10)
    elsewhere = make_post_office(web_app, name="Điểm BĐVHX khác")
    their_agent = make_agent(web_app, elsewhere)
    their_supervisor = make_agent(web_app, elsewhere, role=Role.SUPERVISOR)
    drawer_id = open_drawer(web_app, their_agent, now, counted=0)
    approval_id = request_float(web_app, their_agent, ApprovalKind.TOP_UP, 1_000_000, now)

    response = post(
        supervisor_client, f"/quay/kiem-soat/duyet/{approval_id}", {"decision": "approve"}
    )
    assert response.status_code == 404
    assert approval_row(web_app, approval_id).status == ApprovalStatus.PENDING
    assert supervisor_client.get(f"/quay/kiem-soat/nhan-vien/{their_agent.id}").status_code == 404
    assert supervisor_client.get(f"/quay/kiem-soat/ket-tien/{drawer_id}/bao-cao").status_code == 404
    for action in ("khoa", "mo-khoa", "dat-lai-xac-thuc"):
        path = f"/quay/kiem-soat/nhan-vien/{their_agent.id}/{action}"
        assert post(supervisor_client, path).status_code == 404
    assert agent_row(web_app, their_agent.id).active
    assert "1.000.000\u00a0₫" not in supervisor_client.get(HOME).get_data(as_text=True)
    # Their own supervisor can decide it.
    decide(web_app, approval_id, their_supervisor, True, now)
    assert approval_row(web_app, approval_id).status == ApprovalStatus.USED


def test_an_unknown_request_is_not_found(supervisor_client: FlaskClient) -> None:
    response = post(
        supervisor_client, f"/quay/kiem-soat/duyet/{uuid.uuid4()}", {"decision": "approve"}
    )
    assert response.status_code == 404


# --- Four eyes, and deciding once -----------------------------------------------------------------


def test_a_supervisor_does_not_approve_their_own_request(
    web_app: Flask, post_office: PostOffice, supervisor: Agent, supervisor_client: FlaskClient
) -> None:
    now = local_moment(10)
    open_drawer(web_app, supervisor, now, counted=0)
    approval_id = request_float(web_app, supervisor, ApprovalKind.TOP_UP, 1_000_000, now)

    home = supervisor_client.get(HOME).get_data(as_text=True)
    assert "cần một kiểm soát viên khác duyệt" in home
    assert f"/quay/kiem-soat/duyet/{approval_id}" not in home
    response = post(
        supervisor_client, f"/quay/kiem-soat/duyet/{approval_id}", {"decision": "approve"}
    )
    assert response.status_code == 303
    page = supervisor_client.get(HOME).get_data(as_text=True)
    assert "Bạn không tự duyệt yêu cầu của chính mình" in page
    assert approval_row(web_app, approval_id).status == ApprovalStatus.PENDING
    assert cash_of(web_app, supervisor) == 0
    assert audited(web_app, post_office, Action.APPROVAL_DECIDED) == []


def test_a_supervisor_does_not_sign_off_a_variance_of_their_own_drawer(
    web_app: Flask, post_office: PostOffice, agent: Agent, supervisor: Agent
) -> None:
    """Even when the request names someone else (a crafted row), the drawer is checked."""
    now = local_moment(10)
    drawer_id = open_drawer(web_app, supervisor, now, counted=0)
    with app_session(web_app) as session:
        row = session.get(DrawerSession, drawer_id)
        assert row is not None
        row.status = DrawerStatus.AWAITING_SIGN_OFF.value
        row.closing_expected = 0
        row.closing_counted = 500_000
        row.counted_at = now
        crafted = Approval(
            id=uuid.uuid4(),
            kind=ApprovalKind.VARIANCE.value,
            status=ApprovalStatus.PENDING.value,
            post_office_id=post_office.id,
            requested_by=agent.id,
            amount=500_000,
            subject=f"drawer:{drawer_id}",
            created_at=now,
        )
        session.add(crafted)
        session.commit()
    with pytest.raises(ApprovalRefused, match="chênh lệch két tiền của chính mình"):
        decide(web_app, crafted.id, supervisor, True, now)
    assert approval_row(web_app, crafted.id).status == ApprovalStatus.PENDING
    assert drawer_row(web_app, drawer_id).status == DrawerStatus.AWAITING_SIGN_OFF


def test_a_request_is_decided_once(
    web_app: Flask, post_office: PostOffice, agent: Agent, supervisor: Agent
) -> None:
    now = local_moment(10)
    open_drawer(web_app, agent, now, counted=0)
    approval_id = request_float(web_app, agent, ApprovalKind.TOP_UP, 3_000_000, now)
    decide(web_app, approval_id, supervisor, True, now)
    second = make_agent(web_app, post_office, role=Role.SUPERVISOR)
    with pytest.raises(ApprovalRefused, match="đã được quyết định"):
        decide(web_app, approval_id, second, False, now)
    with pytest.raises(ApprovalRefused, match="đã được quyết định"):
        decide(web_app, approval_id, supervisor, True, now)
    assert cash_of(web_app, agent) == 3_000_000
    assert approval_row(web_app, approval_id).status == ApprovalStatus.USED


@pytest.fixture
def postgres_app(make_app: AppFactory, postgres_url: str) -> Iterator[Flask]:
    app = make_app(DATABASE_URL=postgres_url)
    yield app
    database.dispose(app)


@pytest.mark.postgres
def test_two_supervisors_approving_at_the_same_instant_decide_once(postgres_app: Flask) -> None:
    """The first decision holds the request's row lock until it commits; the second waits for
    it, then finds the request decided. The float moves once."""
    app = postgres_app
    now = local_moment(10)
    post_office = make_post_office(app)
    agent = make_agent(app, post_office)
    first = make_agent(app, post_office, role=Role.SUPERVISOR)
    second = make_agent(app, post_office, role=Role.SUPERVISOR)
    open_drawer(app, agent, now, counted=0)
    approval_id = request_float(app, agent, ApprovalKind.TOP_UP, 2_000_000, now)

    first_decided = threading.Event()
    may_commit = threading.Event()
    outcome: dict[str, object] = {}

    def decide_first() -> None:
        with app.test_request_context(), app_session(app) as session:
            deciding = session.get(Agent, first.id)
            assert deciding is not None
            approvals.decide(session, approval_id, deciding, True, now)
            first_decided.set()
            may_commit.wait(10)
            session.commit()

    def decide_second() -> None:
        try:
            decide(app, approval_id, second, True, now)
        except ApprovalRefused as refused:
            outcome["second"] = refused.message
        else:
            outcome["second"] = "decided"

    first_thread = threading.Thread(target=decide_first)
    first_thread.start()
    assert first_decided.wait(10)
    second_thread = threading.Thread(target=decide_second)
    second_thread.start()
    time.sleep(0.5)
    assert second_thread.is_alive(), "the second decision should wait for the row lock"
    may_commit.set()
    first_thread.join(10)
    second_thread.join(10)
    assert "đã được quyết định" in str(outcome["second"])
    assert cash_of(app, agent) == 2_000_000
    with app_session(app) as session:
        moves = session.scalars(
            select(CounterOperation).where(
                CounterOperation.agent_id == agent.id,
                CounterOperation.kind == OperationKind.TOP_UP,
            )
        ).all()
    assert len(moves) == 1
    assert moves[0].approved_by == first.id


# --- What each decision does ----------------------------------------------------------------------


def test_top_up_approval_moves_the_cash_into_the_drawer(
    web_app: Flask,
    post_office: PostOffice,
    agent: Agent,
    supervisor: Agent,
    supervisor_client: FlaskClient,
) -> None:
    now = local_moment(9)
    open_drawer(web_app, agent, now, counted=0)
    approval_id = request_float(web_app, agent, ApprovalKind.TOP_UP, 5_000_000, now)
    home = supervisor_client.get(HOME).get_data(as_text=True)
    assert "Bổ sung tiền vào két" in home
    assert vnd(5_000_000) in home

    response = post(
        supervisor_client,
        f"/quay/kiem-soat/duyet/{approval_id}",
        {"decision": "approve", "note": "  giao  tận tay "},
    )
    assert response.status_code == 303
    decided = approval_row(web_app, approval_id)
    assert decided.status == ApprovalStatus.USED
    assert decided.decided_by == supervisor.id
    assert decided.decided_at is not None
    assert decided.note == "giao tận tay"
    assert cash_of(web_app, agent) == 5_000_000
    with app_session(web_app) as session:
        assert ledger.balance(session, post_office.district_account_id).posted != 0
        assert ledger.verify_ledger(session).ok
    events = audited(web_app, post_office, Action.APPROVAL_DECIDED)
    assert [event.actor for event in events] == [supervisor.principal]
    assert events[0].subject == f"approval:{approval_id}"


def test_a_refused_move_changes_nothing_and_stays_pending(
    web_app: Flask, agent: Agent, supervisor: Agent, supervisor_client: FlaskClient
) -> None:
    now = local_moment(9)
    stocked_drawer(web_app, agent, supervisor, now)
    approval_id = request_float(web_app, agent, ApprovalKind.HAND_BACK, 4_000_000, now)
    close_drawer(web_app, agent, TOP_UP_VND, now + dt.timedelta(hours=8))

    response = post(
        supervisor_client, f"/quay/kiem-soat/duyet/{approval_id}", {"decision": "approve"}
    )
    assert response.status_code == 303
    assert "chưa mở" in supervisor_client.get(HOME).get_data(as_text=True)
    assert approval_row(web_app, approval_id).status == ApprovalStatus.PENDING
    assert cash_of(web_app, agent) == TOP_UP_VND
    # Rejecting it is still possible.
    post(supervisor_client, f"/quay/kiem-soat/duyet/{approval_id}", {"decision": "reject"})
    assert approval_row(web_app, approval_id).status == ApprovalStatus.REJECTED


def test_approving_a_variance_posts_it_and_closes_the_drawer(
    web_app: Flask,
    post_office: PostOffice,
    agent: Agent,
    supervisor: Agent,
    supervisor_client: FlaskClient,
) -> None:
    now = local_moment(9)
    drawer_id = stocked_drawer(web_app, agent, supervisor, now)
    counted = TOP_UP_VND - 200_000
    close_drawer(web_app, agent, counted, local_moment(17, 5))
    assert drawer_row(web_app, drawer_id).status == DrawerStatus.AWAITING_SIGN_OFF
    assert cash_of(web_app, agent) == TOP_UP_VND
    with app_session(web_app) as session:
        approval_id = session.scalars(
            select(Approval.id).where(
                Approval.subject == f"drawer:{drawer_id}", Approval.kind == ApprovalKind.VARIANCE
            )
        ).one()
    home = supervisor_client.get(HOME).get_data(as_text=True)
    assert "Chênh lệch két tiền" in home
    assert vnd(-200_000) in home

    response = post(
        supervisor_client, f"/quay/kiem-soat/duyet/{approval_id}", {"decision": "approve"}
    )
    assert response.status_code == 303
    closed = drawer_row(web_app, drawer_id)
    assert closed.status == DrawerStatus.CLOSED
    assert closed.signed_off_by == supervisor.id
    assert closed.closed_at is not None
    assert approval_row(web_app, approval_id).status == ApprovalStatus.APPROVED
    with app_session(web_app) as session:
        assert ledger.balance(session, agent.drawer_account_id).posted == counted
        variance = session.scalars(
            select(CounterOperation).where(
                CounterOperation.drawer_session_id == drawer_id,
                CounterOperation.kind == OperationKind.VARIANCE,
            )
        ).one()
        assert (variance.cash_delta, variance.approved_by) == (-200_000, supervisor.id)
        report = ledger.verify_ledger(session)
        assert report.ok, report
    actions = [event.action for event in audited(web_app, post_office, Action.APPROVAL_DECIDED)]
    assert len(actions) == 2  # the top-up, then the variance


def test_rejecting_a_variance_reopens_the_drawer_for_a_recount(
    web_app: Flask, agent: Agent, supervisor: Agent, supervisor_client: FlaskClient
) -> None:
    now = local_moment(9)
    drawer_id = stocked_drawer(web_app, agent, supervisor, now)
    close_drawer(web_app, agent, TOP_UP_VND + 300_000, local_moment(17, 5))
    with app_session(web_app) as session:
        approval_id = session.scalars(
            select(Approval.id)
            .where(Approval.subject == f"drawer:{drawer_id}")
            .where(Approval.kind == ApprovalKind.VARIANCE)
        ).one()

    response = post(
        supervisor_client, f"/quay/kiem-soat/duyet/{approval_id}", {"decision": "reject"}
    )
    assert response.status_code == 303
    reopened = drawer_row(web_app, drawer_id)
    assert reopened.status == DrawerStatus.OPEN
    assert reopened.closing_counted is None
    assert approval_row(web_app, approval_id).status == ApprovalStatus.REJECTED
    assert cash_of(web_app, agent) == TOP_UP_VND
    # The recount matches: the drawer closes without anyone's sign-off.
    close_drawer(web_app, agent, TOP_UP_VND, local_moment(17, 20))
    assert drawer_row(web_app, drawer_id).status == DrawerStatus.CLOSED


def test_approving_a_large_payout_lets_the_agent_pay_it(
    web_app: Flask, agent: Agent, supervisor: Agent, supervisor_client: FlaskClient
) -> None:
    now = local_moment(10)
    stocked_drawer(web_app, agent, supervisor, now)
    citizen = citizen_support.make_citizen(web_app, balance_vnd=10_000_000, full_name="Lò Văn Páo")
    amount = web_app.config["PAYOUT_APPROVAL_ABOVE_VND"] + 1_000_000
    with web_app.test_request_context(), app_session(web_app) as session:
        holder = session.get(Citizen, citizen.id)
        row = session.get(Agent, agent.id)
        assert holder is not None and row is not None
        record = codes.create_withdrawal_code(session, holder, amount, now).record
        approval_id = counter.request_payout_approval(session, record, row, now).id
        session.commit()
    home = supervisor_client.get(HOME).get_data(as_text=True)
    assert "Lò Văn Páo" in home
    assert f"••••{citizen.citizen_id_last4}" in home

    post(supervisor_client, f"/quay/kiem-soat/duyet/{approval_id}", {"decision": "approve"})
    assert approval_row(web_app, approval_id).status == ApprovalStatus.APPROVED
    pay_out_code = record.id
    with web_app.test_request_context(), app_session(web_app) as session:
        row = session.get(Agent, agent.id)
        assert row is not None
        paid = counter.redeem(
            session,
            pay_out_code,
            agent=row,
            post_office=post_office_of(session, row),
            drawer=drawer.open_drawer(session, row),
            last4=citizen.citizen_id_last4,
            face_matched=True,
            stepped_up=True,
            fees=web_app.config["FEE_SCHEDULE"],
            approval_above_vnd=web_app.config["PAYOUT_APPROVAL_ABOVE_VND"],
            now=now,
        )
        session.commit()
        assert paid.operation.approved_by == supervisor.id
    assert approval_row(web_app, approval_id).status == ApprovalStatus.USED


def test_decide_refuses_a_request_of_another_post_office_as_not_found(
    web_app: Flask, supervisor: Agent
) -> None:
    now = local_moment(10)
    elsewhere = make_post_office(web_app)
    their_agent = make_agent(web_app, elsewhere)
    open_drawer(web_app, their_agent, now, counted=0)
    approval_id = request_float(web_app, their_agent, ApprovalKind.TOP_UP, 1_000_000, now)
    with pytest.raises(ApprovalNotFound):
        decide(web_app, approval_id, supervisor, True, now)


# --- Alerts ------------------------------------------------------------------------------------


def test_refused_scans_alert_from_the_fifth_on_the_same_day(
    web_app: Flask, post_office: PostOffice, agent: Agent
) -> None:
    now = local_moment(11)
    refused_attempts(web_app, agent, 4, local_moment(9))
    assert AlertKind.REFUSED_ATTEMPTS not in kinds_of(alerts_of(web_app, post_office, now))
    # Yesterday's refusals do not count towards today's.
    refused_attempts(web_app, agent, 3, local_moment(9) - dt.timedelta(days=1))
    assert AlertKind.REFUSED_ATTEMPTS not in kinds_of(alerts_of(web_app, post_office, now))

    refused_attempts(web_app, agent, 1, local_moment(10))
    [alert] = [
        a for a in alerts_of(web_app, post_office, now) if a.kind is AlertKind.REFUSED_ATTEMPTS
    ]
    assert alert.agent is not None and alert.agent.id == agent.id
    assert alert.count == 5
    assert agent.full_name in alert.message
    assert alert.at == local_moment(10)


def test_payouts_just_below_the_approval_threshold_alert_per_citizen_and_per_agent(
    web_app: Flask, post_office: PostOffice, agent: Agent, supervisor: Agent
) -> None:
    now = local_moment(9)
    stocked_drawer(web_app, agent, supervisor, now)
    threshold = web_app.config["PAYOUT_APPROVAL_ABOVE_VND"]
    splitter = citizen_support.make_citizen(web_app, balance_vnd=30_000_000, full_name="Hà Văn Tú")
    other = citizen_support.make_citizen(web_app, balance_vnd=30_000_000, full_name="Vi Thị Mến")
    just_below = threshold - 200_000
    pay_out(web_app, agent, splitter, just_below, local_moment(10))
    pay_out(
        web_app, agent, other, threshold - 3 * threshold // 10, local_moment(10, 5)
    )  # well below
    pay_out(web_app, agent, other, just_below, local_moment(10, 10))
    assert not {AlertKind.SPLITTING_CITIZEN, AlertKind.SPLITTING_AGENT} & set(
        kinds_of(alerts_of(web_app, post_office, local_moment(12)))
    )

    pay_out(web_app, agent, splitter, just_below, local_moment(11))
    found = alerts_of(web_app, post_office, local_moment(12))
    [by_citizen] = [a for a in found if a.kind is AlertKind.SPLITTING_CITIZEN]
    assert "Hà Văn Tú" in by_citizen.message
    assert by_citizen.count == 2
    assert by_citizen.agent is None
    [by_agent] = [a for a in found if a.kind is AlertKind.SPLITTING_AGENT]
    assert by_agent.agent is not None and by_agent.agent.id == agent.id
    assert by_agent.count == 3


def test_ten_payouts_within_five_minutes_alert_as_a_burst(
    web_app: Flask, post_office: PostOffice, agent: Agent, supervisor: Agent
) -> None:
    stocked_drawer(web_app, agent, supervisor, local_moment(8))
    citizen = citizen_support.make_citizen(web_app, balance_vnd=30_000_000)
    # Ten payouts spread over ten minutes: never more than five in any five minutes.
    for number in range(10):
        pay_out(web_app, agent, citizen, 100_000, local_moment(9, number))
    assert AlertKind.PAYOUT_BURST not in kinds_of(alerts_of(web_app, post_office, local_moment(12)))

    # Then ten in four and a half minutes.
    for number in range(10):
        pay_out(
            web_app,
            agent,
            citizen,
            100_000,
            local_moment(11, 0, 0) + dt.timedelta(seconds=30 * number),
        )
    [burst] = [
        a
        for a in alerts_of(web_app, post_office, local_moment(12))
        if a.kind is AlertKind.PAYOUT_BURST
    ]
    assert burst.agent is not None and burst.agent.id == agent.id
    assert burst.count == 10
    assert burst.at == local_moment(11)


def test_serving_citizens_outside_opening_hours_alerts(
    web_app: Flask, post_office: PostOffice, agent: Agent, supervisor: Agent
) -> None:
    # The drawer opens (and is topped up) before opening time: that is expected.
    stocked_drawer(web_app, agent, supervisor, local_moment(6, 30))
    citizen = citizen_support.make_citizen(web_app, balance_vnd=5_000_000)
    cash_in(web_app, agent, citizen, 200_000, local_moment(7, 0))  # opening minute: inside
    pay_out(web_app, agent, citizen, 100_000, local_moment(16, 59))
    assert AlertKind.OUTSIDE_HOURS not in kinds_of(
        alerts_of(web_app, post_office, local_moment(23))
    )

    cash_in(web_app, agent, citizen, 200_000, local_moment(6, 45))
    pay_out(web_app, agent, citizen, 100_000, local_moment(17, 0))  # closing minute: outside
    [outside] = [
        a
        for a in alerts_of(web_app, post_office, local_moment(23))
        if a.kind is AlertKind.OUTSIDE_HOURS
    ]
    assert outside.agent is not None and outside.agent.id == agent.id
    assert outside.count == 2
    assert outside.at == local_moment(17, 0)
    assert "07:00" in outside.message and "17:00" in outside.message


def test_large_opening_and_closing_variances_alert(
    web_app: Flask, post_office: PostOffice, agent: Agent, supervisor: Agent
) -> None:
    limit = web_app.config["DRAWER_VARIANCE_SIGN_OFF_ABOVE_VND"]
    small = make_agent(web_app, post_office, full_name="Lý Thị Hoa")
    open_drawer(web_app, small, local_moment(7), counted=limit)  # at the limit: no alert
    drawer_id = open_drawer(web_app, agent, local_moment(7, 5), counted=limit + 10_000)
    close_drawer(web_app, agent, 0, local_moment(17, 10))
    with app_session(web_app) as session:
        approval_id = session.scalars(
            select(Approval.id).where(Approval.subject == f"drawer:{drawer_id}")
        ).one()
    decide(web_app, approval_id, supervisor, True, local_moment(17, 20))

    found = [
        a for a in alerts_of(web_app, post_office, local_moment(18)) if a.kind is AlertKind.VARIANCE
    ]
    assert [(a.agent.id if a.agent else None, a.at) for a in found] == [
        (agent.id, local_moment(17, 20)),
        (agent.id, local_moment(7, 5)),
    ]
    assert "cuối ca" in found[0].message and vnd(-(limit + 10_000)) in found[0].message
    assert "đầu ca" in found[1].message and f"+{vnd(limit + 10_000)}" in found[1].message


def test_the_home_page_shows_the_days_alerts_and_the_agents_drawers(
    web_app: Flask, agent: Agent, supervisor: Agent, supervisor_client: FlaskClient
) -> None:
    now = dt.datetime.now(dt.UTC)
    refused_attempts(web_app, agent, 5, now, spacing=dt.timedelta(seconds=-1))
    open_drawer(web_app, agent, now, counted=0)
    page = supervisor_client.get(HOME).get_data(as_text=True)
    assert "alert-refused_attempts" in page
    assert "Đang mở ca từ" in page
    assert "sắp hết tiền" in page  # an open drawer holding nothing
    assert agent.username in page


# --- Statements and agents' pages -------------------------------------------------------------


def test_the_statement_lists_every_operation_with_counts_and_totals(
    web_app: Flask, agent: Agent, supervisor: Agent, supervisor_client: FlaskClient
) -> None:
    drawer_id = stocked_drawer(web_app, agent, supervisor, local_moment(7))
    citizen = citizen_support.make_citizen(web_app, balance_vnd=5_000_000)
    cash_in(web_app, agent, citizen, 700_000, local_moment(9))
    pay_out(web_app, agent, citizen, 1_500_000, local_moment(10))
    close_drawer(web_app, agent, TOP_UP_VND + 700_000 - 1_500_000 - 20_000, local_moment(17))

    response = supervisor_client.get(f"/quay/kiem-soat/ket-tien/{drawer_id}/bao-cao")
    assert response.status_code == 200
    page = response.get_data(as_text=True)
    for label in (
        "Nhận tiền bổ sung",
        "Nạp tiền vào ví",
        "Chi trả mã rút tiền",
        "Chênh lệch khi đếm",
    ):
        assert label in page
    assert "Giao dịch trong ca (4)" in page
    assert vnd(TOP_UP_VND) in page and vnd(700_000) in page and vnd(1_500_000) in page
    assert vnd(-20_000) in page
    assert vnd(TOP_UP_VND + 700_000) in page  # cash in: top-up and cash-in
    assert "statement.css" in page
    assert agent.full_name in page


def test_the_agents_page_lists_drawer_sessions_latest_first(
    web_app: Flask, agent: Agent, supervisor: Agent, supervisor_client: FlaskClient
) -> None:
    first = open_drawer(web_app, agent, local_moment(7) - dt.timedelta(days=1), counted=0)
    close_drawer(web_app, agent, 0, local_moment(17) - dt.timedelta(days=1))
    second = open_drawer(web_app, agent, local_moment(7), counted=0)
    page = supervisor_client.get(f"/quay/kiem-soat/nhan-vien/{agent.id}").get_data(as_text=True)
    newer = page.index(f"/quay/kiem-soat/ket-tien/{second}/bao-cao")
    older = page.index(f"/quay/kiem-soat/ket-tien/{first}/bao-cao")
    assert newer < older
    assert "Khoá tài khoản" in page
    # A supervisor's own page has no buttons to lock themselves out.
    own = supervisor_client.get(f"/quay/kiem-soat/nhan-vien/{supervisor.id}").get_data(as_text=True)
    assert "Khoá tài khoản" not in own


# --- Agents' accounts ---------------------------------------------------------------------------


def test_a_supervisor_creates_an_agent_of_their_own_post_office(
    web_app: Flask, post_office: PostOffice, supervisor: Agent, supervisor_client: FlaskClient
) -> None:
    path = "/quay/kiem-soat/nhan-vien/moi"
    assert supervisor_client.get(path).status_code == 200
    username = f"moi.{uuid.uuid4().hex[:6]}"
    form = {
        "username": username,
        "full_name": "Hoàng  Văn   Nam",
        "password": PASSWORD,
        "password_again": PASSWORD + "x",
        "role": "supervisor",
    }
    response = post(supervisor_client, path, form)
    assert response.status_code == 422
    assert "Hai lần nhập mật khẩu không giống nhau" in response.get_data(as_text=True)

    response = post(supervisor_client, path, {**form, "password_again": PASSWORD})
    assert response.status_code == 303
    with app_session(web_app) as session:
        created = session.scalars(select(Agent).where(Agent.username == username)).one()
        assert created.post_office_id == post_office.id
        assert created.role == Role.AGENT  # whatever the form says
        assert created.full_name == "Hoàng Văn Nam"
        assert created.created_by == supervisor.principal
        assert created.totp_enrolled_at is None
    [event] = audited(web_app, post_office, Action.AGENT_CREATED)
    assert (event.actor, event.subject) == (supervisor.principal, username)

    response = post(supervisor_client, path, {**form, "password_again": PASSWORD})
    assert response.status_code == 422
    assert "Tên đăng nhập này đã có người dùng." in response.get_data(as_text=True)


def test_deactivate_reactivate_and_reset_an_agents_authenticator(
    web_app: Flask,
    post_office: PostOffice,
    agent: Agent,
    supervisor: Agent,
    supervisor_client: FlaskClient,
) -> None:
    agents_browser = web_app.test_client()
    sign_in_directly(web_app, agents_browser, agent)
    assert agents_browser.get("/quay/ket-tien").status_code == 200

    response = post(supervisor_client, f"/quay/kiem-soat/nhan-vien/{agent.id}/khoa")
    assert response.status_code == 303
    assert not agent_row(web_app, agent.id).active
    assert agents_browser.get("/quay/ket-tien").status_code == 302  # signed out at once

    post(supervisor_client, f"/quay/kiem-soat/nhan-vien/{agent.id}/mo-khoa")
    assert agent_row(web_app, agent.id).active

    post(supervisor_client, f"/quay/kiem-soat/nhan-vien/{agent.id}/dat-lai-xac-thuc")
    reset = agent_row(web_app, agent.id)
    assert reset.totp_enrolled_at is None and reset.totp_secret_ciphertext is None

    actions = [
        (event.action, event.actor, event.subject)
        for event in audited(web_app, post_office, Action.AGENT_DEACTIVATED)
        + audited(web_app, post_office, Action.AGENT_REACTIVATED)
        + audited(web_app, post_office, Action.TOTP_RESET)
    ]
    assert actions == [
        (Action.AGENT_DEACTIVATED, supervisor.principal, agent.username),
        (Action.AGENT_REACTIVATED, supervisor.principal, agent.username),
        (Action.TOTP_RESET, supervisor.principal, agent.username),
    ]


def test_a_supervisor_does_not_lock_themselves_or_another_supervisor_out(
    web_app: Flask, post_office: PostOffice, supervisor: Agent, supervisor_client: FlaskClient
) -> None:
    other = make_agent(web_app, post_office, role=Role.SUPERVISOR)
    for target in (supervisor, other):
        for action in ("khoa", "dat-lai-xac-thuc"):
            response = post(supervisor_client, f"/quay/kiem-soat/nhan-vien/{target.id}/{action}")
            assert response.status_code == 303
        row = agent_row(web_app, target.id)
        assert row.active and row.totp_enrolled_at is not None
    assert supervisor_client.get(HOME).status_code == 200  # still signed in
    assert audited(web_app, post_office, Action.AGENT_DEACTIVATED) == []
