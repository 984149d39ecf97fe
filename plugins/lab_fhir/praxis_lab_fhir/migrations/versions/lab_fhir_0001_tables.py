"""lab_fhir tables: the poll cursor and the inbox of fetched reports

Revision ID: lab_fhir_0001
Revises:
Create Date: 2026-11-22 04:40:00+00:00

"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "lab_fhir_0001"
down_revision: str | Sequence[str] | None = None
branch_labels: str | Sequence[str] | None = ("lab_fhir",)
depends_on: str | Sequence[str] | None = "core_0001"


def upgrade() -> None:
    op.create_table(
        "lab_fhir_cursor",
        sa.Column("clinic_id", sa.Integer(), nullable=False),
        sa.Column("since", sa.String(length=40), nullable=False),
        sa.ForeignKeyConstraint(["clinic_id"], ["core_clinic.id"]),
        sa.PrimaryKeyConstraint("clinic_id"),
    )
    op.create_table(
        "lab_fhir_inbox",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("clinic_id", sa.Integer(), nullable=False),
        sa.Column("report_key", sa.String(length=200), nullable=False),
        sa.Column("results", sa.JSON(), nullable=False),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("handed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("confirmed_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(["clinic_id"], ["core_clinic.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("clinic_id", "report_key", name="ux_lab_fhir_inbox_report"),
    )
    op.create_index("ix_lab_fhir_inbox_pending", "lab_fhir_inbox", ["clinic_id", "confirmed_at", "handed_at"])


def downgrade() -> None:
    op.drop_index("ix_lab_fhir_inbox_pending", table_name="lab_fhir_inbox")
    op.drop_table("lab_fhir_inbox")
    op.drop_table("lab_fhir_cursor")
