"""Ledger: a hot account's shard follows the connection's slot, not its backend pid.

`ledger_shard_slot()` is new and `ledger_apply` calls it (see migrations/sql/ledger_0015.py);
SQLite has neither.

Revision ID: 0015
Revises: 0014
Create Date: 2026-11-24 08:00:00
"""

from collections.abc import Sequence

from alembic import op

from migrations.sql import ledger_0014, ledger_0015

revision: str = "0015"
down_revision: str | None = "0014"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute(ledger_0015.SHARD_SLOT)
        op.execute(ledger_0015.LEDGER_APPLY)


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute(ledger_0014.LEDGER_APPLY)
        op.execute(ledger_0015.DROP_SHARD_SLOT)
