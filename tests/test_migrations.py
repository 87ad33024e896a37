"""The migrations build exactly the schema the models describe, on SQLite and on PostgreSQL.

The session's databases are empty ones brought to head by `kiosk.database.upgrade` (see
tests/conftest.py); Alembic's autogenerate comparison then must find nothing to change, so a model
edited without a migration (or the reverse) fails here rather than in production.
"""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import Engine, inspect

import kiosk.models  # noqa: F401 - registers every table on the metadata
from ledger.schema import Base, include_in_migrated_schema


def test_migrations_at_head_match_the_models(engine: Engine) -> None:
    with engine.connect() as connection:
        context = MigrationContext.configure(
            connection,
            opts={
                "compare_type": True,
                "include_object": include_in_migrated_schema(connection.dialect.name),
            },
        )
        differences = compare_metadata(context, Base.metadata)
    assert differences == []


def test_every_model_table_exists_after_upgrade(engine: Engine) -> None:
    tables = set(inspect(engine).get_table_names())
    assert set(Base.metadata.tables) <= tables
    assert "alembic_version" in tables
