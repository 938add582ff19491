"""Bring a gateway database to the newest schema: ``python -m gateway.migrate``.

Runs the Alembic migrations in ``gateway/migrations``; the gateway and the
admin CLI call :func:`upgrade` at start-up, so it must be safe to run from
several replicas at once (PostgreSQL: an advisory lock serialises them) and on
a database made before migrations existed (it is stamped as revision 0001).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from sqlalchemy import inspect, text
from sqlalchemy.engine import Connection, Engine

from gateway.db import make_engine
from gateway.settings import GatewaySettings

MIGRATIONS = Path(__file__).resolve().parent / "migrations"
FIRST_REVISION = "0001"
ADVISORY_LOCK_ID = 0x696D6773  # "imgs": one lock for all gateway migrations


def _config(connection: Connection) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.attributes["connection"] = connection
    return config


def current_revision(engine: Engine) -> str | None:
    with engine.connect() as connection:
        return MigrationContext.configure(connection).get_current_revision()


def upgrade(engine: Engine, revision: str = "head") -> None:
    with engine.connect() as connection:
        sqlite = connection.dialect.name == "sqlite"
        if sqlite:
            # A migration that changes a column rebuilds the table on SQLite (batch mode), which its foreign keys
            # would refuse; they are checked once the migrations are done. (The pragma has no effect inside a
            # transaction, hence before it.)
            connection.exec_driver_sql("PRAGMA foreign_keys=OFF")
            connection.commit()
        try:
            with connection.begin():
                if connection.dialect.name == "postgresql":
                    connection.execute(text("SELECT pg_advisory_xact_lock(:id)"), {"id": ADVISORY_LOCK_ID})
                config = _config(connection)
                tables = set(inspect(connection).get_table_names())
                if "tenants" in tables and "alembic_version" not in tables:
                    command.stamp(config, FIRST_REVISION)  # made by create_all before migrations existed
                command.upgrade(config, revision)
                if sqlite and (broken := connection.exec_driver_sql("PRAGMA foreign_key_check").fetchall()):
                    raise RuntimeError(f"the migration left rows whose foreign keys point nowhere: {broken[:5]}")
        finally:
            if sqlite:
                connection.exec_driver_sql("PRAGMA foreign_keys=ON")
                connection.commit()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m gateway.migrate", description=__doc__.splitlines()[0])
    parser.add_argument("--database-url", help="SQLAlchemy URL (default: GATEWAY_DATABASE_URL)")
    parser.add_argument("--database-schema", help="PostgreSQL schema (default: GATEWAY_DATABASE_SCHEMA)")
    parser.add_argument("--revision", default="head", help="target revision (default: head)")
    args = parser.parse_args(argv)
    settings = GatewaySettings()
    engine = make_engine(args.database_url or settings.database_url, args.database_schema or settings.database_schema)
    try:
        upgrade(engine, args.revision)
        print(f"database at revision {current_revision(engine)}")
    finally:
        engine.dispose()
    return 0


if __name__ == "__main__":
    sys.exit(main())
