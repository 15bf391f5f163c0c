"""The scheduled job's membership passes: record each term that expired and queue
each reminder that is due (commands/membership_notes.py decides both).

They run inside the expiry job (workers/expiry.py), so they share its schedule:
one enqueue per interval however many workers run, and the injected clock. The work
lists come from the memberships read table and the gym's timezone in SQL; the
commands decide again on the log, so a stale row costs a no-op, never a wrong note.
"""

import logging
from datetime import datetime
from typing import Any
from uuid import UUID

import psycopg

from commands.application import GymLedger, StreamConflict
from commands.context import CommandContext
from commands.membership_notes import ExpireMembershipTerm, QueueMembershipReminder
from domain.errors import NotFound
from infra import metrics
from infra.clock import Clock

log = logging.getLogger("gymledger.expiry")

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


def due(conn: psycopg.Connection[Any], query: str, now: datetime, limit: int) -> list[UUID]:
    return [r[0] for r in conn.execute(query, {"now": now, "limit": limit}).fetchall()]


def due_for_expiry(conn: psycopg.Connection[Any], now: datetime, limit: int = 1000) -> list[UUID]:
    return due(conn, _DUE_FOR_EXPIRY, now, limit)


def due_for_reminder(conn: psycopg.Connection[Any], now: datetime, limit: int = 1000) -> list[UUID]:
    return due(conn, _DUE_FOR_REMINDER, now, limit)


def run_membership_passes(
    ledger: GymLedger, database_url: str, clock: Clock, causation_id: str | None = None
) -> tuple[int, int]:
    """Expire and remind what is due now; returns (terms expired, reminders queued)."""
    now = clock.now()
    with psycopg.connect(database_url) as conn:
        expiring, reminding = due_for_expiry(conn, now), due_for_reminder(conn, now)
    ctx = CommandContext.system(clock, causation_id)
    expired = sum(_recorded(ledger, ExpireMembershipTerm(membership_id=i), ctx) for i in expiring)
    reminded = sum(
        _recorded(ledger, QueueMembershipReminder(membership_id=i), ctx) for i in reminding
    )
    metrics.MEMBERSHIP_TERMS_EXPIRED.inc(expired)
    metrics.MEMBERSHIP_REMINDERS_QUEUED.inc(reminded)
    log.info(
        "membership run",
        extra={
            "due_expiry": len(expiring),
            "expired": expired,
            "due_reminder": len(reminding),
            "reminded": reminded,
        },
    )
    return expired, reminded


def _recorded(
    ledger: GymLedger, command: ExpireMembershipTerm | QueueMembershipReminder, ctx: CommandContext
) -> bool:
    try:
        return ledger.handle(command, ctx).position > 0
    except (StreamConflict, NotFound):
        return False  # changed meanwhile; the next run looks again
