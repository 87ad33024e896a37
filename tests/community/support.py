"""Test support for the officials' area (``/quan-ly``): officials of every role, villages, and a
signed-in browser.

People are made with the real operation (`kiosk.community.staff.create_official`) and enrolled
in TOTP with a known secret, so that a test can also sign in through the real pages (the
password, then a code computed with pyotp). Login names are unique per call, because the
PostgreSQL test database is shared by the whole run.

Use from a test module of tests/community (the conftest there re-exports the fixtures):

    from tests.community.support import make_official, sign_in_official

    def test_x(community_app, community_client):
        official = make_official(community_app, OfficialRole.COMMUNE_OFFICIAL)
        sign_in_official(community_app, community_client, official)
"""

from __future__ import annotations

import datetime as dt
import secrets
from collections.abc import Iterable, Iterator

import pytest
from argon2 import PasswordHasher
from flask import Flask
from flask.testing import FlaskClient

from kiosk import database
from kiosk.auth import staff
from kiosk.auth.staff import enrol_known_secret
from kiosk.community.models import Official, OfficialRole, Village
from kiosk.community.staff import OFFICIAL_POLICY, PRINCIPAL_KIND, assign_villages, create_official
from tests.agent_portal import conftest as agent_pages
from tests.agent_portal.conftest import PASSWORD, TOTP_SECRET, app_session
from tests.kiosk.citizen_support import sign_in_as
from tests.kiosk.conftest import AppFactory

COMMUNE_CODE = "00226"  # Phường Văn Miếu - Quốc Tử Giám, province 01 (seeded by the migrations)
PROVINCE_CODE = "01"  # Thành phố Hà Nội
OTHER_COMMUNE_CODE = "00004"  # Phường Ba Đình, also in province 01
OTHER_PROVINCE_CODE = "04"  # Tỉnh Cao Bằng
OTHER_PROVINCE_COMMUNE_CODE = "01273"  # Phường Thục Phán, in province 04
SIGN_IN_PATH = "/quan-ly/dang-nhap"
TOTP_PATH = "/quan-ly/xac-thuc"

_COMMUNE_ROLES = {OfficialRole.TEAM_MEMBER, OfficialRole.COMMUNE_OFFICIAL}


def unique_username(prefix: str = "official") -> str:
    return f"{prefix}.{secrets.token_hex(4)}"


def make_official(
    app: Flask,
    role: OfficialRole,
    *,
    commune_code: str | None = None,
    province_code: str | None = None,
    village_ids: Iterable[int] = (),
    full_name: str = "Nguyễn Thị Hoa",
    enrolled: bool = True,
) -> Official:
    """A committed official of ``role``, enrolled in TOTP with `TOTP_SECRET` unless
    ``enrolled`` is False (detached: read its columns). Team members and commune officials
    belong to ``commune_code`` (default 00226), province officials to ``province_code``
    (default 01); a team member gets ``village_ids``."""
    role = OfficialRole(role)
    if role in _COMMUNE_ROLES:
        commune_code = commune_code or COMMUNE_CODE
    if role is OfficialRole.PROVINCE_OFFICIAL:
        province_code = province_code or PROVINCE_CODE
    with app_session(app) as session:
        official = create_official(
            session,
            username=unique_username(role.value.split("_")[0]),
            full_name=full_name,
            password=PASSWORD,
            role=role,
            commune_code=commune_code,
            province_code=province_code,
            created_by="admin",
        )
        if village_ids:
            assign_villages(session, official, village_ids, assigned_by="admin")
        if enrolled:
            enrol_known_secret(official, TOTP_SECRET, dt.datetime.now(dt.UTC))
        session.commit()
        session.expunge(official)
    return official


def make_village(app: Flask, commune_code: str = COMMUNE_CODE, name: str | None = None) -> int:
    """A committed village of the commune; returns its id."""
    with app_session(app) as session:
        village = Village(
            commune_code=commune_code,
            name=name or f"Thôn {secrets.token_hex(3)}",
            created_at=dt.datetime.now(dt.UTC),
            created_by="admin",
        )
        session.add(village)
        session.commit()
        return village.id


def sign_in_official(app: Flask, client: FlaskClient, official: Official) -> None:
    """A live session of ``official`` on the test client, without the pages (what
    `kiosk.auth.sessions.sign_in` leaves)."""
    with app_session(app) as session:
        fresh = session.get(Official, official.id)
        assert fresh is not None
        epoch = fresh.session_epoch
    sign_in_as(
        client, app, official.id, epoch, principal_kind=PRINCIPAL_KIND, policy=OFFICIAL_POLICY
    )


def sign_in_through_pages(app: Flask, client: FlaskClient, official: Official) -> bool:
    """Sign in with the password and a TOTP code on the real pages (CSRF off); False when no
    code is left to use this instant (each step is accepted once per official, ±1 step)."""
    return agent_pages.sign_in_through_pages(
        app, client, official, sign_in_path=SIGN_IN_PATH, totp_path=TOTP_PATH, csrf=False
    )


@pytest.fixture(autouse=True)
def cheap_passwords(monkeypatch: pytest.MonkeyPatch) -> None:
    """Argon2id at its smallest cost for every test of the folder (re-exported by its conftest):
    officials are made and signed in often, and the cost is not what these tests check."""
    monkeypatch.setattr(
        staff, "PASSWORD_HASHER", PasswordHasher(time_cost=1, memory_cost=8, parallelism=1)
    )


@pytest.fixture
def community_app(make_app: AppFactory, database_url: str) -> Iterator[Flask]:
    """The web app over a migrated database (SQLite and PostgreSQL), CSRF checks off."""
    app = make_app(DATABASE_URL=database_url, WTF_CSRF_ENABLED=False)
    yield app
    database.dispose(app)


@pytest.fixture
def community_client(community_app: Flask) -> FlaskClient:
    return community_app.test_client()
