"""Applies the event log to read models in batches, exactly once.

Each batch reads the events after the stored position, applies every projection,
and writes the new position, all in one transaction: a crash anywhere rolls back
the whole batch, and the next run resumes from the last committed position.

No event that commits late is ever skipped, because eventsourcing's recorder
takes an EXCLUSIVE lock on the events table for each insert, so positions become
visible strictly in commit order (tests/integration/test_projector.py proves it
under concurrent writers).
"""

import contextlib
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any
from uuid import UUID

import msgspec
import psycopg
from psycopg import pq, sql
from psycopg.rows import TupleRow

from domain.events import DomainEvent
from infra.db import EVENTS_TABLE, LIVE_SCHEMA, PROJECTED_CHANNEL
from infra.event_codec import EventCodec

log = logging.getLogger("gymledger.projector")
# Batches of up to this many events write in pipeline mode (Projector._apply).
PIPELINED_WRITES_UP_TO = 50

# The engine's own bookkeeping (positions, parked faults), which every projector needs,
# a rebuild's scratch projector too: the owner of its migrations (infra/migrate.py).
OWNER = "projector"

MIGRATION_SQL = """
CREATE TABLE IF NOT EXISTS {schema}.projector_positions (
    name text PRIMARY KEY,
    position bigint NOT NULL DEFAULT 0,
    updated_at timestamptz NOT NULL DEFAULT now()
);
"""

FAULTS_MIGRATION_SQL = """
CREATE TABLE IF NOT EXISTS {schema}.projection_faults (
    projection text PRIMARY KEY,
    position bigint NOT NULL,
    error text NOT NULL,
    failed_at timestamptz NOT NULL DEFAULT now()
);
"""


@dataclass(frozen=True)
class Recorded:
    """One event as the log holds it: its global position, stored form and decoded
    (upcast) form. What projections apply, and what the feed, history and export
    describe (projections/event_log.py)."""

    position: int
    stream_id: UUID
    version: int
    topic: str
    state: bytes
    event: DomainEvent

    @classmethod
    def decode(
        cls,
        codec: EventCodec,
        position: int,
        stream_id: UUID,
        version: int,
        topic: str,
        state: bytes | memoryview,
    ) -> "Recorded":
        """From a row of the log, decoding (and upcasting) its stored state."""
        stored = bytes(state)
        return cls(position, stream_id, version, topic, stored, codec.decode(topic, stored))


class Projection:
    """A read model: the tables it owns and how one event changes them."""

    name = ""  # the owner its migrations name (projections/schema.py)
    tables: tuple[str, ...] = ()  # emptied by a rebuild
    rebuildable = True  # False for records that must survive a rebuild (outbox, hash chain)
    # Indexes a full rebuild drops and builds once at the end: cheaper than keeping
    # them up to date row by row (projections/rebuild.py).
    deferred_indexes: tuple[str, ...] = ()

    def apply(self, cur: psycopg.Cursor[TupleRow], recorded: Recorded) -> None:
        raise NotImplementedError

    def begin_batch(self, cur: psycopg.Cursor[TupleRow]) -> None:
        """Called once per batch before its first event (drop per-batch caches here:
        a failed batch is rolled back, and its caches must go with it)."""

    def end_batch(self, cur: psycopg.Cursor[TupleRow]) -> None:
        """Called once per batch, inside its transaction, after the last event. In
        pipeline mode for a small batch, outside it for a large one (BulkInsert
        chooses INSERT or COPY to match): a result asked for here costs a round trip."""

    def after_commit(self) -> None:
        """Called once the batch has committed (for effects outside the database)."""

    def forget(self) -> None:
        """Drop what is kept from one batch to the next. Called before a batch when the
        position moved without this instance (another instance, a rebuild, a start),
        and after a batch that was rolled back: what such a cache holds is then no
        longer what the tables hold."""


@dataclass(frozen=True)
class BatchResult:
    events: int
    position: int
    parked: bool = False


class Projector:
    def __init__(
        self,
        name: str,
        projections: Sequence[Projection],
        codec: EventCodec,
        batch_size: int = 500,
    ) -> None:
        self.name = name
        self.projections = projections
        self.codec = codec
        self.batch_size = batch_size
        self.position = 0  # last committed position seen by this instance
        self._isolating = False  # after a failed batch: one event per transaction
        self._isolated = 0
        self._attempted = 0  # first position of the batch being applied
        self._last_batch = batch_size  # events in the batch before: a start catches up
        self.until: int | None = None  # stop after this position (replays up to a snapshot)
        self._select = (
            sql.SQL(
                "SELECT notification_id, originator_id, originator_version, topic, state"
                " FROM {} WHERE notification_id > (SELECT position FROM projector_positions"
                " WHERE name = %s) AND notification_id <= %s"
                " ORDER BY notification_id LIMIT %s"
            )
            .format(sql.Identifier(LIVE_SCHEMA, EVENTS_TABLE))  # a scratch projector reads it too
            .as_string()  # once, see BulkInsert
        )

    def ensure_position_row(self, conn: psycopg.Connection[TupleRow]) -> None:
        with conn.transaction():
            conn.execute(
                "INSERT INTO projector_positions (name) VALUES (%s) ON CONFLICT DO NOTHING",
                (self.name,),
            )

    def run_batch(self, conn: psycopg.Connection[TupleRow]) -> BatchResult:
        """Apply the next batch. An event a projection cannot apply is not skipped
        and not retried forever: the batch is replayed one event at a time to find
        it, and the projection is parked at it until an operator resumes it."""
        try:
            return self._run_batch(conn, 1 if self._isolating else self.batch_size)
        except (psycopg.OperationalError, psycopg.InterfaceError):
            self._forget()  # rolled back
            raise  # the database, not an event: the caller reconnects and retries
        except Exception as error:
            self._forget()
            if not self._isolating:
                self._isolating = True
                return BatchResult(events=0, position=self.position)
            self._isolating = False
            self._park(conn, self._attempted, f"{type(error).__name__}: {error}")
            return BatchResult(events=0, position=self.position, parked=True)

    def _run_batch(self, conn: psycopg.Connection[TupleRow], limit: int) -> BatchResult:
        # Live traffic (the batch before was small): the whole batch in one pipeline,
        # so BEGIN, the position's lock and the events go in one round trip, and the
        # writes, the position, the NOTIFY and COMMIT in another (6 round trips, not 8).
        # After a large batch (a catch-up, a rebuild), the next COPYs its rows outside one.
        pipelined = self._last_batch <= PIPELINED_WRITES_UP_TO
        with (
            conn.pipeline() if pipelined else contextlib.nullcontext(),
            conn.transaction(),
            conn.cursor() as cur,
            conn.cursor() as events,
        ):
            # FOR UPDATE: a second projector instance waits here instead of
            # applying the same batch twice. Not projection_position(): the position
            # and whether it is parked come in one round trip, once per batch.
            cur.execute(
                "SELECT p.position, f.position FROM projector_positions p"
                " LEFT JOIN projection_faults f ON f.projection = p.name"
                " WHERE p.name = %s FOR UPDATE OF p",
                (self.name,),
            )
            until = 2**63 - 1 if self.until is None else self.until
            if pipelined:  # runs after the lock is taken, in the same round trip
                events.execute(self._select, (self.name, until, limit))
            row = cur.fetchone()
            if row is None:
                raise RuntimeError(f"projector {self.name!r} has no position row; migrate first")
            position = int(row[0])
            if position != self.position:
                self._forget()
            if row[1] is not None:
                self.position = position
                return BatchResult(events=0, position=position, parked=True)
            if not pipelined:
                events.execute(self._select, (self.name, until, limit))
            rows = events.fetchall()
            if rows:
                self._attempted = int(rows[0][0])
                position = int(rows[-1][0])
                self._apply(conn, cur, rows, position)
        for projection in self.projections:
            projection.after_commit()
        self.position = position
        self._last_batch = len(rows)
        if self._isolating:
            self._isolated += 1
            if not rows or self._isolated >= self.batch_size:
                self._isolating, self._isolated = False, 0  # the failure did not come back
        return BatchResult(events=len(rows), position=position)

    def _forget(self) -> None:
        for projection in self.projections:
            projection.forget()

    def _park(self, conn: psycopg.Connection[TupleRow], position: int, error: str) -> None:
        # The only place besides `gymledger projections status` that shows why:
        # /health tells anyone where it is parked, never the error text.
        log.error(
            "projection parked at an event it cannot apply",
            extra={"projection": self.name, "position": position, "error": error[:2000]},
        )
        with conn.transaction():
            conn.execute(
                "INSERT INTO projection_faults (projection, position, error) VALUES (%s, %s, %s)"
                " ON CONFLICT (projection) DO UPDATE SET position = excluded.position,"
                " error = excluded.error, failed_at = now()",
                (self.name, position, error[:2000]),
            )

    def _apply(
        self,
        conn: psycopg.Connection[TupleRow],
        cur: psycopg.Cursor[TupleRow],
        rows: list[TupleRow],
        position: int,
    ) -> None:
        # Pipeline mode: statements go out without waiting for each result, so a
        # batch costs a few round trips instead of several per event. (A pipeline
        # opened inside another syncs on entry and exit: the batch's own is reused.)
        pipelined = in_pipeline(cur)
        with contextlib.nullcontext() if pipelined else conn.pipeline():
            for projection in self.projections:
                projection.begin_batch(cur)
            for row in rows:
                recorded = Recorded.decode(self.codec, *row)
                for projection in self.projections:
                    projection.apply(cur, recorded)
        # A small batch (live traffic: a few events every few milliseconds) writes in
        # pipeline mode too, its rows as INSERT ... unnest: its writes, position and
        # NOTIFY then cost one round trip instead of about ten, COPY's start and end
        # for each table among them. A large one (a catch-up, a rebuild) COPYs.
        small = len(rows) <= PIPELINED_WRITES_UP_TO
        with conn.pipeline() if small and not pipelined else contextlib.nullcontext():
            for projection in self.projections:
                projection.end_batch(cur)
            cur.execute(
                "UPDATE projector_positions SET position = %s, updated_at = now() WHERE name = %s",
                (position, self.name),
            )
            cur.execute("SELECT pg_notify(%s, %s)", (PROJECTED_CHANNEL, str(position)))

    def catch_up(self, conn: psycopg.Connection[TupleRow]) -> int:
        """Process batches until the log is exhausted (or parked); returns events applied."""
        total = 0
        while True:
            result = self.run_batch(conn)
            total += result.events
            if result.parked or (result.events < self.batch_size and not self._isolating):
                return total

    def reset(self, conn: psycopg.Connection[TupleRow]) -> None:
        """Empty the rebuildable read tables and rewind, in one transaction."""
        tables = [t for p in self.projections if p.rebuildable for t in p.tables]
        with conn.transaction():
            if tables:
                conn.execute(
                    sql.SQL("TRUNCATE {}").format(sql.SQL(", ").join(map(sql.Identifier, tables)))
                )
            conn.execute(
                "UPDATE projector_positions SET position = 0, updated_at = now() WHERE name = %s",
                (self.name,),
            )
            # Starting over: an event that still fails will park the rebuild again.
            conn.execute("DELETE FROM projection_faults WHERE projection = %s", (self.name,))


def _position_query(schema: str, lock: bool) -> sql.Composed:
    query = sql.SQL("SELECT position FROM {} WHERE name = %s").format(
        sql.Identifier(schema, "projector_positions")
    )
    return sql.SQL("{} FOR UPDATE").format(query) if lock else query


def projection_position(
    conn: psycopg.Connection[Any], name: str, *, schema: str = LIVE_SCHEMA, lock: bool = False
) -> int:
    """The projection's committed position: the last log position its tables include
    (0 before its first run). `lock` holds its position row until the caller's
    transaction ends, so its projector waits instead of moving on (a rebuild's swap).

    Reads that need the position together with other rows in one statement keep it
    in their SQL instead (Projector._run_batch, monitoring.STATUS_SQL,
    gyms.revocation_shown_at, audit_verify._CHAINED_THROUGH): each says why."""
    row = conn.execute(_position_query(schema, lock), (name,)).fetchone()
    return 0 if row is None else int(row[0])


async def projection_position_async(
    conn: psycopg.AsyncConnection[Any], name: str, *, schema: str = LIVE_SCHEMA
) -> int:
    """projection_position on an async connection (the API's)."""
    cur = await conn.execute(_position_query(schema, lock=False), (name,))
    row = await cur.fetchone()
    return 0 if row is None else int(row[0])


def resume(conn: psycopg.Connection[Any], name: str) -> tuple[int, str] | None:
    """Clear a parked projection; returns where it was parked and why (None: not parked)."""
    row = conn.execute(
        "DELETE FROM projection_faults WHERE projection = %s RETURNING position, error", (name,)
    ).fetchone()
    return None if row is None else (int(row[0]), str(row[1]))


_JSON = msgspec.json.Encoder()


def in_pipeline(cur: psycopg.Cursor[TupleRow]) -> bool:
    return cur.connection.pgconn.pipeline_status != pq.PipelineStatus.OFF


class BulkInsert:
    """Rows gathered during a batch, written with one statement per table per batch.

    One statement per batch instead of one per event: the per-statement cost on the
    client, not PostgreSQL, is what limits a projector written in Python. Plain
    inserts use COPY, whose rows psycopg formats in C. An insert with a conflict
    clause (`suffix`), or any insert in pipeline mode (where COPY cannot run), sends
    the rows as one JSON document, encoded by msgspec in C and read back into typed
    columns by json_to_recordset: psycopg dumps array parameters element by element
    in Python, 25 µs of client CPU per customer row against 3 (bench/README.md).
    """

    def __init__(self, table: str, columns: dict[str, str], suffix: str = "") -> None:
        # Table, columns, types and suffix are constants of our code, never input.
        # Rendered once: psycopg renders a Composed again on every execute, and caches
        # the parsing of a plain string's placeholders (7% of a batch's client CPU).
        names = sql.SQL(", ").join(map(sql.Identifier, columns))
        self.copy_sql = (
            sql.SQL("COPY {} ({}) FROM STDIN").format(sql.Identifier(table), names).as_string()
        )
        # JSON has no bytes: msgspec writes them in base64, decoded here.
        read_back = sql.SQL(", ").join(
            sql.SQL("decode({}, 'base64')" if pg_type == "bytea" else "{}").format(
                sql.Identifier(name)
            )
            for name, pg_type in columns.items()
        )
        record = sql.SQL(", ").join(
            sql.SQL("{} {}").format(
                sql.Identifier(name), sql.SQL("text" if pg_type == "bytea" else pg_type)
            )
            for name, pg_type in columns.items()
        )
        self.insert_sql = (
            sql.SQL("INSERT INTO {} ({}) SELECT {} FROM json_to_recordset(%s::json) AS r({}) {}")
            .format(sql.Identifier(table), names, read_back, record, sql.SQL(suffix))
            .as_string()
        )
        self.names = tuple(columns)
        self.suffix = suffix
        self.width = len(columns)
        self.rows: list[tuple[object, ...]] = []

    def add(self, *values: object) -> None:
        assert len(values) == self.width
        self.rows.append(values)

    def flush(self, cur: psycopg.Cursor[TupleRow]) -> None:
        # Taken before writing: if the write fails, its transaction is rolled back, and
        # rows kept for a retry would be written twice (once more by the retry itself).
        rows, self.rows = self.rows, []
        if not rows:
            return
        if self.suffix or in_pipeline(cur):
            document = _JSON.encode([dict(zip(self.names, row, strict=True)) for row in rows])
            cur.execute(self.insert_sql, (document.decode(),))
        else:
            with cur.copy(self.copy_sql) as copy:
                for row in rows:
                    copy.write_row(row)
