"""Citizen ID numbers: the form, the province code, agreement with birth date and sex, masking."""

from datetime import date, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from kiosk.citizen_id import (
    PROVINCE_OF_BIRTH_CODES,
    CitizenIdError,
    CitizenIdErrorCode,
    Sex,
    citizen_id_last4,
    decode_citizen_id,
    mask_citizen_id,
    mask_citizen_id_last4,
    validate_citizen_id,
)

# A fixed "today" so that the future-year checks do not depend on when the suite runs.
TODAY = date(2026, 1, 15)
MALE, FEMALE = Sex.MALE, Sex.FEMALE
FULL_WIDTH_DIGITS = str.maketrans("0123456789", "".join(chr(0xFF10 + d) for d in range(10)))
ARABIC_INDIC_DIGITS = str.maketrans("0123456789", "".join(chr(0x0660 + d) for d in range(10)))


def validate(number: str, date_of_birth: date, sex: Sex) -> str:
    return validate_citizen_id(number, date_of_birth=date_of_birth, sex=sex, today=TODAY)


def refusal(number: str, date_of_birth: date, sex: Sex) -> CitizenIdError:
    with pytest.raises(CitizenIdError) as caught:
        validate(number, date_of_birth, sex)
    return caught.value


@pytest.mark.parametrize(
    ("number", "date_of_birth", "sex", "normalised"),
    [
        ("001085012345", date(1985, 3, 2), MALE, "001085012345"),
        ("079185000001", date(1985, 12, 31), FEMALE, "079185000001"),
        ("020203123456", date(2003, 1, 1), MALE, "020203123456"),
        ("096306654321", date(2006, 7, 9), FEMALE, "096306654321"),
        ("046000000000", date(1900, 1, 1), MALE, "046000000000"),
        ("015199999999", date(1999, 12, 31), FEMALE, "015199999999"),
        # Born today: the youngest possible holder.
        ("001226000000", TODAY, MALE, "001226000000"),
        # Typed in groups as printed on the card, or pasted with stray whitespace.
        ("001 085 012 345", date(1985, 3, 2), MALE, "001085012345"),
        (" 0010 8501 2345\n", date(1985, 3, 2), MALE, "001085012345"),
        ("001\t085\u00a0012345", date(1985, 3, 2), MALE, "001085012345"),
    ],
)
def test_good_numbers_are_returned_normalised(
    number: str, date_of_birth: date, sex: Sex, normalised: str
) -> None:
    assert validate(number, date_of_birth, sex) == normalised


def test_the_default_today_is_used_when_none_is_given() -> None:
    assert (
        validate_citizen_id("001085012345", date_of_birth=date(1985, 3, 2), sex=MALE)
        == "001085012345"
    )


@pytest.mark.parametrize("number", ["", "   ", "\n"])
def test_a_missing_number_is_refused(number: str) -> None:
    error = refusal(number, date(1985, 3, 2), MALE)
    assert error.code is CitizenIdErrorCode.MISSING


@pytest.mark.parametrize(
    "number",
    [
        "00108501234A",
        "001-085-012345",
        "001.085.012345",
        "+84001085012345",
        "O01085012345",  # a capital letter O where a zero belongs
        # Digits that str.isdigit() accepts: full-width, Arabic-Indic, a superscript one.
        "001085012345".translate(FULL_WIDTH_DIGITS),
        "001085012345".translate(ARABIC_INDIC_DIGITS),
        "00108501234\u00b9",
        "001085012345\x00",
    ],
)
def test_anything_but_ascii_digits_is_refused(number: str) -> None:
    error = refusal(number, date(1985, 3, 2), MALE)
    assert error.code is CitizenIdErrorCode.NOT_DIGITS
    assert error.message.startswith("Số CCCD chỉ gồm các chữ số từ 0 đến 9")


def test_an_invisible_character_is_named_by_its_code_point() -> None:
    error = refusal("001085012345\x00", date(1985, 3, 2), MALE)
    assert "U+0000" in error.message
    assert "\x00" not in error.message


@pytest.mark.parametrize(
    ("number", "digit_count"),
    [
        ("00108501234", 11),
        ("0010850123456", 13),
        ("012345678", 9),  # the old 9-digit identity card (CMND) number
        ("1", 1),
    ],
)
def test_a_number_of_the_wrong_length_is_refused(number: str, digit_count: int) -> None:
    error = refusal(number, date(1985, 3, 2), MALE)
    assert error.code is CitizenIdErrorCode.WRONG_LENGTH
    assert error.message == (
        f"Số CCCD phải gồm đúng 12 chữ số; số đã nhập có {digit_count} chữ số."
    )


@pytest.mark.parametrize("province", ["000", "003", "005", "099", "097", "100", "999", "063"])
def test_an_unknown_province_code_is_refused(province: str) -> None:
    error = refusal(province + "085012345", date(1985, 3, 2), MALE)
    assert error.code is CitizenIdErrorCode.UNKNOWN_PROVINCE
    assert f"Mã tỉnh nơi sinh '{province}' không tồn tại." in error.message


@pytest.mark.parametrize(
    ("number", "date_of_birth", "number_year"),
    [
        # The year digits disagree.
        ("001085012345", date(1958, 3, 2), 1985),
        ("001185012345", date(1984, 12, 31), 1985),
        # The century digit disagrees: 2003 on the card, 1903 entered, and the reverse.
        ("001203012345", date(1903, 5, 5), 2003),
        ("001003012345", date(2003, 5, 5), 1903),
        ("001303012345", date(1903, 5, 5), 2003),
    ],
)
def test_a_birth_year_that_disagrees_with_the_date_of_birth_is_refused(
    number: str, date_of_birth: date, number_year: int
) -> None:
    sex = decode_citizen_id(number).sex
    error = refusal(number, date_of_birth, sex)
    assert error.code is CitizenIdErrorCode.BIRTH_YEAR_MISMATCH
    assert error.message == (
        f"Số CCCD cho biết năm sinh {number_year}, "
        f"nhưng ngày sinh đã nhập là năm {date_of_birth.year}."
    )


def test_the_example_year_message_reads_as_specified() -> None:
    error = refusal("001085012345", date(1958, 3, 2), MALE)
    assert str(error) == "Số CCCD cho biết năm sinh 1985, nhưng ngày sinh đã nhập là năm 1958."


@pytest.mark.parametrize(
    ("number", "date_of_birth", "entered", "message"),
    [
        (
            "001185012345",
            date(1985, 3, 2),
            MALE,
            "Số CCCD cho biết giới tính nữ, nhưng giới tính đã nhập là nam.",
        ),
        (
            "001085012345",
            date(1985, 3, 2),
            FEMALE,
            "Số CCCD cho biết giới tính nam, nhưng giới tính đã nhập là nữ.",
        ),
        (
            "001305012345",
            date(2005, 3, 2),
            MALE,
            "Số CCCD cho biết giới tính nữ, nhưng giới tính đã nhập là nam.",
        ),
        (
            "001205012345",
            date(2005, 3, 2),
            FEMALE,
            "Số CCCD cho biết giới tính nam, nhưng giới tính đã nhập là nữ.",
        ),
    ],
)
def test_a_sex_that_disagrees_is_refused(
    number: str, date_of_birth: date, entered: Sex, message: str
) -> None:
    error = refusal(number, date_of_birth, entered)
    assert error.code is CitizenIdErrorCode.SEX_MISMATCH
    assert error.message == message


@pytest.mark.parametrize(
    ("century_digit", "year"),
    [("4", 2185), ("5", 2185), ("6", 2285), ("7", 2285), ("8", 2385), ("9", 2385)],
)
def test_a_century_digit_from_the_future_is_refused(century_digit: str, year: int) -> None:
    error = refusal(f"001{century_digit}85012345", date(1985, 3, 2), MALE)
    assert error.code is CitizenIdErrorCode.BIRTH_YEAR_IN_FUTURE
    assert f"năm sinh {year}" in error.message
    assert f"chữ số thứ 4 là '{century_digit}'" in error.message


def test_a_year_later_this_century_is_refused_as_in_the_future() -> None:
    error = refusal("001299012345", date(1999, 3, 2), MALE)
    assert error.code is CitizenIdErrorCode.BIRTH_YEAR_IN_FUTURE


def test_a_date_of_birth_in_the_future_is_refused() -> None:
    tomorrow = TODAY + timedelta(days=1)
    error = refusal("001226012345", tomorrow, MALE)
    assert error.code is CitizenIdErrorCode.DATE_OF_BIRTH_IN_FUTURE
    assert tomorrow.strftime("%d/%m/%Y") in error.message


def test_the_error_carries_code_and_vietnamese_message() -> None:
    error = refusal("099085012345", date(1985, 3, 2), MALE)
    assert isinstance(error, ValueError)
    assert str(error) == error.message
    assert error.code == "unknown_province"


def test_sex_may_be_given_as_an_equal_string_enum() -> None:
    # The citizens model declares its own Sex with the same values.
    assert validate("001185012345", date(1985, 3, 2), "female") == "001185012345"  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="'other'"):
        validate("001185012345", date(1985, 3, 2), "other")  # type: ignore[arg-type]


def test_decode_reads_province_year_and_sex() -> None:
    parts = decode_citizen_id("020 3 06 654321")
    assert parts.number == "020306654321"
    assert parts.province_code == "020"
    assert parts.province_name == "Lạng Sơn"
    assert parts.birth_year == 2006
    assert parts.sex is FEMALE


# Masking -------------------------------------------------------------------------------------


@pytest.mark.parametrize("number", ["001085016789", "001 085 016 789", "0010 8501 6789"])
def test_mask_shows_only_the_last_four_digits(number: str) -> None:
    assert mask_citizen_id(number) == "•••• •••• 6789"
    assert citizen_id_last4(number) == "6789"


def test_mask_from_the_stored_last_four_digits_matches() -> None:
    assert mask_citizen_id_last4("6789") == mask_citizen_id("001085016789")


@pytest.mark.parametrize("last4", ["", "678", "67890", "678X", "\uff16789"])
def test_mask_from_last_four_refuses_anything_but_four_ascii_digits(last4: str) -> None:
    with pytest.raises(CitizenIdError):
        mask_citizen_id_last4(last4)


@pytest.mark.parametrize("number", ["", "12345", "00108501678X", "0010850167890"])
def test_mask_refuses_a_malformed_number(number: str) -> None:
    with pytest.raises(CitizenIdError):
        mask_citizen_id(number)
    with pytest.raises(CitizenIdError):
        citizen_id_last4(number)


@given(st.text(alphabet="0123456789", min_size=12, max_size=12))
def test_a_mask_never_reveals_more_than_the_last_four_digits(number: str) -> None:
    masked = mask_citizen_id(number)
    assert [character for character in masked if character.isdigit()] == list(number[-4:])
    assert len(masked) == 14


# The province table --------------------------------------------------------------------------


def test_the_table_has_the_63_pre_2025_provinces() -> None:
    assert len(PROVINCE_OF_BIRTH_CODES) == 63
    assert len(set(PROVINCE_OF_BIRTH_CODES.values())) == 63
    assert all(len(code) == 3 and code.isascii() for code in PROVINCE_OF_BIRTH_CODES)
    assert PROVINCE_OF_BIRTH_CODES["001"] == "Hà Nội"
    assert PROVINCE_OF_BIRTH_CODES["020"] == "Lạng Sơn"
    assert PROVINCE_OF_BIRTH_CODES["096"] == "Cà Mau"


def test_the_table_matches_the_statistics_office_codes_before_and_after_2025() -> None:
    # An independent source: the vietnamadminunits data set carries the statistics office's
    # 63 legacy province codes and the 34 codes in force since July 2025.
    from vietnamadminunits import database  # a declared dependency: its absence is a failure

    legacy = {
        row["provinceCode"] for row in database.get_data("provinceCode", "admin_units_legacy")
    }
    current = {row["provinceCode"] for row in database.get_data("provinceCode", "admin_units")}
    ours = {code[1:] for code in PROVINCE_OF_BIRTH_CODES}
    assert ours == legacy
    assert len(current) == 34
    assert current <= ours


# Properties ----------------------------------------------------------------------------------

provinces = st.sampled_from(sorted(PROVINCE_OF_BIRTH_CODES))
birth_dates = st.dates(min_value=date(1900, 1, 1), max_value=TODAY)
sexes = st.sampled_from([MALE, FEMALE])
random_parts = st.text(alphabet="0123456789", min_size=6, max_size=6)


def build_number(province: str, date_of_birth: date, sex: Sex, random_part: str) -> str:
    # Written out from the rule rather than with the module's own table, as an oracle.
    century_pair = (date_of_birth.year - 1900) // 100
    century_digit = 2 * century_pair + (0 if sex is MALE else 1)
    return f"{province}{century_digit}{date_of_birth.year % 100:02d}{random_part}"


@given(provinces, birth_dates, sexes, random_parts)
def test_any_well_built_number_validates(
    province: str, date_of_birth: date, sex: Sex, random_part: str
) -> None:
    number = build_number(province, date_of_birth, sex, random_part)
    assert validate(number, date_of_birth, sex) == number
    spaced = " ".join(number[start : start + 3] for start in range(0, 12, 3))
    assert validate(spaced, date_of_birth, sex) == number


@given(
    province=provinces,
    date_of_birth=birth_dates,
    sex=sexes,
    random_part=random_parts,
    position=st.integers(min_value=0, max_value=5),
    shift=st.integers(min_value=1, max_value=9),
)
def test_a_changed_digit_in_the_first_six_is_accepted_consistently_or_refused_for_its_reason(
    *, province: str, date_of_birth: date, sex: Sex, random_part: str, position: int, shift: int
) -> None:
    number = build_number(province, date_of_birth, sex, random_part)
    new_digit = (int(number[position]) + shift) % 10
    changed = number[:position] + str(new_digit) + number[position + 1 :]

    expected: CitizenIdErrorCode | None
    if position < 3:
        # Only the province changes; the birth year and sex still agree.
        known = changed[:3] in PROVINCE_OF_BIRTH_CODES
        expected = None if known else CitizenIdErrorCode.UNKNOWN_PROVINCE
    else:
        century_digit = int(changed[3])
        year = 1900 + 100 * (century_digit // 2) + int(changed[4:6])
        number_sex = MALE if century_digit % 2 == 0 else FEMALE
        if year > TODAY.year:
            expected = CitizenIdErrorCode.BIRTH_YEAR_IN_FUTURE
        elif year != date_of_birth.year:
            expected = CitizenIdErrorCode.BIRTH_YEAR_MISMATCH
        else:
            # The year survived the change, so the century digit moved within its pair.
            assert number_sex is not sex
            expected = CitizenIdErrorCode.SEX_MISMATCH

    if expected is None:
        assert validate(changed, date_of_birth, sex) == changed
        assert decode_citizen_id(changed).birth_year == date_of_birth.year
    else:
        assert refusal(changed, date_of_birth, sex).code is expected


@given(st.text(max_size=20), birth_dates, sexes)
def test_any_text_is_either_twelve_ascii_digits_or_refused_with_a_code(
    text: str, date_of_birth: date, sex: Sex
) -> None:
    try:
        result = validate(text, date_of_birth, sex)
    except CitizenIdError as error:
        assert error.code in set(CitizenIdErrorCode)
        assert error.message
    else:
        assert len(result) == 12
        assert all("0" <= character <= "9" for character in result)
