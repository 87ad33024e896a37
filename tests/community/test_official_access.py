"""Which places each role reaches (`kiosk.community.access`), who manages whom on the staff
pages, the ``softatm officials`` commands and the demo officials."""

from __future__ import annotations

import datetime as dt

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import func, select

from kiosk.auth.models import WebSession
from kiosk.auth.staff import StaffRefused
from kiosk.community.access import (
    can_edit_commune,
    can_see_commune,
    can_work_in_village,
    current_official,
    official_required,
    visible_communes,
)
from kiosk.community.cli import officials_group
from kiosk.community.demo import DEMO_OFFICIALS, seed_demo
from kiosk.community.models import Official, OfficialRole, TeamAssignment
from kiosk.community.staff import OFFICIALS, assign_villages, create_official
from kiosk.places.models import Commune
from tests.agent_portal.conftest import stored_row
from tests.community.support import (
    COMMUNE_CODE,
    OTHER_COMMUNE_CODE,
    OTHER_PROVINCE_CODE,
    OTHER_PROVINCE_COMMUNE_CODE,
    PASSWORD,
    PROVINCE_CODE,
    app_session,
    make_official,
    make_village,
    sign_in_official,
    unique_username,
)

TEAM = OfficialRole.TEAM_MEMBER
COMMUNE = OfficialRole.COMMUNE_OFFICIAL
PROVINCE = OfficialRole.PROVINCE_OFFICIAL
ADMIN = OfficialRole.ADMIN
STAFF_PATH = "/quan-ly/nhan-su"
NEW_STAFF_PATH = "/quan-ly/nhan-su/moi"
NEW_PASSWORD = "hoa sen nở giữa hồ"


def stored(app: Flask, official_id: int) -> Official:
    return stored_row(app, Official, official_id)


def live_sessions(app: Flask, official_id: int) -> int:
    with app_session(app) as session:
        return session.scalar(
            select(func.count())
            .select_from(WebSession)
            .where(
                WebSession.principal_kind == "official",
                WebSession.principal_id == official_id,
                WebSession.revoked_at.is_(None),
            )
        )


# --- Places -------------------------------------------------------------------------------------

# (own commune 00226, another commune of province 01, a commune of province 04)
SEE = {
    TEAM: (True, False, False),
    COMMUNE: (True, False, False),
    PROVINCE: (True, True, False),
    ADMIN: (True, True, True),
}
EDIT = {
    TEAM: (False, False, False),
    COMMUNE: (True, False, False),
    PROVINCE: (False, False, False),
    ADMIN: (True, True, True),
}
COMMUNES = (COMMUNE_CODE, OTHER_COMMUNE_CODE, OTHER_PROVINCE_COMMUNE_CODE)


@pytest.mark.parametrize("role", list(OfficialRole))
def test_each_role_sees_and_edits_only_its_places(community_app: Flask, role: OfficialRole) -> None:
    official = make_official(community_app, role)
    with app_session(community_app) as session:
        seen = tuple(can_see_commune(official, code, session=session) for code in COMMUNES)
    edited = tuple(can_edit_commune(official, code) for code in COMMUNES)
    assert seen == SEE[role]
    assert edited == EDIT[role]


def test_a_province_official_of_another_province_sees_only_that_province(
    community_app: Flask,
) -> None:
    official = make_official(community_app, PROVINCE, province_code=OTHER_PROVINCE_CODE)
    with app_session(community_app) as session:
        seen = tuple(can_see_commune(official, code, session=session) for code in COMMUNES)
    assert seen == (False, False, True)


def test_visible_communes_scopes_queries_to_the_role(community_app: Flask) -> None:
    officials = {role: make_official(community_app, role) for role in OfficialRole}
    with app_session(community_app) as session:
        every = set(session.scalars(select(Commune.code)))
        in_province = set(
            session.scalars(select(Commune.code).where(Commune.province_code == PROVINCE_CODE))
        )
        visible = {
            role: set(session.scalars(visible_communes(official)))
            for role, official in officials.items()
        }
    assert visible == {
        TEAM: {COMMUNE_CODE},
        COMMUNE: {COMMUNE_CODE},
        PROVINCE: in_province,
        ADMIN: every,
    }
    assert OTHER_COMMUNE_CODE in in_province and OTHER_PROVINCE_COMMUNE_CODE not in in_province


def test_villages_a_role_may_work_in(community_app: Flask) -> None:
    assigned = make_village(community_app)
    unassigned = make_village(community_app)
    elsewhere = make_village(community_app, OTHER_COMMUNE_CODE)
    villages = (assigned, unassigned, elsewhere, 10**12)
    expected = {
        TEAM: (True, False, False, False),
        COMMUNE: (True, True, False, False),
        PROVINCE: (False, False, False, False),
        ADMIN: (True, True, True, False),
    }
    for role, allowed in expected.items():
        official = make_official(
            community_app, role, village_ids=[assigned] if role is TEAM else ()
        )
        with app_session(community_app) as session:
            found = tuple(can_work_in_village(session, official, village) for village in villages)
        assert found == allowed, role


def test_a_team_member_is_given_only_villages_of_their_commune(community_app: Flask) -> None:
    elsewhere = make_village(community_app, OTHER_COMMUNE_CODE)
    member = make_official(community_app, TEAM)
    with app_session(community_app) as session:
        fresh = session.get(Official, member.id)
        assert fresh is not None
        with pytest.raises(StaffRefused):
            assign_villages(session, fresh, [elsewhere], assigned_by="admin")


@pytest.mark.parametrize(
    ("role", "commune_code", "province_code"),
    [
        (TEAM, None, None),
        (COMMUNE, "99999", None),
        (PROVINCE, None, None),
        (PROVINCE, None, "99"),
    ],
)
def test_an_official_needs_the_place_of_their_role(
    community_app: Flask, role: OfficialRole, commune_code: str | None, province_code: str | None
) -> None:
    with app_session(community_app) as session, pytest.raises(StaffRefused):
        create_official(
            session,
            username=unique_username(),
            full_name="Trần Văn Nam",
            password=PASSWORD,
            role=role,
            commune_code=commune_code,
            province_code=province_code,
            created_by="admin",
        )


# --- The decorator -----------------------------------------------------------------------------


def test_official_required_lets_in_the_roles_named_and_admins(community_app: Flask) -> None:
    @official_required
    def anyone() -> str:
        return current_official().role

    @official_required(COMMUNE)
    def commune_only() -> str:
        return current_official().role

    community_app.add_url_rule("/quan-ly/test-anyone", "test_anyone", anyone)
    community_app.add_url_rule("/quan-ly/test-commune", "test_commune", commune_only)
    for role, status in ((TEAM, 403), (COMMUNE, 200), (PROVINCE, 403), (ADMIN, 200)):
        client = community_app.test_client()
        assert client.get("/quan-ly/test-anyone").status_code == 302
        sign_in_official(community_app, client, make_official(community_app, role))
        assert client.get("/quan-ly/test-anyone").status_code == 200
        assert client.get("/quan-ly/test-commune").status_code == status, role


# --- Staff pages --------------------------------------------------------------------------------


def signed_in(app: Flask, role: OfficialRole, **places: str) -> tuple[FlaskClient, Official]:
    official = make_official(app, role, **places)  # type: ignore[arg-type]
    client = app.test_client()
    sign_in_official(app, client, official)
    return client, official


@pytest.mark.parametrize("role", [TEAM, PROVINCE])
def test_only_commune_officials_and_admins_open_the_staff_pages(
    community_app: Flask, role: OfficialRole
) -> None:
    client, _official = signed_in(community_app, role)
    assert client.get(STAFF_PATH).status_code == 403
    assert client.get(NEW_STAFF_PATH).status_code == 403
    assert "/quan-ly/nhan-su" not in client.get("/quan-ly/").get_data(as_text=True)


def test_an_error_in_the_area_keeps_the_areas_header(community_app: Flask) -> None:
    """A refused or missing page under /quan-ly wears the area's layout, not the citizens'."""
    client, official = signed_in(community_app, TEAM)
    for path, status in ((STAFF_PATH, 403), ("/quan-ly/khong-co-trang-nay", 404)):
        response = client.get(path)
        assert response.status_code == status
        text = response.get_data(as_text=True)
        assert "Quản lý ATM mềm" in text
        assert official.full_name in text  # who is signed in, and the area's navigation
        assert "Đăng xuất" in text
        assert 'href="/quan-ly/"' in text
        assert "Mở tài khoản" not in text
    anonymous = community_app.test_client().get("/quan-ly/khong-co-trang-nay")
    assert anonymous.status_code == 404
    assert "Quản lý ATM mềm" in anonymous.get_data(as_text=True)
    assert "Đăng xuất" not in anonymous.get_data(as_text=True)


def test_commune_official_creates_a_team_member_of_their_own_commune_with_villages(
    community_app: Flask,
) -> None:
    village = make_village(community_app)
    client, manager = signed_in(community_app, COMMUNE)
    assert 'href="/quan-ly/nhan-su"' in client.get("/quan-ly/").get_data(as_text=True)
    username = unique_username("team")
    response = client.post(
        NEW_STAFF_PATH,
        data={
            "username": username,
            "full_name": "Phạm Thị Lan",
            "role": TEAM.value,
            # Not theirs to choose: the manager's own commune is used.
            "commune_code": OTHER_COMMUNE_CODE,
            "village": [str(village)],
            "password": NEW_PASSWORD,
            "password_again": NEW_PASSWORD,
        },
    )
    assert response.status_code == 302, response.get_data(as_text=True)
    with app_session(community_app) as session:
        created = OFFICIALS.find(session, username)
        assert created is not None
        assert created.role == TEAM
        assert created.commune_code == COMMUNE_CODE
        assert created.created_by == f"official:{manager.id}"
        assert created.totp_enrolled_at is None
        assignment = session.get(TeamAssignment, (created.id, village))
        assert assignment is not None and assignment.assigned_by == f"official:{manager.id}"
    assert username in client.get(STAFF_PATH).get_data(as_text=True)


def test_commune_official_cannot_create_officials(community_app: Flask) -> None:
    client, _manager = signed_in(community_app, COMMUNE)
    response = client.post(
        NEW_STAFF_PATH,
        data={
            "username": unique_username(),
            "full_name": "Phạm Văn Đức",
            "role": COMMUNE.value,
            "password": NEW_PASSWORD,
            "password_again": NEW_PASSWORD,
        },
    )
    assert response.status_code == 403


def test_a_bad_new_account_is_refused_with_its_reason(community_app: Flask) -> None:
    elsewhere = make_village(community_app, OTHER_COMMUNE_CODE)
    client, _manager = signed_in(community_app, COMMUNE)
    username = unique_username("team")
    response = client.post(
        NEW_STAFF_PATH,
        data={
            "username": username,
            "full_name": "Phạm Thị Lan",
            "role": TEAM.value,
            "village": [str(elsewhere)],
            "password": NEW_PASSWORD,
            "password_again": NEW_PASSWORD,
        },
    )
    assert response.status_code == 422
    assert "Chỉ giao được thôn, tổ dân phố của xã mình." in response.get_data(as_text=True)
    with app_session(community_app) as session:
        assert OFFICIALS.find(session, username) is None


def test_commune_official_never_manages_another_communes_staff(community_app: Flask) -> None:
    client, _manager = signed_in(community_app, COMMUNE)
    other_team = make_official(community_app, TEAM, commune_code=OTHER_COMMUNE_CODE)
    colleague = make_official(community_app, COMMUNE)
    page = client.get(STAFF_PATH).get_data(as_text=True)
    assert other_team.username not in page
    for target in (other_team, colleague):
        base = f"{STAFF_PATH}/{target.id}"
        assert client.get(base).status_code == 404
        assert client.post(f"{base}/trang-thai", data={"active": "0"}).status_code == 404
        assert client.post(f"{base}/xac-thuc").status_code == 404
        assert client.post(f"{base}/thon", data={"village": []}).status_code == 404
        after = stored(community_app, target.id)
        assert after.active and after.totp_enrolled_at is not None


def test_deactivating_a_team_member_ends_their_sessions(community_app: Flask) -> None:
    client, _manager = signed_in(community_app, COMMUNE)
    member_client, member = signed_in(community_app, TEAM)
    assert member_client.get("/quan-ly/").status_code == 200
    response = client.post(f"{STAFF_PATH}/{member.id}/trang-thai", data={"active": "0"})
    assert response.status_code == 302
    assert not stored(community_app, member.id).active
    assert live_sessions(community_app, member.id) == 0
    assert member_client.get("/quan-ly/").status_code == 302
    client.post(f"{STAFF_PATH}/{member.id}/trang-thai", data={"active": "1"})
    assert stored(community_app, member.id).active


def test_resetting_a_team_members_totp_asks_them_to_enrol_again(community_app: Flask) -> None:
    client, _manager = signed_in(community_app, COMMUNE)
    member_client, member = signed_in(community_app, TEAM)
    response = client.post(f"{STAFF_PATH}/{member.id}/xac-thuc")
    assert response.status_code == 302
    after = stored(community_app, member.id)
    assert after.totp_enrolled_at is None and after.totp_secret_ciphertext is None
    assert member_client.get("/quan-ly/").status_code == 302


def test_commune_official_changes_a_team_members_villages(community_app: Flask) -> None:
    first, second = make_village(community_app), make_village(community_app)
    client, _manager = signed_in(community_app, COMMUNE)
    member = make_official(community_app, TEAM, village_ids=[first])
    page = client.get(f"{STAFF_PATH}/{member.id}").get_data(as_text=True)
    assert f'value="{first}" checked' in page
    response = client.post(f"{STAFF_PATH}/{member.id}/thon", data={"village": [str(second)]})
    assert response.status_code == 302
    with app_session(community_app) as session:
        villages = set(
            session.scalars(
                select(TeamAssignment.village_id).where(TeamAssignment.official_id == member.id)
            )
        )
    assert villages == {second}


def test_admin_creates_officials_of_any_role_and_place(community_app: Flask) -> None:
    client, admin = signed_in(community_app, ADMIN)
    created = []
    for role, places in (
        (PROVINCE, {"province_code": OTHER_PROVINCE_CODE}),
        (COMMUNE, {"commune_code": OTHER_COMMUNE_CODE}),
        (ADMIN, {}),
    ):
        username = unique_username(role.value.split("_")[0])
        response = client.post(
            NEW_STAFF_PATH,
            data={
                "username": username,
                "full_name": "Hoàng Văn Sơn",
                "role": role.value,
                "password": NEW_PASSWORD,
                "password_again": NEW_PASSWORD,
                **places,
            },
        )
        assert response.status_code == 302, response.get_data(as_text=True)
        created.append(username)
    with app_session(community_app) as session:
        province = OFFICIALS.find(session, created[0])
        commune = OFFICIALS.find(session, created[1])
        assert province is not None and province.province_code == OTHER_PROVINCE_CODE
        assert commune is not None and commune.commune_code == OTHER_COMMUNE_CODE
        assert commune.created_by == f"official:{admin.id}"
    # An admin manages officials of every commune, but not their own account here.
    assert client.get(f"{STAFF_PATH}/{commune.id}").status_code == 200
    assert client.get(f"{STAFF_PATH}/{admin.id}").status_code == 404
    # Their places by name, as officials know them, in the list and on the detail page.
    listed = client.get(STAFF_PATH).get_data(as_text=True)
    assert "Tỉnh Cao Bằng" in listed and "Phường Ba Đình" in listed
    assert f"· {OTHER_COMMUNE_CODE}" not in listed
    detail = client.get(f"{STAFF_PATH}/{province.id}").get_data(as_text=True)
    assert f"Tỉnh Cao Bằng ({OTHER_PROVINCE_CODE})" in detail


# --- Command line -------------------------------------------------------------------------------


def run_cli(app: Flask, *args: str, stdin: str | None = None) -> tuple[int, str]:
    result = app.test_cli_runner().invoke(officials_group, list(args), input=stdin)
    return result.exit_code, result.output


def test_cli_creates_lists_deactivates_and_resets(community_app: Flask) -> None:
    username = unique_username("cb")
    code, output = run_cli(
        community_app,
        "create",
        "--role",
        "commune_official",
        "--commune",
        COMMUNE_CODE,
        "--username",
        username,
        "--full-name",
        "Ngô Thị Mai",
        "--password-stdin",
        stdin=PASSWORD + "\n",
    )
    assert code == 0, output
    with app_session(community_app) as session:
        official = OFFICIALS.find(session, username)
        assert official is not None
        official_id = official.id
        assert (official.role, official.commune_code, official.created_by) == (
            COMMUNE,
            COMMUNE_CODE,
            "admin",
        )
        OFFICIALS.authenticate(session, username, PASSWORD, dt.datetime.now(dt.UTC))
        session.commit()
    code, output = run_cli(community_app, "list", "--commune", COMMUNE_CODE)
    assert code == 0 and username in output and "no-totp" in output

    client, other = signed_in(community_app, COMMUNE)
    code, output = run_cli(community_app, "reset-totp", other.username)
    assert code == 0, output
    assert stored(community_app, other.id).totp_enrolled_at is None
    assert client.get("/quan-ly/").status_code == 302

    code, output = run_cli(community_app, "deactivate", username)
    assert code == 0, output
    assert not stored(community_app, official_id).active
    code, output = run_cli(community_app, "deactivate", username)
    assert code != 0 and "already deactivated" in output


@pytest.mark.parametrize(
    "places",
    [
        ["--role", "team_member"],
        ["--role", "commune_official", "--province", PROVINCE_CODE],
        ["--role", "province_official", "--commune", COMMUNE_CODE],
        ["--role", "admin", "--province", PROVINCE_CODE],
    ],
)
def test_cli_refuses_a_role_without_its_place(community_app: Flask, places: list[str]) -> None:
    code, output = run_cli(
        community_app,
        "create",
        *places,
        "--username",
        unique_username(),
        "--full-name",
        "Ngô Thị Mai",
        "--password-stdin",
        stdin=PASSWORD + "\n",
    )
    assert code == 2, output


def test_cli_refuses_a_weak_password_and_keeps_nothing(community_app: Flask) -> None:
    username = unique_username()
    code, output = run_cli(
        community_app,
        "create",
        "--role",
        "admin",
        "--username",
        username,
        "--full-name",
        "Ngô Thị Mai",
        "--password-stdin",
        stdin="ngắn\n",
    )
    assert code == 1 and "Mật khẩu dài từ" in output
    with app_session(community_app) as session:
        assert OFFICIALS.find(session, username) is None


# --- Demo ---------------------------------------------------------------------------------------


def test_demo_officials_are_seeded_once_and_sign_in_with_the_published_password(
    community_app: Flask,
) -> None:
    from kiosk.demo import DEMO_STAFF_PASSWORD

    now = dt.datetime.now(dt.UTC)
    with app_session(community_app) as session:
        first = [official.id for official in seed_demo(session, now)]
        session.commit()
    with app_session(community_app) as session:
        again = [official.id for official in seed_demo(session, now)]
        session.commit()
        assert first == again
        usernames = [username for username, *_rest in DEMO_OFFICIALS]
        count = session.scalar(
            select(func.count()).select_from(Official).where(Official.username.in_(usernames))
        )
        assert count == len(DEMO_OFFICIALS) == 5
        commune_officials = [
            official
            for official in seed_demo(session, now)
            if official.role == COMMUNE and official.commune_code == COMMUNE_CODE
        ]
        assert len(commune_officials) == 2
        team = OFFICIALS.authenticate(session, "demo.team", DEMO_STAFF_PASSWORD, now)
        assert team.totp_enrolled_at is not None and team.commune_code == COMMUNE_CODE
