"""JSON API: per-device credentials and idempotency records.

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-24 06:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "api_credentials",
        sa.Column("id", sa.String(length=20), nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("secret_hash", sa.LargeBinary(length=32), nullable=False),
        sa.Column("agent_id", ID, nullable=True),
        sa.Column("system_name", sa.String(length=64), nullable=True),
        sa.Column("scopes", sa.String(length=200), nullable=False),
        sa.Column("commune_code", sa.String(length=5), nullable=True),
        sa.Column("province_code", sa.String(length=2), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("created_by", sa.String(length=64), nullable=False),
        sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
        sa.CheckConstraint(
            "(agent_id IS NULL) <> (system_name IS NULL)",
            name=op.f("ck_api_credentials_agent_or_system"),
        ),
        sa.CheckConstraint(
            "commune_code IS NULL OR province_code IS NULL",
            name=op.f("ck_api_credentials_one_place_at_most"),
        ),
        sa.CheckConstraint(
            "agent_id IS NULL OR (scopes = '' AND commune_code IS NULL AND province_code IS NULL)",
            name=op.f("ck_api_credentials_agent_scoped_by_agent"),
        ),
        sa.ForeignKeyConstraint(
            ["agent_id"], ["agents.id"], name=op.f("fk_api_credentials_agent_id_agents")
        ),
        sa.ForeignKeyConstraint(
            ["commune_code"],
            ["communes.code"],
            name=op.f("fk_api_credentials_commune_code_communes"),
        ),
        sa.ForeignKeyConstraint(
            ["province_code"],
            ["provinces.code"],
            name=op.f("fk_api_credentials_province_code_provinces"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_api_credentials")),
    )
    op.create_index(
        op.f("ix_api_credentials_agent_id"), "api_credentials", ["agent_id"], unique=False
    )
    op.create_table(
        "api_idempotency_records",
        sa.Column("id", ID, nullable=False),
        sa.Column("credential_id", sa.String(length=20), nullable=False),
        sa.Column("key", sa.String(length=255), nullable=False),
        sa.Column("fingerprint", sa.LargeBinary(length=32), nullable=False),
        sa.Column("state", sa.String(length=12), nullable=False),
        sa.Column("response_status", sa.Integer(), nullable=True),
        sa.Column("response_body", sa.Text(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("completed_at", sa.DateTime(timezone=True), nullable=True),
        sa.CheckConstraint(
            "state IN ('in_progress', 'completed')",
            name=op.f("ck_api_idempotency_records_state_known"),
        ),
        sa.CheckConstraint(
            "(state = 'completed') = (response_status IS NOT NULL AND response_body IS NOT NULL)",
            name=op.f("ck_api_idempotency_records_completed_has_response"),
        ),
        sa.ForeignKeyConstraint(
            ["credential_id"],
            ["api_credentials.id"],
            name=op.f("fk_api_idempotency_records_credential_id_api_credentials"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_api_idempotency_records")),
        sa.UniqueConstraint(
            "credential_id", "key", name=op.f("uq_api_idempotency_records_credential_id_key")
        ),
    )
    op.create_index(
        op.f("ix_api_idempotency_records_created_at"),
        "api_idempotency_records",
        ["created_at"],
        unique=False,
    )


def downgrade() -> None:
    op.drop_index(
        op.f("ix_api_idempotency_records_created_at"), table_name="api_idempotency_records"
    )
    op.drop_table("api_idempotency_records")
    op.drop_index(op.f("ix_api_credentials_agent_id"), table_name="api_credentials")
    op.drop_table("api_credentials")
