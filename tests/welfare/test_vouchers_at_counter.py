"""A welfare cash voucher at the post office counter: paid like a withdrawal code (scan, check the
ID card, pay), at most once, only at a post office of the programme's commune, with no fee; the
voucher number and the ID card's last 4 digits find a voucher whose QR cannot be read."""

from __future__ import annotations

import datetime as dt
import secrets

import base45  # type: ignore[import-untyped]
from flask import Flask

from agent_portal.counter import Refusal
from agent_portal.staff import create_post_office
from kiosk.keys import code_key_ring
from kiosk.payments.models import CodeStatus, IssuedCode
from kiosk.welfare import vouchers
from kiosk.welfare.models import RowStatus
from tests.agent_portal.conftest import app_session
from tests.agent_portal.counter_support import (
    check_last4,
    fee_revenue,
    operations_of_code,
    pay,
    posted,
    reason_of,
    scan,
    set_up_desk,
    the_code,
    ticket_of,
)
from tests.welfare.support import (
    OTHER_COMMUNE_CODE,
    Person,
    fund_available,
    paid_cycle,
    person_without_account,
    rows,
    utc_now,
    voucher_of_row,
)

AMOUNT = 600_000


def _voucher(app: Flask, *, days: int = 30) -> tuple[int, Person, IssuedCode, str]:
    """A paid cycle with one cash voucher: (cycle id, the person, the code, the slip's QR text)."""
    person = person_without_account("Đinh Thị Lan")
    cycle_id = paid_cycle(app, [(person, AMOUNT)], days=days)
    [row] = rows(app, cycle_id)
    record = voucher_of_row(app, row.id)
    with app.app_context():
        token = vouchers.sign_voucher(code_key_ring(), record)
    return cycle_id, person, record, token


def _number(app: Flask, record: IssuedCode) -> str:
    with app.app_context():
        return vouchers.voucher_number(record)


def test_a_voucher_is_paid_like_a_withdrawal_once_and_without_a_fee(counter_app: Flask) -> None:
    app = counter_app
    cycle_id, person, record, token = _voucher(app)
    desk = set_up_desk(app)
    fees_before = fee_revenue(app)

    page = scan(desk.client, token)
    assert page.status_code == 200, page.text
    assert "CHI TRẢ TRỢ CẤP" in page.text and "Đinh Thị Lan" in page.text
    assert person.number[-4:] not in page.text  # typed from the card, not read off the screen
    ticket = ticket_of(page)
    assert check_last4(desk.client, ticket, person.number[-4:]).status_code == 200
    paid = pay(desk.client, ticket, person.number[-4:])
    assert paid.status_code == 303, paid.text
    receipt = desk.client.get(paid.headers["Location"])
    assert "BIÊN LAI CHI TRẢ TRỢ CẤP" in receipt.text and "Đinh Thị Lan" in receipt.text

    assert posted(app, desk.drawer_account_id) == 20_000_000 - AMOUNT
    assert fee_revenue(app) == fees_before
    [row] = rows(app, cycle_id)
    assert row.status == RowStatus.VOUCHER_PAID
    assert voucher_of_row(app, row.id).status == CodeStatus.REDEEMED
    [operation] = operations_of_code(app, record.id)
    assert (operation.fee, operation.citizen_id, operation.cash_delta) == (0, None, -AMOUNT)
    assert fund_available(app, cycle_id) == 0

    again = scan(desk.client, token)
    assert (again.status_code, reason_of(again)) == (422, Refusal.ALREADY_PAID.value)
    replay = pay(set_up_desk(app).client, ticket, person.number[-4:])
    assert replay.status_code == 404  # another agent's ticket
    assert len(operations_of_code(app, record.id)) == 1


def test_the_wrong_id_card_is_refused(counter_app: Flask) -> None:
    app = counter_app
    _cycle_id, person, _record, token = _voucher(app)
    desk = set_up_desk(app)
    ticket = ticket_of(scan(desk.client, token))
    wrong = f"{(int(person.number[-4:]) + 1) % 10_000:04d}"
    assert check_last4(desk.client, ticket, wrong).status_code == 422
    refused = pay(desk.client, ticket, wrong)
    assert (refused.status_code, reason_of(refused)) == (422, Refusal.IDENTITY_MISMATCH.value)


def test_a_voucher_is_refused_at_another_communes_post_office(counter_app: Flask) -> None:
    app = counter_app
    _cycle_id, _person, _record, token = _voucher(app)
    with app_session(app) as session:
        elsewhere = create_post_office(
            session,
            code="T" + secrets.token_hex(4).upper(),
            name="Điểm BĐVHX Ba Đình",
            commune_code=OTHER_COMMUNE_CODE,
        )
        session.commit()
        session.expunge(elsewhere)
    desk = set_up_desk(app, post_office=elsewhere)
    refused = scan(desk.client, token)
    assert (refused.status_code, reason_of(refused)) == (422, Refusal.WRONG_COMMUNE.value)
    assert "Phường Văn Miếu" in refused.text


def test_an_expired_voucher_is_refused(counter_app: Flask) -> None:
    app = counter_app
    _cycle_id, _person, record, _token = _voucher(app, days=1)
    with app_session(app) as session:
        found = session.get(IssuedCode, record.id)
        assert found is not None
        found.expires_at = utc_now() - dt.timedelta(seconds=1)
        session.commit()
    desk = set_up_desk(app)
    with app.app_context(), app_session(app) as session:
        found = session.get(IssuedCode, record.id)
        assert found is not None
        token = vouchers.sign_voucher(code_key_ring(), found)
    refused = scan(desk.client, token)
    assert (refused.status_code, reason_of(refused)) == (422, Refusal.EXPIRED.value)


def test_a_voucher_with_a_changed_amount_is_refused(counter_app: Flask) -> None:
    app = counter_app
    _cycle_id, _person, _record, token = _voucher(app)
    data = bytearray(base45.b45decode(token[len(vouchers.VOUCHER_PREFIX) :]))
    data[26] ^= 0x01  # the amount's last byte
    forged = vouchers.VOUCHER_PREFIX + base45.b45encode(bytes(data)).decode("ascii")
    desk = set_up_desk(app)
    refused = scan(desk.client, forged)
    assert (refused.status_code, reason_of(refused)) == (422, Refusal.TAMPERED.value)


def test_the_voucher_number_and_the_cards_last_4_digits_find_the_voucher(
    counter_app: Flask,
) -> None:
    app = counter_app
    _cycle_id, person, record, _token = _voucher(app)
    desk = set_up_desk(app)
    number = _number(app, record)
    wrong = desk.client.post(
        "/quay/phieu-tro-cap",
        data={"so_phieu": f"{(int(number) + 1) % 10**10:010d}", "bon_so_cuoi": person.number[-4:]},
    )
    assert wrong.status_code == 422
    found = desk.client.post(
        "/quay/phieu-tro-cap",
        data={"so_phieu": f"{number[:5]} {number[5:]}", "bon_so_cuoi": person.number[-4:]},
    )
    assert found.status_code == 200, found.text
    assert "CHI TRẢ TRỢ CẤP" in found.text
    ticket = ticket_of(found)
    assert check_last4(desk.client, ticket, person.number[-4:]).status_code == 200
    assert pay(desk.client, ticket, person.number[-4:]).status_code == 303


def test_wrong_voucher_numbers_lock_the_agent_out_on_the_fifth(counter_app: Flask) -> None:
    app = counter_app
    _cycle_id, person, record, _token = _voucher(app)
    desk = set_up_desk(app)
    number = _number(app, record)
    wrong = f"{(int(number) + 1) % 10**10:010d}"

    def typed(digits: str) -> str:
        page = desk.client.post(
            "/quay/phieu-tro-cap", data={"so_phieu": digits, "bon_so_cuoi": person.number[-4:]}
        )
        assert page.status_code == 422
        return page.text

    for _attempt in range(4):
        assert "không khớp" in typed(wrong)
    # The fifth wrong number locks, and the agent reads so then, with the time it ends.
    assert "nhiều lần" in typed(wrong) and "Thử lại sau" in typed(number)
    assert the_code(app, record.id).status == CodeStatus.OPEN
