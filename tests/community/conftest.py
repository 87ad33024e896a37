"""Fixtures for the community tests: the web app over SQLite and PostgreSQL (CSRF off), a test
client, and what tests/kiosk/conftest.py provides. Helpers are in tests/community/support.py."""

from tests.community.support import cheap_passwords, community_app, community_client
from tests.kiosk.conftest import (  # the web app over SQLite and PostgreSQL
    database_url,
    make_app,
    web_app,
    web_backend,
    web_client,
)

__all__ = [
    "cheap_passwords",
    "community_app",
    "community_client",
    "database_url",
    "make_app",
    "web_app",
    "web_backend",
    "web_client",
]
