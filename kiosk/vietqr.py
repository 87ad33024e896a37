"""VietQR: the EMVCo merchant-presented QR payload for NAPAS transfers to an account or a card.

This module owns the payload text and its picture: `encode_merchant_qr` builds a payload,
`parse_merchant_qr` checks and reads one (a market stall's printed code, say), and
`render_merchant_qr_png` draws one. No database, no web framework (Flask-Babel's gettext alone, for
the messages), no money movement: what to do with a parsed code is the payments module's business.

The format
----------
A payload is a run of data objects, each an ID (2 digits), a length (2 digits, decimal, 01-99,
counted in characters) and the value; a template's value is itself such a run. The root holds:

====  ========================================================================================
00    payload format indicator, "01"
01    point of initiation: "11" static (the payer types the amount), "12" dynamic (one payment)
38    NAPAS template: 00 the NAPAS GUID "A000000727"; 01 the beneficiary (00 the bank's 6-digit
      BIN, 01 the account or card number); 02 the service, "QRIBFTTA" (to an account) or
      "QRIBFTTC" (to a card)
52    merchant category code (ISO 18245), optional
53    currency, "704" (đồng); 54 amount, optional: whole đồng, since the đồng has no minor unit
58    country, "VN"; 59 merchant name and 60 city, optional
62    additional data, optional: 01 bill number … 08 purpose of the transaction
63    CRC-16/CCITT-FALSE of everything before its value, "6304" included, as 4 hex digits
====  ========================================================================================

Decisions
---------
- Text is printable ASCII only (EMVCo's "ans" set). Bank apps show merchant names without
  diacritics, and a length counted in characters is ambiguous once UTF-8 is involved, so the
  encoder folds Vietnamese to ASCII ("Bún chả Hương Liên" becomes "BUN CHA HUONG LIEN": marks
  removed with unicodedata, đ/Đ mapped to d/D, whitespace collapsed) and upper-cases the merchant
  name and city; free text in field 62 keeps its case. The parser refuses non-ASCII payloads
  instead of guessing how they were counted.
- The parser is strict where money is at stake: a wrong CRC, a broken length, a currency other
  than đồng, an amount with a fraction (an empty one, "10000.00", is read as 10000) or a
  tip/convenience-fee field (55-57, whose meaning would change what the payer owes) are refused.
  Only the two transfer services are accepted; NAPAS's QRPUSH (acquirer-managed merchants) and
  QRCASH (ATM withdrawal) are refused by name.
- Fields the product does not use (postal code 61, other schemes' templates, unknown sub-fields)
  are skipped and listed in `MerchantQr.ignored_fields`.
- `MerchantQr.to_payload` re-encodes canonically: IDs in ascending order, upper-case CRC. It gives
  back the very string for any payload this encoder could have produced, and the canonical form
  of others (fields out of order, a lower-case CRC or merchant name, ignored fields dropped).
- The CRC may arrive in lower case (some generators print it so); it is compared ignoring case.
"""

from __future__ import annotations

import enum
import io
import re
import unicodedata
from dataclasses import dataclass, fields
from typing import Final

import qrcode  # type: ignore[import-untyped]  # qrcode ships no type information
import qrcode.constants  # type: ignore[import-untyped]
from flask_babel import gettext, lazy_gettext  # type: ignore[import-untyped]

NAPAS_GUID: Final = "A000000727"
PAYLOAD_FORMAT_INDICATOR: Final = "01"
CURRENCY_VND: Final = "704"  # ISO 4217 numeric
COUNTRY_VIETNAM: Final = "VN"  # ISO 3166-1 alpha-2

# EMVCo MPM limits, in characters.
PAYLOAD_LENGTH_MAX_CHARS: Final = 512
FIELD_VALUE_LENGTH_MAX_CHARS: Final = 99
AMOUNT_LENGTH_MAX_CHARS: Final = 13
MERCHANT_NAME_LENGTH_MAX_CHARS: Final = 25
MERCHANT_CITY_LENGTH_MAX_CHARS: Final = 15
ADDITIONAL_DATA_VALUE_LENGTH_MAX_CHARS: Final = 25
# NAPAS: a bank BIN is 6 digits; an account or card number at most 19 characters.
BANK_BIN_LENGTH_DIGITS: Final = 6
ACCOUNT_NUMBER_LENGTH_MAX_CHARS: Final = 19
AMOUNT_MAX_VND: Final = 10**AMOUNT_LENGTH_MAX_CHARS - 1

# The picture: error correction M survives a crease or a smudge on a printed code while keeping
# the symbol small; 4 modules of quiet zone is the QR standard's minimum.
QR_MODULE_SIZE_PX: Final = 8
QR_QUIET_ZONE_MODULES: Final = 4

CRC_POLYNOMIAL: Final = 0x1021
CRC_INITIAL: Final = 0xFFFF
_CRC_TAG: Final = "6304"  # ID 63 with length 04: part of what the CRC covers
_CRC_LENGTH_CHARS: Final = 4

_DIGITS = re.compile(r"[0-9]+")
_HEX4 = re.compile(r"[0-9A-Fa-f]{4}")
_ACCOUNT_NUMBER = re.compile(r"[0-9A-Za-z]+")
# EMVCo lets an amount carry a decimal point; for the đồng only ".", ".0", ".00"… make sense.
_AMOUNT = re.compile(r"(?P<whole>[0-9]+)(\.0*)?")

# Vietnamese letters that Unicode does not decompose into a base letter and marks. The Icelandic
# eth (Ð, ð) looks the same as Đ and turns up in text converted from old Vietnamese encodings.
_UNDECOMPOSABLE_LETTERS = str.maketrans({"đ": "d", "Đ": "D", "ð": "d", "Ð": "D"})


class Initiation(enum.StrEnum):
    STATIC = "11"
    DYNAMIC = "12"


class TransferService(enum.StrEnum):
    TO_ACCOUNT = "QRIBFTTA"
    TO_CARD = "QRIBFTTC"


# NAPAS services that are not a transfer a citizen's wallet can make.
_REFUSED_SERVICES: Final = {
    "QRPUSH": lazy_gettext("thanh toán cho điểm bán do ngân hàng quản lý (QRPUSH)"),
    "QRCASH": lazy_gettext("rút tiền tại ATM (QRCASH)"),
}


class VietQrErrorCode(enum.StrEnum):
    EMPTY = "empty"
    TOO_LONG = "too_long"
    INVALID_CHARACTER = "invalid_character"
    MISSING_CRC = "missing_crc"
    CRC_MISMATCH = "crc_mismatch"
    MALFORMED = "malformed"
    DUPLICATE_FIELD = "duplicate_field"
    MISSING_FIELD = "missing_field"
    INVALID_FIELD = "invalid_field"
    UNSUPPORTED_FORMAT = "unsupported_format"
    NOT_VIETQR = "not_vietqr"
    UNSUPPORTED_SERVICE = "unsupported_service"
    UNSUPPORTED_CURRENCY = "unsupported_currency"
    UNSUPPORTED_COUNTRY = "unsupported_country"
    UNSUPPORTED_FIELD = "unsupported_field"
    INVALID_AMOUNT = "invalid_amount"


class VietQrError(ValueError):
    """A payload that cannot be parsed, or fields that cannot be encoded.

    ``code`` is stable for programs; ``message`` (also ``str(error)``) is for the person scanning
    or filling in a form, in their language (Vietnamese by default); ``field`` is the ID path of
    the data object at fault ("38.01.00"), when there is one.
    """

    def __init__(self, code: VietQrErrorCode, message: str, *, field: str | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.field = field


# Names of the data objects, for messages (translated when used).
_FIELD_NAMES: Final = {
    "00": lazy_gettext("phiên bản dữ liệu"),
    "01": lazy_gettext("phương thức khởi tạo"),
    "38": lazy_gettext("thông tin người nhận NAPAS"),
    "38.00": lazy_gettext("mã định danh NAPAS"),
    "38.01": lazy_gettext("thông tin tổ chức thụ hưởng"),
    "38.01.00": lazy_gettext("mã ngân hàng (BIN)"),
    "38.01.01": lazy_gettext("số tài khoản hoặc số thẻ"),
    "38.02": lazy_gettext("mã dịch vụ"),
    "52": lazy_gettext("mã loại hình kinh doanh"),
    "53": lazy_gettext("mã tiền tệ"),
    "54": lazy_gettext("số tiền"),
    "58": lazy_gettext("mã quốc gia"),
    "59": lazy_gettext("tên người nhận"),
    "60": lazy_gettext("thành phố"),
    "62": lazy_gettext("thông tin bổ sung"),
    "62.01": lazy_gettext("số hóa đơn"),
    "62.02": lazy_gettext("số điện thoại"),
    "62.03": lazy_gettext("mã cửa hàng"),
    "62.04": lazy_gettext("mã khách hàng thân thiết"),
    "62.05": lazy_gettext("mã tham chiếu"),
    "62.06": lazy_gettext("mã khách hàng"),
    "62.07": lazy_gettext("mã điểm bán"),
    "62.08": lazy_gettext("nội dung chuyển tiền"),
    "63": lazy_gettext("mã kiểm tra (CRC)"),
}


def _field_label(path: str) -> str:
    """How a parse error names a data object: by ID, since the reader cannot see the form."""
    name = _FIELD_NAMES.get(path)
    if name:
        label: str = gettext("trường %(id)s (%(name)s)", id=path, name=name)
    else:
        label = gettext("trường %(id)s", id=path)
    return label


def _form_label(path: str) -> str:
    """How an encoding error names a value: by its name alone, as on the form it came from."""
    name = str(_FIELD_NAMES.get(path) or gettext("trường %(id)s", id=path))
    return name[0].upper() + name[1:]


@dataclass(frozen=True, slots=True)
class AdditionalData:
    """Field 62, the EMVCo additional data template; every sub-field is optional text."""

    bill_number: str | None = None  # 01
    mobile_number: str | None = None  # 02
    store_label: str | None = None  # 03
    loyalty_number: str | None = None  # 04
    reference_label: str | None = None  # 05
    customer_label: str | None = None  # 06
    terminal_label: str | None = None  # 07
    purpose: str | None = None  # 08: the transfer's memo in bank apps

    def is_empty(self) -> bool:
        return all(getattr(self, item.name) is None for item in fields(self))


# Sub-field IDs of field 62 in attribute order.
_ADDITIONAL_DATA_IDS: Final = {
    "bill_number": "01",
    "mobile_number": "02",
    "store_label": "03",
    "loyalty_number": "04",
    "reference_label": "05",
    "customer_label": "06",
    "terminal_label": "07",
    "purpose": "08",
}


@dataclass(frozen=True, slots=True)
class MerchantQr:
    """What a VietQR payload says: where the money goes and, for a dynamic code, how much."""

    bank_bin: str
    account_number: str  # or the card number, for TransferService.TO_CARD
    service: TransferService
    initiation: Initiation
    amount_vnd: int | None = None
    merchant_category_code: str | None = None
    merchant_name: str | None = None
    merchant_city: str | None = None
    additional_data: AdditionalData = AdditionalData()
    # ID paths of data objects that were present but not read, such as "61" or "62.09".
    ignored_fields: tuple[str, ...] = ()

    def to_payload(self) -> str:
        """Encode these fields again (canonically: see the module's notes)."""
        return encode_merchant_qr(
            bank_bin=self.bank_bin,
            account_number=self.account_number,
            service=self.service,
            initiation=self.initiation,
            amount_vnd=self.amount_vnd,
            merchant_category_code=self.merchant_category_code,
            merchant_name=self.merchant_name,
            merchant_city=self.merchant_city,
            additional_data=self.additional_data,
        )


# CRC ------------------------------------------------------------------------------------------


def crc16_ccitt_false(data: bytes) -> int:
    """CRC-16/CCITT-FALSE: polynomial 0x1021, initial 0xFFFF, no reflection, no final XOR.

    Bit by bit rather than with a table: a payload is at most 512 bytes, and this form can be
    read against the definition.
    """
    crc = CRC_INITIAL
    for byte in data:
        crc ^= byte << 8
        for _ in range(8):
            crc = (crc << 1) ^ CRC_POLYNOMIAL if crc & 0x8000 else crc << 1
            crc &= 0xFFFF
    return crc


def payload_crc(payload_before_crc_value: str) -> str:
    """The CRC field's value for a payload that ends with "6304", as 4 upper-case hex digits."""
    assert payload_before_crc_value.endswith(_CRC_TAG)
    return f"{crc16_ccitt_false(payload_before_crc_value.encode('ascii')):04X}"


# Encoding -------------------------------------------------------------------------------------


def fold_to_ascii(text: str) -> str:
    """Vietnamese text as the ASCII a QR payload carries: marks removed, whitespace collapsed.

    Characters with no ASCII form (ß, €, emoji) are left in place for the caller to refuse.
    """
    decomposed = unicodedata.normalize("NFD", text.translate(_UNDECOMPOSABLE_LETTERS))
    unmarked = "".join(char for char in decomposed if not unicodedata.combining(char))
    return " ".join(unicodedata.normalize("NFC", unmarked).split())


def encode_merchant_qr(
    *,
    bank_bin: str,
    account_number: str,
    service: TransferService = TransferService.TO_ACCOUNT,
    amount_vnd: int | None = None,
    merchant_category_code: str | None = None,
    merchant_name: str | None = None,
    merchant_city: str | None = None,
    additional_data: AdditionalData | None = None,
    initiation: Initiation | None = None,
) -> str:
    """Build a VietQR payload, CRC included; raise `VietQrError` for a value that cannot go in.

    ``initiation`` defaults to dynamic when there is an amount (a code for one payment) and static
    otherwise. Text is folded to ASCII; the merchant name and city are upper-cased.
    """
    # Plain strings ("QRIBFTTC", "12") from a form or a database row are accepted; an unknown
    # one raises ValueError, since only a bug in the caller can produce it.
    service = TransferService(service)
    _check_bank_bin(bank_bin)
    _check_account_number(account_number, service)
    if initiation is None:
        initiation = Initiation.STATIC if amount_vnd is None else Initiation.DYNAMIC
    initiation = Initiation(initiation)
    beneficiary = _tlv("00", bank_bin, "38.01.00") + _tlv("01", account_number, "38.01.01")
    merchant_account = (
        _tlv("00", NAPAS_GUID, "38.00")
        + _tlv("01", beneficiary, "38.01")
        + _tlv("02", service.value, "38.02")
    )
    parts = [
        _tlv("00", PAYLOAD_FORMAT_INDICATOR, "00"),
        _tlv("01", initiation.value, "01"),
        _tlv("38", merchant_account, "38"),
    ]
    if merchant_category_code is not None:
        _check_merchant_category_code(merchant_category_code)
        parts.append(_tlv("52", merchant_category_code, "52"))
    parts.append(_tlv("53", CURRENCY_VND, "53"))
    if amount_vnd is not None:
        _check_amount(amount_vnd)
        parts.append(_tlv("54", str(amount_vnd), "54"))
    parts.append(_tlv("58", COUNTRY_VIETNAM, "58"))
    if merchant_name is not None:
        name = _encodable_text(merchant_name, "59", MERCHANT_NAME_LENGTH_MAX_CHARS).upper()
        parts.append(_tlv("59", name, "59"))
    if merchant_city is not None:
        city = _encodable_text(merchant_city, "60", MERCHANT_CITY_LENGTH_MAX_CHARS).upper()
        parts.append(_tlv("60", city, "60"))
    if additional_data is not None and not additional_data.is_empty():
        parts.append(_tlv("62", _encode_additional_data(additional_data), "62"))
    payload = "".join(parts) + _CRC_TAG
    payload += payload_crc(payload)
    if len(payload) > PAYLOAD_LENGTH_MAX_CHARS:
        raise VietQrError(
            VietQrErrorCode.TOO_LONG,
            gettext(
                "Mã QR quá dài (%(length)d ký tự, tối đa %(length_max)d). "
                "Vui lòng rút ngắn tên hoặc nội dung.",
                length=len(payload),
                length_max=PAYLOAD_LENGTH_MAX_CHARS,
            ),
        )
    return payload


def _encode_additional_data(additional_data: AdditionalData) -> str:
    encoded = []
    for attribute, sub_id in _ADDITIONAL_DATA_IDS.items():
        value = getattr(additional_data, attribute)
        if value is not None:
            path = f"62.{sub_id}"
            text = _encodable_text(value, path, ADDITIONAL_DATA_VALUE_LENGTH_MAX_CHARS)
            encoded.append(_tlv(sub_id, text, path))
    return "".join(encoded)


def _tlv(field_id: str, value: str, path: str) -> str:
    assert len(field_id) == 2 and field_id.isdigit()
    if len(value) > FIELD_VALUE_LENGTH_MAX_CHARS:
        raise VietQrError(
            VietQrErrorCode.TOO_LONG,
            gettext(
                "%(field)s quá dài (%(length)d ký tự, tối đa %(length_max)d).",
                field=_form_label(path),
                length=len(value),
                length_max=FIELD_VALUE_LENGTH_MAX_CHARS,
            ),
            field=path,
        )
    assert value, f"empty value for {path}: checked by the caller"
    return f"{field_id}{len(value):02d}{value}"


def _encodable_text(text: str, path: str, length_max_chars: int) -> str:
    folded = fold_to_ascii(text)
    if not folded:
        raise VietQrError(
            VietQrErrorCode.INVALID_FIELD,
            gettext("%(field)s không được để trống.", field=_form_label(path)),
            field=path,
        )
    for char in folded:
        if not _is_printable_ascii(char):
            raise VietQrError(
                VietQrErrorCode.INVALID_CHARACTER,
                gettext(
                    "%(field)s có ký tự %(character)s không dùng được trong mã QR.",
                    field=_form_label(path),
                    character=_describe_character(char),
                ),
                field=path,
            )
    if len(folded) > length_max_chars:
        raise VietQrError(
            VietQrErrorCode.INVALID_FIELD,
            gettext(
                "%(field)s tối đa %(length_max)d ký tự (sau khi bỏ dấu); đang có %(length)d ký tự.",
                field=_form_label(path),
                length_max=length_max_chars,
                length=len(folded),
            ),
            field=path,
        )
    return folded


# Checks shared by the encoder and the parser --------------------------------------------------


def _check_bank_bin(bank_bin: str) -> None:
    if len(bank_bin) != BANK_BIN_LENGTH_DIGITS or not _DIGITS.fullmatch(bank_bin):
        raise VietQrError(
            VietQrErrorCode.INVALID_FIELD,
            gettext("Mã ngân hàng (BIN) phải gồm đúng 6 chữ số."),
            field="38.01.00",
        )


def _check_account_number(account_number: str, service: TransferService) -> None:
    to_card = service is TransferService.TO_CARD
    pattern = _DIGITS if to_card else _ACCOUNT_NUMBER
    well_formed = pattern.fullmatch(account_number) is not None
    if not well_formed or len(account_number) > ACCOUNT_NUMBER_LENGTH_MAX_CHARS:
        if to_card:
            message = gettext(
                "Số thẻ chỉ gồm chữ số, từ 1 đến %(length_max)d ký tự.",
                length_max=ACCOUNT_NUMBER_LENGTH_MAX_CHARS,
            )
        else:
            message = gettext(
                "Số tài khoản chỉ gồm chữ cái không dấu và chữ số, từ 1 đến %(length_max)d ký tự.",
                length_max=ACCOUNT_NUMBER_LENGTH_MAX_CHARS,
            )
        raise VietQrError(VietQrErrorCode.INVALID_FIELD, message, field="38.01.01")


def _check_merchant_category_code(code: str) -> None:
    if len(code) != 4 or not _DIGITS.fullmatch(code):
        raise VietQrError(
            VietQrErrorCode.INVALID_FIELD,
            gettext("Mã loại hình kinh doanh (MCC) phải gồm đúng 4 chữ số."),
            field="52",
        )


def _check_amount(amount_vnd: int) -> None:
    # Money is an int of đồng, never a float; and bool is an int in Python, but True đồng is a
    # bug in the caller, not an amount.
    if (
        not isinstance(amount_vnd, int)
        or isinstance(amount_vnd, bool)
        or not 0 < amount_vnd <= AMOUNT_MAX_VND
    ):
        raise VietQrError(
            VietQrErrorCode.INVALID_AMOUNT,
            gettext(
                "Số tiền phải là số đồng nguyên, lớn hơn 0 và tối đa %(amount_max)s đồng.",
                amount_max=_format_vnd(AMOUNT_MAX_VND),
            ),
            field="54",
        )


# Parsing --------------------------------------------------------------------------------------


def parse_merchant_qr(payload: str) -> MerchantQr:
    """Check a VietQR payload and return its fields, or raise `VietQrError` saying what is wrong.

    Surrounding whitespace is dropped (barcode scanners end their output with a newline). The CRC
    is checked before the structure: a damaged or half-read code usually fails there, and "scan
    again" is the useful thing to say about it.
    """
    text = payload.strip()
    if not text:
        raise VietQrError(
            VietQrErrorCode.EMPTY, gettext("Chưa có nội dung mã QR. Vui lòng quét lại.")
        )
    if len(text) > PAYLOAD_LENGTH_MAX_CHARS:
        raise VietQrError(
            VietQrErrorCode.TOO_LONG,
            gettext(
                "Nội dung mã QR quá dài (%(length)d ký tự, tối đa %(length_max)d); "
                "đây không phải mã VietQR.",
                length=len(text),
                length_max=PAYLOAD_LENGTH_MAX_CHARS,
            ),
        )
    for position, char in enumerate(text, start=1):
        if not _is_printable_ascii(char):
            raise VietQrError(
                VietQrErrorCode.INVALID_CHARACTER,
                gettext(
                    "Mã QR có ký tự %(character)s ở vị trí %(position)d, "
                    "không được phép trong mã VietQR.",
                    character=_describe_character(char),
                    position=position,
                ),
            )
    _check_crc(text)

    root = _parse_template(text, "")
    # The CRC that was checked must be the last data object, not characters inside a value.
    if root[0][0] != "00" or root[-1] != ("63", text[-_CRC_LENGTH_CHARS:]):
        raise VietQrError(
            VietQrErrorCode.MALFORMED,
            gettext(
                "Mã QR sai cấu trúc: trường 00 phải đứng đầu và trường 63 (mã kiểm tra) đứng cuối."
            ),
        )
    root_fields = _unique(root, "")
    ignored: list[str] = []

    if root_fields["00"] != PAYLOAD_FORMAT_INDICATOR:
        raise VietQrError(
            VietQrErrorCode.UNSUPPORTED_FORMAT,
            gettext(
                "Phiên bản dữ liệu của mã QR là '%(version)s', không phải '01' "
                "như chuẩn VietQR quy định.",
                version=root_fields["00"],
            ),
            field="00",
        )
    initiation = _parse_initiation(root_fields)
    for tip_id in ("55", "56", "57"):
        if tip_id in root_fields:
            raise VietQrError(
                VietQrErrorCode.UNSUPPORTED_FIELD,
                gettext(
                    "Mã QR có yêu cầu tiền boa hoặc phí dịch vụ (trường 55-57), "
                    "hệ thống chưa hỗ trợ loại mã này."
                ),
                field=tip_id,
            )
    if "38" not in root_fields:
        raise VietQrError(
            VietQrErrorCode.NOT_VIETQR,
            gettext("Mã QR này không phải mã VietQR chuyển khoản qua NAPAS (không có trường 38)."),
        )
    bank_bin, account_number, service = _parse_merchant_account(root_fields["38"], ignored)
    currency = _require(root_fields, "53")
    if currency != CURRENCY_VND:
        raise VietQrError(
            VietQrErrorCode.UNSUPPORTED_CURRENCY,
            gettext(
                "Mã QR dùng đơn vị tiền tệ '%(currency)s', không phải đồng Việt Nam (704).",
                currency=currency,
            ),
            field="53",
        )
    country = _require(root_fields, "58")
    if country != COUNTRY_VIETNAM:
        raise VietQrError(
            VietQrErrorCode.UNSUPPORTED_COUNTRY,
            gettext(
                "Mã QR thuộc quốc gia '%(country)s', không phải Việt Nam (VN).", country=country
            ),
            field="58",
        )
    merchant_category_code = root_fields.get("52")
    if merchant_category_code is not None:
        _check_merchant_category_code(merchant_category_code)
    amount_vnd = _parse_amount(root_fields["54"]) if "54" in root_fields else None
    merchant_name = _parsed_text(root_fields.get("59"), "59", MERCHANT_NAME_LENGTH_MAX_CHARS)
    merchant_city = _parsed_text(root_fields.get("60"), "60", MERCHANT_CITY_LENGTH_MAX_CHARS)
    additional_data = (
        _parse_additional_data(root_fields["62"], ignored) if "62" in root_fields else None
    )

    known = {"00", "01", "38", "52", "53", "54", "58", "59", "60", "62", "63"}
    ignored.extend(field_id for field_id in root_fields if field_id not in known)
    return MerchantQr(
        bank_bin=bank_bin,
        account_number=account_number,
        service=service,
        initiation=initiation,
        amount_vnd=amount_vnd,
        merchant_category_code=merchant_category_code,
        merchant_name=merchant_name,
        merchant_city=merchant_city,
        additional_data=additional_data or AdditionalData(),
        ignored_fields=tuple(sorted(ignored)),
    )


def _check_crc(text: str) -> None:
    tag_start = len(text) - _CRC_LENGTH_CHARS - len(_CRC_TAG)
    if tag_start < 0 or text[tag_start : tag_start + len(_CRC_TAG)] != _CRC_TAG:
        raise VietQrError(
            VietQrErrorCode.MISSING_CRC,
            gettext(
                "Mã QR không có mã kiểm tra ở cuối (trường 63), có thể bị quét thiếu. "
                "Vui lòng quét lại."
            ),
            field="63",
        )
    given = text[-_CRC_LENGTH_CHARS:]
    if not _HEX4.fullmatch(given):
        raise VietQrError(
            VietQrErrorCode.INVALID_FIELD,
            gettext("Mã kiểm tra (trường 63) '%(crc)s' phải gồm 4 chữ số hệ 16.", crc=given),
            field="63",
        )
    if given.upper() != payload_crc(text[:-_CRC_LENGTH_CHARS]):
        raise VietQrError(
            VietQrErrorCode.CRC_MISMATCH,
            gettext(
                "Mã QR bị sai mã kiểm tra: mã bị hỏng, bị sửa hoặc quét chưa đủ. "
                "Vui lòng quét lại; nếu vẫn lỗi, đừng chuyển tiền theo mã này."
            ),
            field="63",
        )


def _parse_template(text: str, path: str) -> list[tuple[str, str]]:
    """Split a run of data objects into (ID, value) pairs, in order."""
    objects = []
    position = 0
    while position < len(text):
        field_id, length_text = text[position : position + 2], text[position + 2 : position + 4]
        object_path = f"{path}.{field_id}" if path else field_id
        if len(length_text) < 2 or not _DIGITS.fullmatch(field_id + length_text):
            if path:
                message = gettext(
                    "Mã QR sai cấu trúc ở vị trí %(position)d trong %(field)s: "
                    "cần 2 chữ số mã trường và 2 chữ số độ dài.",
                    position=position + 1,
                    field=_field_label(path),
                )
            else:
                message = gettext(
                    "Mã QR sai cấu trúc ở vị trí %(position)d: "
                    "cần 2 chữ số mã trường và 2 chữ số độ dài.",
                    position=position + 1,
                )
            raise VietQrError(VietQrErrorCode.MALFORMED, message, field=path or None)
        length = int(length_text)
        value = text[position + 4 : position + 4 + length]
        if length == 0 or len(value) < length:
            raise VietQrError(
                VietQrErrorCode.MALFORMED,
                gettext(
                    "Mã QR sai cấu trúc: %(field)s khai báo độ dài %(length)d "
                    "nhưng chỉ có %(found)d ký tự.",
                    field=_field_label(object_path),
                    length=length,
                    found=len(value),
                ),
                field=object_path,
            )
        objects.append((field_id, value))
        position += 4 + length
    return objects


def _unique(objects: list[tuple[str, str]], path: str) -> dict[str, str]:
    by_id: dict[str, str] = {}
    for field_id, value in objects:
        object_path = f"{path}.{field_id}" if path else field_id
        if field_id in by_id:
            raise VietQrError(
                VietQrErrorCode.DUPLICATE_FIELD,
                gettext(
                    "Mã QR sai cấu trúc: %(field)s xuất hiện hai lần.",
                    field=_field_label(object_path),
                ),
                field=object_path,
            )
        by_id[field_id] = value
    return by_id


def _require(objects: dict[str, str], field_id: str, path: str = "") -> str:
    object_path = f"{path}.{field_id}" if path else field_id
    value = objects.get(field_id)
    if value is None:
        raise VietQrError(
            VietQrErrorCode.MISSING_FIELD,
            gettext("Mã QR thiếu %(field)s.", field=_field_label(object_path)),
            field=object_path,
        )
    return value


def _parse_initiation(root_fields: dict[str, str]) -> Initiation:
    value = _require(root_fields, "01")
    try:
        return Initiation(value)
    except ValueError:
        raise VietQrError(
            VietQrErrorCode.INVALID_FIELD,
            gettext(
                "Phương thức khởi tạo (trường 01) là '%(value)s', phải là '11' (mã tĩnh) "
                "hoặc '12' (mã động).",
                value=value,
            ),
            field="01",
        ) from None


def _parse_merchant_account(value: str, ignored: list[str]) -> tuple[str, str, TransferService]:
    merchant_account = _unique(_parse_template(value, "38"), "38")
    guid = _require(merchant_account, "00", "38")
    if guid != NAPAS_GUID:
        raise VietQrError(
            VietQrErrorCode.NOT_VIETQR,
            gettext(
                "Mã QR này không phải mã VietQR của NAPAS (mã định danh '%(guid)s').", guid=guid
            ),
            field="38.00",
        )
    beneficiary = _unique(_parse_template(_require(merchant_account, "01", "38"), "38.01"), "38.01")
    bank_bin = _require(beneficiary, "00", "38.01")
    account_number = _require(beneficiary, "01", "38.01")
    service_code = _require(merchant_account, "02", "38")
    if service_code in _REFUSED_SERVICES:
        raise VietQrError(
            VietQrErrorCode.UNSUPPORTED_SERVICE,
            gettext(
                "Đây là mã QR %(service)s, không phải mã chuyển khoản; "
                "ví điện tử không thanh toán được mã này.",
                service=_REFUSED_SERVICES[service_code],
            ),
            field="38.02",
        )
    try:
        service = TransferService(service_code)
    except ValueError:
        raise VietQrError(
            VietQrErrorCode.INVALID_FIELD,
            gettext(
                "Mã dịch vụ (trường 38.02) '%(service)s' không hợp lệ; phải là QRIBFTTA "
                "(chuyển đến tài khoản) hoặc QRIBFTTC (chuyển đến thẻ).",
                service=service_code,
            ),
            field="38.02",
        ) from None
    _check_bank_bin(bank_bin)
    _check_account_number(account_number, service)
    ignored.extend(
        f"38.{sub_id}" for sub_id in merchant_account if sub_id not in {"00", "01", "02"}
    )
    ignored.extend(f"38.01.{sub_id}" for sub_id in beneficiary if sub_id not in {"00", "01"})
    return bank_bin, account_number, service


def _parse_amount(value: str) -> int:
    match = _AMOUNT.fullmatch(value)
    if match is None or len(value) > AMOUNT_LENGTH_MAX_CHARS or int(match["whole"]) == 0:
        raise VietQrError(
            VietQrErrorCode.INVALID_AMOUNT,
            gettext(
                "Số tiền trong mã QR ('%(value)s') không hợp lệ: "
                "phải là số đồng nguyên, lớn hơn 0.",
                value=value,
            ),
            field="54",
        )
    return int(match["whole"])


def _parsed_text(value: str | None, path: str, length_max_chars: int) -> str | None:
    if value is not None and len(value) > length_max_chars:
        raise VietQrError(
            VietQrErrorCode.INVALID_FIELD,
            gettext(
                "Mã QR có %(field)s dài quá %(length_max)d ký tự.",
                field=_field_label(path),
                length_max=length_max_chars,
            ),
            field=path,
        )
    return value


def _parse_additional_data(value: str, ignored: list[str]) -> AdditionalData:
    sub_fields = _unique(_parse_template(value, "62"), "62")
    values: dict[str, str] = {}
    for attribute, sub_id in _ADDITIONAL_DATA_IDS.items():
        path = f"62.{sub_id}"
        text = _parsed_text(sub_fields.get(sub_id), path, ADDITIONAL_DATA_VALUE_LENGTH_MAX_CHARS)
        if text is not None:
            values[attribute] = text
    known = set(_ADDITIONAL_DATA_IDS.values())
    ignored.extend(f"62.{sub_id}" for sub_id in sub_fields if sub_id not in known)
    return AdditionalData(**values)


# The picture ----------------------------------------------------------------------------------


def render_merchant_qr_png(payload: str) -> bytes:
    """Draw a payload as a black-on-white PNG QR code with error correction level M.

    The payload is parsed first, so a code that bank apps would refuse is never printed. One
    segment in one mode (``optimize=0``): a payload with lower-case text goes in byte mode.
    """
    text = payload.strip()
    parse_merchant_qr(text)
    code = qrcode.QRCode(
        error_correction=qrcode.constants.ERROR_CORRECT_M,
        box_size=QR_MODULE_SIZE_PX,
        border=QR_QUIET_ZONE_MODULES,
    )
    code.add_data(text, optimize=0)
    code.make(fit=True)
    buffer = io.BytesIO()
    code.make_image().save(buffer)
    return buffer.getvalue()


def _format_vnd(amount_vnd: int) -> str:
    # Vietnamese groups thousands with a dot: 1.000.000.
    return f"{amount_vnd:,}".replace(",", ".")


def _is_printable_ascii(char: str) -> bool:
    return " " <= char <= "~"


def _describe_character(char: str) -> str:
    # Invisible characters are named by code point so the message never hides its subject.
    if char.isprintable() and not char.isspace():
        return f"'{char}'"
    return f"U+{ord(char):04X}"
