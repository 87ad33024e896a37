"""Fixtures for the welfare tests: the web app over SQLite and PostgreSQL (CSRF off), the
officials' test client, and the counter's fixtures. Helpers are in tests/welfare/support.py."""

from tests.agent_portal.counter_support import cheap_passwords, counter_app
from tests.community.support import community_app, community_client
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
    "counter_app",
    "database_url",
    "make_app",
    "web_app",
    "web_backend",
    "web_client",
]
