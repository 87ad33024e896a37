"""Opening a citizen's account: the rules for each field of the registration form, and the two
ways in — the citizen on their own phone (`register_citizen`), or an agent or community team
member on the citizen's behalf (`register_on_behalf`).

Input arrives as the form's plain mapping of strings. Every field is checked and every problem
reported at once (an elderly person fixes a form in one pass, not one error per submit), each
with a Vietnamese sentence that says what to fix. On success the citizen's wallet is opened in
the ledger and the citizen row stored, with the ID number encrypted and only an HMAC kept for
lookups. Operations flush and never commit.
"""

from __future__ import annotations

import datetime as dt
import enum
import logging
import re
import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass

from flask_babel import gettext as _  # type: ignore[import-untyped]
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

import ledger
from kiosk.citizen_id import (
    CitizenIdError,
    Sex,
    citizen_id_last4,
    decode_citizen_id,
    validate_citizen_id,
)
from kiosk.citizens.credentials import PinRejected, check_new_pin, hash_pin
from kiosk.citizens.models import Citizen, KycTier
from kiosk.citizens.phone import PhoneInvalid, normalise_phone
from kiosk.formatting import local_today
from kiosk.pii import vault
from kiosk.places.models import Commune, Province
from ledger import AccountKind

logger = logging.getLogger(__name__)

# Raise when the consent text shown on the form changes; each citizen keeps the version agreed to.
CONSENT_VERSION = "2025-07-v1"
CITIZEN_ID_PURPOSE = "citizen_id"
# The State Bank lets a person of 15 or more open an e-wallet in their own name.
REGISTRATION_AGE_MIN_YEARS = 15
BIRTH_YEAR_MIN = 1900
FULL_NAME_LENGTH_MIN_CHARS = 2
FULL_NAME_LENGTH_MAX_CHARS = 100
SELF = "self"
ON_BEHALF_PATTERN = re.compile(r"(agent|team):[1-9][0-9]{0,18}")


class Field(enum.StrEnum):
    """The registration form's fields (also the keys of the form mapping)."""

    PHONE = "phone"
    CITIZEN_ID = "citizen_id"
    FULL_NAME = "full_name"
    BIRTH_DAY = "birth_day"
    BIRTH_MONTH = "birth_month"
    BIRTH_YEAR = "birth_year"
    SEX = "sex"
    PROVINCE = "province"
    COMMUNE = "commune"
    PIN = "pin"
    PIN_AGAIN = "pin_again"
    CONSENT = "consent"


# Errors about the date of birth are reported on its first box, where the person starts reading.
DATE_OF_BIRTH_FIELD = Field.BIRTH_DAY
CONSENT_GIVEN = "yes"
# The fields of the first step of the form (who you are, which province), before the commune.
PERSONAL_FIELDS = frozenset(
    {
        Field.PHONE,
        Field.CITIZEN_ID,
        Field.FULL_NAME,
        Field.BIRTH_DAY,
        Field.BIRTH_MONTH,
        Field.BIRTH_YEAR,
        Field.SEX,
        Field.PROVINCE,
    }
)


class RegistrationError(Exception):
    """A registration that cannot go ahead; ``errors`` maps each field to what is wrong."""

    def __init__(self, errors: Mapping[str, str]) -> None:
        super().__init__("; ".join(errors.values()))
        self.errors = dict(errors)


class RegistrationInvalid(RegistrationError):
    """One or more fields are missing or wrong."""


class PhoneAlreadyRegistered(RegistrationError):
    def __init__(self) -> None:
        super().__init__(
            {
                Field.PHONE: _(
                    "Số điện thoại này đã được dùng để mở một tài khoản. Nếu đó là tài khoản "
                    "của bạn, hãy đăng nhập; nếu quên mã PIN, hãy đến bưu điện văn hóa xã."
                )
            }
        )


class CitizenIdAlreadyRegistered(RegistrationError):
    def __init__(self) -> None:
        # Says only that the number is taken, never by whom.
        super().__init__(
            {
                Field.CITIZEN_ID: _(
                    "Số CCCD này đã được đăng ký. Nếu bạn chưa từng mở tài khoản, hãy mang căn "
                    "cước công dân đến bưu điện văn hóa xã để được giúp."
                )
            }
        )


@dataclass(frozen=True)
class PersonalDetails:
    """The checked first step of the form: who the person is and where they live."""

    phone: str
    citizen_id: str
    full_name: str
    date_of_birth: dt.date
    sex: Sex
    province_code: str
    commune_code: str | None


def check_personal_details(
    session: Session,
    form: Mapping[str, str],
    today: dt.date,
    *,
    require_commune: bool,
) -> PersonalDetails:
    """Check the personal fields (and the commune when ``require_commune``); raise
    `RegistrationInvalid` with every problem, or a duplicate error, without writing anything."""
    errors: dict[str, str] = {}
    details = _personal_details(session, form, today, errors, require_commune=require_commune)
    if details is None:
        raise RegistrationInvalid(errors)
    _refuse_duplicates(session, details)
    return details


def register_citizen(
    session: Session, form_data: Mapping[str, str], registered_by: str, now: dt.datetime
) -> Citizen:
    """Open the account of a citizen who chose their own PIN (usually ``registered_by="self"``).

    Raises `RegistrationInvalid`, `PhoneAlreadyRegistered` or `CitizenIdAlreadyRegistered`.
    """
    _check_registered_by(registered_by, allow_self=True)
    errors: dict[str, str] = {}
    today = local_today(now)
    details = _personal_details(session, form_data, today, errors, require_commune=True)
    pin = None
    try:
        pin = check_new_pin(
            form_data.get(Field.PIN, ""),
            form_data.get(Field.PIN_AGAIN, ""),
            date_of_birth=None if details is None else details.date_of_birth,
            phone=None if details is None else details.phone,
        )
    except PinRejected as rejected:
        errors[rejected.field] = rejected.message
    _check_consent(form_data, errors)
    if details is None or pin is None or errors:
        raise RegistrationInvalid(errors)
    return _store(session, details, pin_hash=hash_pin(pin), registered_by=registered_by, now=now)


def register_on_behalf(
    session: Session, form_data: Mapping[str, str], registered_by: str, now: dt.datetime
) -> Citizen:
    """Open the account of a citizen registered by an agent or community team member
    (``registered_by`` "agent:12" or "team:7"), who has read the consent text to the citizen.

    The account has no PIN yet (``pin_hash`` None): nobody can sign in to it until the citizen
    sets a PIN on their own phone. Raises as `register_citizen` does.
    """
    _check_registered_by(registered_by, allow_self=False)
    errors: dict[str, str] = {}
    details = _personal_details(session, form_data, local_today(now), errors, require_commune=True)
    _check_consent(form_data, errors)
    if details is None or errors:
        raise RegistrationInvalid(errors)
    return _store(session, details, pin_hash=None, registered_by=registered_by, now=now)


# --- Each field ---------------------------------------------------------------------------------


def _personal_details(
    session: Session,
    form: Mapping[str, str],
    today: dt.date,
    errors: dict[str, str],
    *,
    require_commune: bool,
) -> PersonalDetails | None:
    """Check each personal field, adding to ``errors``; the details when all of them are fine."""
    phone = _phone(form.get(Field.PHONE, ""), errors)
    full_name = _full_name(form.get(Field.FULL_NAME, ""), errors)
    date_of_birth = _date_of_birth(form, today, errors)
    sex = _sex(form.get(Field.SEX, ""), errors)
    citizen_id = _citizen_id(form.get(Field.CITIZEN_ID, ""), date_of_birth, sex, today, errors)
    province_code = _province(session, form.get(Field.PROVINCE, ""), errors)
    commune_code = None
    if require_commune and province_code is not None:
        commune_code = _commune(session, province_code, form.get(Field.COMMUNE, ""), errors)
    if (
        errors
        or phone is None
        or full_name is None
        or date_of_birth is None
        or sex is None
        or citizen_id is None
        or province_code is None
        or (require_commune and commune_code is None)
    ):
        return None
    return PersonalDetails(
        phone=phone,
        citizen_id=citizen_id,
        full_name=full_name,
        date_of_birth=date_of_birth,
        sex=sex,
        province_code=province_code,
        commune_code=commune_code,
    )


def _phone(raw: str, errors: dict[str, str]) -> str | None:
    try:
        return normalise_phone(raw)
    except PhoneInvalid as invalid:
        errors[Field.PHONE] = invalid.message
        return None


def normalise_full_name(raw: str) -> str:
    """NFC (one code point per accented letter, as typed on any keyboard) and single spaces."""
    return " ".join(unicodedata.normalize("NFC", raw).split())


def _full_name(raw: str, errors: dict[str, str]) -> str | None:
    name = normalise_full_name(raw)
    if not name:
        errors[Field.FULL_NAME] = _("Vui lòng nhập họ và tên, có dấu, như trên căn cước.")
        return None
    for character in name:
        if character != " " and not _is_latin_letter(character):
            shown = character if character.isprintable() else f"U+{ord(character):04X}"
            errors[Field.FULL_NAME] = _(
                "Họ và tên chỉ gồm chữ cái (có dấu) và dấu cách; không dùng chữ số hay "
                "ký hiệu như “%(character)s”.",
                character=shown,
            )
            return None
    if not FULL_NAME_LENGTH_MIN_CHARS <= len(name) <= FULL_NAME_LENGTH_MAX_CHARS:
        errors[Field.FULL_NAME] = _(
            "Họ và tên dài từ %(min)d đến %(max)d chữ cái.",
            min=FULL_NAME_LENGTH_MIN_CHARS,
            max=FULL_NAME_LENGTH_MAX_CHARS,
        )
        return None
    return name


def _is_latin_letter(character: str) -> bool:
    # Vietnamese names are written in the Latin alphabet with diacritics ("Đ" is LATIN CAPITAL
    # LETTER D WITH STROKE); after NFC every Vietnamese letter is one such code point.
    return character.isalpha() and unicodedata.name(character, "").startswith("LATIN ")


def _date_of_birth(
    form: Mapping[str, str], today: dt.date, errors: dict[str, str]
) -> dt.date | None:
    parts = [
        form.get(field, "").strip()
        for field in (Field.BIRTH_DAY, Field.BIRTH_MONTH, Field.BIRTH_YEAR)
    ]
    if not all(parts):
        errors[DATE_OF_BIRTH_FIELD] = _("Vui lòng nhập đủ ngày, tháng và năm sinh.")
        return None
    if not all(part.isascii() and part.isdigit() for part in parts):
        errors[DATE_OF_BIRTH_FIELD] = _(
            "Ngày, tháng, năm sinh phải là số, ví dụ ngày 5, tháng 9, năm 1958."
        )
        return None
    day, month, year = (int(part) for part in parts)
    if year < BIRTH_YEAR_MIN or year > today.year:
        errors[DATE_OF_BIRTH_FIELD] = _(
            "Năm sinh phải có đủ 4 chữ số, từ %(min)d đến %(max)d.",
            min=BIRTH_YEAR_MIN,
            max=today.year,
        )
        return None
    try:
        born = dt.date(year, month, day)
    except ValueError:
        errors[DATE_OF_BIRTH_FIELD] = _(
            "Ngày %(day)d tháng %(month)d năm %(year)d không có trên lịch. Vui lòng kiểm tra lại.",
            day=day,
            month=month,
            year=year,
        )
        return None
    if born > today:
        errors[DATE_OF_BIRTH_FIELD] = _("Ngày sinh không thể là một ngày trong tương lai.")
        return None
    if _age_on(born, today) < REGISTRATION_AGE_MIN_YEARS:
        errors[DATE_OF_BIRTH_FIELD] = _(
            "Cần đủ %(age)d tuổi để mở tài khoản. Người chưa đủ %(age)d tuổi hãy cùng cha mẹ "
            "hoặc người giám hộ đến bưu điện văn hóa xã.",
            age=REGISTRATION_AGE_MIN_YEARS,
        )
        return None
    return born


def _age_on(born: dt.date, today: dt.date) -> int:
    birthday_passed = (today.month, today.day) >= (born.month, born.day)
    return today.year - born.year - (0 if birthday_passed else 1)


def _sex(raw: str, errors: dict[str, str]) -> Sex | None:
    try:
        return Sex(raw)
    except ValueError:
        errors[Field.SEX] = _("Vui lòng chọn giới tính (nam hoặc nữ) như trên căn cước.")
        return None


def _citizen_id(
    raw: str,
    date_of_birth: dt.date | None,
    sex: Sex | None,
    today: dt.date,
    errors: dict[str, str],
) -> str | None:
    try:
        if date_of_birth is None or sex is None:
            # The number's own form can still be checked; its agreement with the date of birth
            # and sex waits until those are right.
            decode_citizen_id(raw)
            return None
        return validate_citizen_id(raw, date_of_birth=date_of_birth, sex=sex, today=today)
    except CitizenIdError as error:
        errors[Field.CITIZEN_ID] = error.message
        return None


def _province(session: Session, raw: str, errors: dict[str, str]) -> str | None:
    code = raw.strip()
    if not code or session.get(Province, code) is None:
        errors[Field.PROVINCE] = _("Vui lòng chọn tỉnh hoặc thành phố nơi bạn đang sống.")
        return None
    return code


def _commune(session: Session, province_code: str, raw: str, errors: dict[str, str]) -> str | None:
    code = raw.strip()
    commune = session.get(Commune, code) if code else None
    if commune is None or commune.province_code != province_code:
        errors[Field.COMMUNE] = _("Vui lòng chọn xã, phường nơi bạn đang sống trong danh sách.")
        return None
    return code


def _check_consent(form: Mapping[str, str], errors: dict[str, str]) -> None:
    if form.get(Field.CONSENT, "") != CONSENT_GIVEN:
        errors[Field.CONSENT] = _(
            "Cần bạn đồng ý cho xử lý thông tin cá nhân thì mới mở được tài khoản. "
            "Hãy đọc và đánh dấu vào ô đồng ý."
        )


def _check_registered_by(registered_by: str, *, allow_self: bool) -> None:
    if allow_self and registered_by == SELF:
        return
    if not ON_BEHALF_PATTERN.fullmatch(registered_by):
        raise ValueError(
            f"registered_by must be 'self', 'agent:N' or 'team:N', not {registered_by!r}"
        )


# --- Storing ------------------------------------------------------------------------------------


def _lookup(citizen_id: str) -> bytes:
    return vault().lookup_hash(citizen_id, purpose=CITIZEN_ID_PURPOSE)


def _refuse_duplicates(session: Session, details: PersonalDetails) -> None:
    if session.scalar(select(Citizen.id).where(Citizen.phone == details.phone)) is not None:
        raise PhoneAlreadyRegistered
    lookup = _lookup(details.citizen_id)
    if session.scalar(select(Citizen.id).where(Citizen.citizen_id_lookup == lookup)) is not None:
        raise CitizenIdAlreadyRegistered


def _store(
    session: Session,
    details: PersonalDetails,
    *,
    pin_hash: str | None,
    registered_by: str,
    now: dt.datetime,
) -> Citizen:
    assert details.commune_code is not None
    _refuse_duplicates(session, details)
    # A savepoint, so that losing a race to a concurrent registration of the same phone or ID
    # (the UNIQUE constraints catch it) leaves the request's transaction usable for the answer.
    try:
        with session.begin_nested():
            wallet = ledger.open_account(
                session,
                kind=AccountKind.CITIZEN_WALLET,
                name=f"Ví — {details.full_name}",
                now=now,
            )
            citizen = Citizen(
                phone=details.phone,
                full_name=details.full_name,
                date_of_birth=details.date_of_birth,
                sex=details.sex.value,
                commune_code=details.commune_code,
                citizen_id_ciphertext=vault().encrypt(
                    details.citizen_id, purpose=CITIZEN_ID_PURPOSE
                ),
                citizen_id_lookup=_lookup(details.citizen_id),
                citizen_id_last4=citizen_id_last4(details.citizen_id),
                kyc_tier=KycTier.UNVERIFIED,
                pin_hash=pin_hash,
                pin_changed_at=None if pin_hash is None else now,
                consent_version=CONSENT_VERSION,
                consent_at=now,
                registered_by=registered_by,
                wallet_account_id=wallet.id,
                session_epoch=0,
                created_at=now,
            )
            session.add(citizen)
            session.flush()
            # The wallet is found by its owner from now on ("citizen:42").
            wallet.owner_ref = f"citizen:{citizen.id}"
            session.flush()
    except IntegrityError:
        _refuse_duplicates(session, details)
        raise
    logger.info("citizen %d registered (%s)", citizen.id, registered_by)
    return citizen
