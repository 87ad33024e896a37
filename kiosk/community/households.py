"""Households and the people in them, registered door to door by a community team member (or a
commune official), each person with their consent.

A household's and a person's id come from the form (made when the page was drawn), so a form
sent twice from a phone that lost its network is one household, one person. A person's citizen
ID number is optional; when given it is checked like the registration form does, and only its
HMAC (the same one citizens' accounts are found by) and last 4 digits are kept. A person whose
number matches a citizen account is linked to it at once, and the checklist ticks what the
account shows. Operations flush and never commit; who may do what is the view's check
(`kiosk.community.access`).

`seed_demo_households` writes the demo villages, households, people and visits.
"""

from __future__ import annotations

import datetime as dt
import enum
import logging
import uuid
from collections.abc import Mapping
from dataclasses import dataclass

from flask_babel import gettext as _  # type: ignore[import-untyped]
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from kiosk.citizen_id import CitizenIdError, Sex, citizen_id_last4, validate_citizen_id
from kiosk.citizens import registration
from kiosk.citizens.models import Citizen
from kiosk.community.checklist import link_person_to_citizen
from kiosk.community.models import Household, Official, Person, Village, Visit
from kiosk.community.villages import visible_village_ids
from kiosk.formatting import local_today

logger = logging.getLogger(__name__)

ADDRESS_LENGTH_MAX_CHARS = 200
BIRTH_YEAR_MIN = 1900
MEMBERS_PER_HOUSEHOLD_MAX = 30
HOUSEHOLDS_PAGE_SIZE = 50
CONSENT_GIVEN = "yes"
WELFARE_YES = "yes"


class HouseholdField(enum.StrEnum):
    HOUSEHOLD_ID = "household_id"
    VILLAGE = "village"
    HEAD_NAME = "head_name"
    ADDRESS = "address"


class PersonField(enum.StrEnum):
    PERSON_ID = "person_id"
    FULL_NAME = "full_name"
    BIRTH_DAY = "birth_day"
    BIRTH_MONTH = "birth_month"
    BIRTH_YEAR = "birth_year"
    SEX = "sex"
    CITIZEN_ID = "citizen_id"
    WELFARE = "welfare"
    CONSENT = "consent"


class HouseholdRefused(Exception):
    """A household or person that cannot be stored; ``errors`` maps each form field to what is
    wrong ("form" for the whole form)."""

    def __init__(self, errors: Mapping[str, str]) -> None:
        super().__init__("; ".join(errors.values()))
        self.errors = dict(errors)


class HouseholdInvalid(HouseholdRefused):
    """One or more fields are missing or wrong."""


class AlreadyRecordedOtherwise(HouseholdRefused):
    """The form's id was stored before with other content (a stale page sent again)."""

    def __init__(self) -> None:
        super().__init__(
            {
                "form": _(
                    "Biểu mẫu này đã được gửi trước đó với nội dung khác. Hãy mở lại trang và "
                    "nhập lại."
                )
            }
        )


def parse_form_id(raw: str) -> uuid.UUID | None:
    try:
        return uuid.UUID(raw.strip())
    except ValueError:
        return None


def _form_id(form: Mapping[str, str], field: str, errors: dict[str, str]) -> uuid.UUID | None:
    found = parse_form_id(form.get(field, ""))
    if found is None:
        errors["form"] = _("Biểu mẫu bị thiếu mã. Hãy mở lại trang và nhập lại.")
    return found


def _name(raw: str, field: str, errors: dict[str, str]) -> str | None:
    # The registration form's rule for a full name, reported on this form's own field.
    found: dict[str, str] = {}
    name = registration._full_name(raw, found)
    if name is None:
        errors[field] = next(iter(found.values()))
    return name


def _address(raw: str, errors: dict[str, str]) -> str:
    address = " ".join(raw.split())
    if len(address) > ADDRESS_LENGTH_MAX_CHARS:
        errors[HouseholdField.ADDRESS] = _(
            "Địa chỉ dài tối đa %(max)d ký tự.", max=ADDRESS_LENGTH_MAX_CHARS
        )
    return address


# --- Households ---------------------------------------------------------------------------------


def register_household(
    session: Session,
    form: Mapping[str, str],
    *,
    village: Village | None,
    official: Official,
    now: dt.datetime,
) -> Household:
    """Store a household in ``village`` (None when none was chosen); the same form sent again
    returns the household stored the first time.

    Raises `HouseholdInvalid`, or `AlreadyRecordedOtherwise` for the same id with other content.
    """
    errors: dict[str, str] = {}
    household_id = _form_id(form, HouseholdField.HOUSEHOLD_ID, errors)
    if village is None:
        errors[HouseholdField.VILLAGE] = _("Vui lòng chọn thôn, bản hoặc tổ dân phố.")
    head_name = _name(form.get(HouseholdField.HEAD_NAME, ""), HouseholdField.HEAD_NAME, errors)
    address = _address(form.get(HouseholdField.ADDRESS, ""), errors)
    if errors or household_id is None or village is None or head_name is None:
        raise HouseholdInvalid(errors)
    household = Household(
        id=household_id,
        commune_code=village.commune_code,
        village_id=village.id,
        head_name=head_name,
        address=address,
        created_at=now,
        created_by=official.id,
    )
    existing = session.get(Household, household_id)
    if existing is None:
        try:
            with session.begin_nested():
                session.add(household)
                session.flush()
        except IntegrityError:
            existing = session.get(Household, household_id)
            if existing is None:
                raise
        else:
            return household
    if (existing.village_id, existing.head_name, existing.address, existing.created_by) != (
        village.id,
        head_name,
        address,
        official.id,
    ):
        raise AlreadyRecordedOtherwise
    return existing


def members_of(session: Session, household_id: uuid.UUID) -> list[Person]:
    return list(
        session.scalars(
            select(Person)
            .where(Person.household_id == household_id)
            .order_by(Person.created_at, Person.id)
            .limit(MEMBERS_PER_HOUSEHOLD_MAX)
        )
    )


@dataclass(frozen=True)
class HouseholdRow:
    household: Household
    village_name: str
    member_count: int


@dataclass(frozen=True)
class HouseholdPage:
    rows: list[HouseholdRow]
    page: int
    has_next: bool


def households_page(
    session: Session, official: Official, *, village_id: int | None = None, page: int = 1
) -> HouseholdPage:
    """One page of the households the official sees (one village's when ``village_id`` is
    given), by village and head's name."""
    page = max(page, 1)
    members = (
        select(Person.household_id, func.count().label("member_count"))
        .group_by(Person.household_id)
        .subquery()
    )
    query = (
        select(Household, Village.name, func.coalesce(members.c.member_count, 0))
        .join(Village, Village.id == Household.village_id)
        .outerjoin(members, members.c.household_id == Household.id)
        .where(Household.village_id.in_(visible_village_ids(official)))
    )
    if village_id is not None:
        query = query.where(Household.village_id == village_id)
    found = session.execute(
        query.order_by(Village.name, Household.head_name, Household.id)
        .offset((page - 1) * HOUSEHOLDS_PAGE_SIZE)
        .limit(HOUSEHOLDS_PAGE_SIZE + 1)
    ).all()
    rows = [HouseholdRow(household, name, count) for household, name, count in found]
    return HouseholdPage(
        rows=rows[:HOUSEHOLDS_PAGE_SIZE], page=page, has_next=len(rows) > HOUSEHOLDS_PAGE_SIZE
    )


# --- People -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Birth:
    date_of_birth: dt.date | None
    year: int


def _birth(form: Mapping[str, str], today: dt.date, errors: dict[str, str]) -> Birth | None:
    day, month, year = (
        form.get(field, "").strip()
        for field in (PersonField.BIRTH_DAY, PersonField.BIRTH_MONTH, PersonField.BIRTH_YEAR)
    )
    field = PersonField.BIRTH_YEAR
    if not year:
        errors[field] = _("Vui lòng nhập ít nhất năm sinh.")
        return None
    if not all(part.isascii() and part.isdigit() for part in (day, month, year) if part):
        errors[field] = _("Ngày, tháng, năm sinh phải là số, ví dụ ngày 5, tháng 9, năm 1958.")
        return None
    born_year = int(year)
    if not BIRTH_YEAR_MIN <= born_year <= today.year:
        errors[field] = _(
            "Năm sinh phải có đủ 4 chữ số, từ %(min)d đến %(max)d.",
            min=BIRTH_YEAR_MIN,
            max=today.year,
        )
        return None
    if not day and not month:
        return Birth(date_of_birth=None, year=born_year)
    if not day or not month:
        errors[field] = _("Nhập đủ cả ngày và tháng sinh, hoặc chỉ năm sinh.")
        return None
    try:
        born = dt.date(born_year, int(month), int(day))
    except ValueError:
        errors[field] = _("Ngày sinh này không có trên lịch. Vui lòng kiểm tra lại.")
        return None
    if born > today:
        errors[field] = _("Ngày sinh không thể là một ngày trong tương lai.")
        return None
    return Birth(date_of_birth=born, year=born_year)


def _sex(raw: str, errors: dict[str, str]) -> Sex | None:
    try:
        return Sex(raw)
    except ValueError:
        errors[PersonField.SEX] = _("Vui lòng chọn giới tính.")
        return None


def _citizen_id(
    raw: str, birth: Birth | None, sex: Sex | None, today: dt.date, errors: dict[str, str]
) -> str | None:
    """The checked number, or None when none was given (or it is wrong: then in ``errors``)."""
    if not raw.strip() or birth is None or sex is None:
        return None
    # With only the year of birth known, the number is checked against that year.
    date_of_birth = birth.date_of_birth or dt.date(birth.year, 1, 1)
    try:
        return validate_citizen_id(raw, date_of_birth=date_of_birth, sex=sex, today=today)
    except CitizenIdError as error:
        errors[PersonField.CITIZEN_ID] = error.message
        return None


def add_person(
    session: Session,
    household: Household,
    form: Mapping[str, str],
    *,
    official: Official,
    now: dt.datetime,
) -> Person:
    """Store a member of the household, with their consent; nothing is stored without it.

    The same form sent again returns the person stored the first time. A citizen ID that
    matches a citizen account links the person to it. Raises `HouseholdInvalid`, or
    `AlreadyRecordedOtherwise`.
    """
    errors: dict[str, str] = {}
    today = local_today(now)
    person_id = _form_id(form, PersonField.PERSON_ID, errors)
    full_name = _name(form.get(PersonField.FULL_NAME, ""), PersonField.FULL_NAME, errors)
    birth = _birth(form, today, errors)
    sex = _sex(form.get(PersonField.SEX, ""), errors)
    number = _citizen_id(form.get(PersonField.CITIZEN_ID, ""), birth, sex, today, errors)
    welfare = form.get(PersonField.WELFARE, "") == WELFARE_YES
    if form.get(PersonField.CONSENT, "") != CONSENT_GIVEN:
        errors[PersonField.CONSENT] = _(
            "Cần người dân đồng ý cho ghi thông tin trước khi lưu. Nếu họ không đồng ý, đừng "
            "ghi gì cả."
        )
    if errors or person_id is None or full_name is None or birth is None or sex is None:
        raise HouseholdInvalid(errors)
    lookup = None if number is None else registration._lookup(number)
    person = Person(
        id=person_id,
        household_id=household.id,
        commune_code=household.commune_code,
        full_name=full_name,
        date_of_birth=birth.date_of_birth,
        birth_year=birth.year,
        sex=sex.value,
        citizen_id_lookup=lookup,
        citizen_id_last4=None if number is None else citizen_id_last4(number),
        welfare_beneficiary=welfare,
        citizen_id=None,
        consent_at=now,
        created_at=now,
        created_by=official.id,
    )
    existing = session.get(Person, person_id)
    if existing is not None:
        return _same_person(existing, person)
    if lookup is not None:
        taken = session.scalar(select(Person.id).where(Person.citizen_id_lookup == lookup))
        if taken is not None:
            raise HouseholdInvalid(
                {PersonField.CITIZEN_ID: _("Số CCCD này đã được ghi cho một người khác.")}
            )
    count = session.scalar(
        select(func.count()).select_from(Person).where(Person.household_id == household.id)
    )
    if (count or 0) >= MEMBERS_PER_HOUSEHOLD_MAX:
        raise HouseholdInvalid(
            {"form": _("Một hộ có tối đa %(max)d người.", max=MEMBERS_PER_HOUSEHOLD_MAX)}
        )
    try:
        with session.begin_nested():
            session.add(person)
            session.flush()
    except IntegrityError:
        existing = session.get(Person, person_id)
        if existing is None:
            raise HouseholdInvalid(
                {PersonField.CITIZEN_ID: _("Số CCCD này đã được ghi cho một người khác.")}
            ) from None
        return _same_person(existing, person)
    if lookup is not None:
        citizen = session.scalar(select(Citizen).where(Citizen.citizen_id_lookup == lookup))
        if citizen is not None and _unlinked(session, citizen):
            link_person_to_citizen(session, person, citizen, now)
    logger.info(
        "person %s added to household %s by %s", person.id, household.id, official.principal
    )
    return person


def _unlinked(session: Session, citizen: Citizen) -> bool:
    return session.scalar(select(Person.id).where(Person.citizen_id == citizen.id)) is None


def _content(person: Person) -> tuple[object, ...]:
    return (
        person.household_id,
        person.full_name,
        person.date_of_birth,
        person.birth_year,
        person.sex,
        person.citizen_id_last4,
        person.welfare_beneficiary,
    )


def _same_person(existing: Person, submitted: Person) -> Person:
    """The person stored before, if the form sent again says the same of them."""
    if _content(existing) != _content(submitted):
        raise AlreadyRecordedOtherwise
    return existing


def age_on(person: Person, today: dt.date) -> int | None:
    """The person's age in whole years (from the year alone when that is all that is known)."""
    if person.date_of_birth is not None:
        born = person.date_of_birth
        return today.year - born.year - ((today.month, today.day) < (born.month, born.day))
    if person.birth_year is not None:
        return today.year - person.birth_year
    return None


# --- Demo ---------------------------------------------------------------------------------------

DEMO_COMMUNE = "00226"
DEMO_TEAM_MEMBER = "demo.team"
DEMO_VILLAGES = ("Tổ dân phố Văn Chương (demo)", "Tổ dân phố Quốc Tử Giám (demo)")
# Fixed ids, so that loading the demo twice adds nothing.
_DEMO_NAMESPACE = uuid.UUID("5f0d8a52-6c1e-4d0f-9a8e-0c6e1d7b2a11")
# (village index, head of household, address, members); each member is (full name, day, month,
# year, sex, citizen ID or "", welfare beneficiary). The first three citizen IDs are those of
# the demo citizens (kiosk.demo), so their people are linked and ticked by the system.
DEMO_HOUSEHOLDS = [
    (
        0,
        "Hoàng Văn Sơn",
        "Ngõ Văn Chương, số 12",
        [
            ("Hoàng Văn Sơn", "", "", "1955", "male", "", False),
            ("Hoàng Thị Mai", "12", "4", "1958", "female", "001158012345", True),
        ],
    ),
    (
        0,
        "Nông Văn Bình",
        "Ngõ Văn Chương, số 30",
        [
            ("Nông Văn Bình", "2", "9", "1976", "male", "001076054321", False),
            ("Nông Thị Dung", "", "", "1980", "female", "", False),
        ],
    ),
    (
        1,
        "Lương Văn Thắng",
        "Phố Quốc Tử Giám, số 5",
        [
            ("Lương Văn Thắng", "", "", "1972", "male", "", True),
            ("Lương Thị Hoa", "30", "1", "2001", "female", "001301067890", False),
        ],
    ),
]
# (household index, days ago, note, answers: (member index, step, status, evidence, reason))
DEMO_VISITS = [
    (
        0,
        6,
        "Lần đầu đến thăm, bà Mai nhờ mở tài khoản tại bưu điện.",
        [
            (0, "smartphone", "not_done", "self_reported", "Chỉ có điện thoại phím bấm"),
            (1, "smartphone", "done", "seen_on_phone", ""),
            (1, "vneid_level2", "done", "seen_on_phone", ""),
            (1, "anti_fraud_briefing", "done", "self_reported", ""),
        ],
    ),
    (
        1,
        3,
        "",
        [
            (0, "smartphone", "done", "seen_on_phone", ""),
            (1, "smartphone", "done", "self_reported", ""),
            (1, "account_created", "refused", "self_reported", "Chưa muốn dùng"),
        ],
    ),
    (
        2,
        1,
        "Anh Thắng hẹn tuần sau làm VNeID.",
        [
            (0, "vneid_level2", "not_done", "self_reported", "Hẹn tuần sau"),
            (1, "smartphone", "done", "seen_on_phone", ""),
            (1, "anti_fraud_briefing", "done", "seen_on_phone", ""),
        ],
    ),
]


def _demo_id(kind: str, *parts: object) -> uuid.UUID:
    return uuid.uuid5(_DEMO_NAMESPACE, ":".join([kind, *map(str, parts)]))


def seed_demo_households(session: Session, now: dt.datetime) -> None:
    """The demo's two villages of commune 00226 (assigned to ``demo.team``), three households,
    their people (three linked to the demo citizens) and a few visits. Needs the demo officials
    (`kiosk.community.demo.seed_demo`) first, and the demo citizens first for the links; does
    nothing without ``demo.team``. Safe to run twice; flushes, the caller commits. Runs in an
    app context (the citizen ID HMAC key)."""
    # Imported here: the demo is the only user of the staff and visit modules in this one.
    from kiosk.community.staff import (  # noqa: PLC0415
        ADMIN_ACTOR,
        OFFICIALS,
        assign_villages,
        assigned_village_ids,
    )
    from kiosk.community.villages import add_village  # noqa: PLC0415
    from kiosk.community.visits import local_input_value, submit_visit  # noqa: PLC0415

    team = OFFICIALS.find(session, DEMO_TEAM_MEMBER)
    if team is None:
        logger.warning("demo households skipped: no official %r", DEMO_TEAM_MEMBER)
        return
    villages = []
    for name in DEMO_VILLAGES:
        village = session.scalar(
            select(Village).where(Village.commune_code == DEMO_COMMUNE, Village.name == name)
        )
        if village is None:
            village = add_village(
                session, commune_code=DEMO_COMMUNE, name=name, added_by=ADMIN_ACTOR, now=now
            )
        villages.append(village)
    wanted = assigned_village_ids(session, team.id) | {village.id for village in villages}
    assign_villages(session, team, wanted, assigned_by=ADMIN_ACTOR, now=now)

    households = []
    for number, (village_index, head_name, address, members) in enumerate(DEMO_HOUSEHOLDS):
        household = register_household(
            session,
            {
                "household_id": str(_demo_id("household", number)),
                "head_name": head_name,
                "address": address,
            },
            village=villages[village_index],
            official=team,
            now=now,
        )
        households.append(household)
        for index, (name, day, month, year, sex, citizen_id, welfare) in enumerate(members):
            person_id = _demo_id("person", number, index)
            if session.get(Person, person_id) is not None:
                continue
            add_person(
                session,
                household,
                {
                    "person_id": str(person_id),
                    "full_name": name,
                    "birth_day": day,
                    "birth_month": month,
                    "birth_year": year,
                    "sex": sex,
                    "citizen_id": citizen_id,
                    "welfare": WELFARE_YES if welfare else "",
                    "consent": CONSENT_GIVEN,
                },
                official=team,
                now=now,
            )
    for number, (household_index, days_ago, note, answers) in enumerate(DEMO_VISITS):
        visit_id = _demo_id("visit", number)
        household = households[household_index]
        if session.get(Visit, visit_id) is not None:
            continue
        form = {
            "visit_id": str(visit_id),
            "visited_at": local_input_value(now - dt.timedelta(days=days_ago)),
            "note": note,
        }
        for member_index, step, status, evidence, reason in answers:
            person_id = _demo_id("person", household_index, member_index)
            form[f"{person_id}:{step}:status"] = status
            form[f"{person_id}:{step}:evidence"] = evidence
            form[f"{person_id}:{step}:reason"] = reason
        submit_visit(session, household, form, official=team, now=now)
