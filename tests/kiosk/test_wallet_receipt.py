"""A receipt per transaction: what it shows, in local time, and 404 for anything that is not the
signed-in citizen's own. SQLite and PostgreSQL."""

from __future__ import annotations

import datetime as dt
import uuid

import pytest
from flask import Flask
from flask.testing import FlaskClient

from agent_portal.counter import fee_revenue_account
from kiosk.formatting import LOCAL_ZONE
from kiosk.payments import codes
from kiosk.wallet.history import public_account_name, short_transfer_id
from ledger import AccountKind, Post, PostPending, Reserve
from tests.kiosk.wallet_support import (
    WalletOwner,
    key,
    make_citizen,
    open_account,
    post,
    run,
    sign_in,
    text_of,
)

# Money out is signed with a true minus sign (U+2212), not a hyphen.
MINUS = "\u2212"


@pytest.fixture
def owner(web_app: Flask) -> WalletOwner:
    return make_citizen(web_app)


@pytest.fixture
def citizen_client(web_app: Flask, web_client: FlaskClient, owner: WalletOwner) -> FlaskClient:
    sign_in(web_client, web_app, owner)
    return web_client


def test_receipt_of_a_deposit(
    web_app: Flask, citizen_client: FlaskClient, owner: WalletOwner
) -> None:
    drawer = open_account(web_app, AccountKind.AGENT_DRAWER, "Bưu điện văn hóa xã Tân Thành")
    # 14:05:09 on 2 March in Vietnam is 07:05:09 UTC.
    at = dt.datetime(2025, 3, 2, 7, 5, 9, tzinfo=dt.UTC)
    transfer_id = post(
        web_app, Post(key(), drawer, owner.wallet_account_id, 1_500_000, "cash_in"), at=at
    )

    response = citizen_client.get(f"/vi/giao-dich/{transfer_id}")

    assert response.status_code == 200
    assert response.headers["Cache-Control"] == "no-store"
    words = text_of(response.get_data(as_text=True))
    assert "Biên nhận giao dịch" in words
    assert "+1.500.000\u00a0₫" in words
    assert "Loại giao dịch Nạp tiền" in words
    assert "Chiều tiền Tiền vào ví" in words
    assert "Trạng thái Đã xong" in words
    assert "Thời gian 14:05:09 02/03/2025" in words
    assert "Từ Bưu điện văn hóa xã Tân Thành" in words
    assert "Số dư sau giao dịch 1.500.000\u00a0₫" in words
    assert f"Mã giao dịch {short_transfer_id(transfer_id)} {transfer_id}" in words
    assert "Chủ ví Hoàng Thị Mai" in words


def test_receipt_of_a_hold_leaves_the_balance(
    web_app: Flask, citizen_client: FlaskClient, owner: WalletOwner
) -> None:
    funding = open_account(web_app, AccountKind.FUNDING, "Quỹ thử nghiệm")
    # The account withdrawal codes reserve towards, named for the citizen by what it is to them.
    clearing = run(web_app, codes.withdrawal_clearing_account)
    post(web_app, Post(key(), funding, owner.wallet_account_id, 900_000, "cash_in"))
    now = dt.datetime.now(dt.UTC).replace(microsecond=0)
    hold = post(
        web_app,
        Reserve(key(), owner.wallet_account_id, clearing, 400_000, "withdrawal", 900),
        at=now,
    )
    words = text_of(citizen_client.get(f"/vi/giao-dich/{hold}").get_data(as_text=True))
    until = (now + dt.timedelta(seconds=900)).astimezone(LOCAL_ZONE).strftime("%H:%M %d/%m/%Y")
    assert f"Trạng thái Đang giữ đến {until}" in words
    assert "Chiều tiền Tiền ra khỏi ví" in words
    assert "Số dư sau giao dịch Không đổi" in words
    assert "Đến Bưu điện (tiền mặt)" in words
    assert "trung gian" not in words


def test_a_fee_is_shown_as_atm_mem_s_not_by_its_bookkeeping_name(
    web_app: Flask, citizen_client: FlaskClient, owner: WalletOwner
) -> None:
    funding = open_account(web_app, AccountKind.FUNDING, "Quỹ thử nghiệm")
    fees = run(web_app, fee_revenue_account)
    post(web_app, Post(key(), funding, owner.wallet_account_id, 900_000, "cash_in"))
    fee = post(web_app, Post(key(), owner.wallet_account_id, fees, 3_000, "fee"))
    words = text_of(citizen_client.get(f"/vi/giao-dich/{fee}").get_data(as_text=True))
    assert "Đến ATM mềm (phí dịch vụ)" in words
    assert "Doanh thu" not in words


def test_receipts_link_a_payout_and_its_hold(
    web_app: Flask, citizen_client: FlaskClient, owner: WalletOwner
) -> None:
    funding = open_account(web_app, AccountKind.FUNDING, "Quỹ thử nghiệm")
    clearing = open_account(web_app, AccountKind.SETTLEMENT, "Tài khoản trung gian rút tiền")
    post(web_app, Post(key(), funding, owner.wallet_account_id, 900_000, "cash_in"))
    hold = post(
        web_app, Reserve(key(), owner.wallet_account_id, clearing, 400_000, "withdrawal", 900)
    )
    payout = post(web_app, PostPending(key(), hold))
    page = citizen_client.get(f"/vi/giao-dich/{payout}").get_data(as_text=True)
    assert "Rút tiền" in page
    assert f"{MINUS}400.000\u00a0₫" in page
    assert f'href="/vi/giao-dich/{hold}"' in page
    # And back: the hold links to the payout that spent it.
    page = citizen_client.get(f"/vi/giao-dich/{hold}").get_data(as_text=True)
    assert "Đã trừ vào số dư" in page
    assert f'href="/vi/giao-dich/{payout}"' in page


def test_receipt_of_another_citizens_transfer_is_not_found(
    web_app: Flask, citizen_client: FlaskClient, owner: WalletOwner
) -> None:
    neighbour = make_citizen(web_app, full_name="Nông Văn Bình")
    funding = open_account(web_app, AccountKind.FUNDING, "Quỹ thử nghiệm")
    theirs = post(web_app, Post(key(), funding, neighbour.wallet_account_id, 50_000, "cash_in"))
    # Money the neighbour sent to someone else entirely.
    stall = open_account(web_app, AccountKind.MERCHANT, "Sạp thịt")
    also_theirs = post(web_app, Post(key(), neighbour.wallet_account_id, stall, 10_000, "payment"))

    for transfer_id in (theirs, also_theirs, uuid.uuid4()):
        response = citizen_client.get(f"/vi/giao-dich/{transfer_id}")
        assert response.status_code == 404
        assert "Không tìm thấy trang" in response.get_data(as_text=True)
    assert citizen_client.get("/vi/giao-dich/not-a-uuid").status_code == 404


def test_counterparty_names_never_show_another_citizens_numbers(
    web_app: Flask, citizen_client: FlaskClient, owner: WalletOwner
) -> None:
    # A wallet named with its owner's phone and ID number (however another area names them).
    sender = open_account(
        web_app, AccountKind.CITIZEN_WALLET, "Ví — Nông Văn Bình 0912345678 CCCD 001058012345"
    )
    funding = open_account(web_app, AccountKind.FUNDING, "Quỹ thử nghiệm")
    post(web_app, Post(key(), funding, sender, 100_000, "cash_in"))
    transfer_id = post(web_app, Post(key(), sender, owner.wallet_account_id, 30_000, "gift"))

    for path in (f"/vi/giao-dich/{transfer_id}", "/vi/lich-su"):
        page = citizen_client.get(path).get_data(as_text=True)
        assert "0912345678" not in page
        assert "001058012345" not in page
        assert "Ví — Nông Văn Bình •••678 CCCD •••345" in page
    assert "Giao dịch khác" in page  # an unknown code still reads as something


@pytest.mark.parametrize(
    ("name", "shown"),
    [
        ("Sạp rau bà Lan", "Sạp rau bà Lan"),
        ("Quầy số 12345", "Quầy số 12345"),
        ("Ví 0912345678", "Ví •••678"),
    ],
)
def test_public_account_name(name: str, shown: str) -> None:
    assert public_account_name(name) == shown


def test_short_transfer_id_is_the_random_tail() -> None:
    transfer_id = uuid.UUID("0190f3a2-7c4b-7def-8a12-3456789abcde")
    assert short_transfer_id(transfer_id) == "789A-BCDE"


def test_counterparty_names_are_said_in_the_pages_language(
    web_app: Flask, citizen_client: FlaskClient, owner: WalletOwner
) -> None:
    # Names are stored in Vietnamese; in English the words around the proper names are English.
    drawer = open_account(web_app, AccountKind.AGENT_DRAWER, "Két tiền — Trần Văn An (BD0012)")
    stall = open_account(web_app, AccountKind.MERCHANT, "Quầy hàng DEMXCH23: Sạp rau bà Lan")
    odd = open_account(web_app, AccountKind.MERCHANT, "Chợ phiên Bắc Hà")
    post(web_app, Post(key(), drawer, owner.wallet_account_id, 100_000, "cash_in"))
    post(web_app, Post(key(), owner.wallet_account_id, stall, 20_000, "merchant_payment"))
    post(web_app, Post(key(), owner.wallet_account_id, odd, 5_000, "merchant_payment"))

    vietnamese = citizen_client.get("/vi/lich-su").get_data(as_text=True)
    assert "Két tiền — Trần Văn An (BD0012)" in vietnamese
    assert "Quầy hàng DEMXCH23: Sạp rau bà Lan" in vietnamese
    with citizen_client.session_transaction() as cookie:
        cookie["lang"] = "en"
    english = citizen_client.get("/vi/lich-su").get_data(as_text=True)
    assert "Cash drawer — Trần Văn An (BD0012)" in english
    assert "Stall DEMXCH23: Sạp rau bà Lan" in english
    assert "Két tiền" not in english and "Quầy hàng" not in english
    assert "Chợ phiên Bắc Hà" in english  # a name of no known shape, as stored
