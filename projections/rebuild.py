"""Rebuilding read models beside the live ones: to verify them, or to replace them.

Both start the same way: the rebuildable tables are created in a scratch schema
(same migrations, `search_path` pointing there) and filled from the event log.
The mail outbox and the audit chain are never rebuilt: one would repeat mail,
the other would launder tampering.
"""

import sys
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import psycopg
from psycopg import sql

from infra.event_codec import CODEC
from projections import audit_chain, mail_outbox
from projections.customers import CustomersProjection
from projections.engine import Projection, Projector
from projections.event_log import EventIndexProjection
from projections.gyms import GymsProjection
from projections.read_model import READ_MODEL
from projections.schema import MIGRATIONS

# Rebuildable tables, in an order that respects foreign keys when dropping.
READ_TABLES = ("auditor_tokens", "gym_logins", "gyms", "customers", "event_index")
_NOT_REBUILT = {
    mail_outbox.MIGRATION_SQL,
    mail_outbox.COUNTS_SQL,
    audit_chain.MIGRATION_SQL,
    audit_chain.SIGNATURES_MIGRATION_SQL,
}

Progress = Callable[[int, float], None]


def terminal_progress(total: int) -> Progress:
    """A one-line progress bar with events/s on stderr, only on a terminal."""

    def show(done: int, elapsed: float) -> None:
        if not sys.stderr.isatty():
            return
        rate = done / elapsed if elapsed else 0.0
        filled = int(30 * done / total) if total else 30
        sys.stderr.write(f"\r[{'#' * filled:<30}] {done}/{total} events  {rate:,.0f} events/s")
        sys.stderr.flush()

    return show


def _projector(schema: str, until: int, batch_size: int = 2000) -> Projector:
    projector = Projector(
        f"rebuild-{schema}",
        [GymsProjection(), CustomersProjection(), EventIndexProjection()],
        CODEC,
        batch_size=batch_size,
    )
    projector.until = until
    return projector


def _use_schema(conn: psycopg.Connection[Any], schema: str) -> None:
    """Unqualified names now mean `schema`'s tables; the event log stays in public."""
    conn.execute(sql.SQL("SET LOCAL search_path TO {}, public").format(sql.Identifier(schema)))


@contextmanager
def indexes_built_after(
    conn: psycopg.Connection[Any], projections: Sequence[Projection]
) -> Iterator[None]:
    """Drop the projections' deferred indexes (in the first schema of the search path)
    and create them again when the block ends, in the caller's transaction."""
    names = [name for p in projections if p.rebuildable for name in p.deferred_indexes]
    found = conn.execute(
        "SELECT schemaname, indexname, indexdef FROM pg_indexes"
        " WHERE schemaname = current_schema() AND indexname = ANY(%s)",
        (names,),
    ).fetchall()
    for schema, name, _ in found:
        conn.execute(sql.SQL("DROP INDEX {}").format(sql.Identifier(schema, name)))
    yield
    for _, _, definition in found:
        conn.execute(definition.encode())  # pg_get_indexdef: schema-qualified


def rebuild_in_place(conn: psycopg.Connection[Any], projector: Projector) -> int:
    """Empty the rebuildable tables and replay the whole log into them, in one
    transaction: readers wait on the emptied tables and a running projector on
    its position row, then both see the result."""
    with conn.transaction():
        projector.reset(conn)
        with indexes_built_after(conn, projector.projections):
            return projector.catch_up(conn)


def build_into(
    conn: psycopg.Connection[Any], schema: str, until: int, progress: Progress | None = None
) -> int:
    """Create the read tables in `schema` and apply the log up to `until` (inclusive)."""
    conn.execute(sql.SQL("CREATE SCHEMA {}").format(sql.Identifier(schema)))
    _use_schema(conn, schema)
    for migration in MIGRATIONS:
        if migration.sql not in _NOT_REBUILT:
            conn.execute(migration.sql.encode())
    projector = _projector(schema, until)
    projector.ensure_position_row(conn)
    started, applied = time.monotonic(), 0
    with indexes_built_after(conn, projector.projections):
        while True:
            result = projector.run_batch(conn)
            applied += result.events
            if progress:
                progress(applied, time.monotonic() - started)
            if result.events < projector.batch_size:
                return applied


def differences(conn: psycopg.Connection[Any], schema: str, limit: int = 20) -> dict[str, Any]:
    """Rows present on one side only, per table (live `public` against `schema`)."""
    found: dict[str, Any] = {}
    for table in READ_TABLES:
        ident = sql.Identifier(table)
        scratch = sql.Identifier(schema, table)
        live = sql.Identifier("public", table)
        only_live = conn.execute(
            sql.SQL("SELECT * FROM {} EXCEPT SELECT * FROM {} LIMIT %s").format(live, scratch),
            (limit,),
        ).fetchall()
        only_replay = conn.execute(
            sql.SQL("SELECT * FROM {} EXCEPT SELECT * FROM {} LIMIT %s").format(scratch, live),
            (limit,),
        ).fetchall()
        if only_live or only_replay:
            found[ident.as_string(conn)] = {"only_live": only_live, "only_replay": only_replay}
    return found


def live_position(conn: psycopg.Connection[Any], lock: bool = False) -> int:
    query = "SELECT position FROM public.projector_positions WHERE name = %s"
    row = conn.execute(query + (" FOR UPDATE" if lock else ""), (READ_MODEL,)).fetchone()
    return 0 if row is None else int(row[0])


def replay_and_compare(
    database_url: str, progress_for: Callable[[int], Progress] | None = None
) -> tuple[int, dict[str, Any]]:
    """Rebuild into a scratch schema and compare, all in one snapshot that is rolled back.

    REPEATABLE READ makes the live tables, their position and the log one consistent
    picture; the rollback leaves nothing behind.
    """
    schema = f"replay_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(database_url) as conn:
        conn.isolation_level = psycopg.IsolationLevel.REPEATABLE_READ
        try:
            with conn.transaction():
                until = live_position(conn)
                progress = progress_for(until) if progress_for else None
                events = build_into(conn, schema, until, progress)
                found = differences(conn, schema)
                raise _Discard
        except _Discard:
            pass
    return events, found


class _Discard(Exception):
    """Rolls the verification transaction back on purpose."""


def blue_green_rebuild(
    database_url: str, progress_for: Callable[[int], Progress] | None = None
) -> int:
    """Build new tables while the API keeps reading the old ones, then swap them in.

    Building happens without any long lock; the last step locks the live
    projector's position, applies what arrived meanwhile and swaps the tables in
    one short transaction, so readers see either the old or the new tables.
    """
    schema = f"rebuild_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(database_url) as conn:
        with conn.transaction():
            until = live_position(conn)
            events = build_into(conn, schema, until, progress_for(until) if progress_for else None)
        with conn.transaction():
            until = live_position(conn, lock=True)  # the live projector waits from here
            _use_schema(conn, schema)
            events += _projector(schema, until).catch_up(conn)
            for table in READ_TABLES:
                old = sql.Identifier("public", table)
                conn.execute(sql.SQL("DROP TABLE IF EXISTS {} CASCADE").format(old))
            for table in reversed(READ_TABLES):
                new = sql.Identifier(schema, table)
                conn.execute(sql.SQL("ALTER TABLE {} SET SCHEMA public").format(new))
            conn.execute(sql.SQL("DROP SCHEMA {} CASCADE").format(sql.Identifier(schema)))
    return events
