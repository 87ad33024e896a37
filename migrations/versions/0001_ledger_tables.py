"""The double-entry ledger: accounts, balances, transfers, open reservations.

On PostgreSQL also the `ledger_apply` function that posts a batch in one round trip, and the
triggers that make transfers append-only (on SQLite too).

Revision ID: 0001
Revises:
Create Date: 2026-11-23 01:05:34.001224
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from migrations.sql import ledger_0001


revision: str = '0001'
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('accounts',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('kind', sa.String(length=32), nullable=False),
    sa.Column('owner_ref', sa.String(length=64), nullable=True),
    sa.Column('name', sa.String(length=200), nullable=False),
    sa.Column('currency', sa.String(length=3), nullable=False),
    sa.Column('debits_must_not_exceed_credits', sa.Boolean(), nullable=False),
    sa.Column('credits_must_not_exceed_debits', sa.Boolean(), nullable=False),
    sa.Column('shard_count', sa.SmallInteger(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.CheckConstraint("currency = 'VND'", name=op.f('ck_accounts_currency_vnd')),
    sa.CheckConstraint("kind IN ('citizen_wallet', 'agent_drawer', 'district_cash', 'biller', 'merchant', 'welfare_fund', 'fee_revenue', 'agent_commission', 'cash_variance', 'settlement', 'funding')", name=op.f('ck_accounts_kind_known')),
    sa.CheckConstraint('NOT (debits_must_not_exceed_credits AND credits_must_not_exceed_debits)', name=op.f('ck_accounts_one_balance_rule')),
    sa.CheckConstraint('shard_count = 1 OR (shard_count BETWEEN 2 AND 64 AND NOT debits_must_not_exceed_credits AND NOT credits_must_not_exceed_debits)', name=op.f('ck_accounts_shards_without_rules')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_accounts')),
    sa.UniqueConstraint('kind', 'owner_ref', name=op.f('uq_accounts_kind_owner_ref'))
    )
    op.create_table('account_balances',
    sa.Column('account_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('shard', sa.SmallInteger(), nullable=False),
    sa.Column('debits_posted', sa.BigInteger(), nullable=False),
    sa.Column('credits_posted', sa.BigInteger(), nullable=False),
    sa.Column('debits_pending', sa.BigInteger(), nullable=False),
    sa.Column('credits_pending', sa.BigInteger(), nullable=False),
    sa.Column('debits_must_not_exceed_credits', sa.Boolean(), nullable=False),
    sa.Column('credits_must_not_exceed_debits', sa.Boolean(), nullable=False),
    sa.Column('entry_count', sa.BigInteger(), nullable=False),
    sa.Column('head_hash', sa.LargeBinary(length=32), nullable=False),
    sa.CheckConstraint('NOT credits_must_not_exceed_debits OR credits_posted + credits_pending <= debits_posted', name=op.f('ck_account_balances_credits_within_debits')),
    sa.CheckConstraint('NOT debits_must_not_exceed_credits OR debits_posted + debits_pending <= credits_posted', name=op.f('ck_account_balances_debits_within_credits')),
    sa.CheckConstraint('debits_posted >= 0 AND credits_posted >= 0 AND debits_pending >= 0 AND credits_pending >= 0', name=op.f('ck_account_balances_totals_not_negative')),
    sa.CheckConstraint('entry_count >= 0', name=op.f('ck_account_balances_entry_count_not_negative')),
    sa.ForeignKeyConstraint(['account_id'], ['accounts.id'], name=op.f('fk_account_balances_account_id_accounts')),
    sa.PrimaryKeyConstraint('account_id', 'shard', name=op.f('pk_account_balances'))
    )
    op.create_table('transfers',
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('idempotency_key', sa.String(length=128), nullable=False),
    sa.Column('batch_id', sa.Uuid(), nullable=False),
    sa.Column('phase', sa.String(length=16), nullable=False),
    sa.Column('code', sa.String(length=32), nullable=False),
    sa.Column('memo', sa.String(length=200), nullable=False),
    sa.Column('debit_account_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('debit_shard', sa.SmallInteger(), nullable=False),
    sa.Column('credit_account_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('credit_shard', sa.SmallInteger(), nullable=False),
    sa.Column('amount', sa.BigInteger(), nullable=False),
    sa.Column('pending_id', sa.Uuid(), nullable=True),
    sa.Column('reverses_id', sa.Uuid(), nullable=True),
    sa.Column('expires_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('debit_seq', sa.BigInteger(), nullable=False),
    sa.Column('debit_hash', sa.LargeBinary(length=32), nullable=False),
    sa.Column('debit_balance_after', sa.BigInteger(), nullable=False),
    sa.Column('credit_seq', sa.BigInteger(), nullable=False),
    sa.Column('credit_hash', sa.LargeBinary(length=32), nullable=False),
    sa.Column('credit_balance_after', sa.BigInteger(), nullable=False),
    sa.CheckConstraint("(phase IN ('post_pending', 'void_pending')) = (pending_id IS NOT NULL)", name=op.f('ck_transfers_resolution_names_pending')),
    sa.CheckConstraint("expires_at IS NULL OR phase = 'pending'", name=op.f('ck_transfers_only_pending_expires')),
    sa.CheckConstraint("phase IN ('posted', 'pending', 'post_pending', 'void_pending')", name=op.f('ck_transfers_phase_known')),
    sa.CheckConstraint("reverses_id IS NULL OR phase = 'posted'", name=op.f('ck_transfers_reversal_is_posted')),
    sa.CheckConstraint('amount > 0', name=op.f('ck_transfers_amount_positive')),
    sa.CheckConstraint('debit_account_id <> credit_account_id', name=op.f('ck_transfers_accounts_differ')),
    sa.CheckConstraint('debit_seq > 0 AND credit_seq > 0', name=op.f('ck_transfers_seq_positive')),
    sa.ForeignKeyConstraint(['credit_account_id'], ['accounts.id'], name=op.f('fk_transfers_credit_account_id_accounts')),
    sa.ForeignKeyConstraint(['debit_account_id'], ['accounts.id'], name=op.f('fk_transfers_debit_account_id_accounts')),
    sa.ForeignKeyConstraint(['pending_id'], ['transfers.id'], name=op.f('fk_transfers_pending_id_transfers')),
    sa.ForeignKeyConstraint(['reverses_id'], ['transfers.id'], name=op.f('fk_transfers_reverses_id_transfers')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_transfers')),
    sa.UniqueConstraint('credit_account_id', 'credit_shard', 'credit_seq', name=op.f('uq_transfers_credit_account_id_credit_shard_credit_seq')),
    sa.UniqueConstraint('debit_account_id', 'debit_shard', 'debit_seq', name=op.f('uq_transfers_debit_account_id_debit_shard_debit_seq')),
    sa.UniqueConstraint('idempotency_key', name=op.f('uq_transfers_idempotency_key')),
    sa.UniqueConstraint('pending_id', name=op.f('uq_transfers_pending_id')),
    sa.UniqueConstraint('reverses_id', name=op.f('uq_transfers_reverses_id'))
    )
    with op.batch_alter_table('transfers', schema=None) as batch_op:
        batch_op.create_index('ix_transfers_created_at', ['created_at'], unique=False)

    op.create_table('open_reservations',
    sa.Column('pending_id', sa.Uuid(), nullable=False),
    sa.Column('debit_account_id', sa.BigInteger(), nullable=False),
    sa.Column('debit_shard', sa.SmallInteger(), nullable=False),
    sa.Column('credit_account_id', sa.BigInteger(), nullable=False),
    sa.Column('credit_shard', sa.SmallInteger(), nullable=False),
    sa.Column('amount', sa.BigInteger(), nullable=False),
    sa.Column('expires_at', sa.DateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['pending_id'], ['transfers.id'], name=op.f('fk_open_reservations_pending_id_transfers')),
    sa.PrimaryKeyConstraint('pending_id', name=op.f('pk_open_reservations'))
    )
    with op.batch_alter_table('open_reservations', schema=None) as batch_op:
        batch_op.create_index('ix_open_reservations_credit_account_id', ['credit_account_id'], unique=False)
        batch_op.create_index('ix_open_reservations_debit_account_id', ['debit_account_id'], unique=False)
        batch_op.create_index('ix_open_reservations_expires_at', ['expires_at'], unique=False)

    for statement in ledger_0001.upgrade_statements(op.get_bind().dialect.name):
        op.execute(statement)


def downgrade() -> None:
    for statement in ledger_0001.downgrade_statements(op.get_bind().dialect.name):
        op.execute(statement)
    with op.batch_alter_table('open_reservations', schema=None) as batch_op:
        batch_op.drop_index('ix_open_reservations_expires_at')
        batch_op.drop_index('ix_open_reservations_debit_account_id')
        batch_op.drop_index('ix_open_reservations_credit_account_id')

    op.drop_table('open_reservations')
    with op.batch_alter_table('transfers', schema=None) as batch_op:
        batch_op.drop_index('ix_transfers_created_at')

    op.drop_table('transfers')
    op.drop_table('account_balances')
    op.drop_table('accounts')
