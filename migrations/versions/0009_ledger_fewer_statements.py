"""Ledger: fewer statements and index entries per transfer.

- `account_balances.shard_count`, copied from the account, so that `ledger_apply` finds a new
  transfer's shard on the balance row it locks anyway (see migrations/sql/ledger_0009.py).
- `transfers.debit_account_id` and `credit_account_id` lose their foreign keys: every transfer
  updates its accounts' balance rows (which reference the accounts) in the same transaction, and
  `ledger verify` reports transfers on an account without a balance row. Each key cost a
  locking lookup of the account row per transfer, written to the WAL.
- The unique indexes on `pending_id` and `reverses_id` become partial (NOT NULL): most transfers
  resolve and reverse nothing, and no longer add an entry to either.

Revision ID: 0009
Revises: 0008
Create Date: 2026-11-23 10:10:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from migrations.sql import ledger_0001, ledger_0009

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_PARTIAL = {
    "uq_transfers_pending_id": "pending_id",
    "uq_transfers_reverses_id": "reverses_id",
}


def upgrade() -> None:
    dialect = op.get_bind().dialect.name
    with op.batch_alter_table("account_balances", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("shard_count", sa.SmallInteger(), nullable=False, server_default="1")
        )
    op.execute(
        "UPDATE account_balances SET shard_count = "
        "(SELECT a.shard_count FROM accounts a WHERE a.id = account_balances.account_id)"
    )
    with op.batch_alter_table("account_balances", schema=None) as batch_op:
        batch_op.alter_column("shard_count", server_default=None)

    if dialect == "sqlite":
        # Copying the table: references to it are checked at commit, and its triggers go with it.
        op.execute("PRAGMA defer_foreign_keys = ON")
    with op.batch_alter_table("transfers", schema=None) as batch_op:
        batch_op.drop_constraint("fk_transfers_debit_account_id_accounts", type_="foreignkey")
        batch_op.drop_constraint("fk_transfers_credit_account_id_accounts", type_="foreignkey")
        for name in _PARTIAL:
            batch_op.drop_constraint(name, type_="unique")
    for name, column in _PARTIAL.items():
        op.create_index(
            name,
            "transfers",
            [column],
            unique=True,
            postgresql_where=sa.text(f"{column} IS NOT NULL"),
            sqlite_where=sa.text(f"{column} IS NOT NULL"),
        )
    if dialect == "sqlite":
        for statement in ledger_0001.SQLITE_UPGRADE:
            op.execute(statement.replace("CREATE TRIGGER", "CREATE TRIGGER IF NOT EXISTS"))
    else:
        op.execute(ledger_0009.FIRST_MISSING_ACCOUNT)
        op.execute(ledger_0009.LEDGER_APPLY)


def downgrade() -> None:
    dialect = op.get_bind().dialect.name
    if dialect == "postgresql":
        op.execute("DROP FUNCTION ledger_apply(jsonb, timestamptz)")
        op.execute("DROP FUNCTION ledger_first_missing_account(bigint[], bigint[])")
        op.execute(ledger_0001.LEDGER_APPLY)
    for name in _PARTIAL:
        op.drop_index(name, table_name="transfers")
    if dialect == "sqlite":
        op.execute("PRAGMA defer_foreign_keys = ON")
    with op.batch_alter_table("transfers", schema=None) as batch_op:
        for name, column in _PARTIAL.items():
            batch_op.create_unique_constraint(name, [column])
        for side in ("debit", "credit"):
            batch_op.create_foreign_key(
                f"fk_transfers_{side}_account_id_accounts",
                "accounts",
                [f"{side}_account_id"],
                ["id"],
            )
    if dialect == "sqlite":
        for statement in ledger_0001.SQLITE_UPGRADE:
            op.execute(statement.replace("CREATE TRIGGER", "CREATE TRIGGER IF NOT EXISTS"))
    with op.batch_alter_table("account_balances", schema=None) as batch_op:
        batch_op.drop_column("shard_count")
