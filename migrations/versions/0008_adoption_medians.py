"""Adoption: the stored medians of the days to the first payment, per commune and period.

The table is derived data, filled here from the histogram by the roll-up's own code (what
`softatm adoption rebuild` does), so that dashboards show the medians at once after the upgrade.

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-23 10:05:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.orm import Session

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "adoption_median_days",
        sa.Column("commune_code", sa.String(length=5), nullable=False),
        sa.Column("period_kind", sa.String(length=7), nullable=False),
        sa.Column("period_start", sa.Date(), nullable=False),
        sa.Column("payers", sa.Integer(), nullable=False),
        sa.Column("lower_days", sa.Integer(), nullable=False),
        sa.Column("upper_days", sa.Integer(), nullable=False),
        sa.CheckConstraint(
            "period_kind IN ('month', 'quarter', 'year')",
            name=op.f("ck_adoption_median_days_period_kind_known"),
        ),
        sa.CheckConstraint(
            "payers > 0 AND 0 <= lower_days AND lower_days <= upper_days",
            name=op.f("ck_adoption_median_days_median_sound"),
        ),
        sa.ForeignKeyConstraint(
            ["commune_code"],
            ["communes.code"],
            name=op.f("fk_adoption_median_days_commune_code_communes"),
        ),
        sa.PrimaryKeyConstraint(
            "commune_code", "period_kind", "period_start", name=op.f("pk_adoption_median_days")
        ),
    )
    from kiosk.adoption.rollup import refresh_medians  # noqa: PLC0415 - derived data

    refresh_medians(Session(bind=op.get_bind()), None)


def downgrade() -> None:
    op.drop_table("adoption_median_days")
