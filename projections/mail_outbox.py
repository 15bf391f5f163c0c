"""Mail outbox: one row per mail a past event calls for.

Rows are keyed by a deterministic `dedupe_key` and inserted with ON CONFLICT DO
NOTHING, and this table is never emptied by a rebuild: replaying the log can not
create a second mail. Sending (workers/mail.py) only ever reads this table.
"""

from datetime import datetime
from typing import Annotated, Any, Literal
from uuid import UUID

import msgspec
import psycopg
from psycopg.rows import TupleRow, class_row

from domain.customer import CustomerRegistered
from domain.events import DomainEvent
from domain.gym import GymClosed, GymProfileUpdated, GymRegistered
from domain.membership import MembershipReminderQueued
from projections.engine import BulkInsert, Projection, Recorded

MIGRATION_SQL = """
CREATE TABLE IF NOT EXISTS {schema}.mail_outbox (
    id bigserial PRIMARY KEY,
    dedupe_key text NOT NULL UNIQUE,
    gym_id uuid NOT NULL,
    recipient text NOT NULL,
    subject text NOT NULL,
    body text NOT NULL,
    correlation_id text NOT NULL,
    status text NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'sent', 'failed')),
    attempts integer NOT NULL DEFAULT 0,
    last_error text,
    created_at timestamptz NOT NULL DEFAULT now(),
    enqueued_at timestamptz,
    sent_at timestamptz
);
CREATE INDEX IF NOT EXISTS mail_outbox_unsent ON {schema}.mail_outbox (id) WHERE status = 'pending';
"""

RELAY_INDEXES_SQL = """
DROP INDEX IF EXISTS {schema}.mail_outbox_unsent;
CREATE INDEX IF NOT EXISTS mail_outbox_new
    ON {schema}.mail_outbox (id) WHERE status = 'pending' AND enqueued_at IS NULL;
CREATE INDEX IF NOT EXISTS mail_outbox_handed_over
    ON {schema}.mail_outbox (enqueued_at) WHERE status = 'pending' AND enqueued_at IS NOT NULL;
"""

MAIL_LOG_INDEX_SQL = """
CREATE INDEX IF NOT EXISTS mail_outbox_gym ON {schema}.mail_outbox (gym_id, id DESC);
"""

# How many mails are in each status, kept by triggers so /health and /metrics read a
# few rows instead of counting a table that only grows. Every writer is covered,
# whatever its code path: the projector's inserts, the worker's status changes, a
# restore's COPY, a TRUNCATE. Counts are split over 16 shards by backend, so mail
# workers finishing at the same moment rarely wait on one row; a reader sums them.
# The worker's one-row updates lock at most two rows, always in status order.
# The functions' bodies name the counts table unqualified, as in every database made
# before templates: PL/pgSQL resolves it when the trigger fires, on the writer's
# search path, where the outbox and its counts are.
COUNTS_SQL = """
LOCK TABLE {schema}.mail_outbox IN SHARE ROW EXCLUSIVE MODE;
CREATE TABLE IF NOT EXISTS {schema}.mail_outbox_counts (
    status text NOT NULL,
    shard smallint NOT NULL,
    n bigint NOT NULL,
    PRIMARY KEY (status, shard)
);
CREATE OR REPLACE FUNCTION {schema}.mail_outbox_count_rows() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'TRUNCATE' THEN
        DELETE FROM mail_outbox_counts;
    ELSIF TG_OP = 'INSERT' THEN
        INSERT INTO mail_outbox_counts AS c (status, shard, n)
        SELECT status, pg_backend_pid() % 16, count(*) FROM added GROUP BY status ORDER BY status
        ON CONFLICT (status, shard) DO UPDATE SET n = c.n + excluded.n;
    ELSE
        INSERT INTO mail_outbox_counts AS c (status, shard, n)
        SELECT status, pg_backend_pid() % 16, -count(*) FROM removed GROUP BY status ORDER BY status
        ON CONFLICT (status, shard) DO UPDATE SET n = c.n + excluded.n;
    END IF;
    RETURN NULL;
END
$$;
CREATE OR REPLACE FUNCTION {schema}.mail_outbox_count_status_change() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO mail_outbox_counts AS c (status, shard, n)
    SELECT s, pg_backend_pid() % 16, d FROM (VALUES (OLD.status, -1), (NEW.status, 1)) AS v (s, d)
    ORDER BY s
    ON CONFLICT (status, shard) DO UPDATE SET n = c.n + excluded.n;
    RETURN NULL;
END
$$;
CREATE TRIGGER mail_outbox_count_inserts AFTER INSERT ON {schema}.mail_outbox
    REFERENCING NEW TABLE AS added
    FOR EACH STATEMENT EXECUTE FUNCTION {schema}.mail_outbox_count_rows();
CREATE TRIGGER mail_outbox_count_deletes AFTER DELETE ON {schema}.mail_outbox
    REFERENCING OLD TABLE AS removed
    FOR EACH STATEMENT EXECUTE FUNCTION {schema}.mail_outbox_count_rows();
CREATE TRIGGER mail_outbox_count_truncates AFTER TRUNCATE ON {schema}.mail_outbox
    FOR EACH STATEMENT EXECUTE FUNCTION {schema}.mail_outbox_count_rows();
-- Row by row, and only when the status changes: the relay's enqueued_at updates of
-- a thousand rows at a time never fire it.
CREATE TRIGGER mail_outbox_count_status AFTER UPDATE OF status ON {schema}.mail_outbox
    FOR EACH ROW WHEN (OLD.status IS DISTINCT FROM NEW.status)
    EXECUTE FUNCTION {schema}.mail_outbox_count_status_change();
"""

# Still under the migration's lock: no mail changes status between the count and
# the triggers taking over.
COUNTS_BACKFILL_SQL = """
INSERT INTO {schema}.mail_outbox_counts (status, shard, n)
    SELECT status, 0, count(*) FROM {schema}.mail_outbox GROUP BY status;
"""


class OutboxMail(msgspec.Struct, frozen=True):
    id: int
    dedupe_key: str
    gym_id: UUID
    recipient: str
    subject: str
    body: str
    correlation_id: str
    status: str
    attempts: int
    created_at: datetime
    sent_at: datetime | None


def welcome_gym_owner(event: GymRegistered) -> tuple[str, str]:
    subject = f"Welcome to GymLedger, {event.name}"
    body = (
        f"Hello,\n\nyour gym {event.name} is registered with GymLedger.\n"
        "Log in with this email address to manage your members.\n\n"
        "The GymLedger team\n"
    )
    return subject, body


def welcome_customer(event: CustomerRegistered, gym_name: str) -> tuple[str, str]:
    subject = f"Welcome to {gym_name}"
    body = (
        f"Hello {event.first_name},\n\nwelcome to {gym_name}! "
        "We are glad to have you as a member.\n\n"
        f"See you soon,\n{gym_name}\n"
    )
    return subject, body


def membership_reminder(
    event: MembershipReminderQueued, first_name: str, plan_name: str, gym_name: str
) -> tuple[str, str]:
    last_day = event.ends_on.strftime("%A, %d %B %Y")
    subject = f"Your {plan_name} membership at {gym_name} ends on {event.ends_on.isoformat()}"
    body = (
        f"Hello {first_name},\n\nyour {plan_name} membership at {gym_name} ends on {last_day}.\n"
        "Ask us at the front desk to renew it, so that nothing stops your training.\n\n"
        f"See you soon,\n{gym_name}\n"
    )
    return subject, body


# Gyms whose names are kept between batches (a few hundred bytes each).
MAX_NAMES_KEPT = 10_000


class MailOutboxProjection(Projection):
    name = "mail_outbox"
    tables: tuple[str, ...] = ("mail_outbox",)
    rebuildable = False

    def __init__(self) -> None:
        # Gym names (None: closed) as of the last event applied, kept from batch to
        # batch: every event that changes one passes through apply() in log order, so
        # the gyms table is read once per gym, not once per live batch (a round trip
        # inside its pipeline). Dropped whenever the log moved without this instance.
        self._names: dict[UUID, str | None] = {}
        self._mails = BulkInsert(
            "mail_outbox",
            {
                "dedupe_key": "text",
                "gym_id": "uuid",
                "recipient": "text",
                "subject": "text",
                "body": "text",
                "correlation_id": "text",
            },
            suffix="ON CONFLICT (dedupe_key) DO NOTHING",
        )

    def begin_batch(self, cur: psycopg.Cursor[TupleRow]) -> None:
        if len(self._names) > MAX_NAMES_KEPT:
            self._names.clear()
        self._mails.rows.clear()

    def forget(self) -> None:
        self._names.clear()

    def end_batch(self, cur: psycopg.Cursor[TupleRow]) -> None:
        self._mails.flush(cur)

    def _enqueue(
        self, key: str, gym_id: UUID, event: DomainEvent, recipient: str, mail: tuple[str, str]
    ) -> None:
        subject, body = mail
        self._mails.add(key, gym_id, recipient, subject, body, event.metadata.correlation_id)

    def _gym_name(self, cur: psycopg.Cursor[TupleRow], gym_id: UUID) -> str | None:
        if gym_id not in self._names:
            row = cur.execute("SELECT name FROM gyms WHERE id = %s", (gym_id,)).fetchone()
            self._names[gym_id] = None if row is None else str(row[0])
        return self._names[gym_id]

    def apply(self, cur: psycopg.Cursor[TupleRow], recorded: Recorded) -> None:
        event = recorded.event
        match event:
            case GymRegistered():
                self._names[event.originator_id] = event.name
                key = f"welcome-gym:{event.originator_id}"
                self._enqueue(
                    key, event.originator_id, event, event.email, welcome_gym_owner(event)
                )
            case GymProfileUpdated() if isinstance(event.name, str):
                self._names[event.originator_id] = event.name
            case GymClosed():
                self._names[event.originator_id] = None
            case CustomerRegistered():
                gym_name = self._gym_name(cur, event.gym_id)
                if gym_name is not None:  # the gym closed before this replay got here
                    key = f"welcome-customer:{event.originator_id}"
                    mail = welcome_customer(event, gym_name)
                    self._enqueue(key, event.gym_id, event, event.email, mail)
            case MembershipReminderQueued():
                self._remind(cur, event)

    def _remind(self, cur: psycopg.Cursor[TupleRow], event: MembershipReminderQueued) -> None:
        """To the customer as the read model holds them now (this batch's changes
        included): the address they gave last, not the one at signup."""
        gym_name = self._gym_name(cur, event.gym_id)
        found = cur.execute(
            "SELECT c.email, c.first_name, m.plan_name FROM memberships m"
            " JOIN customers c ON c.id = m.customer_id WHERE m.id = %s",
            (event.originator_id,),
        ).fetchone()
        if gym_name is None or found is None:  # the gym closed or the customer left
            return
        email, first_name, plan_name = found
        key = f"membership-reminder:{event.originator_id}:{event.term_number}"
        mail = membership_reminder(event, first_name, plan_name, gym_name)
        self._enqueue(key, event.gym_id, event, email, mail)


# --- used by the mail worker and relay -------------------------------------------------

CLAIM_LOCK_TIMEOUT_SECONDS = 30  # beyond any SMTP timeout a sending worker may be in
_COLUMNS = (
    "id, dedupe_key, gym_id, recipient, subject, body, correlation_id, status, attempts,"
    " created_at, sent_at"
)


def claim_batch(conn: psycopg.Connection[Any], mail_ids: list[int]) -> list[OutboxMail]:
    """Lock the batch's pending mails for the current transaction, in id order (so two
    workers holding overlapping batches cannot deadlock); sent and dead-lettered mails
    are left out.

    Waits for a transaction holding a row: the relay that handed it over commits
    after sending the message, which a worker may already be holding (skipping the
    row then left about 1% of bench mail pending until requeued minutes later), and
    a worker sending a duplicate message's mail commits its `sent` first. A wait
    longer than the lock timeout fails the task, which dramatiq retries.
    """
    conn.execute(f"SET LOCAL lock_timeout = '{CLAIM_LOCK_TIMEOUT_SECONDS}s'")
    with conn.cursor(row_factory=class_row(OutboxMail)) as cur:
        cur.execute(
            f"SELECT {_COLUMNS} FROM mail_outbox WHERE id = ANY(%s) AND status = 'pending'"  # noqa: S608
            " ORDER BY id FOR UPDATE",
            (mail_ids,),
        )
        return cur.fetchall()


def mark_all_sent(conn: psycopg.Connection[Any], mail_ids: list[int]) -> None:
    conn.execute(
        "UPDATE mail_outbox SET status = 'sent', sent_at = now(), attempts = attempts + 1,"
        " last_error = NULL WHERE id = ANY(%s)",
        (mail_ids,),
    )


def record_failures(conn: psycopg.Connection[Any], failures: list[tuple[int, str, bool]]) -> None:
    """(mail id, error, final) for each mail that failed: one statement for all."""
    if not failures:
        return
    ids, errors, finals = zip(*failures, strict=True)
    conn.execute(
        "UPDATE mail_outbox m SET attempts = m.attempts + 1, last_error = f.error,"
        " status = CASE WHEN f.final THEN 'failed' ELSE m.status END"
        " FROM unnest(%s::bigint[], %s::text[], %s::boolean[]) AS f(id, error, final)"
        " WHERE m.id = f.id",
        (list(ids), [e[:500] for e in errors], list(finals)),
    )


_TAKE = (
    "UPDATE mail_outbox SET enqueued_at = now() WHERE id IN ("
    " SELECT id FROM mail_outbox WHERE status = 'pending' AND {}"
    " ORDER BY {} LIMIT 1000 FOR UPDATE SKIP LOCKED) RETURNING id, correlation_id"
)
# Two queries, each with its own partial index, so a large backlog of mails already
# handed over never has to be scanned on every relay run.
_NEW = _TAKE.format("enqueued_at IS NULL", "id")
_STALE = _TAKE.format("enqueued_at < now() - make_interval(secs => %s)", "enqueued_at")


def take_unenqueued(
    conn: psycopg.Connection[Any], stale_after_seconds: int | None = None
) -> list[tuple[int, str]]:
    """(id, request id) of pending mails never handed to the queue; with
    `stale_after_seconds`, those handed over that long ago instead (message lost)."""
    if stale_after_seconds is None:
        rows = conn.execute(_NEW).fetchall()
    else:
        rows = conn.execute(_STALE, (stale_after_seconds,)).fetchall()
    return sorted((int(r[0]), str(r[1])) for r in rows)


def unmark_enqueued(conn: psycopg.Connection[Any], mail_ids: list[int]) -> None:
    """The queue refused them (Redis down): the next relay run tries again."""
    conn.execute("UPDATE mail_outbox SET enqueued_at = NULL WHERE id = ANY(%s)", (mail_ids,))


class MailLogEntry(msgspec.Struct, frozen=True):
    """What an owner sees of their gym's mail: delivery state, never the body."""

    id: int
    recipient: str
    subject: str
    status: Literal["pending", "sent", "failed"]  # the table's CHECK
    attempts: int
    last_error: str | None
    created_at: Annotated[datetime, msgspec.Meta(tz=True)]
    sent_at: Annotated[datetime, msgspec.Meta(tz=True)] | None


async def mail_log(
    conn: psycopg.AsyncConnection[Any], gym_id: UUID, status: str | None, limit: int, offset: int
) -> list[MailLogEntry]:
    async with conn.cursor(row_factory=class_row(MailLogEntry)) as cur:
        await cur.execute(
            "SELECT id, recipient, subject, status, attempts, last_error, created_at, sent_at"
            " FROM mail_outbox WHERE gym_id = %s AND (%s::text IS NULL OR status = %s)"
            " ORDER BY id DESC LIMIT %s OFFSET %s",
            (gym_id, status, status, limit, offset),
        )
        return await cur.fetchall()
