"""Administration CLI: ``python -m gateway.admin --help``.

Uses ``GATEWAY_DATABASE_URL`` (and ``GATEWAY_DATABASE_SCHEMA``) like the
gateway, or ``--database-url``. Bad input prints a message to stderr and exits
with status 2. A new key is printed once and cannot be shown again.
"""

from __future__ import annotations

import argparse
import math
import sys
from collections.abc import Sequence
from datetime import timedelta
from pathlib import Path

from sqlalchemy.engine import make_url

from contract.product import PRODUCT
from gateway import keys, ledger, tenants
from gateway.db import make_engine, session_factory, utcnow
from gateway.migrate import SchemaMismatch, require_current
from gateway.settings import GatewaySettings

USAGE_ERROR = 2


def finite(value: str) -> float:
    """A finite number (``nan`` and ``inf`` would pass ``float`` and break the limits they set)."""
    number = float(value)
    if not math.isfinite(number):
        raise argparse.ArgumentTypeError(f"{value!r} is not a finite number")
    return number


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m gateway.admin", description=__doc__.splitlines()[0])
    parser.add_argument("--database-url", help="SQLAlchemy URL (default: GATEWAY_DATABASE_URL or the gateway default)")
    parser.add_argument("--database-schema", help="PostgreSQL schema (default: GATEWAY_DATABASE_SCHEMA)")
    commands = parser.add_subparsers(dest="command", required=True)

    create = commands.add_parser("create-tenant", help="create a tenant")
    create.add_argument("name")
    create.add_argument("--credits", type=int, default=0)
    every = ",".join(PRODUCT.operation_names)
    create.add_argument("--operations", default=every, help=f"comma-separated subset of {every} (default: all)")
    create.add_argument("--rate", type=finite, default=5.0, help="requests per second per key")
    create.add_argument("--burst", type=int, default=10, help="token bucket size per key")
    create.add_argument("--monthly-quota", type=int, default=None, help="credits per calendar month (UTC)")

    commands.add_parser("list-tenants", help="list tenants with balances and limits")

    key = commands.add_parser("create-key", help="create an API key (printed once)")
    key.add_argument("tenant")
    key.add_argument("--label", default="")
    key.add_argument("--expires-days", type=finite, default=None, help="expire after this many days")

    listing = commands.add_parser("list-keys", help="list key ids (never the keys)")
    listing.add_argument("--tenant", default=None)

    revoke = commands.add_parser("revoke-key", help="revoke a key by its id")
    revoke.add_argument("key_id")

    topup = commands.add_parser("add-credits", help="top up a tenant's balance")
    topup.add_argument("tenant")
    topup.add_argument("credits", type=int)

    commands.add_parser("audit", help="check each balance against grants - charges - open reservations "
                                      "(exit 1 if any differs)")
    return parser


def _fail(message: str) -> int:
    print(f"error: {message}", file=sys.stderr)
    return USAGE_ERROR


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    settings = GatewaySettings()
    url = args.database_url or settings.database_url
    sqlite_file = make_url(url).database if make_url(url).get_backend_name() == "sqlite" else None
    if sqlite_file and sqlite_file != ":memory:" and not Path(sqlite_file).is_file():
        return _fail(f"no SQLite database at {sqlite_file}: check the database URL, or start the gateway once "
                     f"(or run python -m gateway.migrate) to create it")
    engine = make_engine(url, args.database_schema or settings.database_schema)
    try:
        require_current(engine)
        sessions = session_factory(engine)
        return _run(args, sessions)
    except (tenants.TenantError, keys.KeyError_, SchemaMismatch) as exc:
        return _fail(str(exc))
    except ledger.UnknownTenant as exc:
        return _fail(f"no tenant named {exc.args[0]!r}; list tenants to see the names")
    finally:
        engine.dispose()


def _run(args: argparse.Namespace, sessions) -> int:  # noqa: ANN001, C901
    if args.command == "create-tenant":
        tenant = tenants.create_tenant(sessions, args.name, args.credits, args.operations, args.rate, args.burst,
                                       args.monthly_quota)
        print(f"created tenant {tenant.name} with {tenant.balance} credits, operations {tenant.operations}")
    elif args.command == "list-tenants":
        print("name\tbalance\tmonthly_quota\trate_per_s\tburst\toperations\tadmin")
        for t in tenants.list_tenants(sessions):
            print(f"{t.name}\t{t.balance}\t{t.monthly_quota if t.monthly_quota is not None else '-'}\t"
                  f"{t.rate_per_s:g}\t{t.burst}\t{t.operations}\t{'yes' if t.is_admin else 'no'}")
    elif args.command == "create-key":
        if args.expires_days is not None and args.expires_days <= 0:
            return _fail("--expires-days must be > 0")
        expires = utcnow() + timedelta(days=args.expires_days) if args.expires_days is not None else None
        key_id, key = keys.create_key(sessions, args.tenant, args.label, expires)
        print(f"key id: {key_id}", file=sys.stderr)
        print("store the key now: it is not kept and cannot be shown again", file=sys.stderr)
        print(key)
    elif args.command == "list-keys":
        print("key_id\ttenant\tlabel\tcreated_at\texpires_at\trevoked_at")
        for k in keys.list_keys(sessions, args.tenant):
            print("\t".join(str(k[f] if k[f] is not None else "-")
                            for f in ("key_id", "tenant", "label", "created_at", "expires_at", "revoked_at")))
    elif args.command == "revoke-key":
        keys.revoke_key(sessions, args.key_id)
        print(f"revoked key {args.key_id}")
    elif args.command == "add-credits":
        if args.credits <= 0:
            return _fail("credits must be a positive whole number")
        balance = ledger.add_credits(sessions, args.tenant, args.credits)
        print(f"tenant {args.tenant} now has {balance} credits")
    elif args.command == "audit":
        return _audit(sessions)
    return 0


def _audit(sessions) -> int:  # noqa: ANN001
    print("tenant\tbalance\tgranted\tcharged\treserved\tok")
    all_balanced = True
    for tenant in tenants.list_tenants(sessions):
        books = ledger.audit(sessions, tenant.id)
        all_balanced &= books.balanced
        print(f"{tenant.name}\t{books.balance}\t{books.granted}\t{books.charged}\t{books.reserved}\t"
              f"{'yes' if books.balanced else 'NO'}")
    return 0 if all_balanced else 1


if __name__ == "__main__":
    sys.exit(main())
