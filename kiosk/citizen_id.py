"""The 12-digit Vietnamese citizen ID number (số CCCD / số định danh cá nhân): validate, mask.

Structure (Decree 137/2015/NĐ-CP art. 7; the codes in Circular 07/2016/TT-BCA, province codes in
its Appendix I; unchanged by the later rules): ``PPP G YY RRRRRR``

- ``PPP``: the code of the province where the birth was registered, from the table below;
- ``G``: century and sex together: 0/1 born 1900-1999 male/female, 2/3 2000-2099, 4/5 2100-2199,
  6/7 2200-2299, 8/9 2300-2399 (even is male, odd is female);
- ``YY``: the last two digits of the year of birth;
- ``RRRRRR``: six random digits. There is no check digit, so a typo in the random part cannot be
  caught: the structure and its agreement with the date of birth and sex is all that can be checked.

Province codes after the 2025 merger: the 34 new provinces kept the codes of 34 of the old ones
(Hà Nội 01, Lào Cai 15, Gia Lai 52, …), so every number, issued before or after the merger, still
starts with one of the 63 pre-2025 codes. A code names the province as it was when the code was
issued, so the names here are the pre-2025 ones; a number is never changed by the merger.

Citizens whose birth was registered abroad get a country code instead of a province code (Decree
137/2015 art. 7); that table is not published with the circular, so such numbers are refused as
an unknown province and need the agent's manual path.

This module owns the number only: no database, no web framework (Flask-Babel's gettext alone, which
works without an app too). Errors carry a stable ``code`` for programs and a ``message`` in the
person's language (Vietnamese by default) that tells them what is wrong.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone
from types import MappingProxyType
from typing import Final

from flask_babel import gettext as _  # type: ignore[import-untyped]
from flask_babel import lazy_gettext

CITIZEN_ID_LENGTH_DIGITS: Final = 12
# Shown digits when masking: enough for an agent to match the card in hand, too few to reuse.
CITIZEN_ID_SHOWN_DIGITS: Final = 4
MASK_CHARACTER: Final = "•"

# "Today" for the birth-date checks is the calendar date in Vietnam (UTC+7, no daylight saving),
# not on the server's clock, which may run in UTC: just after midnight local time the two differ.
VIETNAM_TIMEZONE: Final = timezone(timedelta(hours=7), "ICT")

# Appendix I of Circular 07/2016/TT-BCA: "Bảng danh mục mã tỉnh, thành phố trực thuộc trung ương
# nơi công dân đăng ký khai sinh". The codes are the statistics office's 2-digit province codes
# with a leading zero; tests cross-check them against the vietnamadminunits data set.
PROVINCE_OF_BIRTH_CODES: Final = MappingProxyType(
    {
        "001": "Hà Nội",
        "002": "Hà Giang",
        "004": "Cao Bằng",
        "006": "Bắc Kạn",
        "008": "Tuyên Quang",
        "010": "Lào Cai",
        "011": "Điện Biên",
        "012": "Lai Châu",
        "014": "Sơn La",
        "015": "Yên Bái",
        "017": "Hòa Bình",
        "019": "Thái Nguyên",
        "020": "Lạng Sơn",
        "022": "Quảng Ninh",
        "024": "Bắc Giang",
        "025": "Phú Thọ",
        "026": "Vĩnh Phúc",
        "027": "Bắc Ninh",
        "030": "Hải Dương",
        "031": "Hải Phòng",
        "033": "Hưng Yên",
        "034": "Thái Bình",
        "035": "Hà Nam",
        "036": "Nam Định",
        "037": "Ninh Bình",
        "038": "Thanh Hóa",
        "040": "Nghệ An",
        "042": "Hà Tĩnh",
        "044": "Quảng Bình",
        "045": "Quảng Trị",
        "046": "Thừa Thiên Huế",
        "048": "Đà Nẵng",
        "049": "Quảng Nam",
        "051": "Quảng Ngãi",
        "052": "Bình Định",
        "054": "Phú Yên",
        "056": "Khánh Hòa",
        "058": "Ninh Thuận",
        "060": "Bình Thuận",
        "062": "Kon Tum",
        "064": "Gia Lai",
        "066": "Đắk Lắk",
        "067": "Đắk Nông",
        "068": "Lâm Đồng",
        "070": "Bình Phước",
        "072": "Tây Ninh",
        "074": "Bình Dương",
        "075": "Đồng Nai",
        "077": "Bà Rịa - Vũng Tàu",
        "079": "Hồ Chí Minh",
        "080": "Long An",
        "082": "Tiền Giang",
        "083": "Bến Tre",
        "084": "Trà Vinh",
        "086": "Vĩnh Long",
        "087": "Đồng Tháp",
        "089": "An Giang",
        "091": "Kiên Giang",
        "092": "Cần Thơ",
        "093": "Hậu Giang",
        "094": "Sóc Trăng",
        "095": "Bạc Liêu",
        "096": "Cà Mau",
    }
)
assert len(PROVINCE_OF_BIRTH_CODES) == 63

# The first year of the century that each pair of century/sex digits stands for.
_CENTURY_START_YEAR_BY_PAIR: Final = (1900, 2000, 2100, 2200, 2300)


class Sex(enum.StrEnum):
    MALE = "male"
    FEMALE = "female"


_SEX_WORD: Final = {Sex.MALE: lazy_gettext("nam"), Sex.FEMALE: lazy_gettext("nữ")}


class CitizenIdErrorCode(enum.StrEnum):
    MISSING = "missing"
    NOT_DIGITS = "not_digits"
    WRONG_LENGTH = "wrong_length"
    UNKNOWN_PROVINCE = "unknown_province"
    DATE_OF_BIRTH_IN_FUTURE = "date_of_birth_in_future"
    BIRTH_YEAR_IN_FUTURE = "birth_year_in_future"
    BIRTH_YEAR_MISMATCH = "birth_year_mismatch"
    SEX_MISMATCH = "sex_mismatch"


class CitizenIdError(ValueError):
    """A citizen ID number that is malformed or disagrees with the date of birth or sex.

    ``code`` is stable for programs; ``message`` (also ``str(error)``) is for the person who typed
    the number, in their language.
    """

    def __init__(self, code: CitizenIdErrorCode, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


@dataclass(frozen=True, slots=True)
class CitizenIdParts:
    """What a well-formed number says about its holder."""

    number: str
    province_code: str
    province_name: str
    birth_year: int
    sex: Sex


def normalise_citizen_id(number: str) -> str:
    """Remove whitespace and check the result is exactly 12 ASCII digits; return it.

    People copy the number from the card in groups ("001 085 012345"), so whitespace anywhere is
    dropped. Anything else — dots, dashes, letters, full-width or other non-ASCII digits — is
    refused rather than guessed at. ``str.isdigit`` is true for full-width and Arabic-Indic
    digits too, so the check is an explicit ASCII range.
    """
    compact = "".join(number.split())
    if not compact:
        raise CitizenIdError(CitizenIdErrorCode.MISSING, _("Vui lòng nhập số CCCD (12 chữ số)."))
    for position, character in enumerate(compact, start=1):
        if not "0" <= character <= "9":
            raise CitizenIdError(
                CitizenIdErrorCode.NOT_DIGITS,
                _(
                    "Số CCCD chỉ gồm các chữ số từ 0 đến 9 trên bàn phím thường; "
                    "ký tự thứ %(position)d (%(character)s) không hợp lệ.",
                    position=position,
                    character=_describe_character(character),
                ),
            )
    if len(compact) != CITIZEN_ID_LENGTH_DIGITS:
        raise CitizenIdError(
            CitizenIdErrorCode.WRONG_LENGTH,
            _(
                "Số CCCD phải gồm đúng 12 chữ số; số đã nhập có %(count)d chữ số.",
                count=len(compact),
            ),
        )
    return compact


def decode_citizen_id(number: str) -> CitizenIdParts:
    """Check the form and the province code, and read the birth year and sex from the number."""
    normalised = normalise_citizen_id(number)
    province_code = normalised[:3]
    province_name = PROVINCE_OF_BIRTH_CODES.get(province_code)
    if province_name is None:
        raise CitizenIdError(
            CitizenIdErrorCode.UNKNOWN_PROVINCE,
            _(
                "Mã tỉnh nơi sinh '%(code)s' không tồn tại. Ba chữ số đầu của số CCCD "
                "là mã tỉnh nơi đăng ký khai sinh; vui lòng kiểm tra lại số CCCD.",
                code=province_code,
            ),
        )
    century_digit = int(normalised[3])
    sex = Sex.MALE if century_digit % 2 == 0 else Sex.FEMALE
    birth_year = _CENTURY_START_YEAR_BY_PAIR[century_digit // 2] + int(normalised[4:6])
    return CitizenIdParts(
        number=normalised,
        province_code=province_code,
        province_name=province_name,
        birth_year=birth_year,
        sex=sex,
    )


def validate_citizen_id(
    number: str, *, date_of_birth: date, sex: Sex, today: date | None = None
) -> str:
    """Return the normalised number, or raise `CitizenIdError` saying what is wrong.

    The checks run in the order a person would fix them: the form of the number, its province
    code, then whether it agrees with the date of birth and the sex entered. ``today`` defaults to
    the date in Vietnam; tests pass it to pin the clock.
    """
    # Accept any equal string enum (a model's own Sex, say); anything else is a caller's bug.
    sex = Sex(sex)
    parts = decode_citizen_id(number)
    if today is None:
        today = datetime.now(VIETNAM_TIMEZONE).date()
    if date_of_birth > today:
        raise CitizenIdError(
            CitizenIdErrorCode.DATE_OF_BIRTH_IN_FUTURE,
            _(
                "Ngày sinh đã nhập (%(date)s) là một ngày trong tương lai.",
                date=f"{date_of_birth:%d/%m/%Y}",
            ),
        )
    if parts.birth_year > today.year:
        # Checked before the comparison with the date of birth: the likely fault is a mistyped
        # century digit, and saying so points at the digit to fix.
        raise CitizenIdError(
            CitizenIdErrorCode.BIRTH_YEAR_IN_FUTURE,
            _(
                "Số CCCD cho biết năm sinh %(year)d, là năm chưa tới "
                "(chữ số thứ 4 là '%(digit)s'). Vui lòng kiểm tra lại số CCCD.",
                year=parts.birth_year,
                digit=parts.number[3],
            ),
        )
    if parts.birth_year != date_of_birth.year:
        raise CitizenIdError(
            CitizenIdErrorCode.BIRTH_YEAR_MISMATCH,
            _(
                "Số CCCD cho biết năm sinh %(year)d, nhưng ngày sinh đã nhập là năm %(entered)d.",
                year=parts.birth_year,
                entered=date_of_birth.year,
            ),
        )
    if parts.sex != sex:
        raise CitizenIdError(
            CitizenIdErrorCode.SEX_MISMATCH,
            _(
                "Số CCCD cho biết giới tính %(sex)s, nhưng giới tính đã nhập là %(entered)s.",
                sex=_SEX_WORD[parts.sex],
                entered=_SEX_WORD[sex],
            ),
        )
    return parts.number


def citizen_id_last4(number: str) -> str:
    """The last four digits, the part staff may read aloud or print on a receipt."""
    return normalise_citizen_id(number)[-CITIZEN_ID_SHOWN_DIGITS:]


def mask_citizen_id(number: str) -> str:
    """Show only the last four digits, grouped in fours as on the card: "•••• •••• 6789".

    The hidden digits become bullets rather than being dropped, so the agent sees that the whole
    number is on file and where the shown digits sit. A malformed number raises `CitizenIdError`
    instead of being half-masked.
    """
    return mask_citizen_id_last4(citizen_id_last4(number))


def mask_citizen_id_last4(last4: str) -> str:
    """The same mask from the stored last four digits, without decrypting the whole number."""
    if len(last4) != CITIZEN_ID_SHOWN_DIGITS or not all("0" <= char <= "9" for char in last4):
        raise CitizenIdError(
            CitizenIdErrorCode.WRONG_LENGTH,
            _("Bốn số cuối của CCCD phải gồm đúng 4 chữ số."),
        )
    hidden = CITIZEN_ID_LENGTH_DIGITS - CITIZEN_ID_SHOWN_DIGITS
    masked = MASK_CHARACTER * hidden + last4
    return " ".join(masked[start : start + 4] for start in range(0, CITIZEN_ID_LENGTH_DIGITS, 4))


def _describe_character(character: str) -> str:
    # Control and other invisible characters are named by code point, so the message never
    # contains something the person cannot see.
    if character.isprintable():
        return f"'{character}'"
    return f"U+{ord(character):04X}"
