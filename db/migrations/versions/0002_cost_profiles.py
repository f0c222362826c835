"""Per-device cost profiles (purchase price, amortization, tariff, PUE, carbon, cloud $/h).

Revision ID: 0002
Revises: 0001
Create Date: 2025-01-02
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    op.create_table(
        "cost_profiles",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("device", sa.String(length=64), nullable=False),
        sa.Column("name", sa.String(length=128), nullable=False),
        sa.Column("purchase_price_usd", sa.Float(), nullable=True),
        sa.Column("amortization_years", sa.Float(), nullable=True),
        sa.Column("utilization", sa.Float(), nullable=True),
        sa.Column("electricity_usd_per_kwh", sa.Float(), nullable=True),
        sa.Column("pue", sa.Float(), nullable=True),
        sa.Column("carbon_g_per_kwh", sa.Float(), nullable=True),
        sa.Column("cloud_usd_per_hour", sa.Float(), nullable=True),
        sa.Column("updated_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_cost_profiles")),
        sa.UniqueConstraint("device", "name", name=op.f("uq_cost_profiles_device_name")),
    )


def downgrade() -> None:
    op.drop_table("cost_profiles")
