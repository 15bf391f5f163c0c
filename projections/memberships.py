"""Read model of memberships: one row per membership of a present customer, and one
row per freeze.

Status is never stored: it is derived when read from the gym-local date
(domain.membership.status_on); `_STATUS` below is its SQL twin, used only to filter
and count the gym's list (tests/integration/test_membership_projection_property.py holds the
two to each other). A customer's removal or the gym's closing takes its memberships
off the read side; their streams stay in the log.
"""

import functools
from datetime import date, datetime, timedelta
from typing import Any
from uuid import UUID

import msgspec
import psycopg
from psycopg import sql
from psycopg.rows import TupleRow

from domain.customer import CustomerRemoved
from domain.gym import GymClosed
from domain.membership import (
    Freeze,
    Membership,
    MembershipCancelled,
    MembershipEvent,
    MembershipFrozen,
    MembershipReminderQueued,
    MembershipRenewed,
    MembershipSold,
    MembershipTermExpired,
    MembershipUnfrozen,
    Status,
)
from domain.terms import Term
from projections.engine import Projection, Recorded

# The table's shape, which the check-in and worker code build on: a column is never
# renamed or repurposed once released (add one with a migration of its own).
MIGRATION_SQL = """
CREATE TABLE IF NOT EXISTS {schema}.memberships (
    id uuid PRIMARY KEY,
    gym_id uuid NOT NULL,
    customer_id uuid NOT NULL,
    version integer NOT NULL,
    plan_id uuid NOT NULL,
    plan_name text NOT NULL,
    price_cents bigint NOT NULL,
    currency text NOT NULL,
    term_months integer,
    term_days integer,
    max_freeze_days integer NOT NULL,
    starts_on date NOT NULL,
    ends_on date NOT NULL,
    term_number integer NOT NULL,
    term_starts_on date NOT NULL,
    cancelled_on date,
    cancel_reason text,
    expired_term integer NOT NULL,
    reminded_term integer NOT NULL,
    created_at timestamptz NOT NULL,
    updated_at timestamptz NOT NULL
);
-- A customer's memberships, newest sale first (also serves (gym_id, customer_id)).
CREATE INDEX IF NOT EXISTS memberships_gym_customer
    ON {schema}.memberships (gym_id, customer_id, created_at DESC, id DESC);
-- The gym's list ("expiring soon"): by last day, id as the tie-breaker.
CREATE INDEX IF NOT EXISTS memberships_gym_ends ON {schema}.memberships (gym_id, ends_on, id);
-- The expiry and reminder jobs' work list (replaced by one partial index per job in 0022).
CREATE INDEX IF NOT EXISTS memberships_due
    ON {schema}.memberships (ends_on) WHERE cancelled_on IS NULL;
-- Both days frozen; a membership's freezes never overlap, so starts_on names one.
CREATE TABLE IF NOT EXISTS {schema}.membership_freezes (
    membership_id uuid NOT NULL,
    gym_id uuid NOT NULL,
    starts_on date NOT NULL,
    ends_on date NOT NULL,
    reason text,
    PRIMARY KEY (membership_id, starts_on)
);
CREATE INDEX IF NOT EXISTS membership_freezes_gym ON {schema}.membership_freezes (gym_id);
"""


class MembershipsProjection(Projection):
    name = "memberships"
    tables: tuple[str, ...] = ("memberships", "membership_freezes")
    rebuildable = True

    def __init__(self) -> None:
        # Customers sold a membership in this batch. The customers list asks "holds
        # memberships?" of every row it filters by `active`, and a column in its covering
        # index answers that without a look at this table. Set at the end of the batch:
        # a customer registered in the same batch is written by then (customers are
        # inserted in bulk when their batch ends, and that projection's end comes first).
        self._holders: set[UUID] = set()

    def begin_batch(self, cur: psycopg.Cursor[TupleRow]) -> None:
        self._holders.clear()

    def end_batch(self, cur: psycopg.Cursor[TupleRow]) -> None:
        if self._holders:
            cur.execute(
                "UPDATE customers SET holds_memberships = true"
                " WHERE id = ANY(%s) AND NOT holds_memberships",
                (list(self._holders),),
            )

    def apply(self, cur: psycopg.Cursor[TupleRow], recorded: Recorded) -> None:
        event = recorded.event
        if isinstance(event, GymClosed):
            cur.execute("DELETE FROM membership_freezes WHERE gym_id = %s", (event.originator_id,))
            cur.execute("DELETE FROM memberships WHERE gym_id = %s", (event.originator_id,))
        elif isinstance(event, CustomerRemoved):
            cur.execute(
                "DELETE FROM membership_freezes WHERE membership_id IN (SELECT id FROM memberships"
                " WHERE gym_id = %s AND customer_id = %s)",
                (event.gym_id, event.originator_id),
            )
            cur.execute(
                "DELETE FROM memberships WHERE gym_id = %s AND customer_id = %s",
                (event.gym_id, event.originator_id),
            )
        elif isinstance(event, MembershipSold):
            _insert(cur, event)
            self._holders.add(event.customer_id)
        elif isinstance(event, MembershipEvent):
            _apply_change(cur, event)


_INSERT_SQL = (
    "INSERT INTO memberships (id, gym_id, customer_id, version, plan_id, plan_name,"
    " price_cents, currency, term_months, term_days, max_freeze_days, starts_on, ends_on,"
    " term_number, term_starts_on, cancelled_on, cancel_reason, expired_term, reminded_term,"
    " created_at, updated_at)"
    " VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, 1, %s, NULL, NULL, 0, 0, %s, %s)"
)


def _insert(cur: psycopg.Cursor[TupleRow], e: MembershipSold) -> None:
    cur.execute(
        _INSERT_SQL,
        (
            e.originator_id,
            e.gym_id,
            e.customer_id,
            e.originator_version,
            e.plan_id,
            e.plan_name,
            e.price_cents,
            e.currency,
            e.term.months,
            e.term.days,
            e.max_freeze_days,
            e.starts_on,
            e.ends_on,
            e.starts_on,
            e.timestamp,
            e.timestamp,
        ),
    )


def _apply_change(cur: psycopg.Cursor[TupleRow], event: MembershipEvent) -> None:
    """The columns the event changes, and its freeze rows (domain.membership.evolve)."""
    changes: dict[str, Any] = {"version": event.originator_version, "updated_at": event.timestamp}
    match event:
        case MembershipFrozen():
            cur.execute(
                "INSERT INTO membership_freezes (membership_id, gym_id, starts_on, ends_on, reason)"
                " VALUES (%s, %s, %s, %s, %s)",
                (event.originator_id, event.gym_id, event.starts_on, event.ends_on, event.reason),
            )
            changes["ends_on"] = event.membership_ends_on
        case MembershipUnfrozen():
            # The freeze ends the day before `on`; one unfrozen on its first day is gone.
            cur.execute(
                "DELETE FROM membership_freezes WHERE membership_id = %s AND starts_on = %s"
                " AND starts_on >= %s",
                (event.originator_id, event.freeze_starts_on, event.on),
            )
            if event.on > event.freeze_starts_on:  # else the freeze is gone, and the day
                cur.execute(  # before `on` may be before the calendar's first
                    "UPDATE membership_freezes SET ends_on = %s"
                    " WHERE membership_id = %s AND starts_on = %s",
                    (event.on - timedelta(days=1), event.originator_id, event.freeze_starts_on),
                )
            changes["ends_on"] = event.membership_ends_on
            changes["term_starts_on"] = event.term_starts_on
        case MembershipRenewed():
            changes |= {
                "term_number": event.term_number,
                "term_starts_on": event.term_starts_on,
                "ends_on": event.ends_on,
                "price_cents": event.price_cents,
                "currency": event.currency,
            }
        case MembershipCancelled():
            changes |= {"cancelled_on": event.effective_on, "cancel_reason": event.reason}
        case MembershipTermExpired():  # the system's notes leave updated_at alone
            changes = {"version": event.originator_version, "expired_term": event.term_number}
        case MembershipReminderQueued():
            changes = {"version": event.originator_version, "reminded_term": event.term_number}
        case _:
            raise ValueError(f"cannot apply {type(event).__name__} to a membership")
    cur.execute(_update_sql(tuple(changes)), (*changes.values(), event.originator_id))


@functools.cache
def _update_sql(columns: tuple[str, ...]) -> sql.Composed:
    assignments = sql.SQL(", ").join(sql.SQL("{} = %s").format(sql.Identifier(c)) for c in columns)
    return sql.SQL("UPDATE memberships SET {} WHERE id = %s").format(assignments)


# --- queries (gym_id first, always) ------------------------------------------------

# SQL twin of domain.membership.status_on (keep the two in step: the same tests in
# the same order); %(today)s is the gym's local date.
_STATUS = """(CASE
    WHEN m.cancelled_on IS NOT NULL AND %(today)s::date >= m.cancelled_on THEN 'cancelled'
    WHEN %(today)s::date < m.starts_on THEN 'upcoming'
    WHEN %(today)s::date > m.ends_on THEN 'expired'
    WHEN EXISTS (SELECT 1 FROM membership_freezes f WHERE f.membership_id = m.id
                 AND f.starts_on <= %(today)s::date AND %(today)s::date <= f.ends_on)
        THEN 'frozen'
    ELSE 'active' END)"""

# SQL twin of `status_on(m, today) is Status.ACTIVE`: the membership gives access today.
ACCESS_TODAY = """(m.starts_on <= %(today)s::date AND %(today)s::date <= m.ends_on
    AND (m.cancelled_on IS NULL OR %(today)s::date < m.cancelled_on)
    AND NOT EXISTS (SELECT 1 FROM membership_freezes f WHERE f.membership_id = m.id
                    AND f.starts_on <= %(today)s::date AND %(today)s::date <= f.ends_on))"""

_FREEZES = (
    "COALESCE((SELECT json_agg(json_build_array(f.starts_on, f.ends_on, f.reason)"
    " ORDER BY f.starts_on) FROM membership_freezes f WHERE f.membership_id = m.id), '[]')"
)
_COLUMNS = (
    "m.id, m.gym_id, m.customer_id, m.plan_id, m.plan_name, m.version, m.price_cents,"
    " m.currency, m.term_months, m.term_days, m.max_freeze_days, m.starts_on, m.ends_on,"
    f" m.term_number, m.term_starts_on, {_FREEZES}, m.cancelled_on, m.cancel_reason,"
    " m.expired_term, m.reminded_term, m.created_at, m.updated_at"
)
_NEWEST_FIRST = " ORDER BY m.created_at DESC, m.id DESC"


def membership_of_row(values: Any) -> Membership:
    """A domain Membership from a row in _COLUMNS order."""
    (id_, gym_id, customer_id, plan_id, plan_name, version, price, currency, months, days) = values[
        :10
    ]
    (max_freeze, starts_on, ends_on, term_number, term_starts_on, freezes) = values[10:16]
    (cancelled_on, cancel_reason, expired_term, reminded_term, created, updated) = values[16:]
    return Membership(
        id=id_,
        gym_id=gym_id,
        customer_id=customer_id,
        plan_id=plan_id,
        plan_name=plan_name,
        version=version,
        price_cents=price,
        currency=currency,
        term=Term(months=months, days=days),
        max_freeze_days=max_freeze,
        starts_on=starts_on,
        ends_on=ends_on,
        term_number=term_number,
        term_starts_on=term_starts_on,
        freezes=tuple(
            Freeze(starts_on=date.fromisoformat(s), ends_on=date.fromisoformat(e), reason=r)
            for s, e, r in freezes
        ),
        cancelled_on=cancelled_on,
        cancel_reason=cancel_reason,
        expired_term=expired_term,
        reminded_term=reminded_term,
        created_at=created,
        updated_at=updated,
    )


_OF_CUSTOMER_SQL = (
    f"SELECT {_COLUMNS} FROM memberships m"  # noqa: S608 - fixed fragments
    " WHERE m.gym_id = %s AND m.customer_id = %s" + _NEWEST_FIRST
)
_OF_CUSTOMERS_SQL = (
    f"SELECT {_COLUMNS} FROM memberships m"  # noqa: S608 - fixed fragments
    " WHERE m.gym_id = %s AND m.customer_id = ANY(%s)" + _NEWEST_FIRST
)


def memberships_of(cur: psycopg.Cursor[Any], gym_id: UUID, customer_id: UUID) -> list[Membership]:
    """The customer's memberships as the domain sees them, newest sale first."""
    cur.execute(_OF_CUSTOMER_SQL, (gym_id, customer_id))
    return [membership_of_row(row) for row in cur.fetchall()]


async def customer_memberships(
    conn: psycopg.AsyncConnection[Any], gym_id: UUID, customer_id: UUID
) -> list[Membership]:
    """memberships_of on the API's connections."""
    cur = await conn.execute(_OF_CUSTOMER_SQL, (gym_id, customer_id))
    return [membership_of_row(row) for row in await cur.fetchall()]


async def memberships_of_customers(
    conn: psycopg.AsyncConnection[Any], gym_id: UUID, customer_ids: list[UUID]
) -> dict[UUID, list[Membership]]:
    """The memberships of each of these customers (a page of the customer list), newest first."""
    found: dict[UUID, list[Membership]] = {}
    if not customer_ids:
        return found
    cur = await conn.execute(_OF_CUSTOMERS_SQL, (gym_id, customer_ids))
    for row in await cur.fetchall():
        membership = membership_of_row(row)
        found.setdefault(membership.customer_id, []).append(membership)
    return found


async def get_membership(
    conn: psycopg.AsyncConnection[Any], gym_id: UUID, membership_id: UUID
) -> Membership | None:
    cur = await conn.execute(
        f"SELECT {_COLUMNS} FROM memberships m WHERE m.gym_id = %s AND m.id = %s",  # noqa: S608
        (gym_id, membership_id),
    )
    row = await cur.fetchone()
    return None if row is None else membership_of_row(row)


class MembershipFilter(msgspec.Struct, frozen=True, kw_only=True):
    status: Status | None = None  # as status_on derives it on the gym's today
    ends_before: date | None = None  # last day strictly before this date
    limit: int = 50
    offset: int = 0


def _where(gym_id: UUID, f: MembershipFilter, today: date) -> tuple[str, dict[str, Any]]:
    clauses = ["m.gym_id = %(gym_id)s"]
    params: dict[str, Any] = {"gym_id": gym_id, "today": today}
    if f.status is not None:
        clauses.append(f"{_STATUS} = %(status)s")
        params["status"] = f.status.value
    if f.ends_before is not None:
        clauses.append("m.ends_on < %(ends_before)s")
        params["ends_before"] = f.ends_before
    return " AND ".join(clauses), params


def list_query(gym_id: UUID, f: MembershipFilter, today: date) -> tuple[str, dict[str, Any]]:
    """One page of the gym's memberships by last day (soonest first), in _COLUMNS order."""
    where, params = _where(gym_id, f, today)
    return (
        f"SELECT {_COLUMNS} FROM memberships m WHERE {where}"  # noqa: S608 - fixed fragments
        " ORDER BY m.ends_on, m.id LIMIT %(limit)s OFFSET %(offset)s",
        {**params, "limit": f.limit, "offset": f.offset},
    )


def count_query(gym_id: UUID, f: MembershipFilter, today: date) -> tuple[str, dict[str, Any]]:
    where, params = _where(gym_id, f, today)
    return f"SELECT count(*) FROM memberships m WHERE {where}", params  # noqa: S608


async def list_memberships(
    conn: psycopg.AsyncConnection[Any], gym_id: UUID, f: MembershipFilter, today: date
) -> tuple[list[Membership], int]:
    """One page of the gym's memberships by last day (soonest first), and how many match."""
    cur = await conn.execute(*list_query(gym_id, f, today))
    page = [membership_of_row(row) for row in await cur.fetchall()]
    counted = await conn.execute(*count_query(gym_id, f, today))
    total = await counted.fetchone()
    return page, int(total[0]) if total else 0


# --- the scheduler's work lists (across gyms) ---------------------------------------

# One partial index per list, holding only what is still to do: a term already recorded
# as expired (or reminded of) leaves its list's index, so a run reads what is due rather
# than every membership that ever ended.
WORK_LIST_INDEXES_SQL = """
DROP INDEX IF EXISTS {schema}.memberships_due;
CREATE INDEX IF NOT EXISTS memberships_expiry_due ON {schema}.memberships (ends_on)
    WHERE cancelled_on IS NULL AND expired_term < term_number;
CREATE INDEX IF NOT EXISTS memberships_reminder_due ON {schema}.memberships (ends_on)
    WHERE cancelled_on IS NULL AND reminded_term < term_number;
"""

# The gym's local day, as domain.validation.local_date computes it.
_TODAY = "(%(now)s AT TIME ZONE g.timezone)::date"

# SQL twin of domain.membership.expire: not cancelled, the term's last day before
# today, and not recorded yet.
_DUE_FOR_EXPIRY = f"""
SELECT m.id FROM memberships m JOIN gyms g ON g.id = m.gym_id
WHERE m.cancelled_on IS NULL AND m.expired_term < m.term_number
  AND m.ends_on < {_TODAY}
ORDER BY m.ends_on LIMIT %(limit)s
"""  # noqa: S608 - constant SQL

# SQL twin of domain.membership.remind: the gym reminds, not cancelled, today within
# `reminder_days` before the last day, and no reminder of this term yet.
_DUE_FOR_REMINDER = f"""
SELECT m.id FROM memberships m JOIN gyms g ON g.id = m.gym_id
WHERE g.reminder_days > 0 AND m.cancelled_on IS NULL AND m.reminded_term < m.term_number
  AND m.ends_on >= {_TODAY} AND m.ends_on - g.reminder_days <= {_TODAY}
ORDER BY m.ends_on LIMIT %(limit)s
"""  # noqa: S608 - constant SQL


def _due(conn: psycopg.Connection[Any], query: str, now: datetime, limit: int) -> list[UUID]:
    return [r[0] for r in conn.execute(query, {"now": now, "limit": limit}).fetchall()]


def due_for_term_expiry(
    conn: psycopg.Connection[Any], now: datetime, limit: int = 1000
) -> list[UUID]:
    """Memberships of every gym whose term ended before the gym's today, not yet
    recorded as expired (workers/membership_jobs.py)."""
    return _due(conn, _DUE_FOR_EXPIRY, now, limit)


def due_for_reminder(conn: psycopg.Connection[Any], now: datetime, limit: int = 1000) -> list[UUID]:
    """Memberships of every gym whose term ends within the gym's `reminder_days`, with
    no reminder queued for the term yet."""
    return _due(conn, _DUE_FOR_REMINDER, now, limit)
