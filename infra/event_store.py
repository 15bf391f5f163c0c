"""The event store's append: eventsourcing's PostgreSQL recorder, in one round trip.

eventsourcing's recorder keeps the global order gap-free by taking
`LOCK TABLE … IN EXCLUSIVE MODE` at the start of every append, so commits happen
in notification-id order and a reader never passes a gap that fills in later.
Its transaction takes two round trips (lock + insert, then COMMIT), and in a
threaded Python client the lock is also held while the thread waits for the GIL
between them: under 16 concurrent writers the lock queue, not PostgreSQL, capped
appends near 70/s (`bench/README.md`).

Here the same lock, NOTIFY and insert run inside one SQL function called on an
autocommit connection: a single statement, committed by the server as soon as
it returns. The lock is held only for the insert and the commit's WAL flush, never
across the network or the GIL. The ordering guarantee is unchanged, and
`tests/integration/test_event_store.py` checks it under concurrent writers.

The datastore fails fast when PostgreSQL is unreachable. eventsourcing retries
every read and append ten times on an OperationalError, and a pool that cannot
hand out a connection raises one after its whole timeout: a request would wait
ten timeouts before its 503. Here running out of time is its own error, which
is not retried. And the pool stops reconnecting in the background after a
moment instead of backing off for minutes: the next request tries again at
once, so service resumes as soon as PostgreSQL is back.
"""

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any
from uuid import UUID

import msgspec
from eventsourcing.persistence import (
    InterfaceError,
    OperationalError,
    PersistenceError,
    StoredEvent,
)
from eventsourcing.postgres import (
    PostgresApplicationRecorder,
    PostgresDatastore,
    PostgresFactory,
)
from eventsourcing.utils import Environment, EnvType, retry
from psycopg import Connection
from psycopg.rows import DictRow
from psycopg.sql import SQL
from psycopg_pool import PoolTimeout

from infra.group_commit import GroupCommit

# Seconds a pool keeps reconnecting in the background after losing connections.
RECONNECT_SECONDS = 2.0

# The table and channel are eventsourcing's, named after the application (infra/db.py).
# The body names them unqualified, as in every database made before migrations were
# templates (infra/migrate.py): PL/pgSQL resolves them per call, on the caller's path.
MIGRATION_SQL = """
CREATE OR REPLACE FUNCTION {schema}.gymledger_append(events {schema}.stored_event_uuid[])
RETURNS SETOF bigint
LANGUAGE plpgsql AS $$
BEGIN
    SET LOCAL lock_timeout = '5s';
    LOCK TABLE gymledger_events IN EXCLUSIVE MODE;
    NOTIFY gymledger_events;
    RETURN QUERY
        INSERT INTO gymledger_events (originator_id, originator_version, topic, state)
        SELECT originator_id, originator_version, topic, state FROM unnest(events)
        RETURNING notification_id;
END
$$;
"""

# The same append, refused (as a duplicate is: unique_violation) when a guarded stream
# has moved past the version the command decided on. A command that decided on a cached
# state (a gym's: open, its timezone) names that state's version instead of reading the
# stream again first, and stays exact: the check runs under the table lock, so nothing
# can be appended to the guarded stream between the check and the insert. The
# one-argument function stays for processes of the previous release (blue-green).
GUARDED_MIGRATION_SQL = """
CREATE OR REPLACE FUNCTION {schema}.gymledger_append(
    events {schema}.stored_event_uuid[], guard_ids uuid[], guard_versions bigint[]
)
RETURNS SETOF bigint
LANGUAGE plpgsql AS $$
BEGIN
    SET LOCAL lock_timeout = '5s';
    LOCK TABLE gymledger_events IN EXCLUSIVE MODE;
    -- One index probe per guard. Not a join with unnest(): PostgreSQL planned that
    -- afresh on every call (0.5 ms, more than the append), its generic plan's row
    -- estimate making it look dearer than a custom one.
    FOR i IN 1 .. coalesce(array_length(guard_ids, 1), 0) LOOP
        IF EXISTS (
            SELECT 1 FROM gymledger_events
            WHERE originator_id = guard_ids[i] AND originator_version > guard_versions[i]
        ) THEN
            RAISE unique_violation USING MESSAGE = 'a guarded stream has moved on';
        END IF;
    END LOOP;
    NOTIFY gymledger_events;
    RETURN QUERY
        INSERT INTO gymledger_events (originator_id, originator_version, topic, state)
        SELECT originator_id, originator_version, topic, state FROM unnest(events)
        RETURNING notification_id;
END
$$;
"""

# The guarded append again, its events and guards as JSON documents: psycopg dumps an
# array of composites in Python, field by field (45 us of client CPU for a command's
# two events, against 10 as msgspec JSON); the state's bytes travel in base64.
JSON_MIGRATION_SQL = """
CREATE OR REPLACE FUNCTION {schema}.gymledger_append_json(events json, guards json)
RETURNS SETOF bigint
LANGUAGE plpgsql AS $$
DECLARE
    guard record;
BEGIN
    SET LOCAL lock_timeout = '5s';
    LOCK TABLE gymledger_events IN EXCLUSIVE MODE;
    FOR guard IN SELECT * FROM json_to_recordset(guards) AS g(id uuid, version bigint) LOOP
        IF EXISTS (
            SELECT 1 FROM gymledger_events
            WHERE originator_id = guard.id AND originator_version > guard.version
        ) THEN
            RAISE unique_violation USING MESSAGE = 'a guarded stream has moved on';
        END IF;
    END LOOP;
    NOTIFY gymledger_events;
    RETURN QUERY
        INSERT INTO gymledger_events (originator_id, originator_version, topic, state)
        SELECT e.originator_id, e.originator_version, e.topic, decode(e.state, 'base64')
        FROM json_to_recordset(events)
            AS e(originator_id uuid, originator_version bigint, topic text, state text)
        RETURNING notification_id;
END
$$;
"""

_APPEND = SQL("SELECT gymledger_append_json(%s, %s) AS notification_id")
_JSON = msgspec.json.Encoder()
# Streams whose state a command decided on, by the version it saw (see above).
Guards = dict[UUID, int]


class SingleTripRecorder(PostgresApplicationRecorder):
    """Appends with one statement, concurrent appends of this process together
    (infra/group_commit.py); everything else is eventsourcing's recorder."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.group_commit = GroupCommit()

    # Same retry policy as the recorder it replaces: a dropped pooled connection is
    # retried on a fresh one; a duplicate (stream, version) is not (IntegrityError).
    @retry((InterfaceError, OperationalError), max_attempts=10, wait=0.2)
    def insert_events(
        self, stored_events: Sequence[StoredEvent], **kwargs: Any
    ) -> Sequence[int] | None:
        if not stored_events:
            return []
        rows = [
            {
                "originator_id": e.originator_id,
                "originator_version": e.originator_version,
                "topic": e.topic,
                "state": e.state,
            }
            for e in stored_events
        ]
        guards: Guards = kwargs.get("guards") or {}
        return self.group_commit.append(rows, list(guards.items()), self._append)

    def _append(self, rows: Sequence[Any], guards: Sequence[tuple[UUID, int]]) -> list[int]:
        events = _JSON.encode(rows).decode()
        guarded = _JSON.encode([{"id": stream, "version": v} for stream, v in guards]).decode()
        with self.datastore.get_connection() as conn, conn.cursor() as cursor:
            # autocommit: the statement is its own transaction, committed server-side.
            cursor.execute(_APPEND, (events, guarded), prepare=True)
            return [row["notification_id"] for row in cursor.fetchall()]


class DatabaseUnavailable(PersistenceError):
    """No connection within the pool's timeout. Deliberately not an OperationalError,
    which eventsourcing's recorders retry."""


class FailFastDatastore(PostgresDatastore):
    @contextmanager
    def get_connection(self) -> Iterator[Connection[DictRow]]:
        try:
            with super().get_connection() as conn:
                yield conn
        except OperationalError as error:
            if isinstance(error.__cause__, PoolTimeout):
                raise DatabaseUnavailable(str(error)) from error.__cause__
            raise


class Factory(PostgresFactory):
    """eventsourcing's PostgreSQL factory with the fail-fast datastore."""

    def __init__(self, env: Environment | EnvType | None) -> None:
        super().__init__(env)
        # eventsourcing builds its datastore inside __init__, with no hook to pick
        # the class; the subclass only overrides a method, so switching is safe.
        self.datastore.__class__ = FailFastDatastore
        self.datastore.pool.reconnect_timeout = RECONNECT_SECONDS
