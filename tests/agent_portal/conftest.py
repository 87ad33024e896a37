"""Fixtures for the agent portal's tests: a post office, its agent and supervisor, and a signed-in
browser for either.

People are made with the real operations (`staff.create_post_office`, `staff.create_agent`) and
enrolled in TOTP with a known secret, so that signing in can drive the real pages: the password,
then a code computed with pyotp. Codes, post office codes and login names are unique per call,
because the PostgreSQL test database is shared by the whole run.
"""

from __future__ import annotations

import datetime as dt
import re
import secrets
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TypeVar

import pyotp
import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy.orm import Session

from agent_portal.models import Agent, PostOffice, Role
from agent_portal.staff import AGENT_POLICY, PRINCIPAL_KIND, create_agent, create_post_office
from kiosk import database
from kiosk.auth import totp
from kiosk.auth.staff import StaffMember
from tests.kiosk.citizen_support import sign_in_as
from tests.kiosk.conftest import (  # the web app over SQLite and PostgreSQL
    database_url,
    make_app,
    web_app,
    web_backend,
    web_client,
)

__all__ = ["database_url", "make_app", "web_app", "web_backend", "web_client"]

COMMUNE_CODE = "00226"  # Phường Văn Miếu - Quốc Tử Giám (seeded by the migrations)
PASSWORD = "mây trắng bay trên núi"
# Every test agent shares this authenticator secret (32 base32 characters, like a real one).
TOTP_SECRET = "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP"
SIGN_IN_PATH = "/quay/dang-nhap"
TOTP_PATH = "/quay/xac-thuc"
_CSRF_TOKEN = re.compile(r'name="csrf_token" value="([^"]+)"')

SignIn = Callable[[FlaskClient, Agent], None]
RowT = TypeVar("RowT")


@contextmanager
def app_session(app: Flask) -> Iterator[Session]:
    """A session on the app's database, outside any request; the caller commits or not."""
    with app.app_context(), database.database().sessions() as session:
        yield session


def stored_row(app: Flask, model: type[RowT], key: object) -> RowT:
    """The committed row ``key`` of ``model``, detached (read its columns, not relations)."""
    with app_session(app) as session:
        row = session.get(model, key)
        assert row is not None, (model.__name__, key)
        session.expunge(row)
    return row


def unique_username(prefix: str = "agent") -> str:
    return f"{prefix}.{secrets.token_hex(4)}"


def make_post_office(
    app: Flask,
    *,
    name: str = "Điểm BĐVHX Văn Miếu",
    opens_minute: int = 7 * 60,
    closes_minute: int = 17 * 60,
) -> PostOffice:
    """A committed post office in commune 00226 (detached: read its columns, not relations)."""
    with app_session(app) as session:
        post_office = create_post_office(
            session,
            code="T" + secrets.token_hex(4).upper(),
            name=name,
            commune_code=COMMUNE_CODE,
            opens_minute=opens_minute,
            closes_minute=closes_minute,
        )
        session.commit()
        session.expunge(post_office)
    return post_office


def make_agent(
    app: Flask,
    post_office: PostOffice,
    *,
    role: Role = Role.AGENT,
    full_name: str = "Nguyễn Thị Lan",
    enrolled: bool = True,
) -> Agent:
    """A committed agent (or supervisor) of ``post_office``, enrolled in TOTP with `TOTP_SECRET`
    unless ``enrolled`` is False (detached)."""
    with app_session(app) as session:
        agent = create_agent(
            session,
            post_office=session.get(PostOffice, post_office.id) or post_office,
            username=unique_username("sup" if role is Role.SUPERVISOR else "agent"),
            full_name=full_name,
            password=PASSWORD,
            role=role,
            created_by="admin",
        )
        if enrolled:
            agent.totp_secret_ciphertext = totp.encrypt_secret(TOTP_SECRET)
            agent.totp_enrolled_at = dt.datetime.now(dt.UTC)
        session.commit()
        session.expunge(agent)
    return agent


@pytest.fixture
def post_office(web_app: Flask) -> PostOffice:
    return make_post_office(web_app)


@pytest.fixture
def agent(web_app: Flask, post_office: PostOffice) -> Agent:
    return make_agent(web_app, post_office)


@pytest.fixture
def supervisor(web_app: Flask, post_office: PostOffice) -> Agent:
    return make_agent(web_app, post_office, role=Role.SUPERVISOR, full_name="Trần Văn Hùng")


def csrf_token(client: FlaskClient, path: str) -> str:
    """The CSRF token of the form on ``path`` (any form of the browser's session will do)."""
    response = client.get(path)
    found = _CSRF_TOKEN.search(response.get_data(as_text=True))
    assert found is not None, f"no CSRF token on {path} ({response.status_code})"
    return found.group(1)


def sign_in_through_pages(
    app: Flask,
    client: FlaskClient,
    member: StaffMember,
    *,
    sign_in_path: str = SIGN_IN_PATH,
    totp_path: str = TOTP_PATH,
    csrf: bool = True,
) -> bool:
    """Sign in with the password and a TOTP code on the real pages (the agents' unless told the
    officials' paths; with each form's CSRF token unless the app's checks are off); False when
    no code is left to use this instant (each TOTP step is accepted once per member, ±1 step
    around now)."""
    with app_session(app) as session:
        fresh = session.get(type(member), member.id)
        assert fresh is not None
        last_step = fresh.totp_last_step
    current = totp.step_at(dt.datetime.now(dt.UTC))
    step = current if last_step is None else max(current - 1, last_step + 1)
    if step > current + 1:
        return False
    form = {"username": member.username, "password": PASSWORD}
    if csrf:
        form["csrf_token"] = csrf_token(client, sign_in_path)
    response = client.post(sign_in_path, data=form)
    assert response.status_code == 302, response.get_data(as_text=True)
    assert response.headers["Location"] == totp_path
    form = {"code": pyotp.TOTP(TOTP_SECRET).generate_otp(step)}
    if csrf:
        form["csrf_token"] = csrf_token(client, totp_path)
    response = client.post(totp_path, data=form)
    assert response.status_code == 302, response.get_data(as_text=True)
    return True


def sign_in_directly(app: Flask, client: FlaskClient, agent: Agent) -> None:
    """A live agent session without the pages (what `kiosk.auth.sessions.sign_in` leaves)."""
    with app_session(app) as session:
        fresh = session.get(Agent, agent.id)
        assert fresh is not None
        epoch = fresh.session_epoch
    sign_in_as(client, app, agent.id, epoch, principal_kind=PRINCIPAL_KIND, policy=AGENT_POLICY)


@pytest.fixture
def sign_in_agent(web_app: Flask) -> SignIn:
    """Sign an (enrolled) agent in on a test client: through the real pages when a TOTP step is
    still free, directly otherwise."""

    def sign_in(client: FlaskClient, agent: Agent) -> None:
        if not sign_in_through_pages(web_app, client, agent):
            sign_in_directly(web_app, client, agent)

    return sign_in
