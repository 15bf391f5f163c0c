"""Rebuilding read models beside the live ones: to verify them, or to replace them.

Both start the same way: a scratch schema gets exactly the tables of the rebuilt
projections, from those projections' own migrations rendered for that schema (every
name qualified, infra/migrate.py), and a projector fills them from the event log. The
scratch projector runs with nothing but the scratch schema on its search path, so a
name its SQL does not find there fails instead of reaching a live table. The live
tables are only ever read, under ACCESS SHARE, which blocks no writer: the projector,
the API and the mail worker carry on as if no rebuild ran. Only the blue-green swap
at the end locks live tables, in one short transaction that gives up rather than
queue readers behind it for long.

The mail outbox and the audit chain are never rebuilt: one would repeat mail, the
other would launder tampering. Each connection names itself in pg_stat_activity
(`application_name`), so an operator sees what a backend belongs to.
"""

import contextlib
import sys
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import psycopg
from psycopg import sql

from infra.db import LIVE_SCHEMA
from infra.event_codec import CODEC
from infra.migrate import apply_to, pending
from projections import engine
from projections.check_ins import CheckInsProjection
from projections.customers import CustomersProjection
from projections.engine import Projection, Projector
from projections.event_log import EventIndexProjection
from projections.gyms import GymsProjection
from projections.memberships import MembershipsProjection
from projections.plans import PlansProjection
from projections.read_model import READ_MODEL
from projections.schema import MIGRATIONS, migrations_of

REPLAY_APPLICATION = "gymledger-replay"
BUILD_APPLICATION = "gymledger-rebuild"
SWAP_APPLICATION = "gymledger-rebuild-swap"

# The swap waits this long for each lock: a reader that holds a live table longer
# (say a replay of a large log) makes it roll back and try again, instead of queueing
# every later reader of that table behind it.
SWAP_LOCK_TIMEOUT = "2s"
SWAP_ATTEMPTS = 30
SWAP_PAUSE_SECONDS = 1.0

Progress = Callable[[int, float], None]


def rebuilt_projections() -> list[Projection]:
    """The read models a rebuild recreates (every rebuildable one the API reads)."""
    return [
        GymsProjection(),
        CustomersProjection(),
        EventIndexProjection(),
        PlansProjection(),
        MembershipsProjection(),
        CheckInsProjection(),
    ]


# Their tables, in an order that respects foreign keys when dropping.
READ_TABLES = tuple(table for p in rebuilt_projections() for table in p.tables)


class SchemaBehind(RuntimeError):
    """The live tables miss migrations this code builds: they could not be compared."""


class LiveTablesBusy(RuntimeError):
    """The swap could not lock the live tables briefly enough; nothing was changed."""


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
    projector = Projector(f"rebuild-{schema}", rebuilt_projections(), CODEC, batch_size=batch_size)
    projector.until = until
    return projector


def require_migrated(conn: psycopg.Connection[Any]) -> None:
    missing = pending(conn, MIGRATIONS)
    if missing:
        raise SchemaBehind(
            f"{len(missing)} migration(s) not applied to the live tables yet"
            f" ({', '.join(missing)}): run `gymledger migrate` first"
        )


def _use_schema(conn: psycopg.Connection[Any], schema: str) -> None:
    """Unqualified names now mean `schema`'s tables and nothing else (pg_catalog aside)."""
    conn.execute(sql.SQL("SET LOCAL search_path TO {}").format(sql.Identifier(schema)))


def create_scratch(
    conn: psycopg.Connection[Any], schema: str, projections: Sequence[Projection]
) -> None:
    """Create `schema` with exactly the tables of `projections` and the projector's
    bookkeeping, then leave only it on the transaction's search path."""
    never = [p.name for p in projections if not p.rebuildable]
    if never:
        raise ValueError(f"never rebuilt: {', '.join(never)}")
    conn.execute(sql.SQL("CREATE SCHEMA {}").format(sql.Identifier(schema)))
    for migration in migrations_of({engine.OWNER, *(p.name for p in projections)}):
        apply_to(conn, migration, schema)
    _use_schema(conn, schema)


@contextmanager
def indexes_built_after(
    conn: psycopg.Connection[Any], projections: Sequence[Projection], schema: str
) -> Iterator[None]:
    """Drop the projections' deferred indexes in `schema` and create them again when
    the block ends, in the caller's transaction."""
    names = [name for p in projections if p.rebuildable for name in p.deferred_indexes]
    found = conn.execute(
        "SELECT indexname, indexdef FROM pg_indexes WHERE schemaname = %s AND indexname = ANY(%s)",
        (schema, names),
    ).fetchall()
    for name, _ in found:
        conn.execute(sql.SQL("DROP INDEX {}").format(sql.Identifier(schema, name)))
    yield
    for _, definition in found:
        conn.execute(definition.encode())  # pg_get_indexdef: schema-qualified


def rebuild_in_place(conn: psycopg.Connection[Any], projector: Projector) -> int:
    """Empty the rebuildable tables and replay the whole log into them, in one
    transaction: readers wait on the emptied tables and a running projector on
    its position row, then both see the result."""
    with conn.transaction():
        projector.reset(conn)
        with indexes_built_after(conn, projector.projections, LIVE_SCHEMA):
            return projector.catch_up(conn)


def build_into(
    conn: psycopg.Connection[Any], schema: str, until: int, progress: Progress | None = None
) -> int:
    """Create the read tables in `schema` and apply the log up to `until` (inclusive)."""
    projector = _projector(schema, until)
    create_scratch(conn, schema, projector.projections)
    projector.ensure_position_row(conn)
    started, applied = time.monotonic(), 0
    with indexes_built_after(conn, projector.projections, schema):
        while True:
            result = projector.run_batch(conn)
            applied += result.events
            if progress:
                progress(applied, time.monotonic() - started)
            if result.events < projector.batch_size:
                return applied


def differences(conn: psycopg.Connection[Any], schema: str, limit: int = 20) -> dict[str, Any]:
    """Rows present on one side only, per table (live against `schema`)."""
    found: dict[str, Any] = {}
    for table in READ_TABLES:
        scratch = sql.Identifier(schema, table)
        live = sql.Identifier(LIVE_SCHEMA, table)
        only_live = conn.execute(
            sql.SQL("SELECT * FROM {} EXCEPT SELECT * FROM {} LIMIT %s").format(live, scratch),
            (limit,),
        ).fetchall()
        only_replay = conn.execute(
            sql.SQL("SELECT * FROM {} EXCEPT SELECT * FROM {} LIMIT %s").format(scratch, live),
            (limit,),
        ).fetchall()
        if only_live or only_replay:
            found[sql.Identifier(table).as_string()] = {
                "only_live": only_live,
                "only_replay": only_replay,
            }
    return found


def replay_and_compare(
    database_url: str, progress_for: Callable[[int], Progress] | None = None
) -> tuple[int, dict[str, Any]]:
    """Rebuild into a scratch schema and compare, all in one snapshot that is rolled back.

    REPEATABLE READ makes the live tables, their position and the log one consistent
    picture; the rollback leaves nothing behind.
    """
    schema = f"replay_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(database_url, application_name=REPLAY_APPLICATION) as conn:
        conn.isolation_level = psycopg.IsolationLevel.REPEATABLE_READ
        with conn.transaction(force_rollback=True):
            require_migrated(conn)
            until = engine.projection_position(conn, READ_MODEL)
            progress = progress_for(until) if progress_for else None
            events = build_into(conn, schema, until, progress)
            found = differences(conn, schema)
    return events, found


def blue_green_rebuild(
    database_url: str,
    progress_for: Callable[[int], Progress] | None = None,
    swap_attempts: int = SWAP_ATTEMPTS,
) -> int:
    """Build new tables while the API keeps reading the old ones, then swap them in.

    The build only reads live tables. The swap, on a connection of its own, locks the
    live projector's position, applies what arrived meanwhile and swaps the tables in
    one short transaction, so readers see either the old or the new tables.
    """
    schema = f"rebuild_{uuid.uuid4().hex[:12]}"
    with (
        psycopg.connect(database_url, application_name=BUILD_APPLICATION) as conn,
        conn.transaction(),
    ):
        require_migrated(conn)
        until = engine.projection_position(conn, READ_MODEL)
        events = build_into(conn, schema, until, progress_for(until) if progress_for else None)
    try:
        return events + _swap(database_url, schema, swap_attempts)
    except BaseException:
        with (
            contextlib.suppress(psycopg.Error),
            psycopg.connect(database_url, autocommit=True, application_name=SWAP_APPLICATION) as c,
        ):
            c.execute(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(schema)))
        raise


def _swap(database_url: str, schema: str, attempts: int) -> int:
    with psycopg.connect(database_url, application_name=SWAP_APPLICATION) as conn:
        for attempt in range(1, attempts + 1):
            try:
                with conn.transaction():
                    conn.execute(sql.SQL("SET LOCAL lock_timeout = {}").format(SWAP_LOCK_TIMEOUT))
                    return _swap_in(conn, schema)
            except psycopg.errors.LockNotAvailable:
                if attempt == attempts:
                    break
                time.sleep(SWAP_PAUSE_SECONDS)
    raise LiveTablesBusy(
        f"the live read tables stayed locked by other sessions through {attempts} attempts"
        f" of {SWAP_LOCK_TIMEOUT} (see pg_stat_activity); the rebuilt tables were discarded"
        " and the live ones are unchanged"
    )


def _swap_in(conn: psycopg.Connection[Any], schema: str) -> int:
    # The live projector waits from here. Qualified (LIVE_SCHEMA), like every position
    # read, so it is the live one whatever the search path.
    until = engine.projection_position(conn, READ_MODEL, lock=True)
    _use_schema(conn, schema)
    events = _projector(schema, until).catch_up(conn)
    for table in READ_TABLES:
        old = sql.Identifier(LIVE_SCHEMA, table)
        conn.execute(sql.SQL("DROP TABLE IF EXISTS {} CASCADE").format(old))
    for table in reversed(READ_TABLES):
        new = sql.Identifier(schema, table)
        conn.execute(
            sql.SQL("ALTER TABLE {} SET SCHEMA {}").format(new, sql.Identifier(LIVE_SCHEMA))
        )
    conn.execute(sql.SQL("DROP SCHEMA {} CASCADE").format(sql.Identifier(schema)))
    return events
