"""Market stalls through the citizen's pages, on SQLite and PostgreSQL: registering a stall, the
owner's list, and the printable static VietQR (decoded from the PNG the page serves)."""

from __future__ import annotations

import io
import re
from collections.abc import Callable

import pytest
import zxingcpp
from flask import Flask
from flask.testing import FlaskClient
from PIL import Image
from sqlalchemy import select

import ledger
from kiosk import database, demo, vietqr
from kiosk.codes.photo import QR_ONLY
from kiosk.payments import merchants
from kiosk.payments.models import Merchant
from ledger import AccountKind
from tests.kiosk import citizen_support

ACQUIRER_BIN = "970499"


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


def stalls_owned_by(app: Flask, citizen_id: int) -> list[Merchant]:
    with app.app_context(), database.database().sessions() as db:
        found = list(db.scalars(select(Merchant).where(Merchant.owner_citizen_id == citizen_id)))
        db.expunge_all()
        return found


def register_stall(client: FlaskClient, name: str = "Rau sạch cô Mai") -> str:
    """Register a stall through the page as the client's citizen; return its stall code."""
    response = client.post("/cho/dang-ky", data={"ten_quay": name})
    assert response.status_code == 303, response.text
    match = re.fullmatch(r".*/cho/([A-Z0-9]{8})/in", response.headers["Location"])
    assert match is not None, response.headers["Location"]
    return match.group(1)


def decode_png(png: bytes) -> str:
    found = zxingcpp.read_barcodes(Image.open(io.BytesIO(png)), formats=QR_ONLY)
    assert len(found) == 1
    assert found[0].format == zxingcpp.BarcodeFormat.QRCode
    text: str = found[0].text
    return text


def test_a_citizen_registers_a_stall_with_its_own_merchant_account(
    app: Flask, client: FlaskClient
) -> None:
    citizen = signed_in(app, client, verified=False)
    form = client.get("/cho/dang-ky")
    assert form.status_code == 200
    assert "Phường Văn Miếu - Quốc Tử Giám" in form.text
    assert "không cần xác minh" in form.text

    stall_code = register_stall(client, "  Rau   sạch cô Mai ")

    [merchant] = stalls_owned_by(app, citizen.id)
    assert merchant.stall_code == stall_code
    assert set(stall_code) <= set(merchants.STALL_CODE_ALPHABET)
    assert not set(stall_code) & set("0O1I")
    assert merchant.stall_name == "Rau sạch cô Mai"
    assert merchant.commune_code == citizen_support.DEFAULT_COMMUNE
    with app.app_context(), database.database().sessions() as db:
        account = ledger.get_account(db, merchant.account_id)
        assert account.kind == AccountKind.MERCHANT
        assert account.id != citizen.wallet_account_id

    mine = client.get("/cho")
    assert mine.status_code == 200
    assert "Rau sạch cô Mai" in mine.text
    assert stall_code in mine.text
    assert "0\u00a0₫" in mine.text
    assert "Chưa có ai trả tiền" in mine.text


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("M", "từ 2 đến 60 ký tự"),
        ("M" * 61, "từ 2 đến 60 ký tự"),
        ("   ", "từ 2 đến 60 ký tự"),
        ("Quầy 🍜 phở", "chỉ gồm chữ cái"),
        ("<script>", "chỉ gồm chữ cái"),
        ("---", "chỉ gồm chữ cái"),
    ],
)
def test_a_bad_stall_name_is_explained_and_nothing_is_registered(
    app: Flask, client: FlaskClient, name: str, message: str
) -> None:
    citizen = signed_in(app, client)
    response = client.post("/cho/dang-ky", data={"ten_quay": name})
    assert response.status_code == 400
    assert message in response.text.lower() or message in response.text
    assert stalls_owned_by(app, citizen.id) == []


def test_the_printed_qr_is_a_static_vietqr_naming_the_stall(
    app: Flask, client: FlaskClient
) -> None:
    signed_in(app, client)
    stall_code = register_stall(client, "Bún chả Hương Liên của bà Tư")

    page = client.get(f"/cho/{stall_code}/in")
    assert page.status_code == 200
    assert "Bún chả Hương Liên của bà Tư" in page.text
    assert f"{stall_code[:4]} {stall_code[4:]}" in page.text
    assert f"/cho/{stall_code}/qr.png" in page.text
    assert "merchants.css" in page.text

    picture = client.get(f"/cho/{stall_code}/qr.png")
    assert picture.status_code == 200
    assert picture.mimetype == "image/png"
    assert picture.headers["Cache-Control"] == "no-store"
    image = Image.open(io.BytesIO(picture.data))
    assert image.width >= 900

    payload = decode_png(picture.data)
    assert vietqr.payload_crc(payload[:-4]) == payload[-4:]
    parsed = vietqr.parse_merchant_qr(payload)
    assert parsed.initiation is vietqr.Initiation.STATIC
    assert parsed.bank_bin == ACQUIRER_BIN
    assert parsed.account_number == stall_code
    assert parsed.service is vietqr.TransferService.TO_ACCOUNT
    assert parsed.amount_vnd is None
    # Folded to ASCII, upper case, cut to the EMVCo lengths (25 and 15 characters).
    assert parsed.merchant_name == "BUN CHA HUONG LIEN CUA BA"
    assert parsed.merchant_city == "VAN MIEU - QUOC"
    assert "00020101021138" in payload
    assert "0010A000000727" in payload
    assert "0208QRIBFTTA" in payload
    assert "5303704" in payload
    assert "5802VN" in payload


def test_only_the_owner_can_print_a_stall(app: Flask) -> None:
    owner_client = app.test_client()
    signed_in(app, owner_client)
    stall_code = register_stall(owner_client)

    other_client = app.test_client()
    signed_in(app, other_client)
    assert other_client.get(f"/cho/{stall_code}/in").status_code == 404
    assert other_client.get(f"/cho/{stall_code}/qr.png").status_code == 404
    assert other_client.get("/cho/ZZZZZZZZ/in").status_code == 404
    # The other citizen's own list does not show it.
    assert stall_code not in other_client.get("/cho").text


def test_the_demo_stall_code_can_be_typed_at_the_pay_page() -> None:
    code, _name = demo.DEMO_STALL
    assert merchants.normalise_stall_code(code.lower()) == code


def test_the_acquirer_bin_comes_from_the_configuration(
    make_app: Callable[..., Flask], database_url: str
) -> None:
    app = make_app(DATABASE_URL=database_url, VIETQR_ACQUIRER_BIN="970488")
    app.config["WTF_CSRF_ENABLED"] = False
    try:
        client = app.test_client()
        signed_in(app, client)
        stall_code = register_stall(client)
        payload = decode_png(client.get(f"/cho/{stall_code}/qr.png").data)
        assert vietqr.parse_merchant_qr(payload).bank_bin == "970488"
    finally:
        database.dispose(app)


@pytest.mark.parametrize(
    ("typed", "expected"),
    [("7kq2m9tx", "7KQ2M9TX"), (" 7KQ2-M9TX ", "7KQ2M9TX"), ("7KQ2 M9TX", "7KQ2M9TX")],
)
def test_typed_stall_codes_ignore_case_spaces_and_dashes(typed: str, expected: str) -> None:
    assert merchants.normalise_stall_code(typed) == expected


@pytest.mark.parametrize("typed", ["", "7KQ2M9T", "7KQ2M9TXX", "7KQ2M9T0", "OKQ2M9TX", "7KQ2M9T!"])
def test_malformed_stall_codes_are_refused(make_app: Callable[..., Flask], typed: str) -> None:
    with make_app().test_request_context(), pytest.raises(merchants.MerchantRefused) as refused:
        merchants.normalise_stall_code(typed)
    assert refused.value.code == "stall_code_invalid"
