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
"""

from collections.abc import Sequence
from typing import Any

from eventsourcing.persistence import InterfaceError, OperationalError, StoredEvent
from eventsourcing.postgres import PostgresApplicationRecorder
from eventsourcing.utils import retry
from psycopg.sql import SQL

# The table and channel are eventsourcing's, named after the application (infra/db.py).
MIGRATION_SQL = """
CREATE OR REPLACE FUNCTION gymledger_append(events stored_event_uuid[])
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

_APPEND = SQL("SELECT gymledger_append(%s) AS notification_id")


class SingleTripRecorder(PostgresApplicationRecorder):
    """Appends with one statement; everything else is eventsourcing's recorder."""

    # Same retry policy as the recorder it replaces: a dropped pooled connection is
    # retried on a fresh one; a duplicate (stream, version) is not (IntegrityError).
    @retry((InterfaceError, OperationalError), max_attempts=10, wait=0.2)
    def insert_events(
        self, stored_events: Sequence[StoredEvent], **kwargs: Any
    ) -> Sequence[int] | None:
        if not stored_events:
            return []
        rows = [
            self.construct_pg_stored_event(e.originator_id, e.originator_version, e.topic, e.state)
            for e in stored_events
        ]
        with self.datastore.get_connection() as conn, conn.cursor() as cursor:
            # autocommit: the statement is its own transaction, committed server-side.
            cursor.execute(_APPEND, (rows,), prepare=True)
            return [row["notification_id"] for row in cursor.fetchall()]

