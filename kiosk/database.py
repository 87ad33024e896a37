"""The database for the web app: one engine, one session per request, one commit point.

A request's work commits in `after_request`, before the response leaves, and only when the response
is a success: a form answered with an error, or any exception, rolls everything back, so a failed
request changes nothing. Views and operations never commit.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from alembic import command
from alembic.config import Config
from flask import Flask, Response, current_app, g
from sqlalchemy import Engine, text
from sqlalchemy.orm import Session, sessionmaker

from ledger.database import make_engine

PROJECT_ROOT = Path(__file__).resolve().parent.parent
ALEMBIC_INI = PROJECT_ROOT / "alembic.ini"
EXTENSION_KEY = "softatm.database"


class Database:
    def __init__(self, url: str) -> None:
        self.engine: Engine = make_engine(url)
        self.sessions = sessionmaker(self.engine, expire_on_commit=False)


def init_app(app: Flask) -> None:
    app.extensions[EXTENSION_KEY] = Database(app.config["DATABASE_URL"])
    app.after_request(_commit_on_success)
    app.teardown_appcontext(_close)


def dispose(app: Flask) -> None:
    """Close the app's connections (tests and CLI commands that build many apps)."""
    db: Database | None = app.extensions.get(EXTENSION_KEY)
    if db is not None:
        db.engine.dispose()


def database() -> Database:
    db: Database = current_app.extensions[EXTENSION_KEY]
    return db


def get_session() -> Session:
    """The current request's session (opened on first use)."""
    if "db_session" not in g:
        g.db_session = database().sessions()
    session: Session = g.db_session
    return session


@contextmanager
def apart(working: Session | None = None) -> Iterator[Session]:
    """A session of its own, committed at the end of the block, for what must outlast the
    rollback of ``working`` (default: the request's session): attempt counters, the audit trail
    of a refusal.

    On SQLite (development and tests) every transaction begins IMMEDIATE (see `ledger.database`),
    so a working session that has read anything holds the database's one write lock and this
    session would wait for it until the busy timeout. The working transaction is ended first;
    it must not hold unflushed new or deleted objects, and what it flushed is rolled back, so
    call this before it writes, or when its work is refused anyway. Loaded objects reload on
    their next use. PostgreSQL needs none of this.
    """
    if working is None:
        working = g.get("db_session")
    if (
        working is not None
        and working.get_bind().dialect.name == "sqlite"
        and working.in_transaction()
    ):
        assert not working.new and not working.deleted, "write apart before writing"
        working.rollback()
    with database().sessions() as own:
        yield own
        own.commit()


def _commit_on_success(response: Response) -> Response:
    session: Session | None = g.pop("db_session", None)
    if session is None:
        return response
    try:
        if response.status_code < 400:
            session.commit()
        else:
            session.rollback()
    finally:
        session.close()
    return response


def _close(_error: BaseException | None) -> None:
    session: Session | None = g.pop("db_session", None)
    if session is not None:
        session.rollback()
        session.close()


def ping() -> bool:
    try:
        with database().engine.connect() as connection:
            connection.execute(text("SELECT 1"))
    except Exception:  # any failure means "not ready"; the caller reports it
        return False
    return True


def alembic_config(database_url: str) -> Config:
    config = Config(str(ALEMBIC_INI))
    # ConfigParser treats % as interpolation; a password may contain one.
    config.set_main_option("sqlalchemy.url", database_url.replace("%", "%%"))
    return config


def upgrade(database_url: str) -> None:
    """Bring the database's schema to the newest migration, then refresh the reference data
    (the official provinces and communes), which changes with the package, not the schema."""
    command.upgrade(alembic_config(database_url), "head")
    # Imported here: the places seed reads a data package that only deploys need.
    from kiosk.places.seed import seed_places  # noqa: PLC0415

    engine = make_engine(database_url)
    try:
        with Session(engine) as session:
            seed_places(session)
            session.commit()
    finally:
        engine.dispose()
