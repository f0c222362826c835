"""Model parameter counts as 64-bit integers (a 7B-parameter model overflows int4).

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-21
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    # SQLite's INTEGER already holds 64 bits (and a table rebuild there would touch the runs'
    # foreign keys for nothing): only servers with a 32-bit INTEGER need the change.
    if op.get_bind().dialect.name == "sqlite":
        return
    op.alter_column(
        "models",
        "parameters",
        type_=sa.BigInteger(),
        existing_type=sa.Integer(),
        existing_nullable=True,
    )


def downgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        return
    op.alter_column(
        "models",
        "parameters",
        type_=sa.Integer(),
        existing_type=sa.BigInteger(),
        existing_nullable=True,
    )
