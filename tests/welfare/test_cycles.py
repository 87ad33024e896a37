"""Pay cycles: a list is checked row by row before anything is paid, its total must equal the
fund, a second official approves, and approval pays wallets in one ledger batch and issues cash
vouchers for everyone else; the cycle reconciles to the fund, and expired vouchers go back."""

from __future__ import annotations

import datetime as dt
import uuid

import pytest
from flask import Flask
from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError

import ledger
from kiosk.community.models import (
    ChecklistEntry,
    ChecklistStep,
    Evidence,
    Household,
    OfficialRole,
    StepStatus,
)
from kiosk.community.models import Person as CommunityPerson
from kiosk.payments import codes
from kiosk.payments.models import CodeKind, CodeStatus, IssuedCode
from kiosk.welfare import cycles, vouchers
from kiosk.welfare.indicators import CycleFigures, cycle_figures
from kiosk.welfare.models import CycleStatus, PayCycle, RowStatus
from tests.agent_portal.conftest import app_session
from tests.community.support import make_official, make_village
from tests.welfare.support import (
    APPROVER,
    OTHER_COMMUNE_CODE,
    UPLOADER,
    add_funds,
    approve,
    csv_bytes,
    cycle_of,
    fund_available,
    line_of,
    make_cycle,
    make_programme,
    paid_cycle,
    person_with_account,
    person_without_account,
    programme_of,
    rows,
    submit,
    upload_list,
    utc_now,
    voucher_of_row,
    xlsx_bytes,
)


def _balance(app: Flask, account_id: int) -> ledger.Balance:
    with app_session(app) as session:
        return ledger.balance(session, account_id)


def test_a_list_with_bad_rows_pays_nothing_and_reports_every_problem(web_app: Flask) -> None:
    app = web_app
    good = person_with_account(app, full_name="Hoàng Thị Mai")
    renamed = person_with_account(app, full_name="Nông Văn Bình")
    elsewhere = person_with_account(app, full_name="Lương Thị Hoa", commune_code=OTHER_COMMUNE_CODE)
    programme_id = make_programme(app, fund=3_000_000)
    cycle_id = make_cycle(app, programme_id)
    lines = [
        line_of(good, 500_000),  # 2: fine
        ("00115801234", "Đinh Văn A", "500000", ""),  # 3: 11 digits
        ("999158012345", "Đinh Văn B", "500000", ""),  # 4: no such province
        (good.number, "Hoàng Thị Mai", "500000", ""),  # 5: duplicate of line 2
        line_of(person_without_account("Đinh Văn C"), 0),  # 6: zero
        line_of(person_without_account("Đinh Văn D"), "1,5"),  # 7: not whole đồng... "15"
        line_of(person_without_account("Đinh Văn E"), 50_000_000),  # 8: over the maximum
        line_of(person_without_account("Đinh Văn F"), 505),  # 9: not payable in notes
        (renamed.number, "Nông Văn Bính", "500000", ""),  # 10: name differs from the account
        line_of(elsewhere, 500_000),  # 11: lives in another commune
        line_of(person_without_account("Đinh Văn G"), 500_000, "12345"),  # 12: bad phone
        line_of(person_without_account("=HYPERLINK(1)"), 500_000),  # 13: a formula as a name
    ]

    result = upload_list(app, cycle_id, csv_bytes(lines))

    assert not result.accepted
    assert sorted({problem.line for problem in result.problems}) == [
        3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13,
    ]  # fmt: skip
    shown = " ".join(problem.citizen_id_shown for problem in result.problems)
    assert good.number not in shown and good.number[-4:] in shown
    assert cycle_of(app, cycle_id).status == CycleStatus.DRAFT
    assert rows(app, cycle_id) == []
    with pytest.raises(cycles.WelfareRefused):
        submit(app, cycle_id)
    assert fund_available(app, cycle_id) == 3_000_000

    # The official fixes the file (drops the bad lines, tops up nothing) and uploads again.
    fixed = csv_bytes([line_of(good, 1_500_000), line_of(renamed, 1_500_000)])
    assert upload_list(app, cycle_id, fixed).accepted
    submit(app, cycle_id)
    approve(app, cycle_id)
    assert [row.status for row in rows(app, cycle_id)] == [RowStatus.PAID_TO_ACCOUNT] * 2


def test_a_new_upload_replaces_the_draft_rows(web_app: Flask) -> None:
    app = web_app
    first, second = person_without_account("Đinh Thị Một"), person_without_account("Đinh Thị Hai")
    cycle_id = make_cycle(app, make_programme(app, fund=1_000_000))
    assert upload_list(app, cycle_id, csv_bytes([line_of(first, 1_000_000)])).accepted
    assert upload_list(app, cycle_id, xlsx_bytes([line_of(second, 1_000_000)]), filename="a.xlsx")
    assert [row.full_name for row in rows(app, cycle_id)] == ["Đinh Thị Hai"]


def test_a_total_other_than_the_fund_is_refused_with_both_figures(web_app: Flask) -> None:
    app = web_app
    cycle_id = make_cycle(app, make_programme(app, fund=1_000_000))
    result = upload_list(app, cycle_id, csv_bytes([line_of(person_without_account(), 900_000)]))
    assert not result.accepted and not result.problems
    assert result.total_problem is not None
    assert "900.000\u00a0₫" in result.total_problem and "1.000.000\u00a0₫" in result.total_problem
    assert cycle_of(app, cycle_id).status == CycleStatus.DRAFT


def test_money_added_to_the_fund_after_validation_blocks_sending_it(web_app: Flask) -> None:
    app = web_app
    programme_id = make_programme(app, fund=1_000_000)
    cycle_id = make_cycle(app, programme_id)
    assert upload_list(app, cycle_id, csv_bytes([line_of(person_without_account(), 1_000_000)]))
    add_funds(app, programme_id, 10_000)
    with pytest.raises(cycles.WelfareRefused, match=r"1\.010\.000"):
        submit(app, cycle_id)


def test_the_uploader_cannot_approve_their_own_list(web_app: Flask) -> None:
    app = web_app
    cycle_id = make_cycle(app, make_programme(app, fund=500_000))
    assert upload_list(app, cycle_id, csv_bytes([line_of(person_without_account(), 500_000)]))
    submit(app, cycle_id, by=UPLOADER)
    with pytest.raises(cycles.WelfareRefused) as refused:
        approve(app, cycle_id, by=UPLOADER)
    assert refused.value.code == "four_eyes"
    assert cycle_of(app, cycle_id).status == CycleStatus.AWAITING_APPROVAL
    assert fund_available(app, cycle_id) == 500_000


def test_the_database_refuses_an_approval_by_the_uploader(web_app: Flask) -> None:
    app = web_app
    cycle_id = make_cycle(app, make_programme(app, fund=500_000))
    assert upload_list(app, cycle_id, csv_bytes([line_of(person_without_account(), 500_000)]))
    with app_session(app) as session, pytest.raises(IntegrityError):
        session.execute(
            update(PayCycle)
            .where(PayCycle.id == cycle_id)
            .values(status="paid", approved_by=UPLOADER, approved_at=utc_now())
        )
        session.flush()


def test_approval_pays_accounts_in_one_batch_and_gives_everyone_else_a_voucher(
    web_app: Flask,
) -> None:
    app = web_app
    cap = app.config["WALLET_BALANCE_MAX_VND"]
    verified = person_with_account(app, full_name="Hoàng Thị Mai", balance_vnd=100_000)
    verified_too = person_with_account(app, full_name="Nông Văn Bình")
    unverified = person_with_account(app, full_name="Lương Thị Hoa", verified=False)
    nearly_full = person_with_account(app, full_name="Vi Văn Đức", balance_vnd=cap - 100_000)
    no_account = person_without_account("Đinh Thị Lan")
    people = [
        (verified, 600_000),
        (verified_too, 700_000),
        (unverified, 800_000),
        (nearly_full, 900_000),
        (no_account, 1_000_000),
    ]

    cycle_id = paid_cycle(app, people)

    found = rows(app, cycle_id)
    assert [row.status for row in found] == [
        RowStatus.PAID_TO_ACCOUNT,
        RowStatus.PAID_TO_ACCOUNT,
        RowStatus.VOUCHER_ISSUED,
        RowStatus.VOUCHER_ISSUED,
        RowStatus.VOUCHER_ISSUED,
    ]
    assert "xác minh" in found[2].reason
    assert "tối đa" in found[3].reason
    assert "Chưa có tài khoản" in found[4].reason
    assert verified.wallet_account_id is not None and verified_too.wallet_account_id is not None
    assert _balance(app, verified.wallet_account_id).posted == 700_000
    assert _balance(app, verified_too.wallet_account_id).posted == 700_000
    with app_session(app) as session:
        transfers = session.scalars(
            select(ledger.Transfer).where(
                ledger.Transfer.id.in_([row.transfer_id for row in found[:2]])
            )
        ).all()
        reservations = session.scalars(
            select(ledger.Transfer)
            .join(IssuedCode, IssuedCode.pending_transfer_id == ledger.Transfer.id)
            .where(IssuedCode.welfare_row_id.in_([row.id for row in found[2:]]))
        ).all()
    # One ledger operation: the wallet payments and the voucher reservations share a batch.
    assert len({transfer.batch_id for transfer in [*transfers, *reservations]}) == 1
    record = voucher_of_row(app, found[4].id)
    programme = programme_of(app, cycle_id)
    assert (record.kind, record.status, record.citizen_id) == (CodeKind.WITHDRAWAL, "open", None)
    assert record.wallet_account_id == programme.fund_account_id
    assert record.amount == 1_000_000
    days = (record.expires_at - record.created_at).total_seconds() / 86_400
    assert days == pytest.approx(30)
    fund = _balance(app, programme.fund_account_id)
    assert (fund.available, fund.reserved) == (0, 2_700_000)
    cycle = cycle_of(app, cycle_id)
    assert (cycle.status, cycle.approved_by) == (CycleStatus.PAID, APPROVER)


def test_approving_again_pays_nobody_twice(web_app: Flask) -> None:
    app = web_app
    person = person_with_account(app)
    cycle_id = paid_cycle(app, [(person, 500_000)])
    with pytest.raises(cycles.WelfareRefused):
        approve(app, cycle_id, by="official:9999")
    assert person.wallet_account_id is not None
    assert _balance(app, person.wallet_account_id).posted == 500_000


def _reconciliation(app: Flask, cycle_id: int, now: dt.datetime) -> cycles.Reconciliation:
    with app.test_request_context(), app_session(app) as session:
        cycle = session.get(PayCycle, cycle_id)
        assert cycle is not None
        return cycles.reconcile(session, cycle, now)


def test_a_paid_batch_reconciles_to_the_fund(web_app: Flask) -> None:
    app = web_app
    people = [(person_with_account(app), 500_000), (person_without_account(), 700_000)]
    cycle_id = paid_cycle(app, people)
    found = _reconciliation(app, cycle_id, utc_now())
    assert found.ok
    assert [check.rows for check in found.checks] == [500_000, 0, 700_000, 0]
    assert (found.fund_in, found.fund_paid_out, found.fund_held, found.fund_available) == (
        1_200_000,
        500_000,
        700_000,
        0,
    )


def test_an_expired_voucher_goes_back_to_the_fund_and_the_row_says_so(web_app: Flask) -> None:
    app = web_app
    cycle_id = paid_cycle(app, [(person_without_account(), 400_000)], days=1)
    [row] = rows(app, cycle_id)
    later = utc_now() + dt.timedelta(days=2)
    with app.test_request_context(), app_session(app) as session:
        assert vouchers.expire_vouchers(session, later) >= 1
        session.commit()
    [row] = rows(app, cycle_id)
    assert row.status == RowStatus.EXPIRED
    assert voucher_of_row(app, row.id).status == CodeStatus.EXPIRED
    assert fund_available(app, cycle_id) == 400_000
    found = _reconciliation(app, cycle_id, later)
    assert found.ok and found.checks[3].rows == 400_000
    with app.test_request_context(), app_session(app) as session:
        cycle = session.get(PayCycle, cycle_id)
        assert cycle is not None
        cycles.close_cycle(session, cycle, now=later)
        session.commit()
    assert cycle_of(app, cycle_id).status == CycleStatus.CLOSED


def test_a_voucher_the_ledger_sweeper_released_is_still_marked_expired(web_app: Flask) -> None:
    app = web_app
    cycle_id = paid_cycle(app, [(person_without_account(), 300_000)], days=1)
    later = utc_now() + dt.timedelta(days=2)
    programme = programme_of(app, cycle_id)
    with app_session(app) as session:
        ledger.void_expired_reservations(session, now=later, account_id=programme.fund_account_id)
        session.commit()
    with app.test_request_context(), app_session(app) as session:
        vouchers.expire_vouchers(session, later, programme_id=programme.id)
        session.commit()
    [row] = rows(app, cycle_id)
    assert row.status == RowStatus.EXPIRED
    assert fund_available(app, cycle_id) == 300_000
    assert _reconciliation(app, cycle_id, later).ok


def test_the_codes_expiry_path_also_marks_a_voucher_row_expired(web_app: Flask) -> None:
    app = web_app
    cycle_id = paid_cycle(app, [(person_without_account(), 200_000)], days=1)
    with app.test_request_context(), app_session(app) as session:
        codes.expire_codes(session, utc_now() + dt.timedelta(days=2))
        session.commit()
    [row] = rows(app, cycle_id)
    assert row.status == RowStatus.EXPIRED
    assert fund_available(app, cycle_id) == 200_000


def test_cycle_figures_count_paid_and_cashless_by_commune(web_app: Flask) -> None:
    app = web_app
    people = [
        (person_with_account(app, full_name="Hoàng Thị Mai"), 500_000),
        (person_with_account(app, full_name="Nông Văn Bình"), 300_000),
        (person_without_account(), 200_000),
    ]
    cycle_id = paid_cycle(app, people)
    today = utc_now().date()
    with app_session(app) as session:
        figures = cycle_figures(
            session, ["00226"], today - dt.timedelta(days=1), today + dt.timedelta(days=2)
        )
        outside = cycle_figures(
            session, ["00226"], today + dt.timedelta(days=2), today + dt.timedelta(days=30)
        )
    [mine] = [figure for figure in figures["00226"] if figure.cycle_id == cycle_id]
    assert (mine.beneficiaries, mine.paid_count, mine.cashless_count) == (3, 2, 2)
    assert (mine.paid_value, mine.cashless_value) == (800_000, 800_000)
    assert all(figure.cycle_id != cycle_id for figure in outside.get("00226", []))


def test_the_seeds_example_185_of_200_paid_cashless_is_92_5_percent() -> None:
    figure = CycleFigures(1, "Trợ cấp", "Tháng 12/2026", 200, 200, 185, 200_000_000, 185_000_000)
    assert figure.cashless_count / figure.paid_count == 0.925


def test_a_payment_into_the_wallet_ticks_the_persons_checklist_step(web_app: Flask) -> None:
    app = web_app
    person = person_with_account(app, full_name="Hoàng Thị Mai")
    official = make_official(app, OfficialRole.COMMUNE_OFFICIAL)
    village_id = make_village(app)
    now = utc_now()
    with app_session(app) as session:
        household = Household(
            id=uuid.uuid4(),
            commune_code="00226",
            village_id=village_id,
            head_name="Hoàng Thị Mai",
            address="",
            created_at=now,
            created_by=official.id,
        )
        member = CommunityPerson(
            id=uuid.uuid4(),
            household_id=household.id,
            commune_code="00226",
            full_name="Hoàng Thị Mai",
            sex="female",
            welfare_beneficiary=False,
            citizen_id=person.citizen_id,
            consent_at=now,
            created_at=now,
            created_by=official.id,
        )
        session.add(household)
        session.flush()
        session.add(member)
        session.commit()
        member_id = member.id

    paid_cycle(app, [(person, 500_000)])

    with app_session(app) as session:
        entry = session.get(ChecklistEntry, (member_id, ChecklistStep.WELFARE_ACCOUNT.value))
        assert entry is not None
        assert (entry.status, entry.evidence) == (StepStatus.DONE, Evidence.SYSTEM)
        found = session.get(CommunityPerson, member_id)
        assert found is not None and found.welfare_beneficiary
