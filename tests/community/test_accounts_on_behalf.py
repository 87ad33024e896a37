"""A team member opens a citizen account for a person of a household: the account has no PIN, the
person is linked and ticked, and a one-time PIN-setup code is shown once."""

from __future__ import annotations

import datetime as dt
import re
import uuid

import pytest
from flask import Flask
from flask.testing import FlaskClient

from kiosk.citizens.models import Citizen, KycTier
from kiosk.community.models import ChecklistStep, Official, OfficialRole, Person
from tests.community.support import app_session
from tests.community.test_checklist import entry_of
from tests.community.test_households import (
    add_person,
    count,
    register_household,
    signed_in,
    team_with_household,
)
from tests.kiosk.citizen_support import Sex, unique_citizen_id, unique_phone

BIRTH = dt.date(1962, 4, 12)
CODE_SHOWN = re.compile(r'<p class="secret">(\d{4}) (\d{4})</p>')


def account_form(**fields: str) -> dict[str, str]:
    return {
        "phone": unique_phone(),
        "full_name": "Hoàng Thị Lan",
        "citizen_id": unique_citizen_id(BIRTH, Sex.FEMALE),
        "birth_day": str(BIRTH.day),
        "birth_month": str(BIRTH.month),
        "birth_year": str(BIRTH.year),
        "sex": "female",
        "consent": "yes",
        **fields,
    }


def open_account(
    client: FlaskClient, person_id: uuid.UUID, **fields: str
) -> tuple[str, dict[str, str]]:
    """Open the account through the page; the code shown, and the form sent."""
    form = account_form(**fields)
    response = client.post(f"/quan-ly/nguoi/{person_id}/mo-tai-khoan", data=form)
    assert response.status_code == 200, response.get_data(as_text=True)
    found = CODE_SHOWN.search(response.get_data(as_text=True))
    assert found is not None
    return found.group(1) + found.group(2), form


def linked_citizen(app: Flask, person_id: uuid.UUID) -> Citizen:
    with app_session(app) as session:
        person = session.get(Person, person_id)
        assert person is not None and person.citizen_id is not None
        citizen = session.get(Citizen, person.citizen_id)
        assert citizen is not None
        session.expunge(citizen)
        return citizen


def test_a_team_member_opens_an_account_and_sees_the_pin_setup_code_once(
    community_app: Flask, community_client: FlaskClient
) -> None:
    member, _village, _household, person_id = team_with_household(community_app, community_client)
    page = community_client.get(f"/quan-ly/nguoi/{person_id}/mo-tai-khoan")
    assert "Hoàng Thị Lan" in page.get_data(as_text=True)  # the person's details are offered
    code, form = open_account(community_client, person_id)
    assert len(code) == 8

    citizen = linked_citizen(community_app, person_id)
    assert citizen.phone == form["phone"]
    assert citizen.registered_by == f"team:{member.id}"
    assert citizen.pin_hash is None
    assert citizen.pin_setup_code_hash is not None and code.encode() not in bytes(
        citizen.pin_setup_code_hash
    )
    assert citizen.pin_setup_code_expires_at is not None
    lifetime = citizen.pin_setup_code_expires_at - citizen.created_at
    assert lifetime == dt.timedelta(days=7)
    entry = entry_of(community_app, person_id, ChecklistStep.ACCOUNT_CREATED)
    assert entry is not None and (entry.status, entry.evidence) == ("done", "system")
    with app_session(community_app) as session:
        person = session.get(Person, person_id)
        assert person is not None
        # The person's record takes the number's HMAC and the full date of birth.
        assert bytes(person.citizen_id_lookup or b"") == bytes(citizen.citizen_id_lookup)
        assert person.date_of_birth == BIRTH

    again = community_client.get(f"/quan-ly/nguoi/{person_id}").get_data(as_text=True)
    # Four digits of the code can turn up inside an id on the page, so look for the code
    # as it was shown, whole or in its two groups, and for the place it was shown in.
    assert CODE_SHOWN.search(again) is None and f"{code[:4]} {code[4:]}" not in again
    assert code not in again and "Người dân chưa đặt mã PIN" in again
    # A second account for the same person is not offered.
    second = community_client.get(f"/quan-ly/nguoi/{person_id}/mo-tai-khoan")
    assert second.status_code == 302


def test_opening_an_account_needs_consent_and_stores_nothing_without_it(
    community_app: Flask, community_client: FlaskClient
) -> None:
    _member, _village, _household, person_id = team_with_household(community_app, community_client)
    form = account_form(consent="")
    response = community_client.post(f"/quan-ly/nguoi/{person_id}/mo-tai-khoan", data=form)
    assert response.status_code == 422
    assert count(community_app, Citizen, Citizen.phone == form["phone"]) == 0
    with app_session(community_app) as session:
        person = session.get(Person, person_id)
        assert person is not None and person.citizen_id is None


def test_the_citizen_id_must_be_the_one_recorded_for_the_person(
    community_app: Flask, community_client: FlaskClient
) -> None:
    recorded = unique_citizen_id(BIRTH, Sex.FEMALE)
    _member, _village, _household, person_id = team_with_household(
        community_app, community_client, citizen_id=recorded
    )
    form = account_form()
    response = community_client.post(f"/quan-ly/nguoi/{person_id}/mo-tai-khoan", data=form)
    assert response.status_code == 422
    assert "khác với số đã ghi" in response.get_data(as_text=True)
    assert count(community_app, Citizen, Citizen.phone == form["phone"]) == 0
    open_account(community_client, person_id, citizen_id=recorded)


def test_the_registration_rules_apply_to_an_account_opened_on_behalf(
    community_app: Flask, community_client: FlaskClient
) -> None:
    _member, _village, _household, person_id = team_with_household(community_app, community_client)
    form = account_form(phone="12345", citizen_id="001062000001")
    response = community_client.post(f"/quan-ly/nguoi/{person_id}/mo-tai-khoan", data=form)
    assert response.status_code == 422
    page = response.get_data(as_text=True)
    assert "giới tính nam" in page  # the number says male, the form says female
    assert 'id="phone-error"' in page


@pytest.mark.parametrize("role", [OfficialRole.PROVINCE_OFFICIAL, OfficialRole.TEAM_MEMBER])
def test_only_those_who_work_in_the_village_open_accounts(
    community_app: Flask, community_client: FlaskClient, role: OfficialRole
) -> None:
    _member, _village, _household, person_id = team_with_household(
        community_app, community_app.test_client()
    )
    signed_in(community_app, community_client, role)  # a team member of no village
    response = community_client.post(
        f"/quan-ly/nguoi/{person_id}/mo-tai-khoan", data=account_form()
    )
    assert response.status_code == 403
    assert community_client.post(f"/quan-ly/nguoi/{person_id}/ma-dat-pin").status_code == 403


def test_a_new_code_replaces_the_old_one(
    community_app: Flask, community_client: FlaskClient
) -> None:
    _member, _village, _household, person_id = team_with_household(community_app, community_client)
    _code, _form = open_account(community_client, person_id)
    first = linked_citizen(community_app, person_id).pin_setup_code_hash
    response = community_client.post(f"/quan-ly/nguoi/{person_id}/ma-dat-pin")
    assert response.status_code == 200
    assert CODE_SHOWN.search(response.get_data(as_text=True)) is not None
    assert linked_citizen(community_app, person_id).pin_setup_code_hash != first


def test_a_team_member_who_saw_the_card_verifies_the_account(
    community_app: Flask, community_client: FlaskClient
) -> None:
    member, _village, _household, person_id = team_with_household(community_app, community_client)
    open_account(community_client, person_id)
    path = f"/quan-ly/nguoi/{person_id}/xac-minh"
    assert community_client.post(path, data={}).status_code == 422
    assert community_client.post(path, data={"seen_card": "yes"}).status_code == 302
    citizen = linked_citizen(community_app, person_id)
    assert citizen.kyc_tier == KycTier.VERIFIED
    assert citizen.verified_by == f"team:{member.id}"
    entry = entry_of(community_app, person_id, ChecklistStep.ACCOUNT_VERIFIED)
    assert entry is not None and (entry.status, entry.evidence) == ("done", "system")
    assert community_client.post(path, data={"seen_card": "yes"}).status_code == 409


def test_a_commune_official_opens_accounts_in_any_village_of_the_commune(
    community_app: Flask, community_client: FlaskClient
) -> None:
    team_client = community_app.test_client()
    _member, village_id, _household, _person = team_with_household(community_app, team_client)
    official: Official = signed_in(community_app, community_client, OfficialRole.COMMUNE_OFFICIAL)
    household_id = register_household(community_client, village_id, head_name="Ma Văn Ba")
    person_id = add_person(community_client, household_id, full_name="Ma Văn Ba", sex="male")
    _code, _form = open_account(
        community_client,
        person_id,
        full_name="Ma Văn Ba",
        sex="male",
        citizen_id=unique_citizen_id(BIRTH, Sex.MALE),
    )
    assert linked_citizen(community_app, person_id).registered_by == f"team:{official.id}"
