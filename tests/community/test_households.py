"""Villages, households and people, registered through the officials' pages, and who may see or
change them. The helpers at the top are shared with the other household tests of this folder."""

from __future__ import annotations

import datetime as dt
import shutil
import uuid
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import func, select

import kiosk.demo
from kiosk import database
from kiosk.citizens.models import Citizen
from kiosk.community import demo as community_demo
from kiosk.community.checklist import entries_of
from kiosk.community.households import HOUSEHOLDS_PAGE_SIZE, seed_demo_households
from kiosk.community.models import (
    ChecklistStep,
    Household,
    Official,
    OfficialRole,
    Person,
    TeamAssignment,
    Village,
    Visit,
)
from kiosk.pii import vault
from tests.community.support import (
    COMMUNE_CODE,
    OTHER_COMMUNE_CODE,
    OTHER_PROVINCE_CODE,
    app_session,
    make_official,
    make_village,
    sign_in_official,
)
from tests.kiosk.citizen_support import Sex, make_citizen, unique_citizen_id
from tests.kiosk.conftest import AppFactory

# --- Shared helpers -----------------------------------------------------------------------------


def signed_in(app: Flask, client: FlaskClient, role: OfficialRole, **kwargs: Any) -> Official:
    official = make_official(app, role, **kwargs)
    sign_in_official(app, client, official)
    return official


def register_household(
    client: FlaskClient, village_id: int, head_name: str = "Hoàng Văn Nam", **fields: str
) -> uuid.UUID:
    """A household registered through the page; its id."""
    household_id = uuid.uuid4()
    data = {
        "household_id": str(household_id),
        "village": str(village_id),
        "head_name": head_name,
        "address": "Xóm Trên",
        **fields,
    }
    response = client.post("/quan-ly/ho/moi", data=data)
    assert response.status_code == 302, response.get_data(as_text=True)
    return household_id


def person_form(**fields: str) -> dict[str, str]:
    return {
        "person_id": str(uuid.uuid4()),
        "full_name": "Hoàng Thị Lan",
        "birth_year": "1962",
        "sex": "female",
        "consent": "yes",
        **fields,
    }


def add_person(client: FlaskClient, household_id: uuid.UUID, **fields: str) -> uuid.UUID:
    """A person added through the page; their id."""
    data = person_form(**fields)
    response = client.post(f"/quan-ly/ho/{household_id}/them-nguoi", data=data)
    assert response.status_code == 302, response.get_data(as_text=True)
    return uuid.UUID(data["person_id"])


def citizen_number(app: Flask, citizen: Citizen) -> str:
    with app.app_context():
        return vault().decrypt(citizen.citizen_id_ciphertext, purpose="citizen_id")


def team_with_household(
    app: Flask, client: FlaskClient, **person_fields: str
) -> tuple[Official, int, uuid.UUID, uuid.UUID]:
    """A signed-in team member of a new village, a household there and one person in it."""
    village_id = make_village(app)
    member = signed_in(app, client, OfficialRole.TEAM_MEMBER, village_ids=[village_id])
    household_id = register_household(client, village_id)
    person_id = add_person(client, household_id, **person_fields)
    return member, village_id, household_id, person_id


def count(app: Flask, model: type[Any], *criteria: Any) -> int:
    with app_session(app) as session:
        found = session.scalar(select(func.count()).select_from(model).where(*criteria))
        return int(found or 0)


# --- Households and people ----------------------------------------------------------------------


def test_a_team_member_registers_a_household_and_its_members(
    community_app: Flask, community_client: FlaskClient
) -> None:
    village_id = make_village(community_app, name=f"Thôn Đông {uuid.uuid4().hex[:6]}")
    member = signed_in(
        community_app, community_client, OfficialRole.TEAM_MEMBER, village_ids=[village_id]
    )
    assert community_client.get("/quan-ly/ho/moi").status_code == 200
    household_id = register_household(community_client, village_id, head_name="Hoàng  Văn Nam")
    page = community_client.get(f"/quan-ly/ho/{household_id}/them-nguoi")
    assert "Hoàng Văn Nam" in page.get_data(as_text=True)  # the head is offered as first member
    born_year_only = add_person(community_client, household_id, full_name="Hoàng Văn Nam")
    with_date = add_person(
        community_client,
        household_id,
        full_name="Lò Thị Xuân",
        birth_day="5",
        birth_month="9",
        birth_year="1990",
        welfare="yes",
    )
    with app_session(community_app) as session:
        household = session.get(Household, household_id)
        assert household is not None
        assert (household.head_name, household.village_id, household.commune_code) == (
            "Hoàng Văn Nam",
            village_id,
            COMMUNE_CODE,
        )
        assert household.created_by == member.id
        first = session.get(Person, born_year_only)
        second = session.get(Person, with_date)
        assert first is not None and second is not None
        assert (first.date_of_birth, first.birth_year, first.welfare_beneficiary) == (
            None,
            1962,
            False,
        )
        assert (second.date_of_birth, second.birth_year) == (dt.date(1990, 9, 5), 1990)
        assert second.welfare_beneficiary
        assert first.citizen_id_lookup is None and first.citizen_id is None
    shown = community_client.get(f"/quan-ly/ho/{household_id}").get_data(as_text=True)
    assert "Lò Thị Xuân" in shown and "hưởng trợ cấp" in shown


def test_a_household_form_sent_twice_is_one_household(
    community_app: Flask, community_client: FlaskClient
) -> None:
    village_id = make_village(community_app)
    signed_in(community_app, community_client, OfficialRole.TEAM_MEMBER, village_ids=[village_id])
    data = {"household_id": str(uuid.uuid4()), "village": str(village_id), "head_name": "Lý Văn A"}
    assert community_client.post("/quan-ly/ho/moi", data=data).status_code == 302
    assert community_client.post("/quan-ly/ho/moi", data=data).status_code == 302
    assert count(community_app, Household, Household.id == uuid.UUID(data["household_id"])) == 1
    changed = community_client.post("/quan-ly/ho/moi", data={**data, "head_name": "Lý Văn B"})
    assert changed.status_code == 409


def test_a_person_form_sent_twice_is_one_person(
    community_app: Flask, community_client: FlaskClient
) -> None:
    _member, _village, household_id, _person = team_with_household(community_app, community_client)
    data = person_form(full_name="Vi Văn Tám")
    path = f"/quan-ly/ho/{household_id}/them-nguoi"
    assert community_client.post(path, data=data).status_code == 302
    assert community_client.post(path, data=data).status_code == 302
    assert count(community_app, Person, Person.household_id == household_id) == 2


def test_nothing_is_stored_without_the_persons_consent(
    community_app: Flask, community_client: FlaskClient
) -> None:
    village_id = make_village(community_app)
    signed_in(community_app, community_client, OfficialRole.TEAM_MEMBER, village_ids=[village_id])
    household_id = register_household(community_client, village_id)
    born = dt.date(1970, 3, 1)
    data = person_form(consent="", citizen_id=unique_citizen_id(born, Sex.FEMALE))
    response = community_client.post(f"/quan-ly/ho/{household_id}/them-nguoi", data=data)
    assert response.status_code == 422
    assert "Cần người dân đồng ý" in response.get_data(as_text=True)
    assert count(community_app, Person, Person.household_id == household_id) == 0


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"citizen_id": "12345"}, "phải gồm đúng 12 chữ số"),
        ({"citizen_id": "001090012345", "birth_year": "1962"}, "năm sinh 1990"),
        ({"citizen_id": "001062012345", "sex": "female"}, "giới tính nam"),
        ({"citizen_id": "999162012345"}, "Mã tỉnh nơi sinh"),
        ({"birth_year": ""}, "ít nhất năm sinh"),
        ({"birth_year": "2999"}, "từ 1900"),
        ({"birth_day": "31", "birth_month": "2", "birth_year": "1980"}, "không có trên lịch"),
        ({"sex": ""}, "chọn giới tính"),
        ({"full_name": "Lan 2"}, "chỉ gồm chữ cái"),
    ],
)
def test_a_person_with_wrong_details_is_refused(
    community_app: Flask, community_client: FlaskClient, fields: dict[str, str], message: str
) -> None:
    village_id = make_village(community_app)
    signed_in(community_app, community_client, OfficialRole.TEAM_MEMBER, village_ids=[village_id])
    household_id = register_household(community_client, village_id)
    response = community_client.post(
        f"/quan-ly/ho/{household_id}/them-nguoi", data=person_form(**fields)
    )
    assert response.status_code == 422
    assert message in response.get_data(as_text=True)
    assert count(community_app, Person, Person.household_id == household_id) == 0


def test_only_the_hmac_and_last_four_digits_of_a_citizen_id_are_kept(
    community_app: Flask, community_client: FlaskClient
) -> None:
    number = unique_citizen_id(dt.date(1962, 1, 1), Sex.FEMALE)
    _member, _village, _household, person_id = team_with_household(
        community_app, community_client, citizen_id=number[:6] + " " + number[6:]
    )
    with app_session(community_app) as session:
        person = session.get(Person, person_id)
        assert person is not None
        assert person.citizen_id_last4 == number[-4:]
        expected = vault().lookup_hash(number, purpose="citizen_id")
        assert bytes(person.citizen_id_lookup or b"") == expected
        stored = [value for value in vars(person).values() if isinstance(value, str)]
        assert not any(number in value for value in stored)
    page = community_client.get(f"/quan-ly/nguoi/{person_id}").get_data(as_text=True)
    assert number not in page
    assert number[-4:] in page


def test_a_citizen_id_recorded_for_another_person_is_refused(
    community_app: Flask, community_client: FlaskClient
) -> None:
    number = unique_citizen_id(dt.date(1962, 1, 1), Sex.FEMALE)
    _member, _village, household_id, _person = team_with_household(
        community_app, community_client, citizen_id=number
    )
    response = community_client.post(
        f"/quan-ly/ho/{household_id}/them-nguoi", data=person_form(citizen_id=number)
    )
    assert response.status_code == 422
    assert "đã được ghi cho một người khác" in response.get_data(as_text=True)


def test_a_person_whose_citizen_id_has_an_account_is_linked_and_ticked_by_the_system(
    community_app: Flask, community_client: FlaskClient
) -> None:
    citizen = make_citizen(community_app, date_of_birth=dt.date(1962, 4, 12), verified=True)
    _member, _village, _household, person_id = team_with_household(
        community_app, community_client, citizen_id=citizen_number(community_app, citizen)
    )
    with app_session(community_app) as session:
        person = session.get(Person, person_id)
        assert person is not None and person.citizen_id == citizen.id
        entries = entries_of(session, [person_id])
        for step in (ChecklistStep.ACCOUNT_CREATED, ChecklistStep.ACCOUNT_VERIFIED):
            entry = entries[(person_id, step)]
            assert (entry.status, entry.evidence, entry.recorded_by) == ("done", "system", "system")
        assert (person_id, ChecklistStep.SMARTPHONE) not in entries
    page = community_client.get(f"/quan-ly/nguoi/{person_id}").get_data(as_text=True)
    assert "Hệ thống xác nhận" in page


# --- Villages -----------------------------------------------------------------------------------


def test_a_commune_official_adds_and_renames_villages_unique_in_the_commune(
    community_app: Flask, community_client: FlaskClient
) -> None:
    signed_in(community_app, community_client, OfficialRole.COMMUNE_OFFICIAL)
    name = f"Thôn Nà {uuid.uuid4().hex[:6]}"
    assert community_client.post("/quan-ly/thon", data={"name": f"  {name} "}).status_code == 302
    again = community_client.post("/quan-ly/thon", data={"name": name.upper()})
    assert again.status_code == 422
    assert "Xã đã có thôn" in again.get_data(as_text=True)
    assert community_client.post("/quan-ly/thon", data={"name": "X"}).status_code == 422
    with app_session(community_app) as session:
        village = session.scalar(select(Village).where(Village.name == name))
        assert village is not None and village.commune_code == COMMUNE_CODE
        village_id = village.id
    other = make_village(community_app)
    renamed = f"Bản Mới {uuid.uuid4().hex[:6]}"
    path = f"/quan-ly/thon/{village_id}"
    assert community_client.post(path, data={f"name-{village_id}": renamed}).status_code == 302
    with app_session(community_app) as session:
        other_village = session.get(Village, other)
        assert other_village is not None
        other_name = other_village.name
    taken = community_client.post(path, data={f"name-{village_id}": other_name})
    assert taken.status_code == 422
    listing = community_client.get("/quan-ly/thon").get_data(as_text=True)
    assert renamed in listing


def test_the_same_village_name_may_be_used_in_another_commune(
    community_app: Flask, community_client: FlaskClient
) -> None:
    name = f"Thôn Trung {uuid.uuid4().hex[:6]}"
    make_village(community_app, OTHER_COMMUNE_CODE, name)
    signed_in(community_app, community_client, OfficialRole.COMMUNE_OFFICIAL)
    assert community_client.post("/quan-ly/thon", data={"name": name}).status_code == 302


@pytest.mark.parametrize("role", [OfficialRole.TEAM_MEMBER, OfficialRole.PROVINCE_OFFICIAL])
def test_only_commune_officials_and_admins_add_or_rename_villages(
    community_app: Flask, community_client: FlaskClient, role: OfficialRole
) -> None:
    village_id = make_village(community_app)
    signed_in(community_app, community_client, role)
    assert community_client.post("/quan-ly/thon", data={"name": "Thôn Lạ"}).status_code == 403
    renamed = community_client.post(f"/quan-ly/thon/{village_id}", data={"name": "Thôn Lạ"})
    assert renamed.status_code == 403


def test_a_commune_official_cannot_rename_another_communes_village(
    community_app: Flask, community_client: FlaskClient
) -> None:
    village_id = make_village(community_app, OTHER_COMMUNE_CODE)
    signed_in(community_app, community_client, OfficialRole.COMMUNE_OFFICIAL)
    response = community_client.post(
        f"/quan-ly/thon/{village_id}", data={f"name-{village_id}": "Thôn Lạ"}
    )
    assert response.status_code == 403


def test_an_admin_adds_a_village_to_any_commune(
    community_app: Flask, community_client: FlaskClient
) -> None:
    signed_in(community_app, community_client, OfficialRole.ADMIN)
    name = f"Tổ dân phố {uuid.uuid4().hex[:6]}"
    response = community_client.post("/quan-ly/thon", data={"xa": OTHER_COMMUNE_CODE, "name": name})
    assert response.status_code == 302
    assert name in community_client.get(f"/quan-ly/thon?xa={OTHER_COMMUNE_CODE}").get_data(
        as_text=True
    )


# --- Who sees what ------------------------------------------------------------------------------


def test_a_team_member_sees_and_works_only_in_assigned_villages(
    community_app: Flask, community_client: FlaskClient
) -> None:
    mine, theirs = make_village(community_app), make_village(community_app)
    colleague_client = community_app.test_client()
    signed_in(community_app, colleague_client, OfficialRole.TEAM_MEMBER, village_ids=[theirs])
    their_household = register_household(colleague_client, theirs, head_name="Đinh Văn Khác")
    their_person = add_person(colleague_client, their_household)
    signed_in(community_app, community_client, OfficialRole.TEAM_MEMBER, village_ids=[mine])
    my_household = register_household(community_client, mine, head_name="Đinh Văn Mình")

    listing = community_client.get("/quan-ly/ho").get_data(as_text=True)
    assert "Đinh Văn Mình" in listing and "Đinh Văn Khác" not in listing
    assert community_client.get(f"/quan-ly/ho/{my_household}").status_code == 200
    for path in (
        f"/quan-ly/ho/{their_household}",
        f"/quan-ly/ho?thon={theirs}",
        f"/quan-ly/ho/{their_household}/tham",
        f"/quan-ly/ho/{their_household}/them-nguoi",
        f"/quan-ly/nguoi/{their_person}",
        f"/quan-ly/nguoi/{their_person}/mo-tai-khoan",
    ):
        assert community_client.get(path).status_code == 403, path
    refused = community_client.post(
        "/quan-ly/ho/moi",
        data={"household_id": str(uuid.uuid4()), "village": str(theirs), "head_name": "Lý Văn C"},
    )
    assert refused.status_code == 403
    assert (
        community_client.post(
            f"/quan-ly/ho/{their_household}/them-nguoi", data=person_form()
        ).status_code
        == 403
    )


def test_a_commune_official_never_sees_another_communes_households(
    community_app: Flask, community_client: FlaskClient
) -> None:
    elsewhere = make_village(community_app, OTHER_COMMUNE_CODE)
    other_client = community_app.test_client()
    signed_in(
        community_app, other_client, OfficialRole.COMMUNE_OFFICIAL, commune_code=OTHER_COMMUNE_CODE
    )
    household_id = register_household(other_client, elsewhere, head_name="Trịnh Văn Xa")
    signed_in(community_app, community_client, OfficialRole.COMMUNE_OFFICIAL)
    assert community_client.get(f"/quan-ly/ho/{household_id}").status_code == 403
    assert "Trịnh Văn Xa" not in community_client.get("/quan-ly/ho").get_data(as_text=True)
    # A commune official's own commune is the one shown, whatever the address asks for.
    assert community_client.get(f"/quan-ly/thon?xa={OTHER_COMMUNE_CODE}").status_code == 200
    assert community_client.get(f"/quan-ly/ho?thon={elsewhere}").status_code == 403


def test_a_province_official_reads_the_provinces_households_and_changes_nothing(
    community_app: Flask, community_client: FlaskClient
) -> None:
    _member, village_id, household_id, person_id = team_with_household(
        community_app, community_app.test_client()
    )
    signed_in(community_app, community_client, OfficialRole.PROVINCE_OFFICIAL)
    assert community_client.get(f"/quan-ly/ho/{household_id}").status_code == 200
    assert community_client.get(f"/quan-ly/nguoi/{person_id}").status_code == 200
    for path in ("/quan-ly/ho/moi", f"/quan-ly/ho/{household_id}/tham"):
        assert community_client.get(path).status_code == 403
    assert community_client.post(f"/quan-ly/ho/{household_id}/tham", data={}).status_code == 403

    far = community_app.test_client()
    signed_in(community_app, far, OfficialRole.PROVINCE_OFFICIAL, province_code=OTHER_PROVINCE_CODE)
    assert far.get(f"/quan-ly/ho/{household_id}").status_code == 403
    assert far.get(f"/quan-ly/ho?thon={village_id}").status_code == 403


def test_anonymous_visitors_are_sent_to_sign_in(
    community_app: Flask, community_client: FlaskClient
) -> None:
    response = community_client.get("/quan-ly/ho")
    assert response.status_code == 302
    assert "/quan-ly/dang-nhap" in response.headers["Location"]


def test_the_household_list_is_paginated(
    community_app: Flask, community_client: FlaskClient
) -> None:
    village_id = make_village(community_app)
    official = signed_in(community_app, community_client, OfficialRole.COMMUNE_OFFICIAL)
    now = dt.datetime.now(dt.UTC)
    with app_session(community_app) as session:
        for number in range(HOUSEHOLDS_PAGE_SIZE + 1):
            session.add(
                Household(
                    id=uuid.uuid4(),
                    commune_code=COMMUNE_CODE,
                    village_id=village_id,
                    head_name=f"Chủ hộ {number:03d}",
                    address="",
                    created_at=now,
                    created_by=official.id,
                )
            )
        session.commit()
    first = community_client.get(f"/quan-ly/ho?thon={village_id}").get_data(as_text=True)
    assert first.count("Chủ hộ ") == HOUSEHOLDS_PAGE_SIZE
    assert "Trang sau" in first
    second = community_client.get(f"/quan-ly/ho?thon={village_id}&trang=2").get_data(as_text=True)
    assert second.count("Chủ hộ ") == 1
    assert "Trang sau" not in second and "Trang trước" in second


# --- Demo ---------------------------------------------------------------------------------------


def test_the_demo_households_load_twice_and_link_the_demo_citizens(
    make_app: AppFactory, sqlite_template: Path, tmp_path: Path
) -> None:
    # SQLite only: the demo's fixed phones and names would collide in the shared PostgreSQL.
    path = tmp_path / "demo.sqlite3"
    shutil.copyfile(sqlite_template, path)
    app = make_app(DATABASE_URL=f"sqlite:///{path}")
    try:
        for _run in range(2):
            with app_session(app) as session, app.test_request_context():
                now = dt.datetime.now(dt.UTC)
                kiosk.demo.load(session)
                community_demo.seed_demo(session, now)
                seed_demo_households(session, now)
                session.commit()
        with app_session(app) as session:
            assert session.scalar(select(func.count()).select_from(Village)) == 2
            assert session.scalar(select(func.count()).select_from(Household)) == 3
            assert session.scalar(select(func.count()).select_from(Person)) == 6
            assert session.scalar(select(func.count()).select_from(Visit)) == 3
            linked = session.scalars(select(Person).where(Person.citizen_id.is_not(None))).all()
            assert len(linked) == 3
            ticked = entries_of(session, [person.id for person in linked])
            assert all(
                ticked[(person.id, ChecklistStep.ACCOUNT_CREATED)].evidence == "system"
                for person in linked
            )
            team = session.scalar(select(Official).where(Official.username == "demo.team"))
            assert team is not None
            assert (
                len(
                    session.scalars(
                        select(TeamAssignment).where(TeamAssignment.official_id == team.id)
                    ).all()
                )
                == 2
            )
    finally:
        database.dispose(app)


@pytest.mark.parametrize("role", list(OfficialRole))
def test_every_role_opens_the_village_and_household_lists(
    community_app: Flask, community_client: FlaskClient, role: OfficialRole
) -> None:
    village_id = make_village(community_app)
    villages = [village_id] if role is OfficialRole.TEAM_MEMBER else []
    signed_in(community_app, community_client, role, village_ids=villages)
    for path in ("/quan-ly/thon", f"/quan-ly/thon?xa={COMMUNE_CODE}", "/quan-ly/ho"):
        assert community_client.get(path).status_code == 200, path
    home = community_client.get("/quan-ly/").get_data(as_text=True)
    assert "/quan-ly/ho" in home and "/quan-ly/thon" in home
