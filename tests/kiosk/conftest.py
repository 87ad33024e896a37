"""Fixtures for the web app's tests: apps built from a plain mapping, and a test client."""

from collections.abc import Callable

import pytest
from flask import Flask
from flask.testing import FlaskClient

from kiosk import create_app

TEST_SECRET_KEY = "test-secret-key-that-is-long-enough-for-production"

AppFactory = Callable[..., Flask]


@pytest.fixture
def make_app() -> AppFactory:
    """Build an app for a test; keyword arguments replace or add to the test settings."""

    def build(**overrides: object) -> Flask:
        return create_app(
            {
                "TESTING": True,
                "SOFTATM_ENV": "test",
                "DATABASE_URL": "sqlite://",
                "SECRET_KEY": TEST_SECRET_KEY,
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
