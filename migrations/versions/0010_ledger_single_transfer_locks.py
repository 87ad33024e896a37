"""Ledger: a single new transfer locks its balance rows with the updates themselves.

Only `ledger_apply` changes (see migrations/sql/ledger_0010.py); SQLite has no such function.

Revision ID: 0010
Revises: 0009
Create Date: 2026-11-23 12:30:00
"""

from collections.abc import Sequence

from alembic import op

from migrations.sql import ledger_0009, ledger_0010

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute(ledger_0010.LEDGER_APPLY)


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute(ledger_0009.LEDGER_APPLY)
