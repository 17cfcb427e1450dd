"""Run Alembic migrations programmatically: ``python -m store.migrate`` (used by make run)."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config

from core.config import get_core_settings as get_settings

MIGRATIONS = Path(__file__).parent / "migrations"


def alembic_config(url: str) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    # ConfigParser interpolation would choke on a '%' in a password.
    cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return cfg


def upgrade(url: str) -> None:
    command.upgrade(alembic_config(url), "head")


def downgrade_to_base(url: str) -> None:
    command.downgrade(alembic_config(url), "base")


if __name__ == "__main__":
    upgrade(get_settings().database_url)
