"""Ledger: on PostgreSQL a balance row's account is checked by verification, not per write.

A foreign key checks nothing when a row is updated and its key does not change — except when
the row's current version was written by the same transaction: PostgreSQL cannot tell whether
the insert's check has run, so it checks again, with a locking read of the referenced row
(SELECT … FOR KEY SHARE, which writes a lock to the account row and the WAL). A batch that
writes one account twice — a payment and its fee, both from the payer's wallet; a disbursement
run from one fund — paid that for every write after the first. Measured on the development
machine (one connection, commits not waited for), a payment with its fee cost the server 28 µs
more with the key; in the benchmark the hot-account figure rose from 0.725 to 0.752 of the
single-transfer rate.

Dropped, on PostgreSQL only: account_balances.account_id → accounts.id. Balance rows are
written by `open_account` (in the transaction that writes the account) and updated by
`ledger_apply`, which never changes their key; no code deletes an account. `verify_ledger`
reports a balance row without its account, or one whose copied rules or shard count are not
its account's. SQLite keeps the key. The same reasoning left transfers without keys to their
accounts from the start (see ledger/schema.py).

Also `ledger_apply` (migrations/sql/ledger_0013.py): a batch of two or three new transfers
orders its sides without a query.

Revision ID: 0013
Revises: 0012
Create Date: 2026-11-23 23:40:00
"""

from collections.abc import Sequence

from alembic import op

from migrations.sql import ledger_0011, ledger_0013

revision: str = "0013"
down_revision: str | None = "0012"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

FOREIGN_KEY = "fk_account_balances_account_id_accounts"


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.drop_constraint(FOREIGN_KEY, "account_balances", type_="foreignkey")
        op.execute(ledger_0013.LEDGER_APPLY)


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute(ledger_0011.LEDGER_APPLY)
        op.create_foreign_key(FOREIGN_KEY, "account_balances", "accounts", ["account_id"], ["id"])
