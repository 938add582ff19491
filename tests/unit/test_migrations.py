"""The Alembic migrations build exactly the schema the models describe, and upgrade old databases."""

from __future__ import annotations

import threading

from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import insert, inspect, text

from gateway import ledger
from gateway.db import Base, Tenant, UsageRecord, make_engine, session_factory
from gateway.migrate import MIGRATIONS, current_revision, upgrade
from tests.conftest import Database


def test_migrations_match_the_models(database: Database) -> None:
    engine = make_engine(database.url, database.schema)
    try:
        upgrade(engine)
        upgrade(engine)  # a second run (another replica starting) changes nothing
        assert current_revision(engine) == ScriptDirectory(str(MIGRATIONS)).get_current_head()
        with engine.connect() as connection:
            differences = compare_metadata(MigrationContext.configure(connection, opts={"compare_type": True}),
                                           Base.metadata)
        assert differences == []
    finally:
        engine.dispose()


def test_a_database_made_before_migrations_is_stamped_and_its_books_opened(database: Database) -> None:
    engine = make_engine(database.url, database.schema)
    try:
        upgrade(engine, "0001")
        with engine.begin() as connection:
            connection.execute(text("DROP TABLE alembic_version"))  # as create_all left it
            connection.execute(insert(Tenant).values(
                name="acme", balance=7, quota_month="", quota_used=0, rate_per_s=5.0, burst=10,
                operations="mask", is_admin=False, created_at=text("CURRENT_TIMESTAMP")))
            tenant_id = connection.execute(text("SELECT id FROM tenants")).scalar_one()
            connection.execute(insert(UsageRecord).values(
                tenant_id=tenant_id, key_id="k", operation="mask", model="fast", input_megapixels=1.0,
                output_bytes=10, credits=3, gateway_latency_ms=1.0, triton_latency_ms=1.0, request_id="r1",
                created_at=text("CURRENT_TIMESTAMP")))
        upgrade(engine)
        assert current_revision(engine) == ScriptDirectory(str(MIGRATIONS)).get_current_head()
        assert {"credit_grants", "reservations", "idempotency_keys"} <= set(inspect(engine).get_table_names())
        books = ledger.audit(session_factory(engine), tenant_id)
        assert books == ledger.Books(balance=7, granted=10, charged=3, reserved=0) and books.balanced
    finally:
        engine.dispose()


def test_processes_starting_together_on_a_new_sqlite_file_migrate_it_once(tmp_path) -> None:
    """Gateway processes may start together on one SQLite file (here three threads, each with its own
    engine). SQLite runs DDL outside any transaction, so without the lock beside the file two of them
    create the same table (measured: 3 of 6 rounds of 3 processes failed, "table tenants already exists")."""
    head = ScriptDirectory(str(MIGRATIONS)).get_current_head()
    for round_ in range(4):
        url = f"sqlite:///{tmp_path / f'round{round_}.db'}"
        start = threading.Barrier(3)
        errors: list[BaseException] = []

        def migrate(url: str = url, start: threading.Barrier = start, errors: list = errors) -> None:
            engine = make_engine(url)
            try:
                start.wait()
                upgrade(engine)
            except BaseException as error:  # noqa: BLE001 - collected and asserted below
                errors.append(error)
            finally:
                engine.dispose()

        threads = [threading.Thread(target=migrate) for _ in range(3)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert errors == []
        engine = make_engine(url)
        assert current_revision(engine) == head
        engine.dispose()
