"""Fixtures for the JSON API's tests: the web app (SQLite and PostgreSQL), credentials made
with the real operation, and a desk (an agent with an open drawer) from the counter's support.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Callable
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from werkzeug.test import TestResponse

from agent_portal.models import Agent
from kiosk.api import credentials
from tests.agent_portal.conftest import app_session
from tests.agent_portal.counter_support import (  # noqa: F401 - fixtures
    cheap_passwords,
    counter_app,
)
from tests.kiosk.conftest import (  # noqa: F401 - fixtures
    database_url,
    make_app,
    web_app,
    web_backend,
)


@pytest.fixture
def plain_app(make_app: Callable[..., Flask]) -> Flask:  # noqa: F811 - the fixture
    """The app over an empty in-memory database (enough for the OpenAPI document)."""
    return make_app()


PROBLEM_KEYS = {"type", "title", "status", "detail", "code"}


def utc_now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def agent_token(app: Flask, agent: Agent) -> str:
    with app_session(app) as session:
        found = session.get(Agent, agent.id)
        assert found is not None
        _credential, token = credentials.create_for_agent(
            session, found, name="test device", created_by="admin", now=utc_now()
        )
        session.commit()
    return token


def system_token(
    app: Flask,
    scopes: list[str] | None = None,
    *,
    commune_code: str | None = None,
    province_code: str | None = None,
) -> str:
    with app_session(app) as session:
        _credential, token = credentials.create_for_system(
            session,
            "test-system",
            scopes=scopes or [scope.value for scope in credentials.Scope],
            commune_code=commune_code,
            province_code=province_code,
            created_by="admin",
            now=utc_now(),
        )
        session.commit()
    return token


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def post(
    client: FlaskClient, path: str, token: str, body: Any, *, key: str | None = "new"
) -> TestResponse:
    headers = bearer(token)
    if key is not None:
        headers["Idempotency-Key"] = str(uuid.uuid4()) if key == "new" else key
    return client.post(path, json=body, headers=headers)


def assert_problem(response: TestResponse, status: int, code: str | None = None) -> dict[str, Any]:
    assert response.status_code == status, response.get_data(as_text=True)
    assert response.mimetype == "application/problem+json"
    body: dict[str, Any] = response.get_json(force=True)
    assert set(body) >= PROBLEM_KEYS
    assert body["status"] == status
    assert body["type"] == "https://softatm.vn/problems/" + body["code"]
    if code is not None:
        assert body["code"] == code, body
    return body


Poster = Callable[..., TestResponse]
