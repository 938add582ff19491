"""The admin CLI (exit code 2 on bad input, keys shown once) and the token bucket arithmetic."""

from __future__ import annotations

import argparse

import pytest
from sqlalchemy import inspect, text

from gateway import keys
from gateway.admin import finite, main
from gateway.db import make_engine, session_factory
from gateway.limits.rate import InProcessRateLimiter
from gateway.migrate import SchemaMismatch, upgrade
from gateway.settings import GatewaySettings
from tests.conftest import Database


def run(database: Database, capsys, *argv: str) -> tuple[int, str, str]:
    """The admin CLI on ``database``, migrated as the gateway leaves it at start."""
    engine = make_engine(database.url, database.schema)
    upgrade(engine)
    engine.dispose()
    code = main(["--database-url", database.url, *(["--database-schema", database.schema] if database.schema else []),
                 *argv])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_admin_cli_lifecycle(database: Database, capsys) -> None:
    assert run(database, capsys, "create-tenant", "acme", "--credits", "50", "--operations", "mask,depth")[0] == 0
    code, out, _ = run(database, capsys, "list-tenants")
    assert code == 0 and "acme\t50\t-\t5\t10\tdepth,mask\tno" in out
    code, key, err = run(database, capsys, "create-key", "acme", "--label", "ci", "--expires-days", "30")
    key = key.strip()
    assert code == 0 and key.startswith("isk_") and "cannot be shown again" in err
    key_id = keys.key_id_of(key)
    code, out, _ = run(database, capsys, "list-keys", "--tenant", "acme")
    assert key_id in out and key not in out
    assert run(database, capsys, "add-credits", "acme", "25")[1].strip() == "tenant acme now has 75 credits"
    engine = make_engine(database.url, database.schema)
    with session_factory(engine)() as session:
        assert keys.authenticate(session, key).tenant_name == "acme"
    assert run(database, capsys, "revoke-key", key_id)[0] == 0
    with session_factory(engine)() as session:
        assert keys.authenticate(session, key) is None
    code, out, _ = run(database, capsys, "audit")  # the top-up is in the books
    assert code == 0 and "acme\t75\t75\t0\t0\tyes" in out
    with engine.begin() as connection:  # a balance changed behind the ledger's back is caught
        connection.execute(text("UPDATE tenants SET balance = balance + 1 WHERE name = 'acme'"))
    code, out, _ = run(database, capsys, "audit")
    assert code == 1 and "acme\t76\t75\t0\t0\tNO" in out
    engine.dispose()


@pytest.mark.parametrize("argv", [
    ("create-key", "nobody"),
    ("add-credits", "nobody", "5"),
    ("revoke-key", "000000000000"),
    ("create-tenant", "x", "--operations", "depth,paint"),
    ("create-tenant", "x", "--credits", "-1"),
])
def test_admin_cli_bad_input_exits_2_with_a_message(database: Database, capsys, argv: tuple[str, ...]) -> None:
    code, _, err = run(database, capsys, *argv)
    assert code == 2 and err.startswith("error: ")


def test_admin_cli_touches_only_a_gateway_database_at_its_own_revision(database: Database, tmp_path,
                                                                         capsys) -> None:
    missing = tmp_path / "typo" / "gateway.db"
    assert main(["--database-url", f"sqlite:///{missing}", "list-tenants"]) == 2
    assert "no SQLite database at" in capsys.readouterr().err and not missing.parent.exists()  # nothing created
    schema = ["--database-schema", database.schema] if database.schema else []
    engine = make_engine(database.url, database.schema)
    try:
        engine.connect().close()  # an empty database (on SQLite: an empty file)
        assert main(["--database-url", database.url, *schema, "list-tenants"]) == 2
        assert "holds no gateway tables" in capsys.readouterr().err
        assert not inspect(engine).get_table_names()  # and it stays empty
        upgrade(engine, "0002")
        assert main(["--database-url", database.url, *schema, "list-tenants"]) == 2
        assert "is at schema revision 0002, this version needs" in capsys.readouterr().err
        upgrade(engine)
        with engine.begin() as connection:  # as a newer gateway would leave it
            connection.execute(text("UPDATE alembic_version SET version_num = '0999'"))
        assert main(["--database-url", database.url, *schema, "list-tenants"]) == 2
        assert "revision 0999, which this version of the gateway does not know" in capsys.readouterr().err
        with pytest.raises(SchemaMismatch, match="0999"):
            upgrade(engine)  # the gateway refuses it at start too
    finally:
        engine.dispose()


def test_admin_cli_duplicate_tenant_and_argparse_errors(tmp_path, capsys) -> None:
    database = Database(f"sqlite:///{tmp_path / 'g.db'}", None)
    run(database, capsys, "create-tenant", "acme")
    code, _, err = run(database, capsys, "create-tenant", "acme")
    assert code == 2 and "already exists" in err
    assert run(database, capsys, "add-credits", "acme", "0")[0] == 2
    with pytest.raises(SystemExit) as exit_:
        main(["add-credits", "acme", "lots"])
    assert exit_.value.code == 2


def test_token_bucket_refills_at_the_rate() -> None:
    now = [100.0]
    limiter = InProcessRateLimiter(clock=lambda: now[0])
    decisions = [limiter.take("k", rate=2.0, burst=3) for _ in range(4)]
    assert [d.allowed for d in decisions] == [True, True, True, False]
    assert decisions[2].remaining == 0 and decisions[3].retry_after_s == 1
    assert decisions[3].headers()["Retry-After"] == "1" and decisions[3].reset_s == 2
    now[0] += 0.5  # one token back
    assert limiter.take("k", rate=2.0, burst=3).allowed
    assert not limiter.take("k", rate=2.0, burst=3).allowed
    assert limiter.take("other", rate=2.0, burst=3).allowed  # buckets are per key


@pytest.mark.parametrize("value", ["nan", "inf", "-inf"])
def test_admin_cli_refuses_non_finite_numbers(value: str) -> None:
    with pytest.raises(argparse.ArgumentTypeError, match="not a finite number"):
        finite(value)
    assert finite("2.5") == 2.5


def test_an_empty_bootstrap_key_means_unset() -> None:
    assert GatewaySettings(bootstrap_api_key="").bootstrap_api_key is None
