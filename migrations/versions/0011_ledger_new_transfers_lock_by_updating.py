"""Ledger: every batch of new transfers locks its balance rows with its updates.

Only `ledger_apply` changes (see migrations/sql/ledger_0011.py); SQLite has no such function.

Revision ID: 0011
Revises: 0010
Create Date: 2026-11-23 17:30:00
"""

from collections.abc import Sequence

from alembic import op

from migrations.sql import ledger_0010, ledger_0011

revision: str = "0011"
down_revision: str | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute(ledger_0011.LEDGER_APPLY)


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute(ledger_0010.LEDGER_APPLY)
