"""Ledger: on PostgreSQL the shape of transfer rows is checked by verification, not per write.

PostgreSQL 15 rebuilds a table's CHECK constraints from their stored text, and plans them, for
every statement that writes the table: a single transfer's two balance UPDATEs and its INSERT
paid for eleven of them. Measured on the development machine (one connection, commits not
waited for): 353 µs of server CPU per transfer with all of them, 320 µs without those dropped
here, 305 µs with none.

Kept, on the rows themselves: the money rules — a balance row's debits within its credits (or
credits within debits), a transfer's positive amount and its two different accounts. Dropped,
on PostgreSQL only: which phases exist and which references each phase carries, positive
sequence numbers, non-negative totals and entry counts. `ledger_apply`, the only writer of these
rows, derives all of them (the phase from a checked request, sequences and totals from the rows
it updates), and `verify_ledger` reports any row that breaks them. SQLite keeps every constraint:
its writes are single-row and its cost is elsewhere.

Revision ID: 0012
Revises: 0011
Create Date: 2026-11-23 21:20:00
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0012"
down_revision: str | None = "0011"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# (table, constraint, its condition as 0001 created it)
DROPPED = (
    (
        "transfers",
        "ck_transfers_phase_known",
        "phase IN ('posted', 'pending', 'post_pending', 'void_pending')",
    ),
    (
        "transfers",
        "ck_transfers_resolution_names_pending",
        "(phase IN ('post_pending', 'void_pending')) = (pending_id IS NOT NULL)",
    ),
    ("transfers", "ck_transfers_only_pending_expires", "expires_at IS NULL OR phase = 'pending'"),
    ("transfers", "ck_transfers_reversal_is_posted", "reverses_id IS NULL OR phase = 'posted'"),
    ("transfers", "ck_transfers_seq_positive", "debit_seq > 0 AND credit_seq > 0"),
    (
        "account_balances",
        "ck_account_balances_totals_not_negative",
        "debits_posted >= 0 AND credits_posted >= 0 AND debits_pending >= 0 AND credits_pending >= 0",
    ),
    ("account_balances", "ck_account_balances_entry_count_not_negative", "entry_count >= 0"),
)


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        for table, name, _condition in DROPPED:
            op.execute(f"ALTER TABLE {table} DROP CONSTRAINT {name}")


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        for table, name, condition in DROPPED:
            op.execute(f"ALTER TABLE {table} ADD CONSTRAINT {name} CHECK ({condition})")
