"""The account QR: its text round-trips, a forged or altered one is refused, and the PNG the
page serves decodes to the same text."""

from __future__ import annotations

import io

import pytest
import zxingcpp
from flask import Flask
from flask.testing import FlaskClient
from PIL import Image

from kiosk.codes.photo import QR_ONLY
from kiosk.wallet.account_qr import (
    ACCOUNT_QR_MODULE_SIZE_PX,
    ACCOUNT_QR_QUIET_ZONE_MODULES,
    AccountQrError,
    AccountQrForged,
    AccountQrMalformed,
    encode_account_qr,
    mask_phone,
    parse_account_qr,
)
from tests.kiosk.conftest import TEST_SECRET_KEY
from tests.kiosk.wallet_support import make_citizen, sign_in

KEY = "k" * 48
OTHER_KEY = "j" * 48


@pytest.mark.parametrize("citizen_id", [1, 42, 123_456, 10**12 - 1, 2**63 - 1])
def test_round_trip(citizen_id: int) -> None:
    text = encode_account_qr(citizen_id, secret_key=KEY)
    assert text.startswith(f"SATM-ACC:{citizen_id}:")
    assert parse_account_qr(text, secret_key=KEY) == citizen_id


def test_scanner_noise_is_tolerated() -> None:
    text = encode_account_qr(77, secret_key=KEY)
    # A keyboard-wedge scanner adds a newline; with Caps Lock on it types lower case.
    assert parse_account_qr(f"  {text.lower()}\r\n", secret_key=KEY) == 77


def test_the_tag_binds_the_citizen_id() -> None:
    text = encode_account_qr(1001, secret_key=KEY)
    tag = text.rsplit(":", 1)[1]
    # Someone else's id with this citizen's tag: refused.
    with pytest.raises(AccountQrForged):
        parse_account_qr(f"SATM-ACC:1002:{tag}", secret_key=KEY)


def test_every_altered_tag_character_is_refused() -> None:
    text = encode_account_qr(5, secret_key=KEY)
    prefix, tag = text.rsplit(":", 1)
    for index, character in enumerate(tag):
        replacement = "A" if character != "A" else "B"
        forged = f"{prefix}:{tag[:index]}{replacement}{tag[index + 1 :]}"
        with pytest.raises(AccountQrForged):
            parse_account_qr(forged, secret_key=KEY)


def test_a_qr_made_with_another_key_is_refused() -> None:
    with pytest.raises(AccountQrForged):
        parse_account_qr(encode_account_qr(5, secret_key=OTHER_KEY), secret_key=KEY)


@pytest.mark.parametrize(
    "text",
    [
        "",
        "SATM-ACC:",
        "SATM-ACC:5",
        "SATM-ACC:5:",
        "SATM-ACC:05:AAAAAAAAAAAAAAAA",  # leading zero: one citizen has one text
        "SATM-ACC:0:AAAAAAAAAAAAAAAA",
        "SATM-ACC:-5:AAAAAAAAAAAAAAAA",
        "SATM-ACC:5:AAAAAAAAAAAAAAA",  # 15 characters
        "SATM-ACC:5:AAAAAAAAAAAAAAAAA",  # 17 characters
        "SATM-ACC:5:AAAAAAAAAAAAAAA1",  # 1 is not Base32
        "SATM-ACC:9223372036854775808:AAAAAAAAAAAAAAAA",  # 2**63
        "SATM-ACC:5:AAAAAAAA AAAAAAAA",
        "SATM-ACC:\u0665:AAAAAAAAAAAAAAAA",  # an Arabic-Indic digit five
        "\u017fATM-ACC:5:AAAAAAAAAAAAAAAA",  # long s, which upper() turns into S
        "SATM-CODE:5:AAAAAAAAAAAAAAAA",
        "https://example.com/SATM-ACC:5:AAAAAAAAAAAAAAAA",
        "SATM-ACC:5:AAAAAAAAAAAAAAAA" + " " * 200,
        "00020101021138570010A000000727",  # a VietQR payload
    ],
)
def test_malformed_texts_are_refused(text: str) -> None:
    with pytest.raises(AccountQrMalformed):
        parse_account_qr(text, secret_key=KEY)


def test_errors_share_one_base_for_the_agent_portal() -> None:
    assert issubclass(AccountQrForged, AccountQrError)
    assert issubclass(AccountQrMalformed, AccountQrError)
    assert issubclass(AccountQrError, ValueError)


@pytest.mark.parametrize("bad", [0, -1, 2**63, True])
def test_encode_refuses_impossible_ids(bad: int) -> None:
    with pytest.raises((ValueError, TypeError)):
        encode_account_qr(bad, secret_key=KEY)


def test_the_app_key_is_used_inside_the_app(app: Flask) -> None:
    with app.app_context():
        text = encode_account_qr(9)
        assert parse_account_qr(text) == 9
    assert text == encode_account_qr(9, secret_key=TEST_SECRET_KEY)


def test_the_served_png_decodes_to_the_citizens_qr_text(
    web_app: Flask, web_client: FlaskClient
) -> None:
    owner = make_citizen(web_app)
    sign_in(web_client, web_app, owner)

    response = web_client.get("/vi/ma-tai-khoan.png")

    assert response.status_code == 200
    assert response.mimetype == "image/png"
    assert response.headers["Cache-Control"] == "no-store"
    image = Image.open(io.BytesIO(response.get_data()))
    results = zxingcpp.read_barcodes(image, formats=QR_ONLY)
    assert len(results) == 1
    expected = encode_account_qr(owner.citizen_id, secret_key=TEST_SECRET_KEY)
    assert results[0].text == expected
    assert results[0].format == zxingcpp.BarcodeFormat.QRCode
    assert results[0].ec_level == "M"
    with web_app.app_context():
        assert parse_account_qr(results[0].text) == owner.citizen_id
    # Whole pixels per module and a quiet zone: version 2 is 25 modules, 33 with the zone.
    modules = 25 if owner.citizen_id < 10**12 else 29
    side = (modules + 2 * ACCOUNT_QR_QUIET_ZONE_MODULES) * ACCOUNT_QR_MODULE_SIZE_PX
    assert image.size == (side, side)
    assert image.getpixel((0, 0)) == image.getpixel((side - 1, side - 1)) != 0
    assert len(response.get_data()) < 2_000  # a few hundred bytes over 3G


@pytest.mark.parametrize(
    ("phone", "masked"), [("0912345678", "0912•••678"), ("0387654321", "0387•••321")]
)
def test_mask_phone(phone: str, masked: str) -> None:
    assert mask_phone(phone) == masked
