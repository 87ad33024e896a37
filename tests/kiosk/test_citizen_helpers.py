"""Helpers shared by the citizen tests (no tests here): unique phones and ID numbers, the CSRF
token of a page, a complete registration form, and citizens made through the real pages.

PostgreSQL keeps its data for the whole run, so every citizen gets a fresh random phone and ID.
"""

from __future__ import annotations

import datetime as dt
import random
import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select
from sqlalchemy.orm import Session
from werkzeug.test import TestResponse

from kiosk import database
from kiosk.citizens.models import Citizen

PROVINCE_CODE = "01"  # Thành phố Hà Nội
COMMUNE_CODE = "00226"  # Phường Văn Miếu - Quốc Tử Giám
COMMUNE_NAME = "Phường Văn Miếu - Quốc Tử Giám"
OTHER_PROVINCE_COMMUNE_CODE = "25750"  # Phường Phú Lợi, Hồ Chí Minh city
DATE_OF_BIRTH = dt.date(1958, 9, 5)
PIN = "246813"
SESSION_COOKIE = "softatm_session"
_TOKEN = re.compile(r'name="csrf_token" value="([^"]+)"')


def unique_phone() -> str:
    return "09" + "".join(random.choice("0123456789") for _ in range(8))


def citizen_id_for(date_of_birth: dt.date = DATE_OF_BIRTH, sex: str = "female") -> str:
    """A well-formed ID number (province of birth Hà Nội, "001") that agrees with the person."""
    century = (date_of_birth.year - 1900) // 100
    digit = century * 2 + (1 if sex == "female" else 0)
    serial = "".join(random.choice("0123456789") for _ in range(6))
    return f"001{digit}{date_of_birth.year % 100:02d}{serial}"


def registration_form(**overrides: str) -> dict[str, str]:
    """A complete, valid final-step registration form; keyword arguments replace fields."""
    sex = overrides.get("sex", "female")
    form = {
        "phone": unique_phone(),
        "full_name": "Hoàng Thị Mai",
        "birth_day": str(DATE_OF_BIRTH.day),
        "birth_month": str(DATE_OF_BIRTH.month),
        "birth_year": str(DATE_OF_BIRTH.year),
        "sex": sex,
        "citizen_id": citizen_id_for(DATE_OF_BIRTH, sex),
        "province": PROVINCE_CODE,
        "commune": COMMUNE_CODE,
        "pin": PIN,
        "pin_again": PIN,
        "consent": "yes",
        "action": "register",
    }
    form.update(overrides)
    return form


def csrf_token(client: FlaskClient, path: str) -> str:
    """The CSRF token of the form on the page at ``path`` (as a browser would submit it)."""
    response = client.get(path)
    found = _TOKEN.search(response.get_data(as_text=True))
    assert found is not None, f"no CSRF token on {path} ({response.status_code})"
    return found.group(1)


def post_form(
    client: FlaskClient, page: str, data: dict[str, str], action: str = ""
) -> TestResponse:
    """Open ``page``, then submit its form with ``data`` to ``action`` (default: the page)."""
    token = csrf_token(client, page)
    return client.post(action or page, data={**data, "csrf_token": token})


def register(client: FlaskClient, **overrides: str) -> tuple[TestResponse, dict[str, str]]:
    form = registration_form(**overrides)
    return post_form(client, "/dang-ky", form), form


@dataclass(frozen=True)
class Registered:
    id: int
    phone: str
    pin: str
    citizen_id: str


def registered_citizen(client: FlaskClient, **overrides: str) -> Registered:
    """Register through the pages (which also signs ``client`` in) and return who it was."""
    response, form = register(client, **overrides)
    assert response.status_code == 302, response.get_data(as_text=True)
    citizen = find_citizen(client.application, form["phone"])
    assert citizen is not None
    return Registered(citizen.id, form["phone"], form["pin"], form["citizen_id"])


def sign_in(client: FlaskClient, phone: str, pin: str, next_path: str = "") -> TestResponse:
    data = {"phone": phone, "pin": pin}
    page = "/dang-nhap"
    if next_path:
        data["next"] = next_path
    return post_form(client, page, data)


@contextmanager
def db_session(app: Flask) -> Iterator[Session]:
    """A session on the app's database, outside any request; the caller commits or not."""
    with app.app_context(), database.database().sessions() as session:
        yield session


def find_citizen(app: Flask, phone: str) -> Citizen | None:
    with db_session(app) as session:
        return session.scalar(select(Citizen).where(Citizen.phone == phone))


def field_errors(response: TestResponse) -> dict[str, str]:
    """The error shown beside each field of a page, by field name."""
    html = response.get_data(as_text=True)
    return dict(re.findall(r'<p class="field-error" id="([a-z_]+)-error">([^<]+)</p>', html))


def summary_links(response: TestResponse) -> list[str]:
    """The fields that the error summary at the top of a page links to."""
    html = response.get_data(as_text=True)
    summary = re.search(r'<div class="error-summary" role="alert">.*?</div>', html, re.DOTALL)
    return [] if summary is None else re.findall(r'<a href="#([a-z_]+)">', summary.group(0))
