"""Places, citizens, web sessions and throttles, issued codes, billers and merchants.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-23 01:18:20.378337
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op


revision: str = '0002'
down_revision: str | None = '0001'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('provinces',
    sa.Column('code', sa.String(length=2), nullable=False),
    sa.Column('name', sa.String(length=100), nullable=False),
    sa.Column('short_name', sa.String(length=100), nullable=False),
    sa.Column('search_name', sa.String(length=100), nullable=False),
    sa.CheckConstraint('length(code) = 2', name=op.f('ck_provinces_code_two_digits')),
    sa.PrimaryKeyConstraint('code', name=op.f('pk_provinces'))
    )
    op.create_table('throttles',
    sa.Column('key', sa.String(length=120), nullable=False),
    sa.Column('failures', sa.Integer(), nullable=False),
    sa.Column('window_started_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('locked_until', sa.DateTime(timezone=True), nullable=True),
    sa.CheckConstraint('failures >= 0', name=op.f('ck_throttles_failures_not_negative')),
    sa.PrimaryKeyConstraint('key', name=op.f('pk_throttles'))
    )
    op.create_table('web_sessions',
    sa.Column('token_hash', sa.LargeBinary(length=32), nullable=False),
    sa.Column('principal_kind', sa.String(length=16), nullable=False),
    sa.Column('principal_id', sa.BigInteger(), nullable=False),
    sa.Column('epoch', sa.Integer(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('last_seen_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('expires_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('revoked_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('step_up_at', sa.DateTime(timezone=True), nullable=True),
    sa.CheckConstraint("principal_kind IN ('citizen', 'agent', 'official')", name=op.f('ck_web_sessions_principal_kind_known')),
    sa.PrimaryKeyConstraint('token_hash', name=op.f('pk_web_sessions'))
    )
    with op.batch_alter_table('web_sessions', schema=None) as batch_op:
        batch_op.create_index('ix_web_sessions_principal', ['principal_kind', 'principal_id'], unique=False)

    op.create_table('communes',
    sa.Column('code', sa.String(length=5), nullable=False),
    sa.Column('province_code', sa.String(length=2), nullable=False),
    sa.Column('name', sa.String(length=120), nullable=False),
    sa.Column('short_name', sa.String(length=120), nullable=False),
    sa.Column('kind', sa.String(length=20), nullable=False),
    sa.Column('search_name', sa.String(length=120), nullable=False),
    sa.CheckConstraint('length(code) = 5', name=op.f('ck_communes_code_five_digits')),
    sa.ForeignKeyConstraint(['province_code'], ['provinces.code'], name=op.f('fk_communes_province_code_provinces')),
    sa.PrimaryKeyConstraint('code', name=op.f('pk_communes'))
    )
    with op.batch_alter_table('communes', schema=None) as batch_op:
        batch_op.create_index('ix_communes_province_code_search_name', ['province_code', 'search_name'], unique=False)

    op.create_table('billers',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('name', sa.String(length=120), nullable=False),
    sa.Column('kind', sa.String(length=20), nullable=False),
    sa.Column('commune_code', sa.String(length=5), nullable=True),
    sa.Column('account_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.CheckConstraint("kind IN ('electricity', 'water', 'school', 'market', 'environment')", name=op.f('ck_billers_kind_known')),
    sa.ForeignKeyConstraint(['account_id'], ['accounts.id'], name=op.f('fk_billers_account_id_accounts')),
    sa.ForeignKeyConstraint(['commune_code'], ['communes.code'], name=op.f('fk_billers_commune_code_communes')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_billers')),
    sa.UniqueConstraint('account_id', name=op.f('uq_billers_account_id'))
    )
    op.create_table('citizens',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('phone', sa.String(length=15), nullable=False),
    sa.Column('full_name', sa.String(length=100), nullable=False),
    sa.Column('date_of_birth', sa.Date(), nullable=False),
    sa.Column('sex', sa.String(length=6), nullable=False),
    sa.Column('commune_code', sa.String(length=5), nullable=False),
    sa.Column('citizen_id_ciphertext', sa.LargeBinary(length=64), nullable=False),
    sa.Column('citizen_id_lookup', sa.LargeBinary(length=32), nullable=False),
    sa.Column('citizen_id_last4', sa.String(length=4), nullable=False),
    sa.Column('kyc_tier', sa.SmallInteger(), nullable=False),
    sa.Column('verified_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('verified_by', sa.String(length=64), nullable=True),
    sa.Column('pin_hash', sa.String(length=200), nullable=True),
    sa.Column('pin_changed_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('totp_secret_ciphertext', sa.LargeBinary(length=128), nullable=True),
    sa.Column('totp_last_step', sa.BigInteger(), nullable=True),
    sa.Column('consent_version', sa.String(length=20), nullable=False),
    sa.Column('consent_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('registered_by', sa.String(length=64), nullable=False),
    sa.Column('wallet_account_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('session_epoch', sa.Integer(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.CheckConstraint("sex IN ('male', 'female')", name=op.f('ck_citizens_sex_known')),
    sa.CheckConstraint('kyc_tier = 0 OR (verified_at IS NOT NULL AND verified_by IS NOT NULL)', name=op.f('ck_citizens_verified_says_by_whom')),
    sa.CheckConstraint('kyc_tier IN (0, 1)', name=op.f('ck_citizens_kyc_tier_known')),
    sa.CheckConstraint('length(citizen_id_last4) = 4', name=op.f('ck_citizens_last4_four_digits')),
    sa.ForeignKeyConstraint(['commune_code'], ['communes.code'], name=op.f('fk_citizens_commune_code_communes')),
    sa.ForeignKeyConstraint(['wallet_account_id'], ['accounts.id'], name=op.f('fk_citizens_wallet_account_id_accounts')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_citizens')),
    sa.UniqueConstraint('citizen_id_lookup', name=op.f('uq_citizens_citizen_id_lookup')),
    sa.UniqueConstraint('phone', name=op.f('uq_citizens_phone')),
    sa.UniqueConstraint('wallet_account_id', name=op.f('uq_citizens_wallet_account_id'))
    )
    with op.batch_alter_table('citizens', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_citizens_commune_code'), ['commune_code'], unique=False)
        batch_op.create_index(batch_op.f('ix_citizens_created_at'), ['created_at'], unique=False)

    op.create_table('issued_codes',
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('kind', sa.String(length=12), nullable=False),
    sa.Column('status', sa.String(length=12), nullable=False),
    sa.Column('citizen_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('wallet_account_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('amount', sa.BigInteger(), nullable=False),
    sa.Column('pending_transfer_id', sa.Uuid(), nullable=False),
    sa.Column('biller_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=True),
    sa.Column('bill_reference', sa.String(length=40), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('expires_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('closed_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('redeemed_at_point', sa.String(length=64), nullable=True),
    sa.Column('redeemed_by', sa.String(length=64), nullable=True),
    sa.CheckConstraint("(kind = 'payment') = (biller_id IS NOT NULL AND bill_reference IS NOT NULL)", name=op.f('ck_issued_codes_payment_names_bill')),
    sa.CheckConstraint("kind IN ('withdrawal', 'payment')", name=op.f('ck_issued_codes_kind_known')),
    sa.CheckConstraint("status IN ('open', 'redeemed', 'cancelled', 'expired')", name=op.f('ck_issued_codes_status_known')),
    sa.CheckConstraint('amount > 0', name=op.f('ck_issued_codes_amount_positive')),
    sa.ForeignKeyConstraint(['biller_id'], ['billers.id'], name=op.f('fk_issued_codes_biller_id_billers')),
    sa.ForeignKeyConstraint(['citizen_id'], ['citizens.id'], name=op.f('fk_issued_codes_citizen_id_citizens')),
    sa.ForeignKeyConstraint(['pending_transfer_id'], ['transfers.id'], name=op.f('fk_issued_codes_pending_transfer_id_transfers')),
    sa.ForeignKeyConstraint(['wallet_account_id'], ['accounts.id'], name=op.f('fk_issued_codes_wallet_account_id_accounts')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_issued_codes')),
    sa.UniqueConstraint('pending_transfer_id', name=op.f('uq_issued_codes_pending_transfer_id'))
    )
    with op.batch_alter_table('issued_codes', schema=None) as batch_op:
        batch_op.create_index('ix_issued_codes_citizen_id_status', ['citizen_id', 'status'], unique=False)

    op.create_table('merchants',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('stall_code', sa.String(length=8), nullable=False),
    sa.Column('stall_name', sa.String(length=100), nullable=False),
    sa.Column('commune_code', sa.String(length=5), nullable=False),
    sa.Column('owner_citizen_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=True),
    sa.Column('account_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.CheckConstraint('length(stall_code) = 8', name=op.f('ck_merchants_stall_code_length')),
    sa.ForeignKeyConstraint(['account_id'], ['accounts.id'], name=op.f('fk_merchants_account_id_accounts')),
    sa.ForeignKeyConstraint(['commune_code'], ['communes.code'], name=op.f('fk_merchants_commune_code_communes')),
    sa.ForeignKeyConstraint(['owner_citizen_id'], ['citizens.id'], name=op.f('fk_merchants_owner_citizen_id_citizens')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_merchants')),
    sa.UniqueConstraint('account_id', name=op.f('uq_merchants_account_id')),
    sa.UniqueConstraint('stall_code', name=op.f('uq_merchants_stall_code'))
    )
    with op.batch_alter_table('merchants', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_merchants_commune_code'), ['commune_code'], unique=False)
        batch_op.create_index(batch_op.f('ix_merchants_owner_citizen_id'), ['owner_citizen_id'], unique=False)

    with op.batch_alter_table('transfers', schema=None) as batch_op:
        batch_op.create_index(
            'ix_transfers_debit_account_id_created_at',
            ['debit_account_id', 'created_at'],
            unique=False,
        )


def downgrade() -> None:
    with op.batch_alter_table('transfers', schema=None) as batch_op:
        batch_op.drop_index('ix_transfers_debit_account_id_created_at')

    with op.batch_alter_table('merchants', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_merchants_owner_citizen_id'))
        batch_op.drop_index(batch_op.f('ix_merchants_commune_code'))

    op.drop_table('merchants')
    with op.batch_alter_table('issued_codes', schema=None) as batch_op:
        batch_op.drop_index('ix_issued_codes_citizen_id_status')

    op.drop_table('issued_codes')
    with op.batch_alter_table('citizens', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_citizens_created_at'))
        batch_op.drop_index(batch_op.f('ix_citizens_commune_code'))

    op.drop_table('citizens')
    op.drop_table('billers')
    with op.batch_alter_table('communes', schema=None) as batch_op:
        batch_op.drop_index('ix_communes_province_code_search_name')

    op.drop_table('communes')
    with op.batch_alter_table('web_sessions', schema=None) as batch_op:
        batch_op.drop_index('ix_web_sessions_principal')

    op.drop_table('web_sessions')
    op.drop_table('throttles')
    op.drop_table('provinces')
