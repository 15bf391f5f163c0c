"""What the scheduler records on memberships, as "system": a term's expiry and the
reminder of its end (workers/membership_jobs.py finds the memberships due).

Both are decided on the membership's latest state and the gym's local day, so a job
that runs twice, late, or beside another records each note at most once per term.
"""

from collections.abc import Callable
from uuid import UUID

import msgspec
from eventsourcing.application import AggregateNotFoundError

from commands.context import CommandContext
from commands.gyms import load_gym
from commands.latest import decide_on_latest
from commands.results import CommandResult
from commands.store import EventStore
from domain import membership
from domain.errors import NotFound, StreamOfAnotherKind
from domain.events import DomainEvent, Stamp
from domain.gym import Gym
from domain.validation import local_date


class ExpireMembershipTerm(msgspec.Struct, frozen=True, kw_only=True):
    membership_id: UUID


class QueueMembershipReminder(msgspec.Struct, frozen=True, kw_only=True):
    membership_id: UUID


Note = Callable[[membership.Membership, Gym, Stamp], DomainEvent | None]


def _note(app: EventStore, membership_id: UUID, ctx: CommandContext, note: Note) -> CommandResult:
    def attempt() -> CommandResult:
        try:
            current = app.latest.get(membership_id, membership.project)
        except (AggregateNotFoundError, StreamOfAnotherKind):
            current = None
        if current is None:
            raise NotFound("membership")
        gym = load_gym(app, current.gym_id)
        event = note(current, gym, ctx.stamp())
        if event is None:
            return CommandResult(id=current.id, version=current.version, position=0)
        return CommandResult(current.id, event.originator_version, app.append(event))

    return decide_on_latest(app.stream_locks, membership_id, ctx, attempt)


def expire_membership_term(
    app: EventStore, cmd: ExpireMembershipTerm, ctx: CommandContext
) -> CommandResult:
    """A no-op unless the term ended before the gym's today and is not recorded yet."""

    def note(m: membership.Membership, gym: Gym, stamp: Stamp) -> DomainEvent | None:
        return membership.expire(m, local_date(stamp.at, gym.timezone), stamp)

    return _note(app, cmd.membership_id, ctx, note)


def queue_membership_reminder(
    app: EventStore, cmd: QueueMembershipReminder, ctx: CommandContext
) -> CommandResult:
    """A no-op unless the term ends within the gym's `reminder_days` and no reminder
    of it was queued; the mail outbox sends it (projections/mail_outbox.py)."""

    def note(m: membership.Membership, gym: Gym, stamp: Stamp) -> DomainEvent | None:
        today = local_date(stamp.at, gym.timezone)
        return membership.remind(m, today, gym.reminder_days, stamp)

    return _note(app, cmd.membership_id, ctx, note)
