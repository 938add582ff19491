"""Bring a gateway database to the newest schema: ``python -m gateway.migrate``.

Runs the Alembic migrations in ``gateway/migrations``; the gateway calls
:func:`upgrade` at start-up (the admin CLI only checks, :func:`require_current`),
so it must be safe to run from
several processes at once (PostgreSQL: an advisory lock serialises them; a
SQLite file: an exclusive lock on ``<file>.migrate-lock`` beside it, since
SQLite runs DDL outside the transaction) and on a database made before
migrations existed (it is stamped as revision 0001).
"""

from __future__ import annotations

import argparse
import contextlib
import fcntl
import sys
from collections.abc import Iterator
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import inspect, text
from sqlalchemy.engine import Connection, Engine

from gateway.db import make_engine
from gateway.settings import GatewaySettings

MIGRATIONS = Path(__file__).resolve().parent / "migrations"
FIRST_REVISION = "0001"
ADVISORY_LOCK_ID = 0x696D6773  # "imgs": one lock for all gateway migrations


MIGRATE = "python -m gateway.migrate"


class SchemaMismatch(Exception):
    """The database does not hold the tables this version of the gateway reads and writes."""


def known_revisions() -> tuple[set[str], str]:
    """Every revision of gateway/migrations, and the newest."""
    scripts = ScriptDirectory(str(MIGRATIONS))
    return {script.revision for script in scripts.walk_revisions()}, scripts.get_current_head()


def _refuse_unknown(revision: str | None) -> None:
    if revision is not None and revision not in known_revisions()[0]:
        raise SchemaMismatch(f"the database is at schema revision {revision}, which this version of the gateway "
                             "does not know (a newer version migrated it): run that version, or restore a backup")


def require_current(engine: Engine) -> None:
    """Raise SchemaMismatch unless the database holds the gateway's tables at this version's newest revision:
    for tools (the admin CLI) that must not create or migrate a database they were pointed at by mistake."""
    revision = current_revision(engine)
    _refuse_unknown(revision)
    where = engine.url.render_as_string(hide_password=True)
    if revision is None:
        raise SchemaMismatch(f"{where} holds no gateway tables: check the database URL, or create them with {MIGRATE}")
    newest = known_revisions()[1]
    if revision != newest:
        raise SchemaMismatch(f"{where} is at schema revision {revision}, this version needs {newest}: "
                             f"migrate it with {MIGRATE} (the gateway does at start)")


def _config(connection: Connection) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.attributes["connection"] = connection
    return config


def current_revision(engine: Engine) -> str | None:
    with engine.connect() as connection:
        return MigrationContext.configure(connection).get_current_revision()


@contextlib.contextmanager
def _sqlite_file_lock(engine: Engine) -> Iterator[None]:
    """Holds an exclusive lock beside a SQLite file while it is migrated (nothing for other databases)."""
    database = engine.url.database if engine.dialect.name == "sqlite" else None
    if not database or database == ":memory:" or database.startswith("file:"):
        yield
        return
    with open(f"{database}.migrate-lock", "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # released when the file is closed
        yield


def upgrade(engine: Engine, revision: str = "head") -> None:
    with _sqlite_file_lock(engine), engine.connect() as connection:
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
                _refuse_unknown(MigrationContext.configure(connection).get_current_revision())
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
