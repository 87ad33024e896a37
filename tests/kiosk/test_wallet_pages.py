"""The wallet's front page, the account QR page and what every wallet page shares: sign-in
required, no script or inline style, small enough for slow 3G. SQLite and PostgreSQL."""

from __future__ import annotations

import datetime as dt
import gzip
import re
import uuid
from urllib.parse import urlsplit

import pytest
from flask import Flask, url_for
from flask.testing import FlaskClient

from kiosk.payments.models import CodeKind, CodeStatus, IssuedCode
from kiosk.wallet.account_qr import mask_phone
from ledger import AccountKind, Post, Reserve
from tests.kiosk.wallet_support import (
    WalletOwner,
    app_session,
    key,
    make_citizen,
    open_account,
    post,
    sign_in,
    text_of,
)

PAGE_SIZE_MAX_BYTES = 30 * 1024
WALLET_PATHS = [
    "/vi",
    "/vi/lich-su",
    f"/vi/giao-dich/{uuid.UUID(int=1)}",
    "/vi/ma-tai-khoan",
    "/vi/ma-tai-khoan.png",
]


@pytest.fixture
def owner(web_app: Flask) -> WalletOwner:
    return make_citizen(web_app)


@pytest.fixture
def citizen_client(web_app: Flask, web_client: FlaskClient, owner: WalletOwner) -> FlaskClient:
    sign_in(web_client, web_app, owner)
    return web_client


def balance_amount(html: str) -> str:
    found = re.search(r'<p class="balance-amount">([^<]*)</p>', html)
    assert found is not None
    return found.group(1)


@pytest.mark.parametrize("path", WALLET_PATHS)
def test_signed_out_visitors_are_sent_to_sign_in(
    web_app: Flask, web_client: FlaskClient, path: str
) -> None:
    response = web_client.get(path)
    assert response.status_code == 302
    with web_app.test_request_context():
        sign_in_path = url_for("citizens.sign_in")
    location = urlsplit(response.headers["Location"])
    assert location.path == sign_in_path
    assert "next=" in location.query


def test_home_shows_available_reserved_and_posted_balances(
    web_app: Flask, citizen_client: FlaskClient, owner: WalletOwner
) -> None:
    funding = open_account(web_app, AccountKind.FUNDING, "Quỹ thử nghiệm")
    clearing = open_account(web_app, AccountKind.SETTLEMENT, "Tài khoản trung gian rút tiền")
    post(web_app, Post(key(), funding, owner.wallet_account_id, 1_500_000, "cash_in"))
    post(web_app, Reserve(key(), owner.wallet_account_id, clearing, 500_000, "withdrawal", 900))
    # A reservation whose time ran out an hour ago holds nothing, swept or not.
    long_ago = dt.datetime.now(dt.UTC) - dt.timedelta(hours=2)
    post(
        web_app,
        Reserve(key(), owner.wallet_account_id, clearing, 200_000, "withdrawal", 3600),
        at=long_ago,
    )

    response = citizen_client.get("/vi")

    assert response.status_code == 200
    assert response.headers["Cache-Control"] == "no-store"
    html = response.get_data(as_text=True)
    words = text_of(html)
    assert balance_amount(html) == "1.000.000\u00a0₫"
    assert "Đang giữ cho mã rút tiền/thanh toán: 500.000\u00a0₫" in words
    assert "Tổng số dư trong ví: 1.500.000\u00a0₫" in words
    assert "Hoàng Thị Mai" in words


def test_home_lists_open_codes_with_time_left(
    web_app: Flask, citizen_client: FlaskClient, owner: WalletOwner
) -> None:
    funding = open_account(web_app, AccountKind.FUNDING, "Quỹ thử nghiệm")
    clearing = open_account(web_app, AccountKind.SETTLEMENT, "Tài khoản trung gian rút tiền")
    post(web_app, Post(key(), funding, owner.wallet_account_id, 2_000_000, "cash_in"))
    now = dt.datetime.now(dt.UTC)
    code_ids = []
    for amount, minutes_left, status in (
        (300_000, 10, CodeStatus.OPEN),
        (700_000, 5, CodeStatus.OPEN),
        (100_000, -1, CodeStatus.OPEN),  # past its time: not listed
        (50_000, 10, CodeStatus.CANCELLED),  # not open: not listed
    ):
        pending = post(
            web_app, Reserve(key(), owner.wallet_account_id, clearing, amount, "withdrawal", 3600)
        )
        code_id = uuid.uuid4()
        code_ids.append(code_id)
        with app_session(web_app) as session:
            session.add(
                IssuedCode(
                    id=code_id,
                    kind=CodeKind.WITHDRAWAL.value,
                    status=status.value,
                    citizen_id=owner.citizen_id,
                    wallet_account_id=owner.wallet_account_id,
                    amount=amount,
                    pending_transfer_id=pending,
                    created_at=now,
                    # 30 s short of whole minutes, so the page's rounding up is exact.
                    expires_at=now + dt.timedelta(minutes=minutes_left, seconds=-30),
                )
            )

    words = text_of(citizen_client.get("/vi").get_data(as_text=True))

    listed = re.findall(r"Mã rút tiền ([0-9.]+\u00a0₫) Còn (\d+) phút", words)
    # Soonest to expire first.
    assert listed == [("700.000\u00a0₫", "5"), ("300.000\u00a0₫", "10")]
    html = citizen_client.get("/vi").get_data(as_text=True)
    with web_app.test_request_context():
        assert f'href="{url_for("codes.show", code_id=code_ids[1])}"' in html


@pytest.mark.parametrize(
    ("verified", "sentence"),
    [
        (False, "Tài khoản chưa xác minh: bạn nhận được tiền vào ví nhưng chưa rút tiền mặt"),
        (True, "Tài khoản đã xác minh: bạn được nhận tiền, rút tiền mặt"),
    ],
)
def test_home_says_what_the_kyc_tier_allows(
    web_app: Flask, web_client: FlaskClient, verified: bool, sentence: str
) -> None:
    owner = make_citizen(web_app, verified=verified)
    sign_in(web_client, web_app, owner)
    words = text_of(web_client.get("/vi").get_data(as_text=True))
    assert sentence in words
    if verified:
        assert "mỗi lần đến 20.000.000\u00a0₫, mỗi ngày đến 50.000.000\u00a0₫" in words


def test_home_links_to_the_main_actions(web_app: Flask, citizen_client: FlaskClient) -> None:
    html = citizen_client.get("/vi").get_data(as_text=True)
    with web_app.test_request_context():
        for endpoint in (
            "codes.new_withdrawal",
            "merchants.pay",
            "codes.new_payment",
            "wallet.account_qr",
            "wallet.history",
        ):
            assert f'href="{url_for(endpoint)}"' in html


def test_account_qr_page_shows_name_and_masked_phone_only(
    citizen_client: FlaskClient, owner: WalletOwner
) -> None:
    response = citizen_client.get("/vi/ma-tai-khoan")
    assert response.status_code == 200
    html = response.get_data(as_text=True)
    assert owner.full_name in html
    assert mask_phone(owner.phone) in html
    assert owner.phone not in html
    assert '<img src="/vi/ma-tai-khoan.png"' in html


@pytest.mark.parametrize("path", ["/vi", "/vi/lich-su", "/vi/ma-tai-khoan"])
def test_wallet_pages_need_no_script_or_inline_style(
    citizen_client: FlaskClient, path: str
) -> None:
    html = citizen_client.get(path).get_data(as_text=True)
    assert "<script" not in html
    assert "<style" not in html
    assert " style=" not in html
    assert '<html lang="vi">' in html


def stylesheets_of(html: str) -> list[str]:
    return re.findall(r'<link rel="stylesheet" href="([^"]+)"', html)


@pytest.mark.parametrize("path", ["/vi", "/vi/lich-su"])
def test_core_pages_with_their_css_fit_in_30_kb_gzipped(
    web_app: Flask, citizen_client: FlaskClient, owner: WalletOwner, path: str
) -> None:
    # A full history page (more lines than fit on one) with long names, so the page is at its
    # largest.
    funding = open_account(web_app, AccountKind.FUNDING, "Quỹ hỗ trợ " + "rất dài " * 20)
    for index in range(25):
        post(web_app, Post(key(), funding, owner.wallet_account_id, 1_000 + index, "welfare"))
    response = citizen_client.get(path)
    assert response.status_code == 200
    html = response.get_data()
    sizes = [len(gzip.compress(html))]
    sheets = stylesheets_of(response.get_data(as_text=True))
    assert any(sheet.endswith("/wallet.css") for sheet in sheets)
    for sheet in sheets:
        css = citizen_client.get(sheet)
        assert css.status_code == 200
        sizes.append(len(gzip.compress(css.get_data())))
        css.close()
    assert sum(sizes) <= PAGE_SIZE_MAX_BYTES, sizes


def test_the_site_name_takes_a_signed_in_citizen_back_to_the_wallet(
    citizen_client: FlaskClient,
) -> None:
    back = citizen_client.get("/")
    assert back.status_code == 303 and back.headers["Location"].endswith("/vi")
