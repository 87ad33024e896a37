"""Fixtures for the web app's tests: apps built from a plain mapping, and a test client."""

import shutil
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from flask import Flask
from flask.testing import FlaskClient

from kiosk import create_app, database

TEST_SECRET_KEY = "test-secret-key-that-is-long-enough-for-production"

AppFactory = Callable[..., Flask]


@pytest.fixture
def make_app(tmp_path_factory: pytest.TempPathFactory) -> AppFactory:
    """Build an app for a test; keyword arguments replace or add to the test settings."""
    keys_dir = tmp_path_factory.mktemp("keys")

    def build(**overrides: object) -> Flask:
        return create_app(
            {
                "TESTING": True,
                "SOFTATM_ENV": "test",
                "DATABASE_URL": "sqlite://",
                "SECRET_KEY": TEST_SECRET_KEY,
                "KEYS_DIR": keys_dir,
                **overrides,
            }
        )

    return build


@pytest.fixture
def app(make_app: AppFactory) -> Flask:
    return make_app()


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    return app.test_client()


# The web app over a real, migrated database (places seeded): SQLite, and PostgreSQL when the
# server is there. PostgreSQL is shared by the whole run, so tests make unique phones and IDs.
WEB_BACKENDS = ["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)]


@pytest.fixture(params=WEB_BACKENDS)
def web_backend(request: pytest.FixtureRequest) -> str:
    name: str = request.param
    return name


@pytest.fixture
def database_url(web_backend: str, request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if web_backend == "sqlite":
        template: Path = request.getfixturevalue("sqlite_template")
        path = tmp_path / "web.sqlite3"
        shutil.copyfile(template, path)
        return f"sqlite:///{path}"
    url: str = request.getfixturevalue("postgres_url")
    return url


@pytest.fixture
def web_app(make_app: AppFactory, database_url: str) -> Iterator[Flask]:
    app = make_app(DATABASE_URL=database_url)
    yield app
    database.dispose(app)


@pytest.fixture
def web_client(web_app: Flask) -> FlaskClient:
    return web_app.test_client()
