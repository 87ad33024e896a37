"""Welfare: programmes, pay cycles, beneficiary rows; issued codes may be welfare vouchers.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-23 06:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0005'
down_revision: str | None = '0004'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

ID = sa.BigInteger().with_variant(sa.Integer(), 'sqlite')


def upgrade() -> None:
    op.create_table('welfare_programmes',
    sa.Column('id', ID, nullable=False),
    sa.Column('commune_code', sa.String(length=5), nullable=False),
    sa.Column('name', sa.String(length=120), nullable=False),
    sa.Column('fund_account_id', ID, nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('created_by', sa.String(length=64), nullable=False),
    sa.ForeignKeyConstraint(['commune_code'], ['communes.code'], name=op.f('fk_welfare_programmes_commune_code_communes')),
    sa.ForeignKeyConstraint(['fund_account_id'], ['accounts.id'], name=op.f('fk_welfare_programmes_fund_account_id_accounts')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_welfare_programmes')),
    sa.UniqueConstraint('commune_code', 'name', name=op.f('uq_welfare_programmes_commune_code_name')),
    sa.UniqueConstraint('fund_account_id', name=op.f('uq_welfare_programmes_fund_account_id'))
    )
    op.create_table('welfare_pay_cycles',
    sa.Column('id', ID, nullable=False),
    sa.Column('programme_id', ID, nullable=False),
    sa.Column('label', sa.String(length=60), nullable=False),
    sa.Column('voucher_validity_days', sa.SmallInteger(), nullable=False),
    sa.Column('status', sa.String(length=20), nullable=False),
    sa.Column('row_count', sa.Integer(), nullable=False),
    sa.Column('total_amount', sa.BigInteger(), nullable=False),
    sa.Column('uploaded_by', sa.String(length=64), nullable=True),
    sa.Column('uploaded_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('submitted_by', sa.String(length=64), nullable=True),
    sa.Column('submitted_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('approved_by', sa.String(length=64), nullable=True),
    sa.Column('approved_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('returned_note', sa.String(length=200), nullable=False),
    sa.Column('closed_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('created_by', sa.String(length=64), nullable=False),
    sa.CheckConstraint("(status IN ('paid', 'closed')) = (approved_at IS NOT NULL AND approved_by IS NOT NULL)", name=op.f('ck_welfare_pay_cycles_paid_when_approved')),
    sa.CheckConstraint("status IN ('draft', 'validated', 'awaiting_approval', 'paid', 'closed')", name=op.f('ck_welfare_pay_cycles_status_known')),
    sa.CheckConstraint('approved_by IS NULL OR (uploaded_by IS NOT NULL AND approved_by <> uploaded_by AND (submitted_by IS NULL OR approved_by <> submitted_by))', name=op.f('ck_welfare_pay_cycles_not_approved_by_uploader')),
    sa.CheckConstraint('row_count >= 0 AND total_amount >= 0', name=op.f('ck_welfare_pay_cycles_totals_not_negative')),
    sa.CheckConstraint('voucher_validity_days BETWEEN 1 AND 90', name=op.f('ck_welfare_pay_cycles_validity_days_in_range')),
    sa.ForeignKeyConstraint(['programme_id'], ['welfare_programmes.id'], name=op.f('fk_welfare_pay_cycles_programme_id_welfare_programmes')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_welfare_pay_cycles')),
    sa.UniqueConstraint('programme_id', 'label', name=op.f('uq_welfare_pay_cycles_programme_id_label'))
    )
    with op.batch_alter_table('welfare_pay_cycles', schema=None) as batch_op:
        batch_op.create_index('ix_welfare_pay_cycles_approved_at', ['approved_at'], unique=False)
        batch_op.create_index(batch_op.f('ix_welfare_pay_cycles_programme_id'), ['programme_id'], unique=False)

    op.create_table('welfare_beneficiaries',
    sa.Column('id', ID, nullable=False),
    sa.Column('cycle_id', ID, nullable=False),
    sa.Column('row_number', sa.Integer(), nullable=False),
    sa.Column('citizen_id_lookup', sa.LargeBinary(length=32), nullable=False),
    sa.Column('citizen_id_last4', sa.String(length=4), nullable=False),
    sa.Column('full_name', sa.String(length=100), nullable=False),
    sa.Column('amount', sa.BigInteger(), nullable=False),
    sa.Column('phone', sa.String(length=15), nullable=True),
    sa.Column('status', sa.String(length=20), nullable=False),
    sa.Column('reason', sa.String(length=200), nullable=False),
    sa.Column('citizen_id', ID, nullable=True),
    sa.Column('transfer_id', sa.Uuid(), nullable=True),
    sa.Column('paid_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('closed_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.CheckConstraint("(status = 'pending') = (paid_at IS NULL AND closed_at IS NULL)", name=op.f('ck_welfare_beneficiaries_pending_until_disbursed')),
    sa.CheckConstraint("status <> 'failed' OR reason <> ''", name=op.f('ck_welfare_beneficiaries_failed_has_reason')),
    sa.CheckConstraint("status <> 'paid_to_account' OR (transfer_id IS NOT NULL AND citizen_id IS NOT NULL)", name=op.f('ck_welfare_beneficiaries_paid_to_account_names_transfer')),
    sa.CheckConstraint("status IN ('pending', 'paid_to_account', 'voucher_issued', 'voucher_paid', 'expired', 'failed')", name=op.f('ck_welfare_beneficiaries_status_known')),
    sa.CheckConstraint('amount > 0', name=op.f('ck_welfare_beneficiaries_amount_positive')),
    sa.CheckConstraint('length(citizen_id_last4) = 4', name=op.f('ck_welfare_beneficiaries_last4_four_digits')),
    sa.CheckConstraint('row_number > 0', name=op.f('ck_welfare_beneficiaries_row_number_positive')),
    sa.ForeignKeyConstraint(['citizen_id'], ['citizens.id'], name=op.f('fk_welfare_beneficiaries_citizen_id_citizens')),
    sa.ForeignKeyConstraint(['cycle_id'], ['welfare_pay_cycles.id'], name=op.f('fk_welfare_beneficiaries_cycle_id_welfare_pay_cycles')),
    sa.ForeignKeyConstraint(['transfer_id'], ['transfers.id'], name=op.f('fk_welfare_beneficiaries_transfer_id_transfers')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_welfare_beneficiaries')),
    sa.UniqueConstraint('cycle_id', 'citizen_id_lookup', name=op.f('uq_welfare_beneficiaries_cycle_id_citizen_id_lookup')),
    sa.UniqueConstraint('cycle_id', 'row_number', name=op.f('uq_welfare_beneficiaries_cycle_id_row_number')),
    sa.UniqueConstraint('transfer_id', name=op.f('uq_welfare_beneficiaries_transfer_id'))
    )
    with op.batch_alter_table('welfare_beneficiaries', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_welfare_beneficiaries_citizen_id'), ['citizen_id'], unique=False)
        batch_op.create_index('ix_welfare_beneficiaries_cycle_status', ['cycle_id', 'status'], unique=False)

    # A welfare cash voucher is an issued withdrawal code held on the programme's fund: it names
    # its beneficiary row instead of a citizen.
    with op.batch_alter_table('issued_codes', schema=None) as batch_op:
        batch_op.add_column(sa.Column('welfare_row_id', ID, nullable=True))
        batch_op.alter_column('citizen_id', existing_type=ID, nullable=True)
        batch_op.create_unique_constraint(batch_op.f('uq_issued_codes_welfare_row_id'), ['welfare_row_id'])
        batch_op.create_foreign_key(batch_op.f('fk_issued_codes_welfare_row_id_welfare_beneficiaries'), 'welfare_beneficiaries', ['welfare_row_id'], ['id'])
        batch_op.create_check_constraint('one_holder', '(citizen_id IS NULL) <> (welfare_row_id IS NULL)')
        batch_op.create_check_constraint('voucher_is_withdrawal', "welfare_row_id IS NULL OR kind = 'withdrawal'")


def downgrade() -> None:
    with op.batch_alter_table('issued_codes', schema=None) as batch_op:
        batch_op.drop_constraint(op.f('ck_issued_codes_voucher_is_withdrawal'), type_='check')
        batch_op.drop_constraint(op.f('ck_issued_codes_one_holder'), type_='check')
        batch_op.drop_constraint(batch_op.f('fk_issued_codes_welfare_row_id_welfare_beneficiaries'), type_='foreignkey')
        batch_op.drop_constraint(batch_op.f('uq_issued_codes_welfare_row_id'), type_='unique')
        batch_op.alter_column('citizen_id', existing_type=ID, nullable=False)
        batch_op.drop_column('welfare_row_id')

    with op.batch_alter_table('welfare_beneficiaries', schema=None) as batch_op:
        batch_op.drop_index('ix_welfare_beneficiaries_cycle_status')
        batch_op.drop_index(batch_op.f('ix_welfare_beneficiaries_citizen_id'))

    op.drop_table('welfare_beneficiaries')
    with op.batch_alter_table('welfare_pay_cycles', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_welfare_pay_cycles_programme_id'))
        batch_op.drop_index('ix_welfare_pay_cycles_approved_at')

    op.drop_table('welfare_pay_cycles')
    op.drop_table('welfare_programmes')
