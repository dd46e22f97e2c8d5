"""One deployments row per (deployment name, model): servers upsert their rows by that key.

Servers register what they serve in ``deployments`` and every worker polls its rows for
traffic changes, so a name and model must identify exactly one row. Nothing wrote the table
before this revision; any duplicates are collapsed to the newest row before the index is made.

Revision ID: 0004
Revises: 0003
"""

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute(
        sa.text(
            "DELETE FROM deployments WHERE deployment_id NOT IN "
            "(SELECT keep FROM (SELECT MAX(deployment_id) AS keep FROM deployments "
            "GROUP BY name, model_name) AS newest)"
        )
    )
    with op.batch_alter_table("deployments") as batch:
        batch.create_index("ix_deployments_name_model_name", ["name", "model_name"], unique=True)


def downgrade() -> None:
    with op.batch_alter_table("deployments") as batch:
        batch.drop_index("ix_deployments_name_model_name")
