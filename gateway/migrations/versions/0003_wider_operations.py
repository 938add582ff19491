"""A tenant's allowed operations: room for every operation's name (the list outgrew 64 characters).

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-02
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def _widen(old: int, new: int) -> None:
    # Batch mode: SQLite cannot change a column's type in place and rebuilds the table (gateway.migrate turns
    # its foreign keys off around that); PostgreSQL alters it.
    with op.batch_alter_table("tenants") as table:
        table.alter_column("operations", existing_type=sa.String(old), type_=sa.String(new), existing_nullable=False)


def upgrade() -> None:
    _widen(64, 512)


def downgrade() -> None:
    _widen(512, 64)
