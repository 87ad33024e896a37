"""A citizen account opened by a community team member for a person of a household.

The account is opened like any account opened on a citizen's behalf
(`kiosk.citizens.registration.register_on_behalf`, ``registered_by`` "team:<official id>"): it has
no PIN, and the team member is shown a one-time code once, which the citizen types on their own
phone at ``/dat-ma-pin`` to choose their PIN (`kiosk.citizens.pin_setup`). The person is linked
to the account and the checklist ticks "account created" at once. A team member who has seen
the ID card may also verify the account in person. Operations flush and never commit.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping

from flask_babel import gettext as _  # type: ignore[import-untyped]
from sqlalchemy import select
from sqlalchemy.orm import Session

from kiosk.citizen_id import CitizenIdError, normalise_citizen_id
from kiosk.citizens import registration
from kiosk.citizens.limits import AlreadyVerified, verify_in_person
from kiosk.citizens.models import Citizen
from kiosk.citizens.pin_setup import IssuedPinSetupCode, issue_pin_setup_code
from kiosk.citizens.registration import Field
from kiosk.community.checklist import link_person_to_citizen, tick_from_system
from kiosk.community.models import ChecklistStep, Official, Person
from kiosk.formatting import local_today
from kiosk.places.models import Commune

# The fields the team member fills in; the commune is the person's, never typed.
ACCOUNT_FIELDS = (
    Field.PHONE,
    Field.CITIZEN_ID,
    Field.FULL_NAME,
    Field.BIRTH_DAY,
    Field.BIRTH_MONTH,
    Field.BIRTH_YEAR,
    Field.SEX,
    Field.CONSENT,
)


class AccountRefused(Exception):
    """``errors`` maps each form field to what is wrong ("form" for the whole form)."""

    def __init__(self, errors: Mapping[str, str]) -> None:
        super().__init__("; ".join(errors.values()))
        self.errors = dict(errors)


def registered_by(official: Official) -> str:
    return f"team:{official.id}"


def open_account_for(
    session: Session,
    person: Person,
    form: Mapping[str, str],
    *,
    official: Official,
    now: dt.datetime,
) -> tuple[Citizen, IssuedPinSetupCode]:
    """Open an account for the person, link it, and issue the code that sets its first PIN.

    Raises `AccountRefused` with every problem of the form (those of the registration form,
    and a citizen ID other than the one recorded for the person).
    """
    if person.citizen_id is not None:
        raise AccountRefused({"form": _("Người này đã có tài khoản.")})
    commune = session.get(Commune, person.commune_code)
    assert commune is not None, "a person's commune exists (foreign key)"
    data: dict[str, str] = {name: form.get(name, "") for name in ACCOUNT_FIELDS}
    data[Field.PROVINCE] = commune.province_code
    data[Field.COMMUNE] = commune.code
    _refuse_other_number(session, person, data[Field.CITIZEN_ID])
    try:
        citizen = registration.register_on_behalf(session, data, registered_by(official), now)
    except registration.RegistrationError as error:
        raise AccountRefused(error.errors) from error
    if person.citizen_id_lookup is None:
        person.citizen_id_lookup = citizen.citizen_id_lookup
        person.citizen_id_last4 = citizen.citizen_id_last4
    if person.date_of_birth is None:
        person.date_of_birth = citizen.date_of_birth
        person.birth_year = citizen.date_of_birth.year
    link_person_to_citizen(session, person, citizen, now)
    return citizen, issue_pin_setup_code(session, citizen, now)


def _refuse_other_number(session: Session, person: Person, raw: str) -> None:
    try:
        number = normalise_citizen_id(raw)
    except CitizenIdError:
        return  # the registration's checks say what is wrong with it
    lookup = registration._lookup(number)
    if person.citizen_id_lookup is not None and bytes(person.citizen_id_lookup) != lookup:
        raise AccountRefused(
            {Field.CITIZEN_ID: _("Số CCCD này khác với số đã ghi cho người này. Kiểm tra lại.")}
        )
    other = session.scalar(
        select(Person.id).where(Person.citizen_id_lookup == lookup, Person.id != person.id)
    )
    if other is not None:
        raise AccountRefused({Field.CITIZEN_ID: _("Số CCCD này đã được ghi cho một người khác.")})


def account_of(session: Session, person: Person) -> Citizen | None:
    return None if person.citizen_id is None else session.get(Citizen, person.citizen_id)


def reissue_pin_setup_code(
    session: Session, person: Person, now: dt.datetime
) -> IssuedPinSetupCode:
    """A new code (the old one stops working) for a linked account that still has no PIN."""
    citizen = account_of(session, person)
    if citizen is None:
        raise AccountRefused({"form": _("Người này chưa có tài khoản.")})
    if citizen.pin_hash is not None:
        raise AccountRefused(
            {"form": _("Tài khoản đã có mã PIN. Quên mã PIN thì đến bưu điện văn hóa xã.")}
        )
    return issue_pin_setup_code(session, citizen, now)


def verify_account_in_person(
    session: Session, person: Person, *, official: Official, now: dt.datetime
) -> None:
    """The team member has seen the person and their ID card: raise the account to verified,
    and the checklist ticks "account verified"."""
    citizen = account_of(session, person)
    if citizen is None:
        raise AccountRefused({"form": _("Người này chưa có tài khoản.")})
    try:
        verify_in_person(session, citizen, registered_by(official), now)
    except AlreadyVerified:
        raise AccountRefused({"form": _("Tài khoản đã được xác minh.")}) from None
    tick_from_system(
        session,
        citizen_id=citizen.id,
        step=ChecklistStep.ACCOUNT_VERIFIED,
        on_date=local_today(now),
        now=now,
    )
