"""Adoption: citizens' milestones, counters per commune, denominators and targets.

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-23 06:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0006'
down_revision: str | None = '0005'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

ID = sa.BigInteger().with_variant(sa.Integer(), 'sqlite')


def upgrade() -> None:
    op.create_table('adoption_rollup_state',
    sa.Column('source', sa.String(length=20), nullable=False),
    sa.Column('watermark_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('last_run_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('rows_read', sa.BigInteger(), nullable=False),
    sa.PrimaryKeyConstraint('source', name=op.f('pk_adoption_rollup_state'))
    )
    op.create_table('adoption_cohorts',
    sa.Column('commune_code', sa.String(length=5), nullable=False),
    sa.Column('cohort_month', sa.Date(), nullable=False),
    sa.Column('created', sa.Integer(), nullable=False),
    sa.Column('verified', sa.Integer(), nullable=False),
    sa.Column('first_money_in', sa.Integer(), nullable=False),
    sa.Column('first_payment', sa.Integer(), nullable=False),
    sa.CheckConstraint('created >= 0 AND verified >= 0 AND first_money_in >= 0 AND first_payment >= 0', name=op.f('ck_adoption_cohorts_counts_not_negative')),
    sa.ForeignKeyConstraint(['commune_code'], ['communes.code'], name=op.f('fk_adoption_cohorts_commune_code_communes')),
    sa.PrimaryKeyConstraint('commune_code', 'cohort_month', name=op.f('pk_adoption_cohorts'))
    )
    op.create_table('adoption_days_to_first_payment',
    sa.Column('commune_code', sa.String(length=5), nullable=False),
    sa.Column('cohort_month', sa.Date(), nullable=False),
    sa.Column('days', sa.Integer(), nullable=False),
    sa.Column('people', sa.Integer(), nullable=False),
    sa.CheckConstraint('days >= 0 AND people >= 0', name=op.f('ck_adoption_days_to_first_payment_counts_not_negative')),
    sa.ForeignKeyConstraint(['commune_code'], ['communes.code'], name=op.f('fk_adoption_days_to_first_payment_commune_code_communes')),
    sa.PrimaryKeyConstraint('commune_code', 'cohort_month', 'days', name=op.f('pk_adoption_days_to_first_payment'))
    )
    op.create_table('adoption_denominators',
    sa.Column('commune_code', sa.String(length=5), nullable=False),
    sa.Column('year', sa.SmallInteger(), nullable=False),
    sa.Column('kind', sa.String(length=16), nullable=False),
    sa.Column('value', sa.Integer(), nullable=False),
    sa.Column('source', sa.String(length=200), nullable=False),
    sa.Column('as_of', sa.Date(), nullable=False),
    sa.Column('entered_by', sa.String(length=64), nullable=False),
    sa.Column('entered_at', sa.DateTime(timezone=True), nullable=False),
    sa.CheckConstraint("kind IN ('adults', 'households', 'beneficiaries')", name=op.f('ck_adoption_denominators_kind_known')),
    sa.CheckConstraint('value > 0', name=op.f('ck_adoption_denominators_value_positive')),
    sa.ForeignKeyConstraint(['commune_code'], ['communes.code'], name=op.f('fk_adoption_denominators_commune_code_communes')),
    sa.PrimaryKeyConstraint('commune_code', 'year', 'kind', name=op.f('pk_adoption_denominators'))
    )
    op.create_table('adoption_last_active_days',
    sa.Column('commune_code', sa.String(length=5), nullable=False),
    sa.Column('day', sa.Date(), nullable=False),
    sa.Column('people', sa.Integer(), nullable=False),
    sa.CheckConstraint('people >= 0', name=op.f('ck_adoption_last_active_days_people_not_negative')),
    sa.ForeignKeyConstraint(['commune_code'], ['communes.code'], name=op.f('fk_adoption_last_active_days_commune_code_communes')),
    sa.PrimaryKeyConstraint('commune_code', 'day', name=op.f('pk_adoption_last_active_days'))
    )
    op.create_table('adoption_monthly_active',
    sa.Column('commune_code', sa.String(length=5), nullable=False),
    sa.Column('month', sa.Date(), nullable=False),
    sa.Column('people', sa.Integer(), nullable=False),
    sa.CheckConstraint('people >= 0', name=op.f('ck_adoption_monthly_active_people_not_negative')),
    sa.ForeignKeyConstraint(['commune_code'], ['communes.code'], name=op.f('fk_adoption_monthly_active_commune_code_communes')),
    sa.PrimaryKeyConstraint('commune_code', 'month', name=op.f('pk_adoption_monthly_active'))
    )
    op.create_table('adoption_targets',
    sa.Column('commune_code', sa.String(length=5), nullable=False),
    sa.Column('year', sa.SmallInteger(), nullable=False),
    sa.Column('key', sa.String(length=40), nullable=False),
    sa.Column('rate_basis_points', sa.Integer(), nullable=False),
    sa.Column('source', sa.String(length=200), nullable=False),
    sa.Column('entered_by', sa.String(length=64), nullable=False),
    sa.Column('entered_at', sa.DateTime(timezone=True), nullable=False),
    sa.CheckConstraint('rate_basis_points > 0 AND rate_basis_points <= 10000', name=op.f('ck_adoption_targets_rate_within_one')),
    sa.ForeignKeyConstraint(['commune_code'], ['communes.code'], name=op.f('fk_adoption_targets_commune_code_communes')),
    sa.PrimaryKeyConstraint('commune_code', 'year', 'key', name=op.f('pk_adoption_targets'))
    )
    op.create_table('adoption_milestones',
    sa.Column('citizen_id', ID, nullable=False),
    sa.Column('commune_code', sa.String(length=5), nullable=False),
    sa.Column('created_on', sa.Date(), nullable=False),
    sa.Column('verified_on', sa.Date(), nullable=True),
    sa.Column('first_money_in_on', sa.Date(), nullable=True),
    sa.Column('first_payment_on', sa.Date(), nullable=True),
    sa.Column('last_active_on', sa.Date(), nullable=True),
    sa.ForeignKeyConstraint(['citizen_id'], ['citizens.id'], name=op.f('fk_adoption_milestones_citizen_id_citizens')),
    sa.ForeignKeyConstraint(['commune_code'], ['communes.code'], name=op.f('fk_adoption_milestones_commune_code_communes')),
    sa.PrimaryKeyConstraint('citizen_id', name=op.f('pk_adoption_milestones'))
    )
    with op.batch_alter_table('citizens', schema=None) as batch_op:
        batch_op.create_index('ix_citizens_verified_at', ['verified_at'], unique=False)

    # Covering indexes: the indicators count checklists, persons, visits and welfare lists of a
    # commune or a province from the index alone.
    op.create_index('ix_checklist_entries_commune_status_on_date', 'checklist_entries',
                    ['commune_code', 'status', 'on_date', 'evidence', 'step', 'person_id'])
    op.create_index('ix_persons_commune_created_at', 'persons',
                    ['commune_code', 'created_at', 'welfare_beneficiary', 'id'])
    op.create_index('ix_visits_commune_visited_at_household', 'visits',
                    ['commune_code', 'visited_at', 'household_id'])
    op.create_index('ix_welfare_beneficiaries_cycle_status_amount', 'welfare_beneficiaries',
                    ['cycle_id', 'status', 'amount', 'id'])


def downgrade() -> None:
    op.drop_index('ix_welfare_beneficiaries_cycle_status_amount',
                  table_name='welfare_beneficiaries')
    op.drop_index('ix_visits_commune_visited_at_household', table_name='visits')
    op.drop_index('ix_persons_commune_created_at', table_name='persons')
    op.drop_index('ix_checklist_entries_commune_status_on_date', table_name='checklist_entries')
    with op.batch_alter_table('citizens', schema=None) as batch_op:
        batch_op.drop_index('ix_citizens_verified_at')

    op.drop_table('adoption_milestones')
    op.drop_table('adoption_targets')
    op.drop_table('adoption_monthly_active')
    op.drop_table('adoption_last_active_days')
    op.drop_table('adoption_denominators')
    op.drop_table('adoption_days_to_first_payment')
    op.drop_table('adoption_cohorts')
    op.drop_table('adoption_rollup_state')
