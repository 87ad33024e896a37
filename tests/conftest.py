"""Shared fixtures: databases on SQLite and on a real PostgreSQL server.

PostgreSQL comes from TEST_DATABASE_URL or postgresql://postgres@127.0.0.1:5432/test. The suite
creates a fresh database of its own there, migrates it with Alembic, and drops it at the end. When
no server answers, the PostgreSQL tests are skipped with a notice in the header and the summary —
except under CI=true, where a missing PostgreSQL stops the run as a failure.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session

from kiosk.database import upgrade
from ledger.database import make_engine

POSTGRES_DEFAULT_URL = "postgresql://postgres@127.0.0.1:5432/test"
_postgres_problem: str | None = None


def _admin_url() -> str:
    return os.environ.get("TEST_DATABASE_URL", POSTGRES_DEFAULT_URL)


def _probe_postgres() -> str | None:
    """None when PostgreSQL answers, else why not."""
    try:
        engine = make_engine(_admin_url(), connect_args={"connect_timeout": 3})
        with engine.connect() as connection:
            connection.execute(text("SELECT 1"))
        engine.dispose()
    except OperationalError as error:
        return str(error.orig).strip().splitlines()[0]
    return None


def pytest_configure(config: pytest.Config) -> None:
    global _postgres_problem  # noqa: PLW0603 — probed once per run, read by the fixtures
    _postgres_problem = _probe_postgres()
    if _postgres_problem and os.environ.get("CI") == "true":
        raise pytest.UsageError(
            f"CI=true but PostgreSQL at {_redacted(_admin_url())} is unreachable: "
            f"{_postgres_problem}. The PostgreSQL tests must run in CI."
        )


def _redacted(url: str) -> str:
    return make_url(url).render_as_string(hide_password=True)


def pytest_report_header(config: pytest.Config) -> str:
    if _postgres_problem:
        return (
            f"PostgreSQL: NOT AVAILABLE at {_redacted(_admin_url())} ({_postgres_problem}) — "
            "the PostgreSQL tests will be SKIPPED"
        )
    return f"PostgreSQL: {_redacted(_admin_url())}"


@contextlib.contextmanager
def _migrated_database(prefix: str) -> Iterator[str]:
    """A database of its own on the test server, migrated with Alembic; dropped afterwards."""
    admin = make_engine(_admin_url(), isolation_level="AUTOCOMMIT")
    name = f"{prefix}_{os.getpid()}_{secrets.token_hex(3)}"
    with admin.connect() as connection:
        connection.execute(text(f'CREATE DATABASE "{name}"'))
    url = make_url(_admin_url()).set(database=name).render_as_string(hide_password=False)
    try:
        upgrade(url)
        yield url
    finally:
        with admin.connect() as connection:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    if _postgres_problem:
        pytest.skip(f"PostgreSQL not available ({_postgres_problem}): PostgreSQL test skipped")
    with _migrated_database("softatm_test") as url:
        yield url


@pytest.fixture
def unanalysed_postgres_url(postgres_url: str) -> Iterator[str]:
    """A database of its own whose tables have never had statistics gathered (the session's
    database gathers them as the tests write to it)."""
    with _migrated_database("softatm_plans") as url:
        yield url


@pytest.fixture(scope="session")
def postgres_engine(postgres_url: str) -> Iterator[Engine]:
    engine = make_engine(postgres_url, pool_size=20, max_overflow=20)
    yield engine
    engine.dispose()


@pytest.fixture(scope="session")
def counting_postgres_engine(postgres_url: str) -> Iterator[Engine]:
    """A database of its own, for tests that count everything in the database (the adoption
    roll-ups read every transfer and citizen): other tests commit into the session's database,
    and what they leave there would depend on which tests ran first."""
    with _migrated_database("softatm_counting") as url:
        engine = make_engine(url, pool_size=5, max_overflow=5)
        yield engine
        engine.dispose()


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A migrated SQLite database, copied for each test (faster than migrating each time)."""
    path = tmp_path_factory.mktemp("sqlite") / "template.sqlite3"
    upgrade(f"sqlite:///{path}")
    return path


@pytest.fixture
def sqlite_engine(sqlite_template: Path, tmp_path: Path) -> Iterator[Engine]:
    path = tmp_path / "softatm.sqlite3"
    shutil.copyfile(sqlite_template, path)
    engine = make_engine(f"sqlite:///{path}")
    yield engine
    engine.dispose()


# The ledger runs on three paths: SQLite (portable code), PostgreSQL (the ledger_apply function),
# and the portable code on PostgreSQL, so that the two implementations are held to the same tests.
BACKENDS = [
    "sqlite",
    pytest.param("postgresql", marks=pytest.mark.postgres),
    pytest.param("postgresql-portable", marks=pytest.mark.postgres),
]


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    name: str = request.param
    return name


@pytest.fixture
def engine(backend: str, request: pytest.FixtureRequest) -> Engine:
    if backend == "sqlite":
        sqlite: Engine = request.getfixturevalue("sqlite_engine")
        return sqlite
    postgres: Engine = request.getfixturevalue("postgres_engine")
    return postgres


@pytest.fixture
def db_session(engine: Engine, backend: str) -> Iterator[Session]:
    """A session whose work is rolled back after the test (PostgreSQL keeps nothing of it)."""
    connection = engine.connect()
    transaction = connection.begin()
    session = Session(
        bind=connection, expire_on_commit=False, join_transaction_mode="create_savepoint"
    )
    if backend == "postgresql-portable":
        session.info["ledger_backend"] = "portable"
    yield session
    session.close()
    transaction.rollback()
    connection.close()
