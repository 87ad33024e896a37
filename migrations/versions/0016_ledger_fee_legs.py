"""Ledger: a posted transfer may carry a fee leg to a third account.

A payment and its fee were two linked transfers: two rows, two keys, two chain steps on the
payer's balance row. A fee leg makes them one transfer (see `ledger.Post`): the debit account
pays the amount and the fee, the credit account receives the amount and the fee account the fee,
in one row with one idempotency key. A fee account written by every payment (a hot account)
then costs each payment one more balance-row UPDATE, not a second transfer.

- `transfers` gains the fee leg's account, shard, amount and its place in the fee account's
  chain (seq, hash, balance after), all NULL on a transfer without one; a partial unique index
  keeps each fee account's chain in order. One CHECK constraint holds on both databases, as a
  money rule: a fee is positive and goes to a third account. SQLite also checks the leg's shape
  (all its columns or none, on a posted transfer), which on PostgreSQL `verify_ledger` checks, as
  for the rest of a row's shape (migration 0012).
- `ledger_apply` and a three-array `ledger_first_missing_account`
  (migrations/sql/ledger_0016.py).

Revision ID: 0016
Revises: 0015
Create Date: 2026-11-24 17:30:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from migrations.sql import ledger_0001, ledger_0015, ledger_0016

revision: str = "0016"
down_revision: str | None = "0015"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

COLUMNS = (
    ("fee_account_id", sa.BigInteger()),
    ("fee_shard", sa.SmallInteger()),
    ("fee_amount", sa.BigInteger()),
    ("fee_seq", sa.BigInteger()),
    ("fee_hash", sa.LargeBinary(length=32)),
    ("fee_balance_after", sa.BigInteger()),
)
INDEX = "uq_transfers_fee_account_id_fee_shard_fee_seq"
VALID = (
    "fee_leg_valid",
    "fee_account_id IS NULL OR (fee_amount > 0 AND fee_account_id <> debit_account_id "
    "AND fee_account_id <> credit_account_id)",
)
SHAPE_ON_SQLITE = (
    (
        "fee_leg_whole",
        "(fee_account_id IS NULL) = (fee_shard IS NULL) "
        "AND (fee_account_id IS NULL) = (fee_amount IS NULL) "
        "AND (fee_account_id IS NULL) = (fee_seq IS NULL) "
        "AND (fee_account_id IS NULL) = (fee_hash IS NULL) "
        "AND (fee_account_id IS NULL) = (fee_balance_after IS NULL)",
    ),
    ("fee_leg_posted", "fee_account_id IS NULL OR (phase = 'posted' AND fee_seq > 0)"),
)


def upgrade() -> None:
    dialect = op.get_bind().dialect.name
    if dialect == "postgresql":
        for name, type_ in COLUMNS:
            op.add_column("transfers", sa.Column(name, type_, nullable=True))
        op.create_check_constraint(op.f(f"ck_transfers_{VALID[0]}"), "transfers", VALID[1])
    else:
        # SQLite adds a column with its CHECK in place; a table rebuild would drop the
        # append-only triggers. The last column carries the leg's checks.
        *first, (last, last_type) = COLUMNS
        for name, type_ in first:
            op.add_column("transfers", sa.Column(name, type_, nullable=True))
        checks = [VALID, *SHAPE_ON_SQLITE]
        op.add_column(
            "transfers",
            sa.Column(
                last,
                last_type,
                *(
                    sa.CheckConstraint(condition, name=op.f(f"ck_transfers_{name}"))
                    for name, condition in checks
                ),
                nullable=True,
            ),
        )
    op.create_index(
        INDEX,
        "transfers",
        ["fee_account_id", "fee_shard", "fee_seq"],
        unique=True,
        postgresql_where=sa.text("fee_account_id IS NOT NULL"),
        sqlite_where=sa.text("fee_account_id IS NOT NULL"),
    )
    if dialect == "postgresql":
        op.execute(ledger_0016.FIRST_MISSING_ACCOUNT)
        op.execute(ledger_0016.LEDGER_APPLY)


def downgrade() -> None:
    dialect = op.get_bind().dialect.name
    if dialect == "postgresql":
        op.execute(ledger_0015.LEDGER_APPLY)
        op.execute(ledger_0016.DROP_FIRST_MISSING_ACCOUNT)
    op.drop_index(INDEX, table_name="transfers")
    if dialect == "postgresql":
        op.drop_constraint(op.f(f"ck_transfers_{VALID[0]}"), "transfers", type_="check")
        for name, _type in reversed(COLUMNS):
            op.drop_column("transfers", name)
    else:
        # SQLite drops a column only without a CHECK on it: rebuild the table, then put back
        # the triggers the rebuild dropped.
        with op.batch_alter_table("transfers", recreate="always") as batch_op:
            for name, _condition in (VALID, *SHAPE_ON_SQLITE):
                batch_op.drop_constraint(op.f(f"ck_transfers_{name}"), type_="check")
            for name, _type in reversed(COLUMNS):
                batch_op.drop_column(name)
        for statement in ledger_0001.SQLITE_UPGRADE:
            op.execute(statement.replace("CREATE TRIGGER", "CREATE TRIGGER IF NOT EXISTS"))
