"""Applies schema migrations once each, in order, safely from several processes.

A migration is a name, the part of the system that owns the tables it changes, and
SQL written as a template: every object it creates or names is qualified with
`{schema}` (where the owner's tables go) or `{shared}` (the live schema, holding what
every copy of the read model shares: the event log and the extensions). The same
template builds the live tables and, in a scratch schema, a rebuild beside them
(projections/rebuild.py), so a rebuild can never reach a live table by a name that
happened to resolve there. Templates run with an empty `search_path`: a name left
unqualified fails on the first migration of any database instead of landing in
whatever schema the search path offered.

The ledger, `schema_migrations`, keys each applied migration by name, so a name is
never changed once released; the SQL may be rewritten as long as it still creates
the same objects (databases that applied it never run it again). Qualifying every
name this way created exactly the objects the unqualified text did. A session-level
advisory lock makes concurrent starters (several API replicas) wait for the first
one instead of racing.
"""

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, LiteralString

import psycopg
from psycopg.sql import SQL, Composed, Identifier

from infra.db import LIVE_SCHEMA

_LOCK_KEY = 0x67796D6C  # "gyml": arbitrary, constant across releases
_LEDGER = Identifier(LIVE_SCHEMA, "schema_migrations")


@dataclass(frozen=True)
class Migration:
    name: str  # the ledger's key
    owner: str  # the projection (or the write side) whose tables it creates or changes
    sql: LiteralString  # a template: {schema} and {shared}, see the module's docstring
    # Copies what existing rows already say into the new shape. Only the live tables
    # need it: a rebuild fills its tables from the log.
    backfill: LiteralString = ""

    def render(self, schema: str) -> Composed:
        return _render(self.sql, schema)

    def render_backfill(self, schema: str) -> Composed | None:
        return _render(self.backfill, schema) if self.backfill else None


def _render(template: LiteralString, schema: str) -> Composed:
    return SQL(template).format(schema=Identifier(schema), shared=Identifier(LIVE_SCHEMA))


def apply_to(conn: psycopg.Connection[Any], migration: Migration, schema: str) -> None:
    """Run one migration's template for `schema`, in the caller's transaction, with
    nothing on the search path (the previous path is back when the transaction ends)."""
    conn.execute("SELECT set_config('search_path', '', true)")
    conn.execute(migration.render(schema))


def apply_migrations(database_url: str, migrations: Sequence[Migration]) -> list[str]:
    """Returns the names applied by this call (empty when already up to date)."""
    applied: list[str] = []
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute("SELECT pg_advisory_lock(%s)", (_LOCK_KEY,))
        try:
            conn.execute(
                SQL(
                    "CREATE TABLE IF NOT EXISTS {} ("
                    " name text PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT now())"
                ).format(_LEDGER)
            )
            done = {row[0] for row in conn.execute(SQL("SELECT name FROM {}").format(_LEDGER))}
            for migration in migrations:
                if migration.name in done:
                    continue
                with conn.transaction():
                    apply_to(conn, migration, LIVE_SCHEMA)
                    if (backfill := migration.render_backfill(LIVE_SCHEMA)) is not None:
                        conn.execute(backfill)
                    conn.execute(
                        SQL("INSERT INTO {} (name) VALUES (%s)").format(_LEDGER),
                        (migration.name,),
                    )
                applied.append(migration.name)
        finally:
            conn.execute("SELECT pg_advisory_unlock(%s)", (_LOCK_KEY,))
    return applied


def pending(conn: psycopg.Connection[Any], migrations: Sequence[Migration]) -> list[str]:
    """Names of `migrations` the database has not applied yet (a read, no lock beyond
    ACCESS SHARE on the ledger)."""
    exists = conn.execute("SELECT to_regclass(%s) IS NOT NULL", (_LEDGER.as_string(),)).fetchone()
    if not exists or not exists[0]:
        return [m.name for m in migrations]
    done = {row[0] for row in conn.execute(SQL("SELECT name FROM {}").format(_LEDGER))}
    return [m.name for m in migrations if m.name not in done]
