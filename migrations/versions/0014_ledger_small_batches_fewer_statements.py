"""Ledger: a batch of two or three transfers runs fewer statements.

Only `ledger_apply` changes (see migrations/sql/ledger_0014.py); SQLite has no such function.

Revision ID: 0014
Revises: 0013
Create Date: 2026-11-24 03:20:00
"""

from collections.abc import Sequence

from alembic import op

from migrations.sql import ledger_0013, ledger_0014

revision: str = "0014"
down_revision: str | None = "0013"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute(ledger_0014.LEDGER_APPLY)


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute(ledger_0013.LEDGER_APPLY)
