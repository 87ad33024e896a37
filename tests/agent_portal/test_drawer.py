"""The cash drawer through the counter's pages, on SQLite and PostgreSQL: opening with a count
(note by note or a total), closing with a small variance (posted to cash variance) or a large one
(waiting for a supervisor, the drawer taking nothing meanwhile), the end-of-day statement, and
asking for a float top-up or a hand-back.
"""

from __future__ import annotations

import uuid

import pytest
from flask import Flask
from sqlalchemy import select

from agent_portal import approvals
from agent_portal.audit import Action
from agent_portal.drawer import parse_count
from agent_portal.models import (
    Agent,
    Approval,
    ApprovalKind,
    ApprovalStatus,
    CounterOperation,
    DrawerStatus,
    OperationKind,
    Role,
)
from tests.agent_portal.conftest import app_session
from tests.agent_portal.counter_support import (
    CASH_IN,
    CLOSE_DRAWER,
    DRAWER,
    FLOAT,
    HOME,
    OPEN_DRAWER,
    Desk,
    assert_ledger_sound,
    audit_actions,
    cash_variance,
    cheap_passwords,
    count_rows,
    counter_app,
    drawer_sessions,
    make_citizen,
    operation_of_receipt,
    pay,
    posted,
    reason_of,
    scanned_and_checked,
    set_up_desk,
    utc_now,
    withdrawal_code,
)

__all__ = ["cheap_passwords", "counter_app"]

NOTES = {"note_500000": "4", "note_200000": "5"}  # 2 000 000 + 1 000 000


def test_parse_count_reads_notes_or_a_total() -> None:
    assert parse_count(NOTES).total == 3_000_000
    assert parse_count(NOTES).notes == "500000:4,200000:5"
    assert parse_count({**NOTES, "total": "3.000.000"}).total == 3_000_000
    assert parse_count({"total": "1 250 000"}) == parse_count({"total": "1250000"})
    assert parse_count({"total": "1.250.000"}).notes is None


def test_a_drawer_opens_with_a_count_note_by_note(counter_app: Flask) -> None:
    app = counter_app
    desk = set_up_desk(app, cash=3_000_000, opened=False)
    home = desk.client.get(HOME)
    assert "Chưa mở két tiền" in home.text
    assert desk.client.get(DRAWER).status_code == 200

    opened = desk.client.post(OPEN_DRAWER, data=NOTES)
    assert opened.status_code == 303
    assert opened.headers["Location"] == HOME
    [session] = drawer_sessions(app, desk.agent)
    assert session.status == DrawerStatus.OPEN
    assert (session.opening_expected, session.opening_counted) == (3_000_000, 3_000_000)
    assert session.opening_notes == "500000:4,200000:5"
    assert count_rows(app, CounterOperation, CounterOperation.drawer_session_id == session.id) == 0
    assert (Action.DRAWER_OPENED, f"drawer:{session.id}", "expected=3000000 counted=3000000") in (
        audit_actions(app, desk.post_office.id)
    )
    assert "Quét mã của người dân" in desk.client.get(HOME).text

    again = desk.client.post(OPEN_DRAWER, data={"total": "3000000"})
    assert again.status_code == 422
    assert "Két tiền của bạn đang mở." in again.text
    assert len(drawer_sessions(app, desk.agent)) == 1


def test_an_opening_count_that_differs_posts_an_opening_variance(counter_app: Flask) -> None:
    app = counter_app
    desk = set_up_desk(app, cash=3_000_000, opened=False)
    variance_before = cash_variance(app)
    opened = desk.client.post(OPEN_DRAWER, data={"total": "2.990.000"})
    assert opened.status_code == 303
    assert posted(app, desk.drawer_account_id) == 2_990_000
    assert abs(cash_variance(app) - variance_before) == 10_000
    [session] = drawer_sessions(app, desk.agent)
    with app_session(app) as db:
        [variance] = db.scalars(
            select(CounterOperation).where(CounterOperation.drawer_session_id == session.id)
        ).all()
        assert (variance.kind, variance.cash_delta) == (OperationKind.VARIANCE, -10_000)
    assert_ledger_sound(app)


def test_a_count_whose_notes_and_total_differ_is_refused(counter_app: Flask) -> None:
    app = counter_app
    desk = set_up_desk(app, cash=3_000_000, opened=False)
    mismatch = desk.client.post(OPEN_DRAWER, data={**NOTES, "total": "2.900.000"})
    assert mismatch.status_code == 422
    assert "khác tổng đã nhập" in mismatch.text
    assert "3.000.000\u00a0₫" in mismatch.text and "2.900.000\u00a0₫" in mismatch.text
    for bad in ({"note_500000": "-1"}, {"note_500000": "bốn"}, {"total": "nhiều"}, {}):
        refused = desk.client.post(OPEN_DRAWER, data=bad)
        assert refused.status_code == 422, bad
    assert drawer_sessions(app, desk.agent) == []
    assert posted(app, desk.drawer_account_id) == 3_000_000


def _pay_out(desk: Desk, amount: int) -> uuid.UUID:
    citizen = make_citizen(desk.app, balance_vnd=amount + 100_000)
    code = withdrawal_code(desk.app, citizen, amount)
    ticket = scanned_and_checked(desk, code.token, citizen)
    return operation_of_receipt(pay(desk.client, ticket, citizen.citizen_id_last4))


def _cash_in(desk: Desk, amount: int) -> uuid.UUID:
    citizen = make_citizen(desk.app, balance_vnd=0)
    response = desk.client.post(
        f"{CASH_IN}?nguoi_dan={citizen.id}",
        data={"so_tien": str(amount), "ma_yeu_cau": str(uuid.uuid4()), "xac_nhan": "co"},
    )
    return operation_of_receipt(response)


def test_closing_with_a_small_variance_closes_and_posts_it(counter_app: Flask) -> None:
    app = counter_app
    threshold = app.config["DRAWER_VARIANCE_SIGN_OFF_ABOVE_VND"]
    desk = set_up_desk(app, cash=2_000_000)
    paid = _pay_out(desk, 300_000)
    cashed = _cash_in(desk, 150_000)
    expected = 2_000_000 - 300_000 + 150_000
    assert posted(app, desk.drawer_account_id) == expected
    short = threshold - 10_000
    variance_before = cash_variance(app)

    closed = desk.client.post(CLOSE_DRAWER, data={"total": str(expected - short)})
    assert closed.status_code == 303
    [session] = drawer_sessions(app, desk.agent)
    assert closed.headers["Location"] == f"/quay/ket-tien/{session.id}/bao-cao"
    assert session.status == DrawerStatus.CLOSED
    assert (session.closing_expected, session.closing_counted) == (expected, expected - short)
    assert session.closed_at is not None and session.signed_off_by is None
    assert posted(app, desk.drawer_account_id) == expected - short
    assert abs(cash_variance(app) - variance_before) == short
    with app_session(app) as db:
        operations = db.scalars(
            select(CounterOperation)
            .where(CounterOperation.drawer_session_id == session.id)
            .order_by(CounterOperation.created_at, CounterOperation.id)
        ).all()
        kinds = [(op.id, op.kind, op.cash_delta) for op in operations]
    assert kinds == [
        (paid, OperationKind.PAYOUT, -300_000),
        (cashed, OperationKind.CASH_IN, 150_000),
        (kinds[2][0], OperationKind.VARIANCE, -short),
    ]
    assert (Action.DRAWER_CLOSED, f"drawer:{session.id}", f"variance={-short}") in audit_actions(
        app, desk.post_office.id
    )
    assert_ledger_sound(app)

    # The statement lists every operation of the session, with the counts and totals.
    statement = desk.client.get(closed.headers["Location"])
    assert statement.status_code == 200
    assert f"({len(kinds)})" in statement.text  # "Giao dịch trong ca (3)"
    for operation_id, kind, _delta in kinds:
        assert operation_id.hex[:8].upper() in statement.text
        assert f"operation-{kind}" in statement.text
    assert "300.000\u00a0₫" in statement.text and "150.000\u00a0₫" in statement.text
    assert f"{expected - short:,}\u00a0₫".replace(",", ".") in statement.text

    # Closed, the counter takes nothing until the next drawer is opened.
    home = desk.client.get(HOME)
    assert "Chưa mở két tiền" in home.text
    assert desk.client.post(CLOSE_DRAWER, data={"total": "1"}).status_code == 422


def test_closing_with_a_large_variance_waits_for_a_supervisor(counter_app: Flask) -> None:
    app = counter_app
    threshold = app.config["DRAWER_VARIANCE_SIGN_OFF_ABOVE_VND"]
    desk = set_up_desk(app, cash=2_000_000)
    citizen = make_citizen(app, balance_vnd=500_000)
    code = withdrawal_code(app, citizen, 200_000)
    ticket = scanned_and_checked(desk, code.token, citizen)  # scanned before the count
    short = threshold + 50_000
    variance_before = cash_variance(app)

    counted = desk.client.post(CLOSE_DRAWER, data={"total": str(2_000_000 - short)})
    assert counted.status_code == 303
    [session] = drawer_sessions(app, desk.agent)
    assert session.status == DrawerStatus.AWAITING_SIGN_OFF
    assert (session.closing_expected, session.closing_counted) == (2_000_000, 2_000_000 - short)
    assert session.closed_at is None
    # Nothing is posted until a supervisor signs the variance off.
    assert posted(app, desk.drawer_account_id) == 2_000_000
    assert cash_variance(app) == variance_before
    with app_session(app) as db:
        [approval] = db.scalars(
            select(Approval).where(Approval.subject == f"drawer:{session.id}")
        ).all()
        assert (approval.kind, approval.status, approval.amount) == (
            ApprovalKind.VARIANCE,
            ApprovalStatus.PENDING,
            short,
        )
        approval_id = approval.id

    # Meanwhile the drawer takes no operation at all.
    assert "Két tiền chờ kiểm soát viên ký" in desk.client.get(HOME).text
    refused = pay(desk.client, ticket, citizen.citizen_id_last4)
    assert refused.status_code == 422
    assert reason_of(refused) in (None, "drawer_not_open")  # see test_counter REASON_NOT_SHOWN
    other = make_citizen(app, balance_vnd=0)
    cash_in = desk.client.post(
        f"{CASH_IN}?nguoi_dan={other.id}",
        data={"so_tien": "100000", "ma_yeu_cau": str(uuid.uuid4()), "xac_nhan": "co"},
    )
    assert cash_in.status_code == 422
    assert desk.client.post(OPEN_DRAWER, data={"total": "1"}).status_code == 422
    assert desk.client.post(CLOSE_DRAWER, data={"total": "1"}).status_code == 422
    assert desk.client.post(FLOAT, data={"so_tien": "100000", "loai": "bo-sung"}).status_code == 422
    assert posted(app, desk.drawer_account_id) == 2_000_000
    assert count_rows(app, CounterOperation, CounterOperation.drawer_session_id == session.id) == 0

    # A supervisor of the post office signs it off: the variance is posted and the drawer closes.
    boss = set_up_desk(
        app, post_office=desk.post_office, cash=0, opened=False, role=Role.SUPERVISOR
    )
    with app_session(app) as db:
        deciding = db.get(Agent, boss.agent.id)
        assert deciding is not None
        approvals.decide(db, approval_id, deciding, True, utc_now())
        db.commit()
    [session] = drawer_sessions(app, desk.agent)
    assert session.status == DrawerStatus.CLOSED
    assert session.signed_off_by == boss.agent.id
    assert posted(app, desk.drawer_account_id) == 2_000_000 - short
    assert abs(cash_variance(app) - variance_before) == short
    with app_session(app) as db:
        [variance] = db.scalars(
            select(CounterOperation).where(CounterOperation.drawer_session_id == session.id)
        ).all()
        assert (variance.kind, variance.cash_delta, variance.approved_by) == (
            OperationKind.VARIANCE,
            -short,
            boss.agent.id,
        )
    assert_ledger_sound(app)


def test_a_float_request_waits_for_a_supervisors_approval(counter_app: Flask) -> None:
    app = counter_app
    desk = set_up_desk(app, cash=1_000_000)
    [session] = drawer_sessions(app, desk.agent)

    top_up = desk.client.post(FLOAT, data={"so_tien": "2.000.000", "loai": "bo-sung"})
    assert top_up.status_code == 303
    assert top_up.headers["Location"] == DRAWER
    too_much = desk.client.post(FLOAT, data={"so_tien": "1.500.000", "loai": "nop-ve"})
    assert too_much.status_code == 422
    assert "không có đủ" in too_much.text
    hand_back = desk.client.post(FLOAT, data={"so_tien": "400.000", "loai": "nop-ve"})
    assert hand_back.status_code == 303
    for bad in ("0", "abc", ""):
        refused = desk.client.post(FLOAT, data={"so_tien": bad, "loai": "bo-sung"})
        assert refused.status_code == 422, bad
    assert posted(app, desk.drawer_account_id) == 1_000_000  # nothing moves before approval

    with app_session(app) as db:
        requested = db.scalars(
            select(Approval)
            .where(Approval.requested_by == desk.agent.id)
            .order_by(Approval.created_at, Approval.amount.desc())
        ).all()
        assert sorted((a.kind, a.status, a.amount, a.subject) for a in requested) == sorted(
            [
                (ApprovalKind.TOP_UP, ApprovalStatus.PENDING, 2_000_000, f"drawer:{session.id}"),
                (ApprovalKind.HAND_BACK, ApprovalStatus.PENDING, 400_000, f"drawer:{session.id}"),
            ]
        )
        top_up_id = next(a.id for a in requested if a.kind == ApprovalKind.TOP_UP)
    requested_actions = [
        detail
        for action, _subject, detail in audit_actions(app, desk.post_office.id)
        if action == Action.APPROVAL_REQUESTED
    ]
    assert requested_actions == ["top_up amount=2000000", "hand_back amount=400000"]

    # Approved, the top-up moves the cash at once and shows on the statement.
    boss = set_up_desk(
        app, post_office=desk.post_office, cash=0, opened=False, role=Role.SUPERVISOR
    )
    with app_session(app) as db:
        deciding = db.get(Agent, boss.agent.id)
        assert deciding is not None
        approvals.decide(db, top_up_id, deciding, True, utc_now())
        db.commit()
    assert posted(app, desk.drawer_account_id) == 3_000_000
    statement = desk.client.get(f"/quay/ket-tien/{session.id}/bao-cao")
    assert statement.status_code == 200
    assert "operation-top_up" in statement.text
    assert_ledger_sound(app)


@pytest.mark.parametrize(
    ("typed", "message"),
    [
        ("123.456", "Tiền mặt phải là bội số của 1.000\u00a0₫"),
        ("999.999.999.000", "Két tiền giữ được tối đa 10.000.000.000\u00a0₫"),
    ],
)
def test_a_float_top_up_no_drawer_could_hold_is_refused_and_keeps_what_was_typed(
    counter_app: Flask, typed: str, message: str
) -> None:
    desk = set_up_desk(counter_app, cash=1_000_000)
    refused = desk.client.post(FLOAT, data={"so_tien": typed, "loai": "bo-sung"})
    assert refused.status_code == 422
    assert message in refused.text
    assert f'value="{typed}"' in refused.text
    with app_session(counter_app) as db:
        asked = select(Approval).where(Approval.requested_by == desk.agent.id)
        assert db.scalars(asked).all() == []
