"""Paying a market stall through the citizen's pages, on SQLite and PostgreSQL: finding the stall
by typed code, photo of its QR or scanned payload; the PIN, the limits and the balance; paying
once per confirm form; refusing QR codes that are not Soft ATM stalls."""

from __future__ import annotations

import datetime as dt
import io
import re
import threading
import uuid
from urllib.parse import unquote

import pytest
from flask import Flask
from flask.testing import FlaskClient
from PIL import Image, ImageOps
from sqlalchemy import func, select
from werkzeug.datastructures import FileStorage
from werkzeug.test import stream_encode_multipart

import ledger
from kiosk import database, vietqr
from kiosk.auth.models import Throttle, WebSession
from kiosk.citizens import credentials
from kiosk.payments import merchants
from tests.kiosk import citizen_support
from tests.kiosk.test_merchant_stalls import register_stall

PIN = "246813"
ACQUIRER_BIN = "970499"
# NAPAS's published example 6.1.1 (corrected length): a static QR of another bank's account.
FOREIGN_BANK_QR = (
    "00020101021138570010A00000072701270006970403011300110123456780208QRIBFTTA53037045802VN63049E6F"
)


@pytest.fixture
def app(web_app: Flask) -> Flask:
    web_app.config["WTF_CSRF_ENABLED"] = False
    return web_app


def citizen_with_pin(app: Flask, client: FlaskClient, **options: object) -> citizen_support.Citizen:
    """A signed-in citizen (made by the shared test support) whose PIN is `PIN`."""
    citizen = citizen_support.make_citizen(app, **options)  # type: ignore[arg-type]
    with app.app_context(), database.database().sessions() as db:
        stored = db.get(citizen_support.Citizen, citizen.id)
        assert stored is not None
        stored.pin_hash = credentials.hash_pin(PIN)
        db.commit()
    citizen_support.sign_in(client, app, citizen)
    return citizen


@pytest.fixture
def stall(app: Flask) -> tuple[FlaskClient, str]:
    """A stall registered through the page by its owner: the owner's client and the code."""
    owner_client = app.test_client()
    citizen_with_pin(app, owner_client)
    return owner_client, register_stall(owner_client, "Rau sạch cô Mai")


@pytest.fixture
def buyer_client(app: Flask) -> FlaskClient:
    return app.test_client()


def balance(app: Flask, account_id: int) -> int:
    with app.app_context(), database.database().sessions() as db:
        return ledger.balance(db, account_id).posted


def stall_account(app: Flask, stall_code: str) -> int:
    with app.app_context(), database.database().sessions() as db:
        merchant = merchants.find_stall(db, stall_code)
        assert merchant is not None
        return merchant.account_id


def merchant_transfers(app: Flask, stall_code: str) -> int:
    account_id = stall_account(app, stall_code)
    with app.app_context(), database.database().sessions() as db:
        count = db.scalar(
            select(func.count())
            .select_from(ledger.Transfer)
            .where(ledger.Transfer.credit_account_id == account_id)
        )
        return int(count or 0)


def payment_key(confirm_page: str) -> str:
    match = re.search(r'name="khoa" value="([^"]+)"', confirm_page)
    assert match is not None, confirm_page
    return match.group(1)


def confirm(
    client: FlaskClient, confirm_page: str, stall_code: str, amount: str, pin: str = PIN
) -> tuple[int, str, str]:
    """Submit the confirm form shown on `confirm_page`; return the status, text and location."""
    data = {"khoa": payment_key(confirm_page), "ma_quay": stall_code, "so_tien": amount}
    payload = re.search(r'name="ma_qr" value="([^"]+)"', confirm_page)
    if payload is not None:
        data["ma_qr"] = payload.group(1).replace("&amp;", "&")
    data["ma_pin"] = pin
    response = client.post("/tra-tien/xac-nhan", data=data)
    return response.status_code, response.text, response.headers.get("Location", "")


def qr_photo(png: bytes) -> bytes:
    """The printed QR as a phone might photograph it: smaller, turned a little, on a grey
    table, saved as JPEG."""
    code = Image.open(io.BytesIO(png)).convert("L")
    code = code.resize((code.width // 2, code.height // 2))
    code = code.rotate(7, expand=True, fillcolor=255)
    table = Image.new("L", (1200, 1600), 110)
    table.paste(code, (200, 400))
    table = ImageOps.autocontrast(table)
    buffer = io.BytesIO()
    table.convert("RGB").save(buffer, format="JPEG", quality=80)
    return buffer.getvalue()


def test_paying_a_stall_by_its_typed_code(
    app: Flask, stall: tuple[FlaskClient, str], buyer_client: FlaskClient
) -> None:
    owner_client, stall_code = stall
    buyer = citizen_with_pin(app, buyer_client, balance_vnd=200_000)

    first = buyer_client.get("/tra-tien")
    assert first.status_code == 200
    assert 'capture="environment"' in first.text
    assert "merchants.js" in first.text

    found = buyer_client.post("/tra-tien", data={"ma_quay": stall_code.lower()})
    assert found.status_code == 200
    assert "Rau sạch cô Mai" in found.text
    assert "Phường Văn Miếu - Quốc Tử Giám" in found.text
    assert "200.000\u00a0₫" in found.text

    status, _, location = confirm(buyer_client, found.text, stall_code, "25.000")
    assert status == 303
    assert "/tra-tien/bien-lai/" in location
    assert balance(app, buyer.wallet_account_id) == 175_000
    assert balance(app, stall_account(app, stall_code)) == 25_000

    receipt = buyer_client.get(location)
    assert receipt.status_code == 200
    assert "25.000\u00a0₫" in receipt.text
    assert "Rau sạch cô Mai" in receipt.text
    reference = re.search(r'class="receipt-reference">([0-9A-F]{8})<', receipt.text)
    assert reference is not None

    # The owner sees the payment, with the same reference, and what the stall received.
    mine = owner_client.get("/cho")
    assert "+25.000\u00a0₫" in mine.text
    assert reference.group(1) in mine.text

    # Nobody else can open the payer's receipt.
    assert owner_client.get(location).status_code == 404


def test_paying_a_stall_from_a_photo_of_its_printed_qr(
    app: Flask, stall: tuple[FlaskClient, str], buyer_client: FlaskClient
) -> None:
    owner_client, stall_code = stall
    buyer = citizen_with_pin(app, buyer_client, balance_vnd=100_000)
    photo = qr_photo(owner_client.get(f"/cho/{stall_code}/qr.png").data)

    found = buyer_client.post(
        "/tra-tien",
        data={"anh_qr": (io.BytesIO(photo), "IMG_0001.jpg", "image/jpeg")},
        content_type="multipart/form-data",
    )
    assert found.status_code == 200, found.text
    assert "Rau sạch cô Mai" in found.text

    status, _, _location = confirm(buyer_client, found.text, stall_code, "40000")
    assert status == 303
    assert balance(app, buyer.wallet_account_id) == 60_000
    assert balance(app, stall_account(app, stall_code)) == 40_000


@pytest.mark.parametrize("content", [b"not a picture", b""])
def test_a_photo_without_a_readable_qr_is_explained(
    app: Flask, buyer_client: FlaskClient, content: bytes
) -> None:
    citizen_with_pin(app, buyer_client)
    blank = io.BytesIO()
    Image.new("L", (400, 400), 255).save(blank, format="PNG")
    for data in (content, blank.getvalue()):
        response = buyer_client.post(
            "/tra-tien",
            data={"anh_qr": (io.BytesIO(data), "anh.png", "image/png")},
            content_type="multipart/form-data",
        )
        assert response.status_code == 400
        assert "Không đọc được mã QR trong ảnh" in response.text


def test_a_phone_sized_photo_is_not_refused_for_its_size(
    app: Flask, buyer_client: FlaskClient
) -> None:
    """Photos from phone cameras are often several megabytes: above the site-wide limit."""
    citizen_with_pin(app, buyer_client)
    photo = b"\xff\xd8\xff" + bytes(4 * 1024 * 1024)
    # Encoded here in memory: the test client would spool a body this large to a temporary
    # file that it never closes.
    body, _length, boundary = stream_encode_multipart(
        {"anh_qr": FileStorage(io.BytesIO(photo), "IMG_0002.jpg", content_type="image/jpeg")},
        use_tempfile=False,
    )
    response = buyer_client.post(
        "/tra-tien",
        data=body.read(),
        content_type=f"multipart/form-data; boundary={boundary}",
    )
    assert response.status_code == 400
    assert "Không đọc được mã QR trong ảnh" in response.text


def test_paying_a_stall_by_a_scanned_payload(
    app: Flask, stall: tuple[FlaskClient, str], buyer_client: FlaskClient
) -> None:
    owner_client, stall_code = stall
    buyer = citizen_with_pin(app, buyer_client, balance_vnd=100_000)
    from tests.kiosk.test_merchant_stalls import decode_png

    payload = decode_png(owner_client.get(f"/cho/{stall_code}/qr.png").data)
    # As merchants.js submits it: the text the camera read, in the hidden field.
    found = buyer_client.post("/tra-tien", data={"ma_qr": payload + "\n"})
    assert found.status_code == 200
    assert "Rau sạch cô Mai" in found.text

    status, _, _location = confirm(buyer_client, found.text, stall_code, "15.000 đ")
    assert status == 303
    assert balance(app, buyer.wallet_account_id) == 85_000


def test_a_dynamic_qr_fixes_the_amount(
    app: Flask, stall: tuple[FlaskClient, str], buyer_client: FlaskClient
) -> None:
    _, stall_code = stall
    buyer = citizen_with_pin(app, buyer_client, balance_vnd=100_000)
    payload = vietqr.encode_merchant_qr(
        bank_bin=ACQUIRER_BIN, account_number=stall_code, amount_vnd=32_000, merchant_name="RAU"
    )
    found = buyer_client.post("/tra-tien", data={"ma_qr": payload})
    assert found.status_code == 200
    assert 'value="32.000\u00a0₫" readonly' in found.text

    # A changed amount in the (read-only) field does not change what is paid.
    status, _, _location = confirm(buyer_client, found.text, stall_code, "1.000")
    assert status == 303
    assert balance(app, buyer.wallet_account_id) == 68_000
    assert balance(app, stall_account(app, stall_code)) == 32_000


def test_a_wrong_pin_is_refused_counted_and_moves_nothing(
    app: Flask, stall: tuple[FlaskClient, str], buyer_client: FlaskClient
) -> None:
    _, stall_code = stall
    buyer = citizen_with_pin(app, buyer_client, balance_vnd=100_000)
    found = buyer_client.post("/tra-tien", data={"ma_quay": stall_code})

    status, text, _ = confirm(buyer_client, found.text, stall_code, "20.000", pin="999999")
    assert status == 400
    assert "Mã PIN không đúng" in text
    # The form comes back with the same key and amount, ready to try again.
    assert payment_key(text) == payment_key(found.text)
    assert 'value="20.000"' in text
    assert balance(app, buyer.wallet_account_id) == 100_000
    assert merchant_transfers(app, stall_code) == 0
    with app.app_context(), database.database().sessions() as db:
        throttle = db.get(Throttle, f"pin:{buyer.phone}")
        assert throttle is not None
        assert throttle.failures == 1

    # The right PIN then pays, and clears the counter.
    status, _, _ = confirm(buyer_client, text, stall_code, "20.000")
    assert status == 303
    assert balance(app, buyer.wallet_account_id) == 80_000
    with app.app_context(), database.database().sessions() as db:
        assert db.get(Throttle, f"pin:{buyer.phone}") is None


def test_too_many_wrong_pins_lock_payments(
    app: Flask, stall: tuple[FlaskClient, str], buyer_client: FlaskClient
) -> None:
    _, stall_code = stall
    buyer = citizen_with_pin(app, buyer_client, balance_vnd=100_000)
    found = buyer_client.post("/tra-tien", data={"ma_quay": stall_code})
    for _attempt in range(4):
        status, text, _ = confirm(buyer_client, found.text, stall_code, "1.000", pin="999999")
        assert "Mã PIN không đúng" in text
    # The fifth wrong PIN locks, and the buyer reads so then.
    status, text, _ = confirm(buyer_client, found.text, stall_code, "1.000", pin="999999")
    assert status == 400 and "quá nhiều lần" in text
    status, text, _ = confirm(buyer_client, found.text, stall_code, "1.000")
    assert status == 400
    assert "quá nhiều lần" in text
    assert balance(app, buyer.wallet_account_id) == 100_000


def test_insufficient_funds_are_explained_and_nothing_moves(
    app: Flask, stall: tuple[FlaskClient, str], buyer_client: FlaskClient
) -> None:
    _, stall_code = stall
    buyer = citizen_with_pin(app, buyer_client, balance_vnd=10_000)
    found = buyer_client.post("/tra-tien", data={"ma_quay": stall_code})

    status, text, _ = confirm(buyer_client, found.text, stall_code, "10.001")
    assert status == 400
    assert "Số dư trong ví không đủ" in text
    assert "Rau sạch cô Mai" in text
    assert balance(app, buyer.wallet_account_id) == 10_000
    assert merchant_transfers(app, stall_code) == 0
    # Not the PIN's fault: no attempt was counted against it.
    with app.app_context(), database.database().sessions() as db:
        assert db.get(Throttle, f"pin:{buyer.phone}") is None


def test_an_unverified_citizen_is_refused_by_the_limits(
    app: Flask, stall: tuple[FlaskClient, str], buyer_client: FlaskClient
) -> None:
    _, stall_code = stall
    buyer = citizen_with_pin(app, buyer_client, balance_vnd=50_000, verified=False)
    found = buyer_client.post("/tra-tien", data={"ma_quay": stall_code})

    status, text, _ = confirm(buyer_client, found.text, stall_code, "5.000")
    assert status == 400
    assert "chưa được xác minh" in text
    assert balance(app, buyer.wallet_account_id) == 50_000
    assert merchant_transfers(app, stall_code) == 0


def test_a_double_submit_pays_once_and_shows_the_same_receipt(
    app: Flask, stall: tuple[FlaskClient, str], buyer_client: FlaskClient
) -> None:
    _, stall_code = stall
    buyer = citizen_with_pin(app, buyer_client, balance_vnd=100_000)
    found = buyer_client.post("/tra-tien", data={"ma_quay": stall_code})

    first = confirm(buyer_client, found.text, stall_code, "30.000")
    again = confirm(buyer_client, found.text, stall_code, "30.000")
    assert first[0] == again[0] == 303
    assert first[2] == again[2]
    assert merchant_transfers(app, stall_code) == 1
    assert balance(app, buyer.wallet_account_id) == 70_000

    # The same form with another amount is not a second payment either.
    status, text, _ = confirm(buyer_client, found.text, stall_code, "31.000")
    assert status == 400
    assert "đã được dùng" in text
    assert payment_key(text) != payment_key(found.text)
    assert merchant_transfers(app, stall_code) == 1


def test_a_fresh_form_is_a_new_payment(
    app: Flask, stall: tuple[FlaskClient, str], buyer_client: FlaskClient
) -> None:
    _, stall_code = stall
    citizen_with_pin(app, buyer_client, balance_vnd=100_000)
    for _time in range(2):
        found = buyer_client.post("/tra-tien", data={"ma_quay": stall_code})
        assert confirm(buyer_client, found.text, stall_code, "10.000")[0] == 303
    assert merchant_transfers(app, stall_code) == 2


@pytest.mark.parametrize(
    ("payload", "message"),
    [
        (FOREIGN_BANK_QR, "không phải của quầy hàng ATM mềm"),
        # Our BIN but the card service: not a stall.
        (
            vietqr.encode_merchant_qr(
                bank_bin=ACQUIRER_BIN,
                account_number="9704990123456789",
                service=vietqr.TransferService.TO_CARD,
            ),
            "không phải của quầy hàng ATM mềm",
        ),
        # Our BIN and an account number that is no stall.
        (
            vietqr.encode_merchant_qr(bank_bin=ACQUIRER_BIN, account_number="ZZZZZZZZ"),
            "không có quầy hàng nào như vậy",
        ),
        (FOREIGN_BANK_QR[:-1] + "0", "sai mã kiểm tra"),
        ("https://example.com/pay", "không có mã kiểm tra"),
    ],
)
def test_a_qr_that_is_not_a_soft_atm_stall_is_refused(
    app: Flask, buyer_client: FlaskClient, payload: str, message: str
) -> None:
    buyer = citizen_with_pin(app, buyer_client, balance_vnd=10_000)
    response = buyer_client.post("/tra-tien", data={"ma_qr": payload})
    assert response.status_code == 400
    assert message in response.text
    assert balance(app, buyer.wallet_account_id) == 10_000


def test_a_foreign_qr_in_the_confirm_form_is_refused_too(
    app: Flask, stall: tuple[FlaskClient, str], buyer_client: FlaskClient
) -> None:
    _, stall_code = stall
    buyer = citizen_with_pin(app, buyer_client, balance_vnd=10_000)
    response = buyer_client.post(
        "/tra-tien/xac-nhan",
        data={
            "khoa": merchants.new_payment_key(),
            "ma_quay": stall_code,
            "ma_qr": FOREIGN_BANK_QR,
            "so_tien": "1000",
            "ma_pin": PIN,
        },
    )
    assert response.status_code == 400
    assert "không phải của quầy hàng ATM mềm" in response.text
    assert balance(app, buyer.wallet_account_id) == 10_000


@pytest.mark.parametrize(
    ("typed", "message"),
    [("ZZZZZZZZ", "Không có quầy hàng nào mang mã ZZZZZZZZ"), ("12345", "gồm 8 ký tự"), ("", "")],
)
def test_an_unknown_or_malformed_stall_code_is_explained(
    app: Flask, buyer_client: FlaskClient, typed: str, message: str
) -> None:
    citizen_with_pin(app, buyer_client)
    response = buyer_client.post("/tra-tien", data={"ma_quay": typed})
    assert response.status_code == 400
    assert message in response.text


def test_a_citizen_cannot_pay_their_own_stall(app: Flask) -> None:
    client = app.test_client()
    owner = citizen_with_pin(app, client, balance_vnd=50_000)
    stall_code = register_stall(client)
    response = client.post("/tra-tien", data={"ma_quay": stall_code})
    assert response.status_code == 400
    assert "quầy hàng của chính bạn" in response.text

    # Nor by posting the confirm form directly.
    response = client.post(
        "/tra-tien/xac-nhan",
        data={
            "khoa": merchants.new_payment_key(),
            "ma_quay": stall_code,
            "so_tien": "1000",
            "ma_pin": PIN,
        },
    )
    assert response.status_code == 400
    assert balance(app, owner.wallet_account_id) == 50_000


@pytest.mark.parametrize(("amount", "message"), [("", "Hãy nhập số tiền"), ("abc", "số nguyên")])
def test_a_missing_or_bad_amount_is_explained(
    app: Flask,
    stall: tuple[FlaskClient, str],
    buyer_client: FlaskClient,
    amount: str,
    message: str,
) -> None:
    _, stall_code = stall
    citizen_with_pin(app, buyer_client, balance_vnd=10_000)
    found = buyer_client.post("/tra-tien", data={"ma_quay": stall_code})
    status, text, _ = confirm(buyer_client, found.text, stall_code, amount)
    assert status == 400
    assert message in text
    assert merchant_transfers(app, stall_code) == 0


def test_a_tampered_payment_key_is_refused(
    app: Flask, stall: tuple[FlaskClient, str], buyer_client: FlaskClient
) -> None:
    _, stall_code = stall
    citizen_with_pin(app, buyer_client, balance_vnd=10_000)
    response = buyer_client.post(
        "/tra-tien/xac-nhan",
        data={"khoa": "x", "ma_quay": stall_code, "so_tien": "1000", "ma_pin": PIN},
    )
    assert response.status_code == 400
    assert "Biểu mẫu thanh toán không hợp lệ" in response.text
    assert merchant_transfers(app, stall_code) == 0


def test_a_receipt_of_something_else_is_not_found(app: Flask, buyer_client: FlaskClient) -> None:
    citizen_with_pin(app, buyer_client)
    assert buyer_client.get(f"/tra-tien/bien-lai/{uuid.uuid4()}").status_code == 404


def test_a_double_tap_reaching_two_workers_at_once_pays_once(
    app: Flask, stall: tuple[FlaskClient, str]
) -> None:
    _, stall_code = stall
    first_client = app.test_client()
    buyer = citizen_with_pin(app, first_client, balance_vnd=100_000)
    second_client = app.test_client()
    citizen_support.sign_in(second_client, app, buyer)
    found = first_client.post("/tra-tien", data={"ma_quay": stall_code})
    start = threading.Barrier(2)
    answers: list[tuple[int, str, str]] = []

    def tap(client: FlaskClient) -> None:
        start.wait()
        answers.append(confirm(client, found.text, stall_code, "30.000"))

    threads = [threading.Thread(target=tap, args=(c,)) for c in (first_client, second_client)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert [status for status, _, _ in answers] == [303, 303]
    assert answers[0][2] == answers[1][2]
    assert merchant_transfers(app, stall_code) == 1
    assert balance(app, buyer.wallet_account_id) == 70_000


def test_a_balance_spent_in_the_meantime_is_refused_by_the_ledger(
    app: Flask,
    stall: tuple[FlaskClient, str],
    buyer_client: FlaskClient,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    _, stall_code = stall
    buyer = citizen_with_pin(app, buyer_client, balance_vnd=10_000)
    found = buyer_client.post("/tra-tien", data={"ma_quay": stall_code})
    # As if another payment had spent the money between the early check and the transfer.
    monkeypatch.setattr(merchants, "available_balance", lambda *_args: 10**9)

    status, text, _ = confirm(buyer_client, found.text, stall_code, "20.000")
    assert status == 400
    assert "Số dư trong ví không đủ" in text
    # The refused transfer was undone to its savepoint: the page could still read the stall.
    assert "Rau sạch cô Mai" in text
    assert balance(app, buyer.wallet_account_id) == 10_000
    assert merchant_transfers(app, stall_code) == 0


def test_a_large_payment_needs_the_second_factor_first(
    app: Flask, stall: tuple[FlaskClient, str], buyer_client: FlaskClient
) -> None:
    _, stall_code = stall
    buyer = citizen_with_pin(app, buyer_client, balance_vnd=12_000_000)
    found = buyer_client.post("/tra-tien", data={"ma_quay": stall_code})

    status, _, location = confirm(buyer_client, found.text, stall_code, "10.000.001")
    assert status == 303
    assert location.startswith("/xac-thuc-them?next=")
    back = unquote(location.split("next=", 1)[1])
    assert back == f"/tra-tien/quay/{stall_code}?so_tien=10000001"
    assert merchant_transfers(app, stall_code) == 0

    # Back from the step-up page: the form again, with the amount filled in.
    again = buyer_client.get(back)
    assert again.status_code == 200
    assert 'value="10000001"' in again.text
    with app.app_context(), database.database().sessions() as db:
        for web_session in db.scalars(
            select(WebSession).where(
                WebSession.principal_kind == "citizen", WebSession.principal_id == buyer.id
            )
        ):
            web_session.step_up_at = dt.datetime.now(dt.UTC)
        db.commit()
    status, _, location = confirm(buyer_client, again.text, stall_code, "10000001")
    assert status == 303
    assert "/tra-tien/bien-lai/" in location
    assert balance(app, buyer.wallet_account_id) == 1_999_999


def test_the_pages_need_a_signed_in_citizen(app: Flask) -> None:
    client = app.test_client()
    for path in ("/tra-tien", "/cho", "/cho/dang-ky", "/cho/ZZZZZZZZ/in"):
        response = client.get(path)
        assert response.status_code == 302
        assert response.headers["Location"].startswith("/dang-nhap")
    assert client.post("/tra-tien/xac-nhan", data={}).status_code == 302
