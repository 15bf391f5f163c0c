"""The scheduled job's membership passes: record each term that expired and queue
each reminder that is due (commands/membership_notes.py decides both).

They run inside the expiry job (workers/expiry.py), so they share its schedule:
one enqueue per interval however many workers run, and the injected clock. The work
lists come from the memberships read table and the gym's timezone in SQL; the
commands decide again on the log, so a stale row costs a no-op, never a wrong note.
"""

import logging

import psycopg

from commands.application import GymLedger, StreamConflict
from commands.context import CommandContext
from commands.membership_notes import ExpireMembershipTerm, QueueMembershipReminder
from domain.errors import NotFound
from infra import metrics
from infra.clock import Clock
from projections.memberships import due_for_reminder, due_for_term_expiry

log = logging.getLogger("gymledger.expiry")


def run_membership_passes(
    ledger: GymLedger, database_url: str, clock: Clock, causation_id: str | None = None
) -> tuple[int, int]:
    """Expire and remind what is due now; returns (terms expired, reminders queued)."""
    now = clock.now()
    with psycopg.connect(database_url) as conn:
        expiring, reminding = due_for_term_expiry(conn, now), due_for_reminder(conn, now)
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
