"""VietQR payloads: the CRC, published examples, refusals with their reasons, the PNG picture.

Where the samples come from
---------------------------
NAPAS: "Technical Specifications on NAPAS QR Switching, Part IV: QR Code Format", version 1.5.2
(January 2021), examples 6.1.1-6.1.4. Not read here from NAPAS's own PDF: transcribed from the
strings that several open-source VietQR libraries test against as the NAPAS examples, e.g.
binhnguyenduc/vietqr-ts tests/compliance/napas-static-account.test.ts, napas-static-card.test.ts
and napas-dynamic-account.test.ts. Every one's CRC checks, so each string is as published, down
to the character. Example 6.1.1 declares the account "0011012345678" (13 characters) with length
"12": the published string is malformed, and the parser must refuse it (vietqr-ts notes the same
erratum and uses the corrected string, whose CRC is 9E6F).

Libraries' documentation, each the output printed in the README for the inputs shown there:
napas-qr (github.com/duyquoc1508/napas-qr), vietnam-qr-pay (npm package README) and subiz/vietqr
(github.com/subiz/vietqr). Two more READMEs print payloads this parser refuses on purpose:
thanhtinhpas1/vietqr-parser (payload format "00") and liopay/vietqr-php (a QRPUSH merchant code
without a service code). The ATM cash-withdrawal string ("QRCASH", NGUYEN HUU HUAN, HANOI) is the
one the vietqrjs package tests its checksum with; its first origin is not confirmed.

Everything else here is constructed from the specification and says so.
"""

import dataclasses
import io
import string

import pytest
import zxingcpp
from hypothesis import example, given
from hypothesis import strategies as st
from PIL import Image

from kiosk.codes.photo import QR_ONLY
from kiosk.vietqr import (
    ACCOUNT_NUMBER_LENGTH_MAX_CHARS,
    PAYLOAD_LENGTH_MAX_CHARS,
    AdditionalData,
    Initiation,
    MerchantQr,
    TransferService,
    VietQrError,
    VietQrErrorCode,
    crc16_ccitt_false,
    encode_merchant_qr,
    fold_to_ascii,
    parse_merchant_qr,
    payload_crc,
    render_merchant_qr_png,
)

NAPAS_6_1_1_STATIC_ACCOUNT = (
    "00020101021138570010A00000072701270006970403011200110123456780208QRIBFTTA53037045802VN6304F4E5"
)
NAPAS_6_1_2_STATIC_CARD = (
    "00020101021138600010A00000072701300006970403011697040311012345670208QRIBFTTC"
    "53037045802VN63044F52"
)
NAPAS_6_1_3_DYNAMIC_ACCOUNT = (
    "00020101021238570010A00000072701270006970403011300110123456780208QRIBFTTA"
    "530370454061800005802VN62340107NPS68690819thanh toan don hang63042E2E"
)
NAPAS_6_1_4_DYNAMIC_CARD = (
    "00020101021238600010A00000072701300006970403011697040311012345670208QRIBFTTC"
    "530370454061800005802VN62340107NPS68690819thanh toan don hang6304A203"
)
# Example 6.1.1 with the account's length corrected to 13 (constructed, not published by NAPAS).
NAPAS_6_1_1_CORRECTED = (
    "00020101021138570010A00000072701270006970403011300110123456780208QRIBFTTA53037045802VN63049E6F"
)
NAPAS_QRCASH = (
    "00020101021238500010A000000727012200069704030108123456780206QRCASH5204601153037045802VN"
    "5915NGUYEN HUU HUAN6005HANOI6237052120190109155714228384707080000111163041009"
)
NAPAS_QR_README = (
    "00020101021238530010A0000007270123000697041601092245284790208QRIBFTTA"
    "53037045405100005802VN62340107NPS68690819TRANSFER TO SOMEONE6304AC13"
)
VIETNAM_QR_PAY_STATIC = (
    "00020101021138530010A0000007270123000697041601092576788590208QRIBFTTA53037045802VN6304AE9F"
)
VIETNAM_QR_PAY_DYNAMIC = (
    "00020101021238530010A0000007270123000697041601092576788590208QRIBFTTA"
    "53037045405100005802VN62150811Chuyen tien630453E6"
)
# subiz/vietqr: vietqr.Generate(120000, "970415", "0011001932418", "ủng hộ lũ lụt").
SUBIZ_VIETQR = (
    "00020101021238570010A00000072701270006970415011300110019324180208QRIBFTTA"
    "530370454061200005802VN62170813ung ho lu lut6304C15C"
)
VIETQR_PARSER_FORMAT_00 = (
    "00020001021238570010A00000072701270006970436011308810004580860208QRIBFTTA53037045802VN6304CD60"
)
VIETQR_PHP_QRPUSH = (
    "00020101021138480010A00000072701300006970403011621129950446040255204581253037045802VN"
    "5910PHUONG CAC6005HANOI62110307NPS686963045802"
)

ACCEPTED_SAMPLES = [
    pytest.param(NAPAS_6_1_2_STATIC_CARD, id="napas-6.1.2-static-card"),
    pytest.param(NAPAS_6_1_3_DYNAMIC_ACCOUNT, id="napas-6.1.3-dynamic-account"),
    pytest.param(NAPAS_6_1_4_DYNAMIC_CARD, id="napas-6.1.4-dynamic-card"),
    pytest.param(NAPAS_6_1_1_CORRECTED, id="napas-6.1.1-corrected"),
    pytest.param(NAPAS_QR_README, id="napas-qr-readme"),
    pytest.param(VIETNAM_QR_PAY_STATIC, id="vietnam-qr-pay-static"),
    pytest.param(VIETNAM_QR_PAY_DYNAMIC, id="vietnam-qr-pay-dynamic"),
    pytest.param(SUBIZ_VIETQR, id="subiz-vietqr"),
]


FIELD_62_ATTRIBUTES = tuple(field.name for field in dataclasses.fields(AdditionalData))
ACCOUNT_CHARACTERS = string.digits + string.ascii_letters


def with_crc(body: str) -> str:
    """Close a payload body with a correct CRC, computed here without the module's helper."""
    data = (body + "6304").encode("ascii")
    crc = 0xFFFF
    for byte in data:
        crc ^= byte << 8
        for _ in range(8):
            crc = ((crc << 1) ^ 0x1021 if crc & 0x8000 else crc << 1) & 0xFFFF
    return f"{body}6304{crc:04X}"


def tlv(field_id: str, value: str) -> str:
    return f"{field_id}{len(value):02d}{value}"


def napas(
    bank_bin: str = "970403", account: str = "0011012345678", service: str = "QRIBFTTA"
) -> str:
    return tlv(
        "38",
        tlv("00", "A000000727")
        + tlv("01", tlv("00", bank_bin) + tlv("01", account))
        # An empty service means "leave the service code out".
        + (tlv("02", service) if service else ""),
    )


def build(*objects: str) -> str:
    return with_crc("".join(objects))


STATIC_HEAD = tlv("00", "01") + tlv("01", "11")
VALID_BODY = STATIC_HEAD + napas() + tlv("53", "704") + tlv("58", "VN")


def refusal(payload: str) -> VietQrError:
    with pytest.raises(VietQrError) as caught:
        parse_merchant_qr(payload)
    return caught.value


# CRC -------------------------------------------------------------------------------------------


def test_crc_matches_the_standard_check_value() -> None:
    # The catalogue check value of CRC-16/CCITT-FALSE: the CRC of the ASCII string "123456789".
    assert crc16_ccitt_false(b"123456789") == 0x29B1
    assert crc16_ccitt_false(b"") == 0xFFFF


def test_payload_crc_covers_the_6304_tag() -> None:
    assert payload_crc(NAPAS_6_1_3_DYNAMIC_ACCOUNT[:-4]) == "2E2E"
    assert payload_crc(NAPAS_6_1_2_STATIC_CARD[:-4]) == "4F52"


# Published samples -----------------------------------------------------------------------------


@pytest.mark.parametrize("payload", ACCEPTED_SAMPLES)
def test_a_published_sample_parses_and_re_encodes_to_the_same_string(payload: str) -> None:
    parsed = parse_merchant_qr(payload)
    assert parsed.to_payload() == payload
    assert parsed.ignored_fields == ()


def test_napas_dynamic_account_example_reads_field_by_field() -> None:
    parsed = parse_merchant_qr(NAPAS_6_1_3_DYNAMIC_ACCOUNT)
    assert parsed == MerchantQr(
        bank_bin="970403",
        account_number="0011012345678",
        service=TransferService.TO_ACCOUNT,
        initiation=Initiation.DYNAMIC,
        amount_vnd=180_000,
        additional_data=AdditionalData(bill_number="NPS6869", purpose="thanh toan don hang"),
    )


def test_encoding_the_napas_example_fields_gives_the_published_string() -> None:
    payload = encode_merchant_qr(
        bank_bin="970403",
        account_number="0011012345678",
        amount_vnd=180_000,
        additional_data=AdditionalData(bill_number="NPS6869", purpose="thanh toan don hang"),
    )
    assert payload == NAPAS_6_1_3_DYNAMIC_ACCOUNT


def test_napas_card_examples_read_the_card_number() -> None:
    static = parse_merchant_qr(NAPAS_6_1_2_STATIC_CARD)
    assert static.service is TransferService.TO_CARD
    assert static.account_number == "9704031101234567"
    assert static.initiation is Initiation.STATIC
    assert static.amount_vnd is None
    assert parse_merchant_qr(NAPAS_6_1_4_DYNAMIC_CARD).amount_vnd == 180_000


def test_the_encoder_folds_a_vietnamese_purpose_as_subiz_vietqr_does() -> None:
    payload = encode_merchant_qr(
        bank_bin="970415",
        account_number="0011001932418",
        amount_vnd=120_000,
        additional_data=AdditionalData(purpose="ủng hộ lũ lụt"),
    )
    assert payload == SUBIZ_VIETQR


def test_napas_example_6_1_1_is_refused_for_its_wrong_inner_length() -> None:
    # Its CRC is right, so the fault is in the published structure, not in a scan.
    assert payload_crc(NAPAS_6_1_1_STATIC_ACCOUNT[:-4]) == "F4E5"
    error = refusal(NAPAS_6_1_1_STATIC_ACCOUNT)
    assert error.code is VietQrErrorCode.MALFORMED
    assert error.field == "38.01"


@pytest.mark.parametrize(
    ("payload", "code", "field"),
    [
        pytest.param(
            NAPAS_QRCASH, VietQrErrorCode.UNSUPPORTED_SERVICE, "38.02", id="atm-withdrawal"
        ),
        pytest.param(
            VIETQR_PARSER_FORMAT_00, VietQrErrorCode.UNSUPPORTED_FORMAT, "00", id="format-00"
        ),
        pytest.param(VIETQR_PHP_QRPUSH, VietQrErrorCode.MISSING_FIELD, "38.02", id="qrpush"),
    ],
)
def test_published_codes_outside_the_scope_are_refused_by_name(
    payload: str, code: VietQrErrorCode, field: str
) -> None:
    error = refusal(payload)
    assert error.code is code
    assert error.field == field


# Refusals --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("payload", "code", "field"),
    [
        ("", VietQrErrorCode.EMPTY, None),
        (" \r\n", VietQrErrorCode.EMPTY, None),
        ("0" * (PAYLOAD_LENGTH_MAX_CHARS + 1), VietQrErrorCode.TOO_LONG, None),
        (VALID_BODY + tlv("59", "CHỢ") + "6304ABCD", VietQrErrorCode.INVALID_CHARACTER, None),
        (VALID_BODY + "\t6304ABCD", VietQrErrorCode.INVALID_CHARACTER, None),
        (VALID_BODY, VietQrErrorCode.MISSING_CRC, "63"),
        ("6304", VietQrErrorCode.MISSING_CRC, "63"),
        (VALID_BODY + "6304ZZZZ", VietQrErrorCode.INVALID_FIELD, "63"),
        (VALID_BODY + "63040000", VietQrErrorCode.CRC_MISMATCH, "63"),
    ],
)
def test_damaged_payloads_are_refused_before_their_structure_is_read(
    payload: str, code: VietQrErrorCode, field: str | None
) -> None:
    error = refusal(payload)
    assert error.code is code
    assert error.field == field
    assert str(error) == error.message


def test_a_changed_character_fails_the_crc_with_a_scan_again_message() -> None:
    damaged = NAPAS_6_1_3_DYNAMIC_ACCOUNT.replace("180000", "780000")
    error = refusal(damaged)
    assert error.code is VietQrErrorCode.CRC_MISMATCH
    assert "Vui lòng quét lại" in error.message


def test_a_lower_case_crc_is_accepted() -> None:
    lower = NAPAS_6_1_2_STATIC_CARD[:-4] + NAPAS_6_1_2_STATIC_CARD[-4:].lower()
    assert lower != NAPAS_6_1_2_STATIC_CARD
    parsed = parse_merchant_qr(lower)
    assert parsed.to_payload() == NAPAS_6_1_2_STATIC_CARD


def test_scanner_whitespace_around_the_payload_is_ignored() -> None:
    parsed = parse_merchant_qr(f"  {NAPAS_6_1_3_DYNAMIC_ACCOUNT}\r\n")
    assert parsed.to_payload() == NAPAS_6_1_3_DYNAMIC_ACCOUNT


# Constructed from the specification: well-formed CRCs around one fault each.
@pytest.mark.parametrize(
    ("payload", "code", "field"),
    [
        pytest.param(
            build(VALID_BODY[:-6] + "5830VN"), VietQrErrorCode.MALFORMED, "58", id="overlong"
        ),
        pytest.param(build(VALID_BODY + "6200"), VietQrErrorCode.MALFORMED, "62", id="length-00"),
        pytest.param(
            build(VALID_BODY + "5A02VN"), VietQrErrorCode.MALFORMED, None, id="letter-in-id"
        ),
        pytest.param(
            build(VALID_BODY + tlv("58", "VN")), VietQrErrorCode.DUPLICATE_FIELD, "58", id="dup"
        ),
        pytest.param(
            build(tlv("01", "11") + tlv("00", "01") + VALID_BODY[12:]),
            VietQrErrorCode.MALFORMED,
            None,
            id="00-not-first",
        ),
        pytest.param(
            build(tlv("00", "02") + tlv("01", "11") + VALID_BODY[12:]),
            VietQrErrorCode.UNSUPPORTED_FORMAT,
            "00",
            id="format-02",
        ),
        pytest.param(
            build(tlv("00", "01") + VALID_BODY[12:]),
            VietQrErrorCode.MISSING_FIELD,
            "01",
            id="no-initiation",
        ),
        pytest.param(
            build(tlv("00", "01") + tlv("01", "13") + VALID_BODY[12:]),
            VietQrErrorCode.INVALID_FIELD,
            "01",
            id="initiation-13",
        ),
        pytest.param(
            build(VALID_BODY + tlv("55", "01")),
            VietQrErrorCode.UNSUPPORTED_FIELD,
            "55",
            id="tip-prompt",
        ),
        pytest.param(
            build(VALID_BODY + tlv("56", "5000")),
            VietQrErrorCode.UNSUPPORTED_FIELD,
            "56",
            id="convenience-fee",
        ),
        pytest.param(
            build(STATIC_HEAD + tlv("26", "0010A000000775") + tlv("53", "704") + tlv("58", "VN")),
            VietQrErrorCode.NOT_VIETQR,
            None,
            id="other-scheme-only",
        ),
        pytest.param(
            build(
                STATIC_HEAD
                + tlv("38", tlv("00", "A000000775") + tlv("01", tlv("00", "970403")))
                + tlv("53", "704")
                + tlv("58", "VN")
            ),
            VietQrErrorCode.NOT_VIETQR,
            "38.00",
            id="other-guid",
        ),
        pytest.param(
            build(STATIC_HEAD + napas(service="QRPUSH") + tlv("53", "704") + tlv("58", "VN")),
            VietQrErrorCode.UNSUPPORTED_SERVICE,
            "38.02",
            id="qrpush",
        ),
        pytest.param(
            build(STATIC_HEAD + napas(service="QRIBFTTX") + tlv("53", "704") + tlv("58", "VN")),
            VietQrErrorCode.INVALID_FIELD,
            "38.02",
            id="unknown-service",
        ),
        pytest.param(
            build(STATIC_HEAD + napas(bank_bin="97040") + tlv("53", "704") + tlv("58", "VN")),
            VietQrErrorCode.INVALID_FIELD,
            "38.01.00",
            id="bin-5-digits",
        ),
        pytest.param(
            build(STATIC_HEAD + napas(account="0011-0123") + tlv("53", "704") + tlv("58", "VN")),
            VietQrErrorCode.INVALID_FIELD,
            "38.01.01",
            id="account-with-dash",
        ),
        pytest.param(
            build(
                STATIC_HEAD
                + napas(account="9704A311", service="QRIBFTTC")
                + tlv("53", "704")
                + tlv("58", "VN")
            ),
            VietQrErrorCode.INVALID_FIELD,
            "38.01.01",
            id="card-with-letter",
        ),
        pytest.param(
            build(
                STATIC_HEAD
                + napas(account="1" * (ACCOUNT_NUMBER_LENGTH_MAX_CHARS + 1))
                + tlv("53", "704")
                + tlv("58", "VN")
            ),
            VietQrErrorCode.INVALID_FIELD,
            "38.01.01",
            id="account-20-chars",
        ),
        pytest.param(
            build(STATIC_HEAD + napas() + tlv("53", "840") + tlv("58", "VN")),
            VietQrErrorCode.UNSUPPORTED_CURRENCY,
            "53",
            id="us-dollars",
        ),
        pytest.param(
            build(STATIC_HEAD + napas() + tlv("58", "VN")),
            VietQrErrorCode.MISSING_FIELD,
            "53",
            id="no-currency",
        ),
        pytest.param(
            build(STATIC_HEAD + napas() + tlv("53", "704") + tlv("58", "TH")),
            VietQrErrorCode.UNSUPPORTED_COUNTRY,
            "58",
            id="thailand",
        ),
        pytest.param(
            build(STATIC_HEAD + napas() + tlv("53", "704")),
            VietQrErrorCode.MISSING_FIELD,
            "58",
            id="no-country",
        ),
        pytest.param(
            build(STATIC_HEAD + napas() + tlv("52", "60a1") + tlv("53", "704") + tlv("58", "VN")),
            VietQrErrorCode.INVALID_FIELD,
            "52",
            id="mcc-letter",
        ),
        pytest.param(
            build(VALID_BODY + tlv("59", "X" * 26)),
            VietQrErrorCode.INVALID_FIELD,
            "59",
            id="name-26-chars",
        ),
        pytest.param(
            build(VALID_BODY + tlv("62", tlv("08", "x" * 26))),
            VietQrErrorCode.INVALID_FIELD,
            "62.08",
            id="purpose-26-chars",
        ),
    ],
)
def test_a_payload_with_one_fault_is_refused_for_that_fault(
    payload: str, code: VietQrErrorCode, field: str | None
) -> None:
    error = refusal(payload)
    assert error.code is code
    assert error.field == field
    assert error.message


@pytest.mark.parametrize("amount", ["1000.50", "0", "000", "0.00", "12a", "-5", "1" * 14, ".5"])
def test_an_amount_that_is_not_whole_positive_dong_is_refused(amount: str) -> None:
    payload = build(
        tlv("00", "01")
        + tlv("01", "12")
        + napas()
        + tlv("53", "704")
        + tlv("54", amount)
        + tlv("58", "VN")
    )
    error = refusal(payload)
    assert error.code is VietQrErrorCode.INVALID_AMOUNT
    assert error.field == "54"


@pytest.mark.parametrize(("amount", "vnd"), [("10000", 10_000), ("10000.", 10_000), ("50.00", 50)])
def test_an_amount_with_an_empty_fraction_is_read_as_whole_dong(amount: str, vnd: int) -> None:
    payload = build(
        tlv("00", "01")
        + tlv("01", "12")
        + napas()
        + tlv("53", "704")
        + tlv("54", amount)
        + tlv("58", "VN")
    )
    assert parse_merchant_qr(payload).amount_vnd == vnd


def test_a_crc_tag_hidden_inside_a_value_is_not_taken_for_the_crc() -> None:
    # Constructed: the last data object is "63" with an 8-character value that itself ends in
    # "6304" and a correct CRC, so the CRC check passes but the structure must not.
    body = VALID_BODY + "6308"
    crc = payload_crc(body + "6304")
    payload = body + "6304" + crc
    error = refusal(payload)
    assert error.code is VietQrErrorCode.MALFORMED


def test_fields_the_product_does_not_use_are_listed_and_skipped() -> None:
    # Constructed: postal code 61, a language template 64, and consumer-data request 62.09.
    payload = build(
        VALID_BODY
        + tlv("61", "700000")
        + tlv("62", tlv("08", "Tien cho") + tlv("09", "ME"))
        + tlv("64", tlv("00", "VI") + tlv("01", "CHO"))
    )
    parsed = parse_merchant_qr(payload)
    assert parsed.ignored_fields == ("61", "62.09", "64")
    assert parsed.additional_data == AdditionalData(purpose="Tien cho")
    assert parsed.to_payload() == build(VALID_BODY + tlv("62", tlv("08", "Tien cho")))


def test_fields_out_of_order_are_read_and_re_encoded_in_order() -> None:
    shuffled = build(STATIC_HEAD + tlv("53", "704") + tlv("58", "VN") + napas())
    parsed = parse_merchant_qr(shuffled)
    assert parsed.to_payload() == build(VALID_BODY)


# Encoding --------------------------------------------------------------------------------------


def test_a_market_stall_code_with_every_optional_field() -> None:
    # Constructed from the specification; the reading is checked against the intent.
    payload = encode_merchant_qr(
        bank_bin="970405",
        account_number="1500205123456",
        merchant_category_code="5411",
        merchant_name="Sạp rau bà Tư",
        merchant_city="Lạng Sơn",
        additional_data=AdditionalData(store_label="SAP 12", purpose="Tiền rau ngày 5/6"),
    )
    assert payload.startswith("000201010211")
    parsed = parse_merchant_qr(payload)
    assert parsed.merchant_name == "SAP RAU BA TU"
    assert parsed.merchant_city == "LANG SON"
    assert parsed.merchant_category_code == "5411"
    assert parsed.additional_data == AdditionalData(
        store_label="SAP 12", purpose="Tien rau ngay 5/6"
    )
    assert parsed.initiation is Initiation.STATIC


@pytest.mark.parametrize(
    ("name", "field_59"),
    [
        ("Bún chả Hương Liên", "BUN CHA HUONG LIEN"),
        ("Đặng Thị Ánh", "DANG THI ANH"),
        ("  Chợ   Đông\tBa ", "CHO DONG BA"),
        ("Nguyễn Văn Ưởng", "NGUYEN VAN UONG"),
        ("ĐỖ QUỐC VIỆT", "DO QUOC VIET"),
        ("Ðinh Tiên Hoàng", "DINH TIEN HOANG"),  # the look-alike eth from old encodings
    ],
)
def test_a_merchant_name_loses_its_diacritics_and_is_upper_cased(name: str, field_59: str) -> None:
    payload = encode_merchant_qr(bank_bin="970405", account_number="123", merchant_name=name)
    assert tlv("59", field_59) in payload
    assert parse_merchant_qr(payload).merchant_name == field_59


def test_folding_keeps_case_for_free_text() -> None:
    assert fold_to_ascii("Tiền điện tháng 5") == "Tien dien thang 5"
    # Decomposed input (as some keyboards produce) folds the same as precomposed.
    assert fold_to_ascii("Tie\u0302\u0300n") == "Tien"


def test_initiation_follows_the_amount_unless_given() -> None:
    static = parse_merchant_qr(encode_merchant_qr(bank_bin="970405", account_number="123"))
    assert static.initiation is Initiation.STATIC
    dynamic = parse_merchant_qr(
        encode_merchant_qr(bank_bin="970405", account_number="123", amount_vnd=5_000)
    )
    assert dynamic.initiation is Initiation.DYNAMIC
    kept = parse_merchant_qr(
        encode_merchant_qr(
            bank_bin="970405",
            account_number="123",
            amount_vnd=5_000,
            initiation=Initiation.STATIC,
        )
    )
    assert (kept.initiation, kept.amount_vnd) == (Initiation.STATIC, 5_000)


def test_service_and_initiation_may_be_given_as_plain_strings() -> None:
    payload = encode_merchant_qr(
        bank_bin="970403",
        account_number="9704031101234567",
        service="QRIBFTTC",  # type: ignore[arg-type]
        initiation="11",  # type: ignore[arg-type]
    )
    assert payload == NAPAS_6_1_2_STATIC_CARD
    with pytest.raises(ValueError, match="QRPUSH"):
        encode_merchant_qr(bank_bin="970403", account_number="1", service="QRPUSH")  # type: ignore[arg-type]


def test_an_empty_additional_data_is_left_out() -> None:
    plain = encode_merchant_qr(bank_bin="970405", account_number="123")
    assert plain[-14:-4] == "5802VN6304"
    assert (
        encode_merchant_qr(
            bank_bin="970405", account_number="123", additional_data=AdditionalData()
        )
        == plain
    )


@pytest.mark.parametrize(
    ("overrides", "code", "field"),
    [
        ({"bank_bin": "97040"}, VietQrErrorCode.INVALID_FIELD, "38.01.00"),
        ({"bank_bin": "97040\uff15"}, VietQrErrorCode.INVALID_FIELD, "38.01.00"),
        ({"account_number": ""}, VietQrErrorCode.INVALID_FIELD, "38.01.01"),
        ({"account_number": "1" * 20}, VietQrErrorCode.INVALID_FIELD, "38.01.01"),
        ({"account_number": "12 34"}, VietQrErrorCode.INVALID_FIELD, "38.01.01"),
        (
            {"account_number": "ABC123", "service": TransferService.TO_CARD},
            VietQrErrorCode.INVALID_FIELD,
            "38.01.01",
        ),
        ({"amount_vnd": 0}, VietQrErrorCode.INVALID_AMOUNT, "54"),
        ({"amount_vnd": -1_000}, VietQrErrorCode.INVALID_AMOUNT, "54"),
        ({"amount_vnd": True}, VietQrErrorCode.INVALID_AMOUNT, "54"),
        ({"amount_vnd": 1000.0}, VietQrErrorCode.INVALID_AMOUNT, "54"),
        ({"amount_vnd": 10**13}, VietQrErrorCode.INVALID_AMOUNT, "54"),
        ({"merchant_category_code": "54111"}, VietQrErrorCode.INVALID_FIELD, "52"),
        ({"merchant_name": "  "}, VietQrErrorCode.INVALID_FIELD, "59"),
        ({"merchant_name": "Ă" * 26}, VietQrErrorCode.INVALID_FIELD, "59"),
        ({"merchant_name": "Quán €uro"}, VietQrErrorCode.INVALID_CHARACTER, "59"),
        ({"merchant_city": "Thành phố Hồ Chí Minh"}, VietQrErrorCode.INVALID_FIELD, "60"),
        (
            {"additional_data": AdditionalData(purpose="Chúc mừng 🎉")},
            VietQrErrorCode.INVALID_CHARACTER,
            "62.08",
        ),
        (
            {"additional_data": AdditionalData(**dict.fromkeys(FIELD_62_ATTRIBUTES, "x" * 25))},
            VietQrErrorCode.TOO_LONG,
            "62",
        ),
    ],
)
def test_the_encoder_refuses_values_that_cannot_go_in(
    overrides: dict[str, object], code: VietQrErrorCode, field: str
) -> None:
    arguments: dict[str, object] = {"bank_bin": "970405", "account_number": "123"} | overrides
    with pytest.raises(VietQrError) as caught:
        encode_merchant_qr(**arguments)  # type: ignore[arg-type]
    assert caught.value.code is code
    assert caught.value.field == field
    assert caught.value.message


# Properties ------------------------------------------------------------------------------------

VIETNAMESE_LETTERS = (
    "aàáảãạăằắẳẵặâầấẩẫậbcdđeèéẻẽẹêềếểễệghiìíỉĩịklmnoòóỏõọôồốổỗộơờớởỡợpqrstuùúủũụưừứửữựvxyỳýỷỹỵ"
)
VIETNAMESE_TEXT = VIETNAMESE_LETTERS + VIETNAMESE_LETTERS.upper() + "0123456789 -.,/&"


def vietnamese_text(max_size: int) -> st.SearchStrategy[str]:
    return st.text(alphabet=VIETNAMESE_TEXT, min_size=1, max_size=max_size).filter(
        lambda text: text.strip() != ""
    )


@st.composite
def merchant_fields(draw: st.DrawFn) -> dict[str, object]:
    service = draw(st.sampled_from(TransferService))
    account = draw(
        st.text(
            alphabet=string.digits if service is TransferService.TO_CARD else ACCOUNT_CHARACTERS,
            min_size=1,
            max_size=ACCOUNT_NUMBER_LENGTH_MAX_CHARS,
        )
    )
    purpose = draw(st.none() | vietnamese_text(25))
    bill_number = draw(st.none() | st.text(alphabet="0123456789ABCDEF", min_size=1, max_size=25))
    return {
        "bank_bin": draw(st.text(alphabet="0123456789", min_size=6, max_size=6)),
        "account_number": account,
        "service": service,
        "amount_vnd": draw(st.none() | st.integers(min_value=1, max_value=10**13 - 1)),
        "merchant_category_code": draw(
            st.none() | st.text(alphabet="0123456789", min_size=4, max_size=4)
        ),
        "merchant_name": draw(st.none() | vietnamese_text(25)),
        "merchant_city": draw(st.none() | vietnamese_text(15)),
        "additional_data": AdditionalData(purpose=purpose, bill_number=bill_number),
    }


@given(merchant_fields())
@example(
    {
        "bank_bin": "970403",
        "account_number": "0011012345678",
        "service": TransferService.TO_ACCOUNT,
        "amount_vnd": 180_000,
        "merchant_category_code": None,
        "merchant_name": "Bà Tư bán rau",
        "merchant_city": "Đồng Đăng",
        "additional_data": AdditionalData(purpose="Tiền rau"),
    }
)
def test_encode_then_parse_round_trips(merchant: dict[str, object]) -> None:
    payload = encode_merchant_qr(**merchant)  # type: ignore[arg-type]
    parsed = parse_merchant_qr(payload)

    name, city = merchant["merchant_name"], merchant["merchant_city"]
    extra = merchant["additional_data"]
    assert isinstance(extra, AdditionalData)
    assert parsed.bank_bin == merchant["bank_bin"]
    assert parsed.account_number == merchant["account_number"]
    assert parsed.service == merchant["service"]
    assert parsed.amount_vnd == merchant["amount_vnd"]
    assert parsed.merchant_category_code == merchant["merchant_category_code"]
    assert parsed.merchant_name == (None if name is None else fold_to_ascii(str(name)).upper())
    assert parsed.merchant_city == (None if city is None else fold_to_ascii(str(city)).upper())
    assert parsed.additional_data.purpose == (
        None if extra.purpose is None else fold_to_ascii(extra.purpose)
    )
    assert parsed.additional_data.bill_number == extra.bill_number
    assert parsed.initiation is (
        Initiation.STATIC if merchant["amount_vnd"] is None else Initiation.DYNAMIC
    )
    assert parsed.to_payload() == payload
    assert payload.isascii()
    assert len(payload) <= PAYLOAD_LENGTH_MAX_CHARS


@given(st.text(alphabet=VIETNAMESE_TEXT + "\t\n", max_size=40))
def test_folding_gives_printable_ascii_and_is_idempotent(text: str) -> None:
    folded = fold_to_ascii(text)
    assert all(" " <= char <= "~" for char in folded)
    assert fold_to_ascii(folded) == folded
    assert len(folded) <= len(text)


@given(
    st.sampled_from([sample.values[0] for sample in ACCEPTED_SAMPLES]),
    st.data(),
)
def test_any_single_changed_character_is_caught(payload: str, data: st.DataObject) -> None:
    # CRC-16 catches every error burst of up to 16 bits, so one changed character anywhere is
    # always caught. Spaces are not used as the replacement: at either end one would be
    # trimmed away like a scanner's newline, which changes the length rather than a character.
    position = data.draw(st.integers(min_value=0, max_value=len(payload) - 1))
    replacement = data.draw(
        st.characters(min_codepoint=0x21, max_codepoint=0x7E).filter(
            lambda char: char != payload[position]
        )
    )
    changed = payload[:position] + replacement + payload[position + 1 :]
    in_crc_value = position >= len(payload) - 4
    if in_crc_value and replacement.upper() == payload[position]:
        assert parse_merchant_qr(changed).to_payload() == payload  # only the case changed
    else:
        with pytest.raises(VietQrError):
            parse_merchant_qr(changed)


@given(st.text(max_size=120))
def test_any_text_is_parsed_or_refused_with_a_code(text: str) -> None:
    try:
        parse_merchant_qr(text)
    except VietQrError as error:
        assert error.code in set(VietQrErrorCode)
        assert error.message


# The picture -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "payload",
    [
        *ACCEPTED_SAMPLES,
        pytest.param(
            encode_merchant_qr(
                bank_bin="970405",
                account_number="1500205123456",
                amount_vnd=35_000,
                merchant_name="Bún chả Hương Liên",
                merchant_city="Lạng Sơn",
                additional_data=AdditionalData(purpose="Thanh toán 2 suất bún"),
            ),
            id="constructed-stall",
        ),
    ],
)
def test_the_png_decodes_to_the_identical_payload(payload: str) -> None:
    png = render_merchant_qr_png(payload)
    assert png.startswith(b"\x89PNG\r\n\x1a\n")
    with Image.open(io.BytesIO(png)) as image:
        barcode = zxingcpp.read_barcode(image, formats=QR_ONLY)
    assert barcode is not None
    assert barcode.format == zxingcpp.BarcodeFormat.QRCode
    assert barcode.ec_level == "M"
    assert barcode.text == payload


def test_an_invalid_payload_is_never_drawn() -> None:
    with pytest.raises(VietQrError) as caught:
        render_merchant_qr_png(NAPAS_6_1_3_DYNAMIC_ACCOUNT[:-1] + "F")
    assert caught.value.code is VietQrErrorCode.CRC_MISMATCH
