"""Applies schema migrations once each, in order, safely from several processes.

Each migration is a name and SQL. The names applied are kept in
`schema_migrations`; a session-level advisory lock makes concurrent starters
(for example several API replicas) wait for the first one instead of racing.
"""

from collections.abc import Sequence
from dataclasses import dataclass

import psycopg

_LOCK_KEY = 0x67796D6C  # "gyml": arbitrary, constant across releases


@dataclass(frozen=True)
class Migration:
    name: str
    sql: str


def apply_migrations(database_url: str, migrations: Sequence[Migration]) -> list[str]:
    """Returns the names applied by this call (empty when already up to date)."""
    applied: list[str] = []
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute("SELECT pg_advisory_lock(%s)", (_LOCK_KEY,))
        try:
            conn.execute(
                "CREATE TABLE IF NOT EXISTS schema_migrations ("
                " name text PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT now())"
            )
            done = {row[0] for row in conn.execute("SELECT name FROM schema_migrations")}
            for migration in migrations:
                if migration.name in done:
                    continue
                with conn.transaction():
                    conn.execute(migration.sql.encode())
                    conn.execute(
                        "INSERT INTO schema_migrations (name) VALUES (%s)", (migration.name,)
                    )
                applied.append(migration.name)
        finally:
            conn.execute("SELECT pg_advisory_unlock(%s)", (_LOCK_KEY,))
    return applied
