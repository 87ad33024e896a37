"""Withdrawal and payment codes through the citizen's pages, on SQLite and PostgreSQL."""

from __future__ import annotations

import datetime as dt
import io
import re
import uuid

import pytest
import zxingcpp
from flask import Flask
from flask.testing import FlaskClient
from PIL import Image
from sqlalchemy import select

import ledger
from kiosk import database
from kiosk.codes import tokens
from kiosk.codes.photo import QR_ONLY
from kiosk.keys import code_key_ring
from kiosk.payments import codes
from kiosk.payments.models import Biller, BillerKind, CodeStatus, IssuedCode
from ledger import AccountKind
from tests.kiosk import citizen_support


@pytest.fixture
def app(web_app: Flask) -> Flask:
    web_app.config["WTF_CSRF_ENABLED"] = False
    return web_app


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    return app.test_client()


def signed_in(app: Flask, client: FlaskClient, **options: object) -> citizen_support.Citizen:
    citizen = citizen_support.make_citizen(app, **options)  # type: ignore[arg-type]
    citizen_support.sign_in(client, app, citizen)
    return citizen


def available(app: Flask, account_id: int) -> int:
    with app.app_context(), database.database().sessions() as db:
        return ledger.balance(db, account_id).available


def the_code(app: Flask, citizen_id: int) -> IssuedCode:
    with app.app_context(), database.database().sessions() as db:
        record = db.scalars(
            select(IssuedCode)
            .where(IssuedCode.citizen_id == citizen_id)
            .order_by(IssuedCode.created_at.desc())
        ).first()
        assert record is not None
        db.expunge(record)
        return record


def test_withdrawal_code_reserves_money_and_shows_a_scannable_signed_qr(
    app: Flask, client: FlaskClient
) -> None:
    citizen = signed_in(app, client, balance_vnd=1_500_000)
    page = client.get("/rut-tien")
    assert page.status_code == 200
    assert "1.500.000\u00a0₫" in page.text
    # 2.000.000 ₫ is more than the wallet holds: its button is off, and the page says why.
    assert re.search(r'value="2000000" class="amount-choice"\s+disabled', page.text)
    assert "Số tiền bị mờ là lớn hơn số dư có thể rút." in page.text
    response = client.post("/rut-tien", data={"so_tien": "500.000"})
    assert response.status_code == 303
    record = the_code(app, citizen.id)
    assert response.headers["Location"].endswith(f"/ma/{record.id}")
    assert (record.amount, record.status) == (500_000, CodeStatus.OPEN)
    assert available(app, citizen.wallet_account_id) == 1_000_000

    shown = client.get(f"/ma/{record.id}")
    assert shown.status_code == 200
    assert "500.000\u00a0₫" in shown.text
    assert 'http-equiv="refresh"' in shown.text
    assert shown.headers["Cache-Control"] == "no-store"
    digits = re.search(r'class="fallback-digits">(\d{4}) (\d{4})<', shown.text)
    assert digits is not None

    image_src = re.search(r'src="([^"]+qr\.png[^"]*)"', shown.text)
    assert image_src is not None
    image = client.get(image_src.group(1).replace("&amp;", "&"))
    assert image.status_code == 200 and image.headers["Content-Type"] == "image/png"
    decoded = zxingcpp.read_barcodes(Image.open(io.BytesIO(image.data)), formats=QR_ONLY)
    assert len(decoded) == 1
    with app.app_context():
        claims = tokens.verify(decoded[0].text, code_key_ring(), dt.datetime.now(dt.UTC))
        assert claims.code_id == record.id
        assert (claims.account_id, claims.amount_vnd) == (citizen.wallet_account_id, 500_000)
        typed = digits.group(1) + digits.group(2)
        assert codes.fallback_matches(record, typed, dt.datetime.now(dt.UTC))


@pytest.mark.parametrize(
    ("typed", "message"),
    [
        ("", "Hãy nhập số tiền"),
        ("200.5", "Số tiền phải là một số nguyên"),  # not 2.005 ₫
        ("abc", "Số tiền phải là một số nguyên"),
        ("-50000", "Số tiền phải lớn hơn 0"),  # a whole number, but not one to pay
        ("−50.000", "Số tiền phải lớn hơn 0"),  # noqa: RUF001 — a typographic minus
        ("0", "Số tiền phải lớn hơn 0"),
        ("- ", "Số tiền phải là một số nguyên"),
        # A slip of the keyboard, not "pay a multiple of 10.000 ₫, e.g. 999.999…".
        ("999999999999999999999", "Số tiền quá lớn"),
        ("12.345", "bội số của 10.000\u00a0₫"),
        ("1.600.000", "Số dư khả dụng không đủ"),
        ("５００００", "Số tiền phải là một số nguyên"),  # noqa: RUF001 — full-width digits
    ],
)
def test_bad_amounts_are_explained_and_nothing_is_reserved(
    app: Flask, client: FlaskClient, typed: str, message: str
) -> None:
    citizen = signed_in(app, client, balance_vnd=1_500_000)
    response = client.post("/rut-tien", data={"so_tien": typed})
    assert response.status_code == 400
    assert message in response.text
    assert available(app, citizen.wallet_account_id) == 1_500_000


def test_unverified_citizen_cannot_make_a_withdrawal_code(app: Flask, client: FlaskClient) -> None:
    citizen = signed_in(app, client, balance_vnd=500_000, verified=False)
    response = client.post("/rut-tien", data={"so_tien": "100000"})
    assert response.status_code == 400
    assert "xác minh" in response.text
    assert available(app, citizen.wallet_account_id) == 500_000


def test_cancel_releases_the_money_once(app: Flask, client: FlaskClient) -> None:
    citizen = signed_in(app, client, balance_vnd=800_000)
    client.post("/rut-tien", data={"so_tien": "300000"})
    record = the_code(app, citizen.id)
    assert client.post(f"/ma/{record.id}/huy").status_code == 303
    assert available(app, citizen.wallet_account_id) == 800_000
    assert the_code(app, citizen.id).status == CodeStatus.CANCELLED
    again = client.post(f"/ma/{record.id}/huy")
    assert again.status_code == 409
    assert "đã được dùng, huỷ hoặc hết hạn" in again.text
    assert client.get(f"/ma/{record.id}/qr.png").status_code == 410
    assert "Mã đã huỷ" in client.get(f"/ma/{record.id}").text


def test_another_citizens_code_is_not_found(app: Flask, client: FlaskClient) -> None:
    owner_client = app.test_client()
    owner = signed_in(app, owner_client, balance_vnd=300_000)
    owner_client.post("/rut-tien", data={"so_tien": "100000"})
    record = the_code(app, owner.id)
    signed_in(app, client, balance_vnd=300_000)
    for path in (f"/ma/{record.id}", f"/ma/{record.id}/qr.png"):
        assert client.get(path).status_code == 404
    assert client.post(f"/ma/{record.id}/huy").status_code == 404
    assert available(app, owner.wallet_account_id) == 200_000


def test_signed_out_visitor_is_sent_to_sign_in(app: Flask, client: FlaskClient) -> None:
    response = client.get("/rut-tien")
    assert response.status_code == 302
    assert "/dang-nhap" in response.headers["Location"]


def test_expired_code_releases_money_and_shows_expired(app: Flask, client: FlaskClient) -> None:
    citizen = signed_in(app, client, balance_vnd=400_000)
    client.post("/rut-tien", data={"so_tien": "400000"})
    record = the_code(app, citizen.id)
    later = record.expires_at + dt.timedelta(seconds=1)
    with app.app_context(), database.database().sessions() as db:
        assert ledger.balance(db, citizen.wallet_account_id, now=later).available == 400_000
        assert codes.expire_codes(db, later) >= 1
        db.commit()
    assert the_code(app, citizen.id).status == CodeStatus.EXPIRED
    assert available(app, citizen.wallet_account_id) == 400_000


def test_payment_code_for_a_bill(app: Flask, client: FlaskClient) -> None:
    citizen = signed_in(app, client, balance_vnd=900_000)
    with app.app_context(), database.database().sessions() as db:
        account = ledger.open_account(
            db, kind=AccountKind.BILLER, name="Điện lực", owner_ref=f"biller:{uuid.uuid4()}"
        )
        biller = Biller(name="Điện lực Hà Nội", kind=BillerKind.ELECTRICITY, account_id=account.id)
        db.add(biller)
        db.commit()
        biller_id = biller.id
    assert "Điện lực Hà Nội" in client.get("/thanh-toan-hoa-don").text
    bad = client.post(
        "/thanh-toan-hoa-don", data={"don_vi": biller_id, "ma_hoa_don": "PE 01/é", "so_tien": "10"}
    )
    assert bad.status_code == 400 and "Mã hoá đơn" in bad.text
    good = client.post(
        "/thanh-toan-hoa-don",
        data={"don_vi": biller_id, "ma_hoa_don": "pe0123456", "so_tien": "356.000"},
    )
    assert good.status_code == 303
    record = the_code(app, citizen.id)
    assert (record.kind, record.bill_reference, record.amount) == ("payment", "PE0123456", 356_000)
    assert available(app, citizen.wallet_account_id) == 544_000
    # The code says what it pays, for the citizen to check before handing the phone over.
    shown = client.get(good.headers["Location"])
    assert "Trả cho Điện lực Hà Nội, mã hoá đơn PE0123456" in shown.text


def test_fallback_digits_find_the_code_only_with_the_phone_and_lock_after_guesses(
    app: Flask, client: FlaskClient
) -> None:
    citizen = signed_in(app, client, balance_vnd=600_000)
    client.post("/rut-tien", data={"so_tien": "200000"})
    record = the_code(app, citizen.id)
    now = dt.datetime.now(dt.UTC)
    # A request context: the refusals are messages in the agent's language.
    with app.test_request_context():
        digits = codes.fallback_digits(record, now)
        wrong = f"{(int(digits) + 1) % 10**8:08d}"
        with database.database().sessions() as db:
            spaced = f"{digits[:4]} {digits[4:]}"
            assert codes.find_by_fallback(db, citizen.phone, spaced, now).id == record.id
            db.commit()  # as the counter's request would: the match cleared the count
            other_phone = citizen_support.unique_phone()
            with pytest.raises(codes.FallbackRefused, match="không khớp"):
                codes.find_by_fallback(db, other_phone, digits, now)
            with pytest.raises(codes.FallbackRefused, match="8 chữ số"):
                codes.find_by_fallback(db, citizen.phone, "1234", now)
            for _attempt in range(4):
                with pytest.raises(codes.FallbackRefused, match="không khớp"):
                    codes.find_by_fallback(db, citizen.phone, wrong, now)
            # The fifth wrong try locks the phone, and says so then.
            with pytest.raises(codes.FallbackRefused, match="nhiều lần"):
                codes.find_by_fallback(db, citizen.phone, wrong, now)
            # Locked now, even for the right digits: guessing 10^8 codes is out of reach.
            with pytest.raises(codes.FallbackRefused, match="nhiều lần"):
                codes.find_by_fallback(db, citizen.phone, digits, now)
        # A later window shows other digits; the ones just read out still work for one window.
        ttl = dt.timedelta(seconds=app.config["FALLBACK_CODE_TTL_S"])
        assert codes.fallback_matches(record, digits, now + ttl)
        assert not codes.fallback_matches(record, digits, now + 3 * ttl)


@pytest.mark.parametrize(
    ("typed", "message"),
    [
        ("12.000.000", "Số dư khả dụng không đủ để tạo mã với số tiền này."),
        ("12.005.000", "Bưu điện chỉ chi trả bội số của 10.000\u00a0₫"),
    ],
)
def test_an_amount_refused_anyway_is_refused_before_two_step_sign_in_is_asked_for(
    app: Flask, client: FlaskClient, typed: str, message: str
) -> None:
    # Above the step-up threshold (10.000.000 ₫), but more than the wallet holds, or not payable
    # in notes: the page says so instead of sending the citizen to set up two-step sign-in.
    citizen = signed_in(app, client, balance_vnd=2_000_000)
    response = client.post("/rut-tien", data={"so_tien": typed})
    assert response.status_code == 400
    assert message in response.text
    assert f'value="{typed}"' in response.text  # what was typed stays in the field
    assert available(app, citizen.wallet_account_id) == 2_000_000
    # Within the balance, the same amount still asks for the second factor first.
    rich_client = app.test_client()
    signed_in(app, rich_client, balance_vnd=20_000_000)
    asked = rich_client.post("/rut-tien", data={"so_tien": "12.000.000"})
    assert asked.status_code == 303 and "/xac-thuc-them" in asked.headers["Location"]
    # The step-up page leads back to the form with the amount, or home for a foreign target.
    step_up = rich_client.get(asked.headers["Location"]).text
    assert 'href="/rut-tien?so_tien=12000000"' in step_up
    assert "Quay lại, chọn số tiền khác" in step_up
    elsewhere = rich_client.get("/xac-thuc-them?next=//evil.example/x").text
    assert '<a href="/vi">← Quay lại' in elsewhere and 'href="//evil.example' not in elsewhere
