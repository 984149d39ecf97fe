"""lab_hl7 tables: acknowledged orders and the inbox of result messages

Revision ID: lab_hl7_0001
Revises:
Create Date: 2026-11-22 04:30:00+00:00

"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "lab_hl7_0001"
down_revision: str | Sequence[str] | None = None
branch_labels: str | Sequence[str] | None = ("lab_hl7",)
depends_on: str | Sequence[str] | None = "core_0001"


def upgrade() -> None:
    op.create_table(
        "lab_hl7_order",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("clinic_id", sa.Integer(), nullable=False),
        sa.Column("placer_order_number", sa.String(length=60), nullable=False),
        sa.Column("action", sa.String(length=10), nullable=False),
        sa.Column("control_id", sa.String(length=20), nullable=False),
        sa.Column("filler_order_number", sa.String(length=60), nullable=True),
        sa.Column("ack_code", sa.String(length=4), nullable=False),
        sa.Column("sent_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["clinic_id"], ["core_clinic.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("clinic_id", "placer_order_number", "action", name="ux_lab_hl7_order_placer"),
    )
    op.create_index("ix_lab_hl7_order_filler", "lab_hl7_order", ["clinic_id", "filler_order_number"])
    op.create_table(
        "lab_hl7_inbox",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("clinic_id", sa.Integer(), nullable=False),
        sa.Column("control_id", sa.String(length=60), nullable=False),
        sa.Column("via", sa.String(length=10), nullable=False),
        sa.Column("message", sa.Text(), nullable=False),
        sa.Column("results", sa.JSON(), nullable=False),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("handed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("confirmed_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(["clinic_id"], ["core_clinic.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("clinic_id", "control_id", name="ux_lab_hl7_inbox_control"),
    )
    op.create_index("ix_lab_hl7_inbox_pending", "lab_hl7_inbox", ["clinic_id", "confirmed_at", "handed_at"])


def downgrade() -> None:
    op.drop_index("ix_lab_hl7_inbox_pending", table_name="lab_hl7_inbox")
    op.drop_table("lab_hl7_inbox")
    op.drop_index("ix_lab_hl7_order_filler", table_name="lab_hl7_order")
    op.drop_table("lab_hl7_order")
